//! Measures start-up: `cargo run -p hanzo-controlplane --example startup [-- NODES]` prints the time
//! to /readyz (and to Ready fake nodes, with NODES > 0), then stops everything.

use std::time::Instant;

use hanzo_controlplane::{ControlPlane, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nodes: usize = std::env::args().nth(1).map_or(Ok(0), |n| n.parse())?;
    let started = Instant::now();
    let cp = ControlPlane::start(Options::with_nodes(nodes)).await?;
    println!(
        "control plane {} ready at {} with {} fake node(s) in {:.2}s",
        hanzo_controlplane::kubernetes_version(),
        cp.server_url(),
        cp.node_names().len(),
        started.elapsed().as_secs_f64()
    );
    cp.stop();
    Ok(())
}
