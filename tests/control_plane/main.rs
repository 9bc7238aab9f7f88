//! The control-plane tier: a real local apiserver (crates/local-cluster, built from Go modules on
//! first use), no root. `cargo test --test control_plane`.
//!
//! Each module is a former test binary (`tests/<name>.rs`), so what was per process is now shared
//! by all of them. Where each module runs, and why:
//! - on the tier's shared control plane (`hanzo_testkit::control_plane::shared()`, 3 fake nodes):
//!   gitops_health (its reconciler watches its own namespaces only), leader_election,
//!   webhook_apiserver (its webhooks judge labelled namespaces only);
//! - on the standard reconciler's own control plane (`control_plane::reconciled()`):
//!   e2e_reconcile (a reconciler of all namespaces would act on every other module's Tenants);
//! - on a control plane of the module's own, shared by its tests: run_in_cluster (the binary
//!   registers webhooks for all namespaces and reconciles all of them);
//! - on a control plane of each test's own: backstop (an admission policy for every Tenant),
//!   deploy (cluster roles, webhook configurations for all namespaces, a reconciler of all
//!   namespaces), deploy_helm (cluster roles, the chart's backstop policy for every Tenant), and,
//!   as before, client_certificates and secret_leaks;
//! - in a process of its own: reconcile_reads (it counts `reconcile::passes()`, which every
//!   reconciler of the process adds to);
//! - dev_command runs `dev`, which starts its own control plane in a child process.
//!
//! The fault tests (the apiserver and etcd restarted, replicas killed) are a binary of their own,
//! `tests/faults`: beside this tier's control planes their operators, which renew a Lease every
//! few hundred milliseconds, were starved of the 2 cores (16 of 24 Tenants never reconciled).

mod backstop;
mod ca_rotation;
mod client_certificates;
mod deploy;
mod deploy_helm;
mod dev_command;
mod e2e_reconcile;
mod gitops_health;
mod leader_election;
mod monitoring;
mod reconcile_reads;
mod run_in_cluster;
mod secret_leaks;
mod webhook_apiserver;
