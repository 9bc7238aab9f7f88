//! The slim reconciler: admitted Tenants become Services, Secrets, a ServiceAccount and one
//! StatefulSet per pool, and their status says whether the S3 cluster answers.
//!
//! Data flows one way. `controller` runs the watches and, for each Tenant they wake, a `pass`,
//! which runs the phases in order, each in a file of its own: `guard` (valid, first in its
//! namespace), `configuration` (credentials and TLS Secrets), `workloads` (ServiceAccount, Services,
//! StatefulSets, disruption budgets), `rollout` (servers on an older template replaced, one at a
//! time behind the S3 health, or restarted together in place by `in_place` when only their
//! configuration file changed), `health` (servers ready, the S3 cluster's own answer, drives and usage),
//! `provisioning` (users and buckets, once healthy), `monitoring` (the metrics token and
//! ServiceMonitors, `scrape` saying what they hold), `decommission` (a pool asked to retire). The
//! phases share `context` (settings, client, caches, memory) and end in `outcome`s; what they saw is
//! `observed`, what the status says of it is decided in `status` (pure) and written by `report`.
//! Below them: `desired` (pure: Tenant in, objects out), `apply` (server-side apply), `caches` (the
//! watches' stores), `memory` (what a pass leaves for the next), `events`, `leader`.

pub mod apply;
pub mod caches;
pub mod certs_dir;
pub mod configuration;
pub mod context;
pub mod controller;
pub mod decommission;
pub mod desired;
pub mod events;
pub mod guard;
pub mod health;
pub mod in_place;
pub mod leader;
pub mod memory;
pub mod monitoring;
pub mod observed;
pub mod outcome;
pub mod pass;
pub mod provisioning;
pub mod report;
pub mod rollout;
pub mod scrape;
pub mod servers;
pub mod status;
pub mod takeover;
pub mod workloads;

pub use crate::metrics::{api_writes, passes};
pub use apply::FIELD_MANAGER;
pub use context::{ReadyWhen, Settings};
pub use controller::run;
