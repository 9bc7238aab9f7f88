//! Shared by the benchmarks (formerly benches/common.rs, taken in by `#[path]`): Tenants of
//! realistic shape and size, the standalone server, the controller-runtime peer, smoke runs and
//! where results go, and what a process costs.

use serde_json::{Value, json};

use crate::{PoolBuilder, TenantBuilder};

/// A child process killed (and reaped) when dropped.
pub use crate::support::ChildGuard as Killed;
/// A free port on 127.0.0.1 (free when asked; the caller binds it moments later).
pub use crate::support::free_port;

/// A Tenant with `pools` pools, each carrying affinity, tolerations and resources like real ones.
pub fn tenant_of(pools: usize) -> Value {
    let pool = |i: usize| {
        PoolBuilder::named(format!("pool-{i}"), 4, 4)
            .claim_name("data")
            .storage_class("fast-ssd")
            .storage("1Ti")
            .field(
                "resources",
                json!({"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "32Gi"}}),
            )
            .field(
                "affinity",
                json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchExpressions": [{"key": "v1.min.io/tenant", "operator": "In", "values": ["bench"]},
                                                           {"key": "v1.min.io/pool", "operator": "In", "values": [format!("pool-{i}")]}]},
                    "topologyKey": "kubernetes.io/hostname"}]}}),
            )
            .field(
                "tolerations",
                json!([{"key": "storage", "operator": "Equal", "value": "dedicated", "effect": "NoSchedule"}]),
            )
            .field("nodeSelector", json!({"node.kubernetes.io/pool": "storage"}))
            .field(
                "securityContext",
                json!({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": true}),
            )
            .field("labels", json!({"team": "storage"}))
            .field("annotations", json!({"example.com/owner": "storage-team"}))
    };
    TenantBuilder::new("bench")
        .namespace("storage")
        .metadata("labels", json!({"app": "s3"}))
        .configuration("bench-env")
        .spec(
            "env",
            json!([{"name": "S3_BROWSER", "value": "on"}, {"name": "S3_STORAGE_CLASS_STANDARD", "value": "EC:2"}]),
        )
        .spec(
            "features",
            json!({"bucketDNS": true, "domains": {"minio": ["s3.example.com"], "console": "console.example.com"}}),
        )
        .spec(
            "buckets",
            json!([{"name": "logs"}, {"name": "backups", "objectLock": true}]),
        )
        .pools((0..pools).map(pool))
        .build()
}

/// The load benchmarks' review: a CREATE AdmissionReview of [`tenant_of`]`(pools)` with no defaults
/// set but the image, so /mutate answers with a patch (11 pools make about 10 KB).
pub fn create_review(pools: usize) -> Vec<u8> {
    let mut t = tenant_of(pools);
    t["spec"]["image"] = json!("ghcr.io/hanzos3/s3:RELEASE.2025-04-08T15-41-24Z");
    serde_json::to_vec(
        &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "kind": {"group": "minio.min.io", "version": "v2", "kind": "Tenant"},
        "namespace": "storage", "name": "bench", "operation": "CREATE", "object": t}}),
    )
    .expect("a review serializes")
}

