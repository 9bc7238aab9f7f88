//! Runs a local control plane until Ctrl-C (or until killed: nothing is left behind either way).
//!
//!   cargo run -p hanzo-controlplane --bin local-controlplane -- [NODES]
//!
//! Prints the kubeconfig path as its first line, then `ready`.

use hanzo_controlplane::{ControlPlane, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nodes: usize = std::env::args().nth(1).map_or(Ok(0), |n| n.parse())?;
    hanzo_controlplane::ensure_built()?;
    let cp = ControlPlane::start(Options::with_nodes(nodes)).await?;
    println!("{}", cp.kubeconfig_path().display());
    println!("ready");
    tokio::signal::ctrl_c().await?;
    cp.stop();
    Ok(())
}
