//! What hanzo-s3-operator's tests and benchmarks share, written once.
//!
//! - [`TenantBuilder`] and [`PoolBuilder`]: Tenant manifests as JSON, field for field what the
//!   tests and benchmarks used to write out by hand.
//! - [`support`]: child processes killed on drop, free ports, impersonation, a TCP proxy, a
//!   reconciliation to Ready.
//! - [`control_plane`]: the control-plane tier's one shared control plane, control planes of a
//!   module's own, and the standard reconciler.
//! - [`isolation`]: a test run alone in a process of its own (for process-wide counters).
//! - [`real_node`]: turns at the machine's one real node between the tests of one binary.
//! - [`load`]: the S3 load instrument, run while a test changes a tenant, and its report.
//! - [`prometheus`]: a real Prometheus, with the scrape configuration ServiceMonitors stand for.
//! - [`bench`], [`operators`], [`peers`]: what the benchmarks share (realistic Tenants, the
//!   standalone server, the controller-runtime peer, both operators side by side, Kyverno).
//!
//! The test binaries are tiers (`tests/<tier>/main.rs`): `offline`, `in_process`,
//! `control_plane` and `real_node`; each module of a tier is a former test file.

pub mod bench;
pub mod control_plane;
pub mod isolation;
pub mod load;
pub mod operators;
pub mod peers;
pub mod prometheus;
pub mod real_node;
pub mod support;
mod tenant;

pub use tenant::{PoolBuilder, TenantBuilder};

use std::path::Path;

/// The repository's root (the operator's package): where `benches/results`, `peers/`,
/// `examples/` and the other paths the tests name are.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/testkit sits two levels below the repository's root")
}