/// `HANZO_BENCH_SMOKE=1`: a run of seconds that only proves the benchmark still works (CI and the
/// documented-commands test run it so); the numbers mean nothing.
pub fn smoke() -> bool {
    std::env::var("HANZO_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// Where a benchmark writes `<file>`: `HANZO_BENCH_OUT` when set (a smoke run must not overwrite
/// the measured results), else benches/results.
pub fn results_path(file: &str) -> std::path::PathBuf {
    std::env::var_os("HANZO_BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("benches/results"))
        .join(file)
}

/// `hanzo-s3-operator run --standalone` from `binary` on a free loopback port, its CA in `dir`,
/// its stderr to `log`; killed when dropped. Both load benchmarks drive the real binary this way.
pub struct Standalone {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    /// HTTP/1.1 and HTTP/2 (ALPN h2) clients that trust the server's CA.
    pub tls: std::sync::Arc<rustls::ClientConfig>,
    pub tls_h2: std::sync::Arc<rustls::ClientConfig>,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clients trusting the CA in `ca_pem`: HTTP/1.1, and HTTP/2 by ALPN.
pub fn client_configs(
    ca_pem: &[u8],
) -> (
    std::sync::Arc<rustls::ClientConfig>,
    std::sync::Arc<rustls::ClientConfig>,
) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut h2 = config.clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    (std::sync::Arc::new(config), std::sync::Arc::new(h2))
}

pub async fn start_standalone(
    binary: &std::path::Path,
    dir: &std::path::Path,
    label: &str,
    log: std::process::Stdio,
    rust_log: &str,
) -> Standalone {
    use std::time::{Duration, Instant};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ca_file = dir.join(format!("{label}-ca.pem"));
    let child = std::process::Command::new(binary)
        .args([
            "run",
            "--standalone",
            "--listen",
            &addr.to_string(),
            "--ca-out",
        ])
        .arg(&ca_file)
        .env("RUST_LOG", rust_log)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ca_file.exists() || tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not start",
            binary.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (tls, tls_h2) = client_configs(&std::fs::read(&ca_file).unwrap());
    Standalone {
        child,
        addr,
        tls,
        tls_h2,
    }
}

/// A namespace `ns` holding a configuration Secret and a Tenant `t` of one pool of 4 servers x 1
/// volume, stored already defaulted (as the mutating webhook would store it): the reconciler
/// benchmarks' unit of work.
pub async fn create_small_tenant(client: &kube::Client, ns: &str) {
    create_small_tenant_with(client, ns, true).await;
}

/// [`create_small_tenant`], with the Tenant's `requestAutoCert` as given.
pub async fn create_small_tenant_with(client: &kube::Client, ns: &str, auto_cert: bool) {
    use hanzo_s3_operator::admission::{DefaultsConfig, defaulted};
    use hanzo_s3_operator::api::tenant::Tenant;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, PostParams};

    create_namespace(client, ns).await;
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "t-env"}, "stringData": {"config.env": bench_config_env()}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let tenant: Tenant = TenantBuilder::new("t")
        .namespace(ns)
        .spec("requestAutoCert", auto_cert)
        .configuration("t-env")
        .pool(PoolBuilder::named("p0", 4, 1))
        .typed();
    let tenant = defaulted(&tenant, &DefaultsConfig::default());
    Api::<Tenant>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
}

/// The root user of the benchmarks' tenants (a throwaway of no value outside them).
pub const BENCH_ACCESS_KEY: &str = "bench";
pub const BENCH_SECRET_KEY: &str = "bench-password";

/// A configuration Secret's `config.env` with [`BENCH_ACCESS_KEY`] and [`BENCH_SECRET_KEY`].
pub fn bench_config_env() -> String {
    format!(
        "export S3_ROOT_USER=\"{BENCH_ACCESS_KEY}\"\nexport S3_ROOT_PASSWORD=\"{BENCH_SECRET_KEY}\"\n"
    )
}

/// Whether a Tenant's status says Ready.
pub fn is_ready(tenant: &hanzo_s3_operator::api::tenant::Tenant) -> bool {
    tenant.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU-seconds (user + system) and peak RSS in MiB of a process, from /proc.
pub fn usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    // USER_HZ is 100 on Linux.
    Some((ticks / 100.0, hwm_kib / 1024.0))
}

/// The control plane's processes (their command lines name its directory), by program name.
pub fn control_plane_pids(dir: &std::path::Path, skip: u32) -> Vec<(String, u32)> {
    let dir = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // The operator names the kubeconfig in that directory too; shells are the launchers.
        if pid != skip && args.iter().any(|a| a.contains(&dir)) {
            let program = std::path::Path::new(&args[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if program != "sh" && program != "bash" {
                out.push((program, pid));
            }
        }
    }
    out.sort();
    out
}

/// The date and time (UTC) a result file records.
pub fn chrono_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%MZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Our CRD, applied server-side.
pub async fn install_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams};
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            "tenants.minio.min.io",
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&hanzo_s3_operator::api::crd::crd().unwrap()),
        )
        .await
        .unwrap();
}

/// Namespace `name`, created unless it exists.
pub async fn create_namespace(client: &kube::Client, name: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    match Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        other => {
            other.unwrap();
        }
    }
}

/// Builds the controller-runtime peer of peers/controller-runtime into the build cache (Go caches
/// the build, so a second run only links) and returns the binary's path.
pub fn build_peer() -> std::path::PathBuf {
    let source = crate::repo_root().join("peers/controller-runtime");
    let out = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/hanzo-s3-operator/peers/controller-runtime-webhook");
    let status = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&source)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run `go` to build the controller-runtime peer ({e}); install Go (the README's set-up does)")
        });
    assert!(
        status.success(),
        "`go build` of {} failed",
        source.display()
    );
    out
}

/// The controller-runtime peer, serving on a free loopback port.
pub struct Peer {
    pub process: Killed,
    pub addr: std::net::SocketAddr,
    pub url: String,
    /// The CA that signed its certificate (also written to `dir/peer-ca.pem`).
    pub ca_pem: String,
}

/// Starts the peer from `binary` with a certificate for 127.0.0.1 from a fresh CA, its files and
/// log in `dir`; returns once it accepts connections.
pub fn start_peer(binary: &std::path::Path, dir: &std::path::Path) -> Peer {
    use std::time::{Duration, Instant};
    let certs = dir.join("peer-certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca = hanzo_s3_operator::certs::Ca::generate("bench-peer-ca").unwrap();
    let pair = ca.sign_serving(&["127.0.0.1".into()]).unwrap();
    std::fs::write(certs.join("tls.crt"), &pair.cert_pem).unwrap();
    std::fs::write(certs.join("tls.key"), &pair.key_pem).unwrap();
    std::fs::write(dir.join("peer-ca.pem"), ca.cert_pem()).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("peer.log")).unwrap();
    let child = std::process::Command::new(binary)
        .args(["--port", &port.to_string(), "--cert-dir"])
        .arg(&certs)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let process = Killed(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the peer did not start: {}",
            dir.join("peer.log").display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Peer {
        process,
        addr,
        url: format!("https://{addr}"),
        ca_pem: ca.cert_pem().to_owned(),
    }
}
