//! The in-process tier: the webhook server in this process and the operator's binaries (and the
//! S3 server of the real node's image, built by crates/local-cluster/build-node.sh) on
//! 127.0.0.1, with no control plane and no root. `cargo test --test in_process`.
//!
//! Each module is a former test binary (`tests/<name>.rs`). No module may run the reconciler in
//! this process: webhook_server's metrics test asserts the process-wide reconcile counters at 0.

mod conformance_cli;
mod hostile;
mod s3admin;
mod webhook_server;
