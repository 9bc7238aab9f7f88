//! The real-node tier: needs root and the real node (crates/local-cluster/build-node.sh, built on
//! first use). `cargo test --test real_node`.
//!
//! Each module is a former test binary (`tests/<name>.rs`). A machine runs one real node at a
//! time: dev_real_node and documented_commands start one in a child process and take a
//! `hanzo_testkit::real_node::turn()`; real_node's set-up keeps one until the process exits and
//! takes it with `hanzo_testkit::real_node::keep()`, after every turn (see that module).

mod dev_real_node;
mod documented_commands;
mod real_node;
mod rollouts;
