//! `dev`: the whole operator on a local control plane, in one command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hanzo_local_cluster::{ControlPlane, Options};
use kube::api::{Api, PostParams};

use super::EXIT_OK;
use crate::admission::DefaultsConfig;
use crate::certs::store;
use crate::operator::{Operator, Reconciler};
use crate::reconcile::{ReadyWhen, Settings};
use crate::webhook::config::{self, Target};
use crate::webhook::server;
use crate::webhook::tls::ServingCert;

mod endpoints;
mod examples;

const OPERATOR_NAMESPACE: &str = "hanzo-s3-operator";

/// Run the operator on a local control plane built from Go modules, and apply the examples.
///
/// Starts etcd, kube-apiserver, controller-manager, scheduler and kwok (fake nodes that run pods;
/// built on first use with crates/local-cluster/build.sh), installs the CRD and the webhooks, runs the
/// operator in-process, writes the kubeconfig once Tenants are admitted through both webhooks,
/// applies the example tenants (each in a namespace of its own), shows an invalid one being denied,
/// and waits for the tenants to be Ready. Then it keeps running until Ctrl-C.
///
/// With --real-node the tenants run for real: a kubelet with containerd, CNI, CoreDNS and
/// kube-proxy (built on first use with crates/local-cluster/build-node.sh; needs root) runs MinIO
/// servers standing in for Hanzo S3, Ready means the S3 cluster answers healthy, and dev prints
/// each tenant's endpoint, where its credentials are, and client commands that work as printed.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator dev\n  \
    hanzo-s3-operator dev --nodes 6 --kubeconfig-out /tmp/hanzo.kubeconfig   # then: KUBECONFIG=/tmp/hanzo.kubeconfig kubectl get tenants -A\n  \
    hanzo-s3-operator dev --exit-when-ready                                   # for CI\n  \
    hanzo-s3-operator dev --real-node                                         # real S3 servers (root)")]
pub struct DevArgs {
    /// Fake nodes to schedule pods on (default 4; 0 with --real-node, whose fake nodes are tainted).
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Run a real node too (kubelet, containerd, CNI, CoreDNS, kube-proxy) and put the tenants on it.
    #[arg(long)]
    pub real_node: bool,
    /// Write the admin kubeconfig here, once Tenants are admitted through both webhooks.
    #[arg(long, value_name = "PATH", default_value = "hanzo-dev.kubeconfig")]
    pub kubeconfig_out: PathBuf,
    /// Start the operator only; apply no example tenants.
    #[arg(long)]
    pub no_examples: bool,
    /// Stop everything and exit 0 once the examples are Ready (exit 1 if they are not in time).
    #[arg(long)]
    pub exit_when_ready: bool,
    /// How long the tenants' certificates are valid (e.g. 300s to see renewals within minutes);
    /// each is signed again when a third of it is left.
    #[arg(long, default_value = "90d", value_parser = super::parse_duration, value_name = "DURATION")]
    pub tenant_certificate_lifetime: std::time::Duration,
    /// How long the metrics tokens of Tenants with spec.prometheusOperator are valid; each is
    /// made again when a third of it is left.
    #[arg(long, default_value = "24h", value_parser = super::parse_duration, value_name = "DURATION")]
    pub tenant_metrics_token_lifetime: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
enum DevError {
    #[error(transparent)]
    ControlPlane(#[from] hanzo_local_cluster::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Cert(#[from] crate::certs::CertError),
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::webhook::tls::TlsError),
    #[error("example {0}: {1}")]
    Example(&'static str, String),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{0}")]
    NotReady(String),
}

pub fn run(args: &DevArgs) -> u8 {
    // 1, not 2: the control plane ran, the tenants did not get Ready (or something refused them).
    super::block_on(dev(args), 1).map_or_else(|code| code, |()| EXIT_OK)
}

fn step(text: &str) {
    println!("==> {text}");
}

async fn dev(args: &DevArgs) -> Result<(), DevError> {
    let cp = start_cluster(args).await?;
    let client = cp.client().await?;
    step("installing the Tenant CRD");
    crate::operator::install::install_crd(&client, "hanzo-s3-operator", Duration::from_secs(30))
        .await
        .map_err(|e| DevError::NotReady(e.to_string()))?;
    // As the chart installs it by default: the local default enforces what a cluster does.
    step("installing the backstop ValidatingAdmissionPolicy (hanzo-s3-operator backstop)");
    crate::operator::install::install_backstop(&client, "hanzo-s3-operator")
        .await
        .map_err(|e| DevError::NotReady(e.to_string()))?;
    let operator = start_operator(&client, args).await?;
    crate::operator::install::wait_for_admission(&client, "default", Duration::from_secs(30))
        .await
        .map_err(|e| DevError::NotReady(e.to_string()))?;
    // Only now: a script waiting for this file may apply Tenants at once, and each is defaulted
    // and validated.
    write_atomically(
        &args.kubeconfig_out,
        &std::fs::read(cp.kubeconfig_path()).unwrap_or_default(),
    )?;
    println!(
        "    Tenants are admitted through both webhooks; kubeconfig written: {} (KUBECONFIG={} kubectl get tenants -A)",
        args.kubeconfig_out.display(),
        args.kubeconfig_out.display()
    );
    if !args.no_examples
        && let Err(e) = examples::run(&client, &cp, args, &operator.ca_pem).await
    {
        if args.exit_when_ready {
            let _ = operator.stop.send(true);
            return Err(e);
        }
        println!("    {e}");
    }
    if args.exit_when_ready {
        step("ready; stopping everything (--exit-when-ready)");
    } else {
        step("running; press Ctrl-C to stop everything");
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = operator.stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), operator.task).await;
    cp.stop();
    println!("    stopped");
    Ok(())
}

/// Builds what is missing, then starts the control plane (and the real node when asked).
async fn start_cluster(args: &DevArgs) -> Result<ControlPlane, DevError> {
    step("building the local control plane if needed (crates/local-cluster/build.sh)");
    let bin = tokio::task::spawn_blocking(hanzo_local_cluster::ensure_built)
        .await
        .map_err(|e| DevError::NotReady(e.to_string()))??;
    if args.real_node {
        step("building the real node if needed (crates/local-cluster/build-node.sh)");
        tokio::task::spawn_blocking(hanzo_local_cluster::node::ensure_node_built)
            .await
            .map_err(|e| DevError::NotReady(e.to_string()))??;
    }
    let nodes = args.nodes.unwrap_or(if args.real_node { 0 } else { 4 });
    let options = Options {
        nodes,
        real_node: args.real_node,
        ..Options::default()
    };
    step(&format!(
        "starting etcd, kube-apiserver, controller-manager, scheduler{}{} ({})",
        if nodes > 0 {
            format!(" and kwok with {nodes} fake nodes")
        } else {
            String::new()
        },
        if args.real_node {
            ", and a real node (containerd, kubelet, kube-proxy, CoreDNS)"
        } else {
            ""
        },
        bin.display()
    ));
    let started = Instant::now();
    let cp = ControlPlane::start(options).await?;
    println!(
        "    ready at {} in {:.1}s",
        cp.server_url(),
        started.elapsed().as_secs_f64()
    );
    Ok(cp)
}

/// The operator running in this process.
struct Running {
    /// The operator CA, which signs the webhook's and the tenants' certificates.
    ca_pem: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), server::ServeError>>,
}

