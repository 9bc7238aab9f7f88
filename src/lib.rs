//! hanzo-s3-operator: an admission-first Kubernetes operator for Hanzo S3 tenants.
//!
//! Data flows one way, and no module reaches back up (`tests/offline/architecture.rs` holds the
//! import graph free of cycles):
//!
//! - [`api`]: the Tenant types, its status vocabulary, the names of everything it becomes, the CRD.
//!   No I/O.
//! - [`admission`]: defaulting and validation as pure functions over typed Tenants, the violations
//!   they report and the defaulting patch. The webhook, the CLI and the reconciler's guard all call
//!   it, so their answers cannot drift.
//! - [`manifest`]: reading Tenant files (YAML/JSON, multi-document) with the position of every field.
//! - [`webhook`]: the HTTPS server that turns AdmissionReviews into decisions and answers.
//! - [`certs`]: the operator CA in a Secret, serving certificates, TLS clients that trust it.
//! - [`s3admin`]: a client of the S3 server's admin API (health, storage, users, buckets, pools).
//! - [`reconcile`]: the controller that turns admitted Tenants into workloads and reports status.
//! - [`metrics`]: the one registry the webhook and the reconciler report into.
//! - [`operator`]: the webhook server and the reconciler wired together, for `run` and `dev`.
//! - [`cli`]: one file (or folder) per subcommand, each a thin edge over the above.

pub mod admission;
pub mod api;
pub mod certs;
pub mod cli;
pub mod manifest;
pub mod metrics;
pub mod operator;
pub mod reconcile;
pub mod s3admin;
pub mod webhook;
