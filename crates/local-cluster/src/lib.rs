//! A real local Kubernetes control plane for tests, benchmarks and `hanzo-s3-operator dev`.
//!
//! etcd, kube-apiserver, and optionally kube-controller-manager, kube-scheduler and kwok (fake
//! nodes that turn pods Running), all built from their Go modules by `crates/local-cluster/build.sh`
//! and started here on 127.0.0.1 with free ports, a temporary directory and certificates made with
//! rcgen. No mocks: tests talk to the real apiserver.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hanzo_local_cluster::Error> {
//! use hanzo_local_cluster::{ControlPlane, Options};
//! let cp = ControlPlane::start(Options::with_nodes(3)).await?;
//! let client = cp.client().await?;
//! let ns = cp.create_namespace("demo").await?;
//! # Ok(()) }
//! ```
//!
//! Tests in one binary share one instance through [`ControlPlane::shared`] and separate their work
//! by namespace. Every process is killed and the directory removed when the instance is dropped, and
//! also when the test process exits without dropping it (a watchdog sees the parent go).

pub mod node;
mod pki;
mod process;
mod provisioner;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use node::RealNode;
use pki::Pki;
use process::Processes;

const VERSIONS: &str = include_str!("../versions.env");
const STAGES: &str = include_str!("../stages.yaml");
/// Annotation kwok selects its nodes by.
pub const FAKE_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "control plane binary {missing} not found in {dir}: build them with `crates/local-cluster/build.sh` (needs Go; builds once, then cached)"
    )]
    MissingBinaries { dir: PathBuf, missing: String },
    #[error("cannot {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot start {name} ({binary}): {source}")]
    Spawn {
        name: String,
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Certificates(#[from] rcgen::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the control plane did not become ready: {reason}\n{logs}")]
    NotReady { reason: String, logs: String },
    #[error("crates/local-cluster/build.sh failed ({0}); run it by hand to see why")]
    Build(String),
    #[error("the real node cannot run here: {0}")]
    RealNode(String),
}

impl Error {
    fn io(what: &'static str, source: std::io::Error) -> Error {
        Error::Io { what, source }
    }

    /// Whether a process could not bind a port picked free a moment before: another process on
    /// this machine took it in between.
    fn is_port_taken(&self) -> bool {
        matches!(self, Error::NotReady { reason, logs }
            if reason.contains("address already in use") || logs.contains("address already in use"))
    }
}

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Fake nodes. With at least one, kube-controller-manager, kube-scheduler, kwok and a volume
    /// provisioner run too, so StatefulSets get Pods Running and bound PersistentVolumeClaims.
    pub nodes: usize,
    /// A real node as well (kubelet, containerd, CNI, CoreDNS, kube-proxy; see [`node`]): pods
    /// really run. Needs root and `build-node.sh`'s output. The fake nodes are then tainted
    /// ([`node::FAKE_NODE_TAINT`]), so pods land on the real node unless they tolerate that.
    pub real_node: bool,
    /// Image archives to import into the real node's containerd, beside the pause and S3 server
    /// images it always has.
    pub images: Vec<PathBuf>,
    /// More kube-apiserver flags (e.g. `--admission-control-config-file=...`).
    pub apiserver_args: Vec<String>,
}

impl Options {
    /// etcd and kube-apiserver only: enough for admission and API tests.
    pub fn api_only() -> Options {
        Options::default()
    }

    pub fn with_nodes(nodes: usize) -> Options {
        Options {
            nodes,
            ..Options::default()
        }
    }

    /// A real node beside `fake_nodes` fake ones.
    pub fn with_real_node(fake_nodes: usize) -> Options {
        Options {
            nodes: fake_nodes,
            real_node: true,
            ..Options::default()
        }
    }

    fn runs_controllers(&self) -> bool {
        self.nodes > 0 || self.real_node
    }
}

fn version(key: &str) -> &'static str {
    VERSIONS
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("unknown")
}

/// The root of the build cache (`HANZO_CONTROLPLANE_CACHE` overrides it).
fn cache_root() -> PathBuf {
    std::env::var_os("HANZO_CONTROLPLANE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
            home.join(".cache/hanzo-s3-operator/controlplane")
        })
}

/// Where build.sh puts the binaries.
pub fn bin_dir() -> PathBuf {
    cache_root()
        .join(format!(
            "k8s-{}-etcd-{}-kwok-{}",
            version("K8S_VERSION"),
            version("ETCD_VERSION"),
            version("KWOK_VERSION")
        ))
        .join("bin")
}