/// The operator's CA in its namespace, the webhook server on 127.0.0.1 registered by URL, and the
/// reconciler.
async fn start_operator(client: &kube::Client, args: &DevArgs) -> Result<Running, DevError> {
    let real_node = args.real_node;
    step("starting the operator: webhook server on 127.0.0.1 and the reconciler");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": OPERATOR_NAMESPACE}}))
            .map_err(|e| DevError::NotReady(e.to_string()))?;
    let _ = namespaces.create(&PostParams::default(), &ns).await;
    let stored = store::ensure_ca(client.clone(), OPERATOR_NAMESPACE).await?;
    let pair = stored.ca.sign_serving(&["127.0.0.1".to_owned()])?;
    let cert = Arc::new(ServingCert::default());
    cert.set_pem(&pair.cert_pem, &pair.key_pem)?;
    let listener = server::bind(
        "127.0.0.1:0"
            .parse()
            .map_err(|_| DevError::NotReady("address".into()))?,
    )
    .await?;
    let url = format!(
        "https://{}",
        listener
            .local_addr()
            .map_err(|e| DevError::NotReady(e.to_string()))?
    );
    let mut defaults = DefaultsConfig::from_env();
    if real_node && std::env::var_os("TENANT_S3_IMAGE").is_none() {
        // The Hanzo S3 image cannot be fetched here: the node has a MinIO server standing in.
        defaults.s3_image = hanzo_local_cluster::node::s3_server_image().to_owned();
    }
    let options = config::Options {
        target: Target::Url(url.clone()),
        ca_bundle_pem: Some(stored.bundle_pem.clone()),
        operator_namespace: OPERATOR_NAMESPACE.to_owned(),
        mutation_failure_policy: "Fail".to_owned(),
    };
    // Fake nodes run no servers: there Ready means every server's pod is ready.
    let ready_when = if real_node {
        ReadyWhen::S3Healthy
    } else {
        ReadyWhen::PodsReady
    };
    let ca_pem = stored.ca.cert_pem().to_owned();
    let operator = Operator {
        client: Some(client.clone()),
        defaults: defaults.clone(),
        cert,
        server: server::ServerOptions::default(),
        namespaces: Vec::new(),
        reconciler: Some(Reconciler {
            settings: Settings {
                tenant_certificate_lifetime: args.tenant_certificate_lifetime,
                metrics_token_lifetime: args.tenant_metrics_token_lifetime,
                ..Settings::following(defaults, store::SharedCa::fixed(stored), ready_when)
            },
            lease: None,
        }),
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(operator.run(listener, stop_rx));
    config::apply(client, &options, "hanzo-s3-operator").await?;
    println!("    webhooks at {url}, registered by URL with the operator CA");
    Ok(Running { ca_pem, stop, task })
}

/// Writes `path` through a temporary file and a rename, so a reader never sees half of it.
fn write_atomically(path: &std::path::Path, content: &[u8]) -> Result<(), DevError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| DevError::Write(path.to_owned(), e))
}

async fn wait<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> Result<T, DevError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(DevError::NotReady(format!(
                "timed out after {}s waiting for {what}",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
