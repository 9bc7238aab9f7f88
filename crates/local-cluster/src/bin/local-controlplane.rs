//! Runs a local control plane until Ctrl-C (or until killed: nothing is left behind either way).
//!
//!   cargo run -p hanzo-local-cluster --bin local-controlplane -- [NODES] [--real-node]
//!
//! NODES fake nodes (kwok); with --real-node also a real node (kubelet, containerd, CNI, CoreDNS,
//! kube-proxy; needs root and crates/local-cluster/build-node.sh). Prints the kubeconfig path as its
//! first line, then `ready`.

use hanzo_local_cluster::{ControlPlane, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options = Options::default();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--real-node" => options.real_node = true,
            "-h" | "--help" => {
                println!("usage: local-controlplane [NODES] [--real-node]");
                return Ok(());
            }
            n => options.nodes = n.parse().map_err(|e| format!("NODES {n:?}: {e}"))?,
        }
    }
    hanzo_local_cluster::ensure_built()?;
    if options.real_node {
        hanzo_local_cluster::node::ensure_node_built()?;
    }
    let cp = ControlPlane::start(options).await?;
    println!("{}", cp.kubeconfig_path().display());
    println!("ready");
    tokio::signal::ctrl_c().await?;
    cp.stop();
    Ok(())
}
