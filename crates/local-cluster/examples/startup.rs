//! Measures start-up: `cargo run -p hanzo-local-cluster --example startup [-- NODES]` prints the time
//! to /readyz (and to Ready fake nodes, with NODES > 0), then stops everything.

use std::time::Instant;

use hanzo_local_cluster::{ControlPlane, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nodes: usize = std::env::args().nth(1).map_or(Ok(0), |n| n.parse())?;
    let started = Instant::now();
    let cp = ControlPlane::start(Options::with_nodes(nodes)).await?;
    println!(
        "control plane {} ready at {} with {} fake node(s) in {:.2}s",
        hanzo_local_cluster::kubernetes_version(),
        cp.server_url(),
        cp.node_names().len(),
        started.elapsed().as_secs_f64()
    );
    cp.stop();
    Ok(())
}
