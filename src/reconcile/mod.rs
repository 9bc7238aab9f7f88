//! The slim reconciler: admitted Tenants become Services, Secrets, a ServiceAccount and one
//! StatefulSet per pool, and their status says whether the S3 cluster answers.
//!
//! `controller` sequences the phases, one file each: `guard` (valid, first in its namespace),
//! `configuration` (credentials and TLS Secrets), `workloads` (ServiceAccount, Services,
//! StatefulSets), `health` (servers ready, the S3 cluster's own answer, drives and usage from its
//! admin API), `provisioning` (users and buckets, once healthy), `decommission` (a pool asked to
//! retire), `status` (conditions), `events` (events, folded into series), `memory` (what a pass leaves for the next). `desired` is pure (Tenant in, objects out); `apply` is server-side apply; `caches` serves
//! the phases' reads from the controller's watches.

pub mod apply;
pub mod caches;
pub mod configuration;
pub mod controller;
pub mod decommission;
pub mod desired;
pub mod events;
pub mod guard;
pub mod health;
pub mod leader;
pub mod memory;
pub mod provisioning;
pub mod status;
pub mod workloads;

pub use apply::{FIELD_MANAGER, api_writes};
pub use controller::{Settings, passes, run};
pub use health::ReadyWhen;
