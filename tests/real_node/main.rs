//! The real-node tier: needs root and the real node (crates/local-cluster/build-node.sh, built on
//! first use). `cargo test --test real_node`.
//!
//! Each module is a former test binary (`tests/<name>.rs`). A machine runs one real node at a
//! time: dev_real_node and documented_commands start one in a child process and take a
//! `hanzo_testkit::real_node::turn()`; real_node's set-up keeps one until the process exits and
//! takes it with `hanzo_testkit::real_node::keep()`, after every turn (see that module).
//! documented_commands gives its turn back as soon as its one command that needs the node has
//! run, and its builds and benchmark smokes go on beside real_node's tests; rollouts, which
//! measures failed requests under S3 load, waits for them to end ([`QUIET_MACHINE`]).

mod dev_real_node;
mod documented_commands;
mod monitoring;
mod real_node;
mod rollouts;

/// The machine's 2 cores without builds or benchmarks on them: documented_commands holds this
/// while it runs, rollouts while it measures, so that a compile never shares the CPU with an S3
/// load whose failed requests are counted.
pub(crate) static QUIET_MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