/// A deploy tool built by build.sh (`kustomize`, `helm`), at the version pinned in versions.env.
pub fn tool(name: &str) -> PathBuf {
    let version = match name {
        "kustomize" => version("KUSTOMIZE_VERSION"),
        "helm" => version("HELM_VERSION"),
        "promtool" | "prometheus" => version("PROMETHEUS_VERSION"),
        _ => "unknown",
    };
    bin_dir()
        .parent()
        .and_then(Path::parent)
        .map_or_else(PathBuf::new, |root| {
            root.join("tools")
                .join(format!("{name}-{version}"))
                .join(name)
        })
}

/// The Prometheus operator's CRD of `plural` (`servicemonitors`, `prometheusrules`), as build.sh
/// copied it from the operator's Go module.
pub fn prometheus_operator_crd(plural: &str) -> PathBuf {
    bin_dir()
        .parent()
        .and_then(Path::parent)
        .map_or_else(PathBuf::new, |root| {
            root.join("tools")
                .join(format!(
                    "prometheus-operator-crds-{}",
                    version("PROMETHEUS_OPERATOR_VERSION")
                ))
                .join(format!("monitoring.coreos.com_{plural}.yaml"))
        })
}

/// The Kubernetes version the control plane runs.
pub fn kubernetes_version() -> &'static str {
    version("K8S_VERSION")
}

const BINARIES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

fn check_binaries() -> Result<PathBuf, Error> {
    let dir = bin_dir();
    if let Some(missing) = BINARIES.iter().find(|b| !dir.join(b).is_file()) {
        return Err(Error::MissingBinaries {
            dir,
            missing: (*missing).to_owned(),
        });
    }
    Ok(dir)
}

