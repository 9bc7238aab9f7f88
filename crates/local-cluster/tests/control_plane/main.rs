//! The harness on a control plane with fake nodes (no root): `cargo test -p hanzo-local-cluster
//! --test control_plane`. The real node, which needs root, is tests/real_node.rs.
//!
//! Each module is a former test binary (`tests/<name>.rs`). capacity and lifecycle start control
//! planes of their own; statefulset_on_fake_nodes and webhook_from_host share
//! [`ControlPlane::shared`](hanzo_local_cluster::ControlPlane::shared), whose first caller's node
//! count wins: both ask for [`SHARED_NODES`].

mod capacity;
mod lifecycle;
mod statefulset_on_fake_nodes;
mod webhook_from_host;

/// Fake nodes of the shared control plane: statefulset_on_fake_nodes needs 3 (webhook_from_host,
/// which asked for none, registers a webhook for its own namespace only).
const SHARED_NODES: usize = 3;
