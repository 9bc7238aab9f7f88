//! Shared by the integration tests (formerly tests/support): the pieces several of them need.

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanzo_local_cluster::ControlPlane;
use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::reconcile::{ReadyWhen, Settings};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::{PoolBuilder, TenantBuilder};

/// A child process (the operator binary) killed when the test ends, however it ends (the
/// benchmarks' [`crate::bench::Killed`] is this).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

/// A free port on 127.0.0.1 (free when asked; the caller binds it moments later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client that acts as ServiceAccount `name` of `namespace` (impersonation by the admin).
pub async fn impersonated(cp: &ControlPlane, namespace: &str, name: &str) -> kube::Client {
    let mut config =
        kube::Config::from_custom_kubeconfig(cp.kubeconfig().clone(), &Default::default())
            .await
            .unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{namespace}"),
    ]);
    kube::Client::try_from(config).unwrap()
}

/// Creates a configuration Secret and a one-pool Tenant `t` in `ns` (as the admin), runs the
/// reconciler with `operator` (limited to `watch`, all namespaces when empty) until `t` is Ready.
pub async fn reconcile_to_ready(
    cp: &ControlPlane,
    admin: &kube::Client,
    operator: kube::Client,
    ns: &str,
    watch: Vec<String>,
) {
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "t-env"}, "stringData": {"config.env": "export S3_ROOT_USER=\"a\"\n"}})).unwrap();
    Api::<Secret>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let tenant: Tenant = TenantBuilder::new("t")
        .configuration("t-env")
        .pool(PoolBuilder::named("p0", 4, 1))
        .typed();
    let tenants: Api<Tenant> = Api::namespaced(admin.clone(), ns);
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(async move {
        let ca = Arc::new(Ca::generate("test-operator-ca").unwrap());
        let mut settings = Settings::new(DefaultsConfig::default(), ca, ReadyWhen::PodsReady);
        settings.namespaces = watch;
        hanzo_s3_operator::reconcile::run(operator, settings, async move {
            let _ = stopped.await;
        })
        .await;
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let t = tenants.get("t").await.unwrap();
        if t.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Tenant {ns}/t not Ready: {:?}\n{}",
            t.status,
            cp.log_tails(10)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = stop.send(());
    let _ = controller.await;
}

/// A TCP forwarder on 127.0.0.1 standing in for a Service (to whichever backend accepts, trying
/// them in turn) or for the network (it can cut every connection and refuse new ones until
/// restored). Bytes pass untouched: TLS goes end to end.
pub struct Proxy {
    pub port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(backends: Vec<std::net::SocketAddr>) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, watch) = tokio::sync::watch::channel(0u64);
        let next = Arc::new(AtomicUsize::new(0));
        let accepted = next.clone();
        let flag = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if flag.load(Ordering::Relaxed) {
                    drop(inbound);
                    continue;
                }
                let (backends, next, mut watch) = (backends.clone(), next.clone(), watch.clone());
                tokio::spawn(async move {
                    let start = next.fetch_add(1, Ordering::Relaxed);
                    let mut outbound = None;
                    for i in 0..backends.len() {
                        if let Ok(s) =
                            tokio::net::TcpStream::connect(backends[(start + i) % backends.len()])
                                .await
                        {
                            outbound = Some(s);
                            break;
                        }
                    }
                    let Some(mut outbound) = outbound else { return };
                    let seen = *watch.borrow_and_update();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|g| *g != seen) => {}
                    }
                });
            }
        });
        Proxy {
            port,
            cut,
            accepted,
            generation,
        }
    }

    /// Connections accepted and forwarded so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The Secret a pool's pods mount as `tls` (its name) and which of its keys go to which file.
pub fn tls_items(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> (String, Vec<(String, String)>) {
    let tls = tls_volume(sts)
        .secret
        .expect("the pods mount a `tls` Secret volume");
    (tls.secret_name.unwrap_or_default(), pairs(tls.items))
}

/// Every Secret of the pods' `tls` volume (a Secret volume, or projected ones) and its items.
pub fn tls_sources(
    sts: &k8s_openapi::api::apps::v1::StatefulSet,
) -> Vec<(String, Vec<(String, String)>)> {
    let volume = tls_volume(sts);
    if let Some(secret) = volume.secret {
        return vec![(secret.secret_name.unwrap_or_default(), pairs(secret.items))];
    }
    volume
        .projected
        .and_then(|p| p.sources)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|source| source.secret)
        .map(|secret| (secret.name, pairs(secret.items)))
        .collect()
}

fn tls_volume(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> k8s_openapi::api::core::v1::Volume {
    sts.spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == "tls"))
        .cloned()
        .expect("the pods mount a `tls` volume")
}

fn pairs(items: Option<Vec<k8s_openapi::api::core::v1::KeyToPath>>) -> Vec<(String, String)> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.key, i.path))
        .collect()
}

/// Runs a deploy tool built by crates/local-cluster/build.sh (`helm`, `kustomize`) in the
/// repository's root, and returns the documents it printed. Panics with the tool's error, or with
/// how to build it when it is missing.
pub fn render(tool: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let bin = hanzo_local_cluster::tool(tool);
    assert!(
        bin.is_file(),
        "{} is missing: run crates/local-cluster/build.sh",
        bin.display()
    );
    let out = std::process::Command::new(&bin)
        .args(args)
        .current_dir(crate::repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::Deserializer::from_slice(&out.stdout)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

/// Whether the CustomResourceDefinition `name` is Established (false while it is not, or absent).
pub async fn crd_established(client: &kube::Client, name: &str) -> bool {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    Api::<CustomResourceDefinition>::all(client.clone())
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|crd| crd.status?.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True")
}