/// Builds the binaries when missing (runs build.sh, which prints its progress), then returns
/// their directory.
pub fn ensure_built() -> Result<PathBuf, Error> {
    if let Ok(dir) = check_binaries() {
        return Ok(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .status()
        .map_err(|e| Error::io("run crates/local-cluster/build.sh", e))?;
    if !status.success() {
        return Err(Error::Build(status.to_string()));
    }
    check_binaries()
}

fn free_port() -> Result<u16, Error> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("find a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("find a free port", e))
}

pub struct ControlPlane {
    processes: std::sync::Mutex<Processes>,
    dir: PathBuf,
    kubeconfig_path: PathBuf,
    kubeconfig: Kubeconfig,
    audited_kubeconfig: Kubeconfig,
    server: String,
    ca_pem: String,
    nodes: Vec<String>,
    real_node: Option<RealNode>,
    _provisioner: Option<provisioner::Provisioner>,
    /// Declared last: released only after the processes are stopped and the node cleaned up.
    _node_lock: Option<node::NodeLock>,
}

impl ControlPlane {
    /// Starts a control plane and waits until it is ready (and its nodes, if any, are Ready).
    ///
    /// Its ports are picked free here and bound by etcd, the apiserver and the rest moments later;
    /// on a busy machine another process can take one in between (etcd then exits "bind: address
    /// already in use"). That start is thrown away and made again with fresh ports, twice at most.
    pub async fn start(options: Options) -> Result<ControlPlane, Error> {
        let mut attempt = 1;
        loop {
            match ControlPlane::start_once(options.clone()).await {
                Err(e) if attempt < 3 && e.is_port_taken() => {
                    eprintln!(
                        "control plane: a port was taken before it could be bound; starting again with fresh ports (attempt {})",
                        attempt + 1
                    );
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(options: Options) -> Result<ControlPlane, Error> {
        let bin = check_binaries()?;
        let dir = std::env::temp_dir().join(format!(
            "hanzo-cp-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the temp directory", e))?;
        let mut processes = Processes::new(&dir)?;
        // The real node's bridge must exist before the apiserver listens on its address.
        let node_lock = if options.real_node {
            Some(node::prepare_host(&dir)?)
        } else {
            None
        };
        // With a real node the apiserver listens on the bridge, where pods (and the `kubernetes`
        // Service) reach it; otherwise on loopback only.
        let address = if options.real_node {
            node::BRIDGE_IP
        } else {
            "127.0.0.1"
        };
        let pki = Pki::generate()?;
        let write = |name: &str, content: &str| -> Result<PathBuf, Error> {
            let path = dir.join(name);
            std::fs::write(&path, content).map_err(|e| Error::io("write a certificate", e))?;
            Ok(path)
        };
        let ca = write("ca.crt", &pki.ca_pem)?;
        let ca_key = write("ca.key", &pki.ca_key_pem)?;
        let serving_cert = write("apiserver.crt", &pki.serving_cert_pem)?;
        let serving_key = write("apiserver.key", &pki.serving_key_pem)?;
        let sa_key = write("sa.key", &pki.service_account_key_pem)?;
        let sa_pub = write("sa.pub", &pki.service_account_pub_pem)?;
        let audit_policy = write("audit-policy.yaml", AUDIT_POLICY)?;

        let (etcd_port, etcd_peer, api_port) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let s = |v: &str| v.to_owned();
        processes.spawn(
            "etcd",
            &bin.join("etcd"),
            &[
                s("--name=default"),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                // Test data need not survive a power cut; fsync dominates etcd latency otherwise.
                s("--unsafe-no-fsync"),
                s("--log-level=warn"),
            ],
        )?;
        processes.spawn(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={etcd_url}"),
                format!("--bind-address={address}"),
                format!("--advertise-address={address}"),
                format!("--secure-port={api_port}"),
                format!("--tls-cert-file={}", serving_cert.display()),
                format!("--tls-private-key-file={}", serving_key.display()),
                format!("--client-ca-file={}", ca.display()),
                // Room for thousands of Services (each Tenant takes two ClusterIPs).
                format!("--service-cluster-ip-range={}", node::SERVICE_CIDR),
                s("--service-account-issuer=https://kubernetes.default.svc"),
                format!("--service-account-key-file={}", sa_pub.display()),
                format!("--service-account-signing-key-file={}", sa_key.display()),
                s("--authorization-mode=RBAC"),
                s("--allow-privileged=true"),
                // `kubectl logs/exec/port-forward` reach a real node's kubelet by its address;
                // its host name resolves nowhere here.
                s("--kubelet-preferred-address-types=InternalIP,Hostname"),
                // The `kubernetes` Service needs endpoints only when pods can use them.
                s(if options.real_node {
                    "--endpoint-reconciler-type=lease"
                } else {
                    "--endpoint-reconciler-type=none"
                }),
                s("--profiling=false"),
                format!("--audit-policy-file={}", audit_policy.display()),
                format!("--audit-log-path={}", dir.join("audit.log").display()),
                s("--audit-log-format=json"),
                s("--v=1"),
            ]
            .into_iter()
            .chain(options.apiserver_args.iter().cloned())
            .collect::<Vec<_>>(),
        )?;

        let server = format!("https://{address}:{api_port}");
        let audited_kubeconfig = Kubeconfig::from_yaml(&kubeconfig_yaml(&server, &pki, true))
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let kubeconfig_yaml = kubeconfig_yaml(&server, &pki, false);
        let kubeconfig_path = dir.join("kubeconfig");
        std::fs::write(&kubeconfig_path, &kubeconfig_yaml)
            .map_err(|e| Error::io("write the kubeconfig", e))?;
        let kubeconfig = Kubeconfig::from_yaml(&kubeconfig_yaml)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;

        let mut cp = ControlPlane {
            processes: std::sync::Mutex::new(processes),
            dir: dir.clone(),
            kubeconfig_path: kubeconfig_path.clone(),
            kubeconfig,
            audited_kubeconfig,
            server,
            ca_pem: pki.ca_pem.clone(),
            nodes: Vec::new(),
            real_node: None,
            _provisioner: None,
            _node_lock: node_lock,
        };
        cp.wait_ready().await?;

        if options.runs_controllers() {
            let kc = format!("--kubeconfig={}", kubeconfig_path.display());
            {
                let mut procs = cp.lock_processes();
                procs.spawn(
                    "kube-controller-manager",
                    &bin.join("kube-controller-manager"),
                    &[
                        kc.clone(),
                        format!("--service-account-private-key-file={}", sa_key.display()),
                        format!("--root-ca-file={}", ca.display()),
                        // The CSR API's signers (kubelet-serving among them), which the Go
                        // operator's tenant certificates come from.
                        format!("--cluster-signing-cert-file={}", ca.display()),
                        format!("--cluster-signing-key-file={}", ca_key.display()),
                        s("--leader-elect=false"),
                        s("--bind-address=127.0.0.1"),
                        s("--secure-port=0"),
                        s("--controllers=*"),
                        s("--v=1"),
                    ],
                )?;
                procs.spawn(
                    "kube-scheduler",
                    &bin.join("kube-scheduler"),
                    &[
                        kc.clone(),
                        s("--leader-elect=false"),
                        s("--secure-port=0"),
                        s("--v=1"),
                    ],
                )?;
                let stages = dir.join("stages.yaml");
                std::fs::write(&stages, STAGES).map_err(|e| Error::io("write kwok stages", e))?;
                if options.nodes > 0 {
                    procs.spawn(
                    "kwok",
                    &bin.join("kwok"),
                    &[
                        kc,
                        format!("--config={}", stages.display()),
                        format!(
                            "--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake"
                        ),
                        s("--cidr=10.244.0.0/16"),
                        s("--node-ip=10.96.0.2"),
                        s("--node-lease-duration-seconds=40"),
                        format!("--server-address=127.0.0.1:{}", free_port()?),
                    ],
                )?;
                }
            }
            cp._provisioner = Some(provisioner::Provisioner::start(
                cp.kubeconfig.clone(),
                dir.join("volumes"),
            )?);
            cp.nodes = cp.create_nodes(options.nodes, options.real_node).await?;
            if options.real_node {
                let client = cp.client().await?;
                cp.real_node = Some(
                    node::start(
                        &cp.processes,
                        &dir,
                        &kubeconfig_path,
                        client,
                        &options.images,
                    )
                    .await?,
                );
            }
        }
        Ok(cp)
    }

    /// One control plane for the whole test binary, with `nodes` fake nodes (the first caller's
    /// count wins). Started on a thread of its own so it outlives every test's runtime.
    pub fn shared(nodes: usize) -> Result<&'static ControlPlane, Error> {
        ControlPlane::shared_with(Options::with_nodes(nodes))
    }

    /// Like [`ControlPlane::shared`], with any options (the first caller's win).
    pub fn shared_with(options: Options) -> Result<&'static ControlPlane, Error> {
        static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
        let result = SHARED.get_or_init(|| {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime
                    .block_on(ControlPlane::start(options))
                    .map_err(|e| e.to_string())
            })
            .join()
            .unwrap_or_else(|_| Err("control plane start-up panicked".to_owned()))
        });
        result.as_ref().map_err(|reason| Error::NotReady {
            reason: reason.clone(),
            logs: String::new(),
        })
    }

    fn lock_processes(&self) -> std::sync::MutexGuard<'_, Processes> {
        self.processes.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn wait_ready(&self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            // Bound first: the guard must be gone before not_ready() locks again.
            let exited = self.lock_processes().exited();
            if let Some(exited) = exited {
                return Err(self.not_ready(exited));
            }
            if let Ok(client) = self.client().await {
                let req = http::Request::get("/readyz").body(Vec::new());
                match req {
                    Ok(req) => match client.request_text(req).await {
                        Ok(text) if text.trim() == "ok" => return Ok(()),
                        Ok(text) => last = text,
                        Err(e) => last = e.to_string(),
                    },
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.not_ready(format!("/readyz did not answer ok within 90s: {last}")))
    }

    fn not_ready(&self, reason: String) -> Error {
        Error::NotReady {
            reason,
            logs: self.log_tails(40),
        }
    }

    async fn create_nodes(&self, count: usize, tainted: bool) -> Result<Vec<String>, Error> {
        let client = self.client().await?;
        let nodes: Api<Node> = Api::all(client);
        let mut names = Vec::new();
        for i in 0..count {
            let name = format!("fake-node-{i}");
            let node: Node = serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": name,
                    "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                    "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"}
                },
                "spec": {
                    "taints": if tainted {
                        serde_json::json!([{"key": node::FAKE_NODE_TAINT, "value": "true", "effect": "NoSchedule"}])
                    } else {
                        serde_json::json!([])
                    }
                },
                "status": {
                    // 4,000 pods fit on 8 fake nodes: the 1,000-tenant benchmarks need them.
                    "allocatable": {"cpu": "512", "memory": "2Ti", "pods": "500"},
                    "capacity": {"cpu": "512", "memory": "2Ti", "pods": "500"}
                }
            }))
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
            nodes.create(&PostParams::default(), &node).await?;
            names.push(name);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = nodes.list(&Default::default()).await?;
            let ready = list
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            if ready >= count {
                return Ok(names);
            }
            if Instant::now() > deadline {
                return Err(
                    self.not_ready(format!("{ready} of {count} fake nodes Ready after 60s"))
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A client for the admin identity, bound to the caller's runtime (make one per test: a
    /// client outliving the runtime that made it hangs).
    pub async fn client(&self) -> Result<kube::Client, Error> {
        client_of(&self.kubeconfig, true).await
    }

    /// [`ControlPlane::client`] without kube's default retries of 429, 503 and 504: for a test that
    /// must see the apiserver's refusal (an eviction a disruption budget refuses) rather than have
    /// the client wait until the answer changes.
    pub async fn client_without_retries(&self) -> Result<kube::Client, Error> {
        client_of(&self.kubeconfig, false).await
    }

    /// A client of [`AUDITED_USER`] (an admin too), whose every request the audit log records.
    pub async fn audited_client(&self) -> Result<kube::Client, Error> {
        client_of(&self.audited_kubeconfig, true).await
    }

    /// Every request of [`AUDITED_USER`] completed so far, oldest first (the apiserver writes each
    /// as it answers it).
    pub fn audited_requests(&self) -> Result<Vec<AuditedRequest>, Error> {
        let log = match std::fs::read_to_string(self.dir.join("audit.log")) {
            Ok(log) => log,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read the audit log", e)),
        };
        Ok(log
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["user"]["username"] == AUDITED_USER)
            .map(|event| AuditedRequest {
                verb: event["verb"].as_str().unwrap_or_default().to_owned(),
                request_uri: event["requestURI"].as_str().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    /// A fresh namespace named `<prefix>-<n>`; with nodes, waits for its `default` ServiceAccount
    /// (pods are refused without it).
    pub async fn create_namespace(&self, prefix: &str) -> Result<String, Error> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed));
        let client = self.client().await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
        if !self.nodes.is_empty() || self.real_node.is_some() {
            let accounts: Api<ServiceAccount> = Api::namespaced(client, &name);
            let deadline = Instant::now() + Duration::from_secs(30);
            while accounts.get_opt("default").await?.is_none() {
                if Instant::now() > deadline {
                    return Err(
                        self.not_ready(format!("no default ServiceAccount in {name} after 30s"))
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(name)
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    pub fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The cluster CA, which also signed the admin client certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where each component writes `<name>.log`.
    pub fn log_dir(&self) -> PathBuf {
        self.lock_processes().log_dir().to_owned()
    }

    pub fn node_names(&self) -> &[String] {
        &self.nodes
    }

    /// The real node, when one was asked for.
    pub fn real_node(&self) -> Option<&RealNode> {
        self.real_node.as_ref()
    }

    /// The last `lines` lines of every component's log: print them when a test fails.
    pub fn log_tails(&self, lines: usize) -> String {
        self.lock_processes().log_tails(lines)
    }

    /// Kills a component (`etcd`, `kube-apiserver`, ...) as a crash would and starts it again
    /// with the same arguments and data; waits until the apiserver is ready again.
    pub async fn restart(&self, name: &str) -> Result<(), Error> {
        self.lock_processes().restart(name)?;
        self.wait_ready().await
    }

    /// Stops every process and removes the directory (also done on drop).
    pub fn stop(&self) {
        self.lock_processes().stop();
    }
}

fn kubeconfig_yaml(server: &str, pki: &Pki, audited: bool) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (cert, key) = if audited {
        (&pki.audited_cert_pem, &pki.audited_key_pem)
    } else {
        (&pki.admin_cert_pem, &pki.admin_key_pem)
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: hanzo-local
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: hanzo-local
  context:
    cluster: hanzo-local
    user: admin
current-context: hanzo-local
",
        ca = b64(&pki.ca_pem),
        cert = b64(cert),
        key = b64(key),
    )
}

/// A client of `kubeconfig`, with or without kube's default retries.
async fn client_of(kubeconfig: &Kubeconfig, retries: bool) -> Result<kube::Client, Error> {
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
    config.default_retry = retries;
    Ok(kube::Client::try_from(config)?)
}

/// The user whose requests the apiserver's audit log records, and only its: a test gives the
/// component it counts the requests of a client of this identity ([`ControlPlane::audited_client`])
/// and reads them back with [`ControlPlane::audited_requests`].
pub const AUDITED_USER: &str = "hanzo-audited";

/// Metadata of every request of [`AUDITED_USER`], once it completed; nothing else.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: [hanzo-audited]
- level: None
";

/// One request of [`AUDITED_USER`], as the audit log has it.
#[derive(Clone, Debug)]
pub struct AuditedRequest {
    /// `get`, `list`, `watch`, `create`, ...
    pub verb: String,
    pub request_uri: String,
}
