//! `dev`: the whole operator on a local control plane, in one command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hanzo_controlplane::{ControlPlane, Options};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, PostParams};

use super::EXIT_OK;
use crate::admission::DefaultsConfig;
use crate::api::tenant::Tenant;
use crate::certs::store;
use crate::reconcile::{ReadyWhen, Settings};
use crate::webhook::cluster::ApiCluster;
use crate::webhook::config::{self, Target};
use crate::webhook::metrics::Metrics;
use crate::webhook::server::{self, AppState};
use crate::webhook::tls::ServingCert;

const EXAMPLES: [(&str, &str); 3] = [
    (
        "tenant-minimal",
        include_str!("../../examples/tenant-minimal.yaml"),
    ),
    (
        "tenant-multi-pool",
        include_str!("../../examples/tenant-multi-pool.yaml"),
    ),
    ("tenant-tls", include_str!("../../examples/tenant-tls.yaml")),
];
const OPERATOR_NAMESPACE: &str = "hanzo-s3-operator";

/// Run the operator on a local control plane built from Go modules, and apply the examples.
///
/// Starts etcd, kube-apiserver, controller-manager, scheduler and kwok (fake nodes that run pods;
/// built on first use with tests/controlplane/build.sh), installs the CRD and the webhooks, runs the
/// operator in-process, applies the example tenants (each in a namespace of its own), shows an
/// invalid one being denied, and waits for the tenants to be Ready. Then it keeps running until
/// Ctrl-C; use the kubeconfig it writes with kubectl meanwhile.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator dev\n  \
    hanzo-s3-operator dev --nodes 6 --kubeconfig-out /tmp/hanzo.kubeconfig   # then: KUBECONFIG=/tmp/hanzo.kubeconfig kubectl get tenants -A\n  \
    hanzo-s3-operator dev --exit-when-ready                                   # for CI")]
pub struct DevArgs {
    /// Fake nodes to schedule pods on.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Write the admin kubeconfig here.
    #[arg(long, value_name = "PATH", default_value = "hanzo-dev.kubeconfig")]
    pub kubeconfig_out: PathBuf,
    /// Start the operator only; apply no example tenants.
    #[arg(long)]
    pub no_examples: bool,
    /// Stop everything and exit 0 once the examples are Ready (exit 1 if they are not within 3 minutes).
    #[arg(long)]
    pub exit_when_ready: bool,
}

