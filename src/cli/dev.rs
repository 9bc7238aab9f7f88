//! `dev`: the whole operator on a local control plane, in one command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hanzo_local_cluster::{ControlPlane, Options};
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
    let mut defaults = DefaultsConfig::from_env();
    if args.real_node && std::env::var_os("TENANT_S3_IMAGE").is_none() {
        // The Hanzo S3 image cannot be fetched here: the node has a MinIO server standing in.
        defaults.s3_image = hanzo_local_cluster::node::s3_server_image().to_owned();
    }
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
    // Fake nodes run no servers: there Ready means every server's pod is ready.
    let ready_when = if args.real_node {
        ReadyWhen::S3Healthy
    } else {
        ReadyWhen::PodsReady
    };
    let ca_pem = stored.ca.cert_pem().to_owned();
    let controller = tokio::spawn(crate::reconcile::run(
        client.clone(),
        Settings::new(defaults, Arc::new(stored.ca), ready_when),
        stopped(stop_rx.clone()),
    ));
    println!("    webhooks at {url}, registered by URL with the operator CA");
    crate::install::wait_for_admission(&client, "default", Duration::from_secs(30))
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

    if !args.no_examples {
        let applied = apply_examples(&client, args.real_node).await?;
        let timeout = Duration::from_secs(if args.real_node { 600 } else { 180 });
        step(&format!(
            "waiting for the example tenants to be Ready{}",
            if args.real_node {
                " (the S3 clusters answer healthy)"
            } else {
                ""
            }
        ));
        let outcome = wait(timeout, "the example tenants to be Ready", async || {
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
        })
        .await;
        report(&client, &applied, args.real_node).await?;
        if outcome.is_ok()
            && let Some(node) = cp.real_node()
        {
            print_endpoints(&client, node, &applied, &ca_pem, &args.kubeconfig_out).await?;
        }
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
    cp.stop();
    println!("    stopped");
    Ok(())
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

/// Why an example tenant cannot run on the local real node (this machine), if it cannot.
fn unfit_for_real_node(tenant: &Tenant) -> Option<String> {
    let stand_in = hanzo_local_cluster::node::s3_server_image();
    if let Some(image) = tenant.spec.image.as_deref().filter(|i| *i != stand_in) {
        return Some(format!(
            "it asks for the image {image}, which cannot be pulled here (no registry; the node has {stand_in})"
        ));
    }
    let cpus: f64 = tenant
        .spec
        .pools
        .iter()
        .map(|p| {
            let per_server = p
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("cpu"))
                .and_then(|q| crate::api::quantity::Quantity::parse(&q.0).ok())
                .map_or(0.0, |q| q.as_f64());
            per_server * f64::from(p.servers)
        })
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (cpus > cores).then(|| format!("its servers request {cpus} CPUs; this machine has {cores}"))
}

/// Applies each example into a namespace of its own (a namespace holds one Tenant), then shows an
/// invalid Tenant being denied. Returns the namespaces used.
async fn apply_examples(client: &kube::Client, real_node: bool) -> Result<Vec<String>, DevError> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut used = Vec::new();
    for (name, text) in EXAMPLES {
        let read = crate::manifest::parse(name, text);
        if let Some(e) = read.error {
            return Err(DevError::Example(name, e.to_string()));
        }
        if real_node
            && let Some(why) = read
                .documents
                .iter()
                .filter(|d| crate::manifest::is_tenant(&d.value))
                .filter_map(|d| crate::admission::parse_tenant(&d.value).ok())
                .find_map(|t| unfit_for_real_node(&t))
        {
            step(&format!(
                "skipping examples/{name}.yaml on the real node: {why}"
            ));
            continue;
        }
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

async fn report(
    client: &kube::Client,
    namespaces: &[String],
    real_node: bool,
) -> Result<(), DevError> {
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
        println!(
            "      Pods Running on {}: {running}/{}",
            if real_node {
                "the real node"
            } else {
                "fake nodes"
            },
            pods.len()
        );
    }
    Ok(())
}

/// For each tenant on the real node: its S3 endpoint, where its credentials are, and client
/// commands that work as printed from this machine (kube-proxy's rules on this host reach the
/// Service's ClusterIP; curl signs the requests with SigV4).
async fn print_endpoints(
    client: &kube::Client,
    node: &hanzo_local_cluster::RealNode,
    namespaces: &[String],
    ca_pem: &str,
    kubeconfig: &std::path::Path,
) -> Result<(), DevError> {
    use crate::api::names::S3_SERVICE_NAME;
    use k8s_openapi::api::core::v1::Service;
    use std::os::unix::fs::PermissionsExt;

    step("S3 endpoints (the servers are MinIO, standing in for Hanzo S3)");
    let dir = kubeconfig.parent().unwrap_or(std::path::Path::new(""));
    let ca_file = dir.join("hanzo-dev-ca.pem");
    write_atomically(&ca_file, ca_pem.as_bytes())?;
    for ns in namespaces {
        for t in Api::<Tenant>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
        {
            let Some(ip) = Api::<Service>::namespaced(client.clone(), ns)
                .get_opt(S3_SERVICE_NAME)
                .await?
                .and_then(|s| s.spec)
                .and_then(|s| s.cluster_ip)
            else {
                continue;
            };
            let host = format!(
                "{S3_SERVICE_NAME}.{ns}.svc.{}",
                hanzo_local_cluster::node::CLUSTER_DOMAIN
            );
            let (scheme, port) = if t.tls() {
                ("https", 443)
            } else {
                ("http", 80)
            };
            let secret_name = t
                .spec
                .configuration
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let entries = Api::<Secret>::namespaced(client.clone(), ns)
                .get_opt(&secret_name)
                .await?
                .and_then(|s| s.data)
                .and_then(|d| d.get("config.env").cloned())
                .map(|b| {
                    crate::reconcile::desired::parse_config_env(&String::from_utf8_lossy(&b.0))
                })
                .unwrap_or_default();
            let value = |key: &str| {
                entries
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let credentials = dir.join(format!("hanzo-dev-{ns}.credentials"));
            if let (Some(user), Some(password)) = (value("S3_ROOT_USER"), value("S3_ROOT_PASSWORD"))
            {
                write_atomically(&credentials, format!("{user}:{password}").as_bytes())?;
                let _ =
                    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600));
            }
            let curl = format!(
                "curl -sS --fail-with-body {cacert}--resolve {host}:{port}:{ip} --aws-sigv4 aws:amz:us-east-1:s3 --user \"$(cat {creds})\"",
                cacert = if t.tls() {
                    format!("--cacert {} ", ca_file.display())
                } else {
                    String::new()
                },
                creds = credentials.display(),
            );
            let first_pod = t
                .spec
                .pools
                .first()
                .map(|p| format!("{}-0", crate::api::names::pool_statefulset_name(&t, p)))
                .unwrap_or_default();
            println!(
                "    Tenant {ns}/{}: {scheme}://{host} (Service ClusterIP {ip}, reachable from this machine)",
                t.name()
            );
            println!(
                "      credentials: Secret {ns}/{secret_name}, key config.env (S3_ROOT_USER, S3_ROOT_PASSWORD); copied to {} (mode 0600)",
                credentials.display()
            );
            println!("      make a bucket: {curl} -X PUT {scheme}://{host}/demo");
            println!("      list buckets:  {curl} {scheme}://{host}/");
            println!(
                "      or through a pod: KUBECONFIG={} {} -n {ns} port-forward pod/{first_pod} 9000",
                kubeconfig.display(),
                node.kubectl().display()
            );
        }
    }
    Ok(())
}