#[derive(Debug, thiserror::Error)]
enum DevError {
    #[error(transparent)]
    ControlPlane(#[from] hanzo_controlplane::Error),
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
    step("building the local control plane if needed (tests/controlplane/build.sh)");
    let bin = tokio::task::spawn_blocking(hanzo_controlplane::ensure_built)
        .await
        .map_err(|e| DevError::NotReady(e.to_string()))??;
    step(&format!(
        "starting etcd, kube-apiserver, controller-manager, scheduler and kwok with {} fake nodes ({})",
        args.nodes,
        bin.display()
    ));
    let started = Instant::now();
    let cp = ControlPlane::start(Options::with_nodes(args.nodes)).await?;
    println!(
        "    ready at {} in {:.1}s",
        cp.server_url(),
        started.elapsed().as_secs_f64()
    );
    std::fs::copy(cp.kubeconfig_path(), &args.kubeconfig_out)
        .map_err(|e| DevError::Write(args.kubeconfig_out.clone(), e))?;
    println!(
        "    kubeconfig: {} (KUBECONFIG={} kubectl get tenants -A)",
        args.kubeconfig_out.display(),
        args.kubeconfig_out.display()
    );
    let client = cp.client().await?;

    step("installing the Tenant CRD");
    crate::install::install_crd(&client, "hanzo-s3-operator", Duration::from_secs(30))
        .await
        .map_err(|e| DevError::NotReady(e.to_string()))?;

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
    let defaults = DefaultsConfig::from_env();
    let state = Arc::new(AppState {
        defaults: defaults.clone(),
        cluster: Some(ApiCluster::new(client.clone())),
        metrics: Metrics::default(),
        cert,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server_task = tokio::spawn(server::serve(listener, state, stopped(stop_rx.clone())));
    let options = config::Options {
        target: Target::Url(url.clone()),
        ca_bundle_pem: Some(stored.bundle_pem.clone()),
        operator_namespace: OPERATOR_NAMESPACE.to_owned(),
        mutation_failure_policy: "Fail".to_owned(),
    };
    config::apply(&client, &options, "hanzo-s3-operator").await?;
    // Fake nodes run no servers: Ready means every server's pod is ready.
    let controller = tokio::spawn(crate::reconcile::run(
        client.clone(),
        Settings::new(defaults, Arc::new(stored.ca), ReadyWhen::PodsReady),
        stopped(stop_rx.clone()),
    ));
    println!("    webhooks at {url}, registered by URL with the operator CA");

    if !args.no_examples {
        let applied = apply_examples(&client).await?;
        step("waiting for the example tenants to be Ready");
        let outcome = wait(
            Duration::from_secs(180),
            "the example tenants to be Ready",
            async || {
                let mut all_ready = true;
                for ns in &applied {
                    let tenants: Vec<Tenant> = Api::<Tenant>::namespaced(client.clone(), ns)
                        .list(&ListParams::default())
                        .await
                        .ok()?
                        .items;
                    for t in tenants {
                        let ready = t.status.as_ref().is_some_and(|s| {
                            s.conditions
                                .iter()
                                .any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                        all_ready &= ready;
                    }
                }
                all_ready.then_some(())
            },
        )
        .await;
        report(&client, &applied).await?;
        if let Err(e) = outcome {
            if args.exit_when_ready {
                let _ = stop_tx.send(true);
                return Err(e);
            }
            println!("    {e}");
        }
    }
    if args.exit_when_ready {
        step("ready; stopping everything (--exit-when-ready)");
    } else {
        step("running; press Ctrl-C to stop everything");
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = server_task.await;
        let _ = controller.await;
    })
    .await;
    // Remove the registrations before the apiserver goes, then stop the control plane.
    cp.stop();
    println!("    stopped");
    Ok(())
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

/// Applies each example into a namespace of its own (a namespace holds one Tenant), then shows an
/// invalid Tenant being denied. Returns the namespaces used.
async fn apply_examples(client: &kube::Client) -> Result<Vec<String>, DevError> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut used = Vec::new();
    for (name, text) in EXAMPLES {
        step(&format!(
            "applying examples/{name}.yaml in namespace {name}"
        ));
        let ns: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
                .map_err(|e| DevError::Example(name, e.to_string()))?;
        let _ = namespaces.create(&PostParams::default(), &ns).await;
        wait(
            Duration::from_secs(30),
            "the namespace's default ServiceAccount",
            async || {
                Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), name)
                    .get_opt("default")
                    .await
                    .ok()?
            },
        )
        .await?;
        let read = crate::manifest::parse(name, text);
        if let Some(e) = read.error {
            return Err(DevError::Example(name, e.to_string()));
        }
        for doc in read.documents {
            if crate::manifest::is_tenant(&doc.value) {
                let tenant: Tenant = crate::admission::parse_tenant(&doc.value)
                    .map_err(|v| DevError::Example(name, v.message()))?;
                // Retried: the webhook configuration takes a moment to reach the apiserver.
                let created = wait(
                    Duration::from_secs(15),
                    "the webhooks to be called",
                    async || {
                        let t = Api::<Tenant>::namespaced(client.clone(), name)
                            .create(&PostParams::default(), &tenant)
                            .await
                            .ok()?;
                        t.spec.image.is_some().then_some(t)
                    },
                )
                .await?;
                println!(
                    "    Tenant {name}/{} admitted and defaulted: image {}, serviceAccountName {}, pools {:?}",
                    created.name(),
                    created.spec.image.as_deref().unwrap_or("-"),
                    created.spec.service_account_name.as_deref().unwrap_or("-"),
                    created
                        .spec
                        .pools
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                );
            } else {
                let secret: Secret = serde_json::from_value(doc.value)
                    .map_err(|e| DevError::Example(name, e.to_string()))?;
                Api::<Secret>::namespaced(client.clone(), name)
                    .create(&PostParams::default(), &secret)
                    .await?;
            }
        }
        used.push(name.to_owned());
    }
    step(
        "applying an invalid tenant (17 servers, podManagementPolicy \"parallel\") to show a denial",
    );
    let mut invalid = crate::admission::parse_tenant(
        &crate::manifest::parse("invalid", EXAMPLES[0].1)
            .documents
            .into_iter()
            .find(|d| crate::manifest::is_tenant(&d.value))
            .map(|d| d.value)
            .unwrap_or_default(),
    )
    .map_err(|v| DevError::Example("invalid", v.message()))?;
    invalid.metadata.name = Some("broken".to_owned());
    if let Some(pool) = invalid.spec.pools.first_mut() {
        pool.servers = 17;
    }
    invalid.spec.pod_management_policy = Some("parallel".to_owned());
    let _ = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "invalid-example"}}))
                .map_err(|e| DevError::Example("invalid", e.to_string()))?,
        )
        .await;
    match Api::<Tenant>::namespaced(client.clone(), "invalid-example")
        .create(&PostParams::default(), &invalid)
        .await
    {
        Err(kube::Error::Api(status)) => {
            println!("    denied ({}): {}", status.code, status.message)
        }
        Err(e) => println!("    denied: {e}"),
        Ok(_) => println!("    unexpectedly admitted"),
    }
    Ok(used)
}

async fn report(client: &kube::Client, namespaces: &[String]) -> Result<(), DevError> {
    step("what is running");
    for ns in namespaces {
        for t in Api::<Tenant>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
        {
            let status = t.status.clone().unwrap_or_default();
            println!(
                "    Tenant {ns}/{}: {} ({} servers available)",
                t.name(),
                status.current_state.as_deref().unwrap_or("pending"),
                status.available_replicas.unwrap_or(0)
            );
        }
        for sts in Api::<StatefulSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
        {
            let ready = sts
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            println!(
                "      StatefulSet {}: {ready}/{} ready",
                sts.metadata.name.unwrap_or_default(),
                sts.spec.replicas.unwrap_or(0)
            );
        }
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items;
        let running = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        println!("      Pods Running on fake nodes: {running}/{}", pods.len());
    }
    Ok(())
}
