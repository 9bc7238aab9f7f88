//! Real tenants on a real node: the operator runs from its own image (installed with the Helm
//! chart), and the Tenants it reconciles run S3 servers (MinIO standing in for Hanzo S3) that
//! store objects, grow by a pool, heal a wiped drive and outlive their Tenant's deletion.
//!
//! Needs root and the real node (crates/local-cluster/build-node.sh, which `hanzo_local_cluster`
//! runs when its output is missing). When the node cannot start, every test here fails with the
//! harness's message naming what is missing; none skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options, RealNode};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service,
};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

pub(crate) const OPERATOR_NS: &str = "hanzo-s3-operator";
pub(crate) const OPERATOR_IMAGE: &str = "localhost/hanzo-s3-operator:test";
/// Short, so that the tests see the operator sign tenants' certificates again within minutes (a
/// third of it before expiry), and no shorter: the kubelet updates a pod's Secret volume on the
/// pod's next sync (up to 90 s) and the server reloads within 10 s, so the third left (140 s)
/// must outlast both (with 300 s, a server once still served the old certificate 90 s on).
pub(crate) const TENANT_CERTIFICATE_LIFETIME_SECS: u64 = 420;
/// Short, so that monitoring.rs sees a tenant's metrics token made again (with 40 s left) while
/// Prometheus scrapes with it.
pub(crate) const METRICS_TOKEN_LIFETIME_SECS: u64 = 120;
pub(crate) const ACCESS_KEY: &str = "real-node-admin";
/// Test-only credentials of a test-only tenant.
pub(crate) const SECRET_KEY: &str = "real-node-test-only-password";

pub(crate) struct Setup {
    pub(crate) cp: &'static ControlPlane,
    /// The operator CA: the tenants' certificates are signed by it.
    pub(crate) ca_file: PathBuf,
}

/// One real node for the whole binary, with the operator installed from its image by Helm. Built
/// once; each test takes [`serial`] so the tests (each heavy on 2 cores) run one at a time.
pub(crate) fn setup() -> &'static Setup {
    static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            // On a thread of its own: the callers are inside their tests' runtimes.
            std::thread::spawn(start)
                .join()
                .unwrap_or_else(|_| Err("the set-up panicked".to_owned()))
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("the real node with the operator did not start: {e}"))
}

fn start() -> Result<Setup, String> {
    hanzo_local_cluster::ensure_built().map_err(|e| e.to_string())?;
    hanzo_local_cluster::node::ensure_node_built().map_err(|e| e.to_string())?;
    // Built while another test may still have its turn at the node.
    let archive = build_operator_image()?;
    // The node stays until the process exits: after every test of this binary that starts one of
    // its own (dev_real_node, documented_commands), which take turns.
    hanzo_testkit::real_node::keep();
    let cp = ControlPlane::shared_with(Options {
        nodes: 0,
        real_node: true,
        images: vec![archive.clone()],
        ..Options::default()
    })
    .map_err(|e| e.to_string())?;
    // Imported into the node's containerd; the archive itself is no longer needed.
    let _ = std::fs::remove_file(&archive);
    helm_install(cp)?;
    let ca_file = cp.dir().join("operator-ca.pem");
    block_on(async {
        let client = cp.client().await.map_err(|e| e.to_string())?;
        wait_for(
            Duration::from_secs(180),
            "2 operator replicas Ready",
            || {
                let client = client.clone();
                async move {
                    let d = Api::<Deployment>::namespaced(client, OPERATOR_NS)
                        .get_opt("hanzo-s3-operator")
                        .await
                        .ok()??;
                    (d.status?.ready_replicas? == 2).then_some(())
                }
            },
        )
        .await
        .map_err(|e| format!("{e}\n{}", cp.log_tails(30)))?;
        // Ready replicas are not yet a reachable webhook: kube-proxy programs the Service a
        // moment later, and a create before that is refused with "connection refused".
        hanzo_s3_operator::operator::install::wait_for_admission(
            &client,
            "default",
            Duration::from_secs(60),
        )
        .await
        .map_err(|e| format!("{e}\n{}", cp.log_tails(30)))?;
        let secret = Api::<Secret>::namespaced(client, OPERATOR_NS)
            .get("hanzo-s3-operator-ca")
            .await
            .map_err(|e| e.to_string())?;
        let ca = secret
            .data
            .and_then(|d| d.get("ca.crt").cloned())
            .ok_or("the CA Secret has no ca.crt")?;
        std::fs::write(&ca_file, ca.0).map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })?;
    Ok(Setup { cp, ca_file })
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// The tests share one node and 2 cores: one at a time.
pub(crate) async fn serial() -> Turn {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = LOCK.lock().await;
    Turn {
        _guard: guard,
        since: Instant::now(),
    }
}

/// A test's turn on the node. It says how long the turn took when it ends, passed or failed:
/// the tier's minutes are most of CI's, and this is where they are counted.
pub(crate) struct Turn {
    _guard: tokio::sync::MutexGuard<'static, ()>,
    since: Instant,
}

impl Drop for Turn {
    fn drop(&mut self) {
        use std::io::Write;
        let thread = std::thread::current();
        // Straight to stderr, past the test harness's capture: CI's log shows it for every test.
        let _ = writeln!(
            std::io::stderr(),
            "real node: {} held the node {} s",
            thread.name().unwrap_or("a test"),
            self.since.elapsed().as_secs()
        );
    }
}

/// The operator image, built from the Dockerfile by scripts/image.sh (incremental: a no-op
/// release build when nothing changed).
fn build_operator_image() -> Result<PathBuf, String> {
    let out = std::env::temp_dir().join(format!("hanzo-operator-image-{}.tar", std::process::id()));
    let status = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/image.sh"))
        .args(["--tag", OPERATOR_IMAGE, "--out"])
        .arg(&out)
        .status()
        .map_err(|e| format!("cannot run scripts/image.sh: {e}"))?;
    if !status.success() {
        return Err(format!(
            "scripts/image.sh failed ({status}): run it by hand to see why"
        ));
    }
    Ok(out)
}

fn helm_install(cp: &ControlPlane) -> Result<(), String> {
    let lifetime = format!("tenantCertificateLifetime={TENANT_CERTIFICATE_LIFETIME_SECS}s");
    let token_lifetime = format!("tenantMetricsTokenLifetime={METRICS_TOKEN_LIFETIME_SECS}s");
    let s3_image = format!(
        "tenantS3Image={}",
        hanzo_local_cluster::node::s3_server_image()
    );
    helm(
        cp,
        &["install", "--create-namespace"],
        OPERATOR_IMAGE,
        &[
            "image.pullPolicy=Never",
            &s3_image,
            "logLevel=info\\,hanzo_s3_operator=debug",
            &lifetime,
            &token_lifetime,
            // A rotation of the operator CA (rollouts.rs) within minutes, not a day.
            "caRotation.announceFor=30s",
            "caRotation.keepPreviousFor=10m",
        ],
    )
}

/// `helm upgrade` of the installed operator to another image, every other value kept.
pub(crate) fn helm_upgrade_image(cp: &ControlPlane, image: &str) -> Result<(), String> {
    helm(cp, &["upgrade", "--reuse-values"], image, &[])
}

/// Runs `helm VERB hanzo CHART --namespace OPERATOR_NS FLAGS` with the operator's image and
/// `values` set.
fn helm(cp: &ControlPlane, verb: &[&str], image: &str, values: &[&str]) -> Result<(), String> {
    let helm = hanzo_local_cluster::tool("helm");
    if !helm.is_file() {
        return Err(format!(
            "{} is missing: run crates/local-cluster/build.sh",
            helm.display()
        ));
    }
    let (repository, tag) = image.rsplit_once(':').ok_or("an image without a tag")?;
    let mut command = Command::new(&helm);
    command
        .args([verb[0], "hanzo", "deploy/helm/hanzo-s3-operator"])
        .args(["--namespace", OPERATOR_NS])
        .args(&verb[1..])
        .args(["--set", &format!("image.repository={repository}")])
        .args(["--set", &format!("image.tag={tag}")]);
    for value in values {
        command.args(["--set", value]);
    }
    let out = command
        .env("KUBECONFIG", cp.kubeconfig_path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run helm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "helm {} failed: {}",
            verb[0],
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

pub(crate) async fn wait_for<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut probe: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("no {what} within {}s", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Operator logs and pod states, for a failure message.
pub(crate) async fn diagnose(setup: &Setup, ns: &str) -> String {
    let node = setup.cp.real_node().unwrap();
    let kubectl = |args: &[&str]| {
        Command::new(node.kubectl())
            .args(args)
            .env("KUBECONFIG", setup.cp.kubeconfig_path())
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    };
    // Pods the kubelet refused or evicted are listed once per reason: a node under pressure
    // refuses a Deployment's replacements as fast as they come, and their names drown the rest.
    let failed = kubectl(&[
        "get",
        "pods",
        "-A",
        "--field-selector=status.phase=Failed",
        "-o",
        r#"jsonpath={range .items[*]}{.status.reason}: {.status.message}{"\n"}{end}"#,
    ]);
    let mut reasons: Vec<(usize, &str)> = Vec::new();
    for line in failed.lines().filter(|l| !l.trim().is_empty()) {
        match reasons.iter_mut().find(|(_, r)| *r == line) {
            Some((n, _)) => *n += 1,
            None => reasons.push((1, line)),
        }
    }
    let failed: String = reasons
        .iter()
        .map(|(n, reason)| format!("{n} x {reason}\n"))
        .collect();
    let machine = Command::new("sh")
        .args(["-c", "df -h / \"$TMPDIR\" /tmp 2>/dev/null; free -m"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    format!(
        "--- node conditions\n{}\n--- machine\n{}--- failed pods, by reason\n{}--- pods\n{}\n--- tenant\n{}\n--- operator logs\n{}\n--- events\n{}",
        kubectl(&[
            "get",
            "nodes",
            "-o",
            r#"jsonpath={range .items[*].status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}"#,
        ]),
        machine,
        failed,
        kubectl(&[
            "get",
            "pods",
            "-A",
            "-o",
            "wide",
            "--field-selector=status.phase!=Failed"
        ]),
        kubectl(&["-n", ns, "get", "tenants", "-o", "yaml"]),
        kubectl(&[
            "-n",
            OPERATOR_NS,
            "logs",
            "-l",
            "app.kubernetes.io/name=hanzo-s3-operator",
            "--tail",
            "40",
            "--prefix"
        ]),
        kubectl(&["-n", ns, "get", "events", "--sort-by", ".lastTimestamp"]),
    )
}

#[tokio::test]
async fn the_operator_runs_from_its_image_with_two_replicas_webhooks_and_one_leader() {
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), OPERATOR_NS)
        .list(&ListParams::default().labels("app.kubernetes.io/name=hanzo-s3-operator"))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 2, "two replicas");
    let names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    for pod in &pods {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some(OPERATOR_IMAGE));
        assert_eq!(
            spec.node_name.as_deref(),
            Some(hanzo_local_cluster::node::NODE_NAME),
            "runs on the real node"
        );
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(
            status.container_statuses.as_ref().unwrap()[0].ready,
            "{:?} is ready",
            pod.metadata.name
        );
    }
    // Both registrations carry the CA the replicas share.
    let ca = std::fs::read_to_string(&setup.ca_file).unwrap();
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get("hanzo-s3-operator")
        .await
        .unwrap();
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get("hanzo-s3-operator")
        .await
        .unwrap();
    for bundle in [
        mutating.webhooks.unwrap()[0]
            .client_config
            .ca_bundle
            .clone()
            .unwrap(),
        validating.webhooks.unwrap()[0]
            .client_config
            .ca_bundle
            .clone()
            .unwrap(),
    ] {
        assert!(
            String::from_utf8_lossy(&bundle.0).contains(ca.trim()),
            "the caBundle holds the operator CA"
        );
    }
    // Exactly one leader, and it is one of the two pods.
    let leases = Api::<Lease>::namespaced(client.clone(), OPERATOR_NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let holders: Vec<String> = leases
        .iter()
        .filter_map(|l| l.spec.as_ref()?.holder_identity.clone())
        .collect();
    assert_eq!(holders.len(), 1, "one Lease held: {holders:?}");
    assert!(
        names.iter().any(|n| holders[0].contains(n.as_str())),
        "the leader {holders:?} is one of {names:?}"
    );
    // Admission through the Service in front of the pods: a dry run comes back defaulted.
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
}

pub(crate) fn tenant(name: &str, pools: &[&str]) -> Value {
    TenantBuilder::new(name)
        .configuration(format!("{name}-env"))
        .spec("requestAutoCert", true)
        .pools(pools.iter().map(|p| pool(p)))
        .build()
}

/// Appends a pool through the webhooks (the error is theirs to refuse it).
pub(crate) async fn append_pool(
    tenants: &Api<Tenant>,
    name: &str,
    pool: Value,
) -> Result<Tenant, kube::Error> {
    let add = json!([{"op": "add", "path": "/spec/pools/-", "value": pool}]);
    tenants
        .patch(
            name,
            &PatchParams::default(),
            &Patch::<Value>::Json(serde_json::from_value(add).unwrap()),
        )
        .await
}

pub(crate) fn pool(name: &str) -> Value {
    PoolBuilder::named(name, 4, 2).claim_name("data").build()
}

pub(crate) async fn create_namespace_with_credentials(
    client: &kube::Client,
    ns: &str,
    tenant: &str,
) {
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    wait_for(Duration::from_secs(30), "default ServiceAccount", || {
        let client = client.clone();
        async move {
            Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client, ns)
                .get_opt("default")
                .await
                .ok()?
        }
    })
    .await
    .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{tenant}-env")},
        "stringData": {"config.env": format!("export S3_ROOT_USER=\"{ACCESS_KEY}\"\nexport S3_ROOT_PASSWORD=\"{SECRET_KEY}\"\n")}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// Rotates the root password of `tenant`'s credentials Secret (made by
/// [`create_namespace_with_credentials`]) to `password`.
pub(crate) async fn replace_root_password(
    client: &kube::Client,
    ns: &str,
    tenant: &str,
    password: &str,
) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{tenant}-env")},
        "stringData": {"config.env": format!(
            "export S3_ROOT_USER=\"{ACCESS_KEY}\"\nexport S3_ROOT_PASSWORD=\"{password}\"\n"
        )}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .replace(&format!("{tenant}-env"), &PostParams::default(), &secret)
        .await
        .unwrap();
}

fn ready_condition(t: &Tenant) -> Option<(String, String, String)> {
    let c = t
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until the Tenant is Ready for its current generation, which requires its S3 cluster to
/// answer healthy; returns how long that took.
pub(crate) async fn wait_ready(
    setup: &Setup,
    client: &kube::Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), ns);
    let outcome = wait_for(timeout, "Ready Tenant", || {
        let tenants = tenants.clone();
        async move {
            let t = tenants.get(name).await.ok()?;
            let status = t.status.as_ref()?;
            let current = status.observed_generation == t.metadata.generation;
            let (ready, reason, _) = ready_condition(&t)?;
            (current && ready == "True" && reason == "S3Healthy").then_some(())
        }
    })
    .await;
    if let Err(e) = outcome {
        panic!("{ns}/{name}: {e}\n{}", diagnose(setup, ns).await);
    }
    started.elapsed()
}

/// Runs the S3 client against the tenant's `minio` Service (ClusterIP, verified TLS name).
async fn s3(
    setup: &Setup,
    client: &kube::Client,
    ns: &str,
    args: &[&str],
) -> Result<Value, String> {
    s3_as(setup, client, ns, (ACCESS_KEY, SECRET_KEY), args).await
}

/// [`s3`] with the given access key and secret.
async fn s3_as(
    setup: &Setup,
    client: &kube::Client,
    ns: &str,
    credentials: (&str, &str),
    args: &[&str],
) -> Result<Value, String> {
    s3_trusting(setup, client, ns, credentials, &setup.ca_file, args).await
}

/// [`s3_as`], trusting the CA certificates of `ca` (a PEM file).
async fn s3_trusting(
    setup: &Setup,
    client: &kube::Client,
    ns: &str,
    credentials: (&str, &str),
    ca: &Path,
    args: &[&str],
) -> Result<Value, String> {
    let host = format!("minio.{ns}.svc.cluster.local");
    s3_at(setup, client, ns, &host, credentials, ca, args).await
}

/// [`s3_trusting`], asking the servers for `host`'s certificate (SNI) and verifying that name.
async fn s3_at(
    setup: &Setup,
    client: &kube::Client,
    ns: &str,
    host: &str,
    (access_key, secret_key): (&str, &str),
    ca: &Path,
    args: &[&str],
) -> Result<Value, String> {
    let ip = Api::<Service>::namespaced(client.clone(), ns)
        .get("minio")
        .await
        .map_err(|e| e.to_string())?
        .spec
        .and_then(|s| s.cluster_ip)
        .ok_or("the minio Service has no ClusterIP")?;
    let node: &RealNode = setup.cp.real_node().unwrap();
    let out = tokio::process::Command::new(node.s3client())
        .env("S3_ACCESS_KEY", access_key)
        .env("S3_SECRET_KEY", secret_key)
        .args(["--endpoint", &format!("{host}:443")])
        .args(["--resolve-to", &ip])
        .arg("--ca")
        .arg(ca)
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "s3client {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout}"))
}

pub(crate) async fn pods_of(client: &kube::Client, ns: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// The host directory holding a claim's data (the harness's provisioner made a hostPath PV).
async fn volume_dir(client: &kube::Client, ns: &str, claim: &str) -> PathBuf {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get(claim)
        .await
        .unwrap();
    let pv_name = pvc.spec.unwrap().volume_name.unwrap();
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&pv_name)
        .await
        .unwrap();
    PathBuf::from(pv.spec.unwrap().host_path.unwrap().path)
}

#[tokio::test]
async fn a_tls_tenant_stores_objects_grows_by_a_pool_heals_a_wiped_drive_and_outlives_its_deletion()
{
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    let (ns, name) = ("s3-store", "store");
    create_namespace_with_credentials(&client, ns, name).await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), ns);

    // 1. One pool of 4 servers x 2 volumes with requestAutoCert: Ready means the S3 cluster
    //    answers; then objects go in and come back byte for byte over verified TLS.
    let created: Tenant = serde_json::from_value(tenant(name, &["p0"])).unwrap();
    tenants
        .create(&PostParams::default(), &created)
        .await
        .unwrap();
    let to_ready = wait_ready(setup, &client, ns, name, Duration::from_secs(300)).await;
    eprintln!("tenant apply to S3 healthy: {:.1}s", to_ready.as_secs_f64());
    s3(setup, &client, ns, &["make-bucket", "first"])
        .await
        .unwrap();
    let put = s3(setup, &client, ns, &["put", "first", "100"])
        .await
        .unwrap();
    assert_eq!(put["objects"], 100);
    assert!(
        put["bytes"].as_i64().unwrap() > 60 << 20,
        "ten objects of 6 MiB went up in parts: {put}"
    );
    let verify = s3(setup, &client, ns, &["verify", "first", "100"])
        .await
        .unwrap();
    assert_eq!(
        (verify["objects"].as_i64(), verify["failures"].as_i64()),
        (Some(100), Some(0)),
        "{verify}"
    );
    eprintln!("put {put}\nverify {verify}");

    // 2. A second pool, appended through the webhooks: every server restarts knowing both pools
    //    (the first pool's in place, in the pods they ran in), earlier objects stay readable and
    //    new writes succeed.
    let before: Vec<(String, String)> = pods_of(&client, ns)
        .await
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap(),
                p.metadata.uid.clone().unwrap(),
            )
        })
        .collect();
    append_pool(&tenants, name, pool("p1")).await.unwrap();
    let expansion = Instant::now();
    wait_for(
        Duration::from_secs(420),
        "8 ready servers on their pool's current revision",
        || {
            let client = client.clone();
            async move {
                let pods = pods_of(&client, ns).await;
                let sts = Api::<StatefulSet>::namespaced(client.clone(), ns)
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items;
                let current = |pod: &Pod| {
                    let labels = pod.metadata.labels.as_ref()?;
                    let sts_name = format!("{name}-{}", labels.get("v1.min.io/pool")?);
                    let of_pool = sts
                        .iter()
                        .find(|s| s.metadata.name.as_deref() == Some(sts_name.as_str()))?;
                    let revision = of_pool.status.as_ref()?.update_revision.as_ref()?;
                    Some(labels.get("controller-revision-hash")? == revision)
                };
                let all = pods.len() == 8
                    && sts.len() == 2
                    && pods.iter().all(|p| {
                        let ready = p
                            .status
                            .as_ref()
                            .and_then(|s| s.container_statuses.as_ref())
                            .is_some_and(|c| c.iter().all(|c| c.ready));
                        ready && current(p) == Some(true)
                    });
                all.then_some(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let kept: Vec<String> = pods_of(&client, ns)
        .await
        .iter()
        .filter(|p| {
            before
                .iter()
                .any(|(_, uid)| Some(uid) == p.metadata.uid.as_ref())
        })
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        kept,
        Vec::<String>::new(),
        "every server's pod replaced together (restarts in place are opt-in)"
    );
    wait_ready(setup, &client, ns, name, Duration::from_secs(300)).await;
    eprintln!(
        "pool expansion to S3 healthy: {:.1}s",
        expansion.elapsed().as_secs_f64()
    );
    let verify = s3(setup, &client, ns, &["verify", "first", "100"])
        .await
        .unwrap();
    assert_eq!(
        verify["failures"], 0,
        "earlier objects readable after the expansion: {verify}"
    );
    s3(setup, &client, ns, &["make-bucket", "second"])
        .await
        .unwrap();
    s3(setup, &client, ns, &["put", "second", "30"])
        .await
        .unwrap();
    let verify = s3(setup, &client, ns, &["verify", "second", "30"])
        .await
        .unwrap();
    assert_eq!(
        verify["failures"], 0,
        "new writes after the expansion: {verify}"
    );

    // 3. One server killed and one of its drives wiped: every read succeeds during and after (a
    //    GET whose body the kill cut off is asked again, as an application would; the report
    //    counts those retries), the server comes back and the drive is formatted again (healed).
    let victim = "store-p0-1";
    let wiped = volume_dir(&client, ns, &format!("data0-{victim}")).await;
    assert!(
        wiped.join(".minio.sys/format.json").is_file(),
        "{} holds a formatted drive",
        wiped.display()
    );
    let old_uid = Api::<Pod>::namespaced(client.clone(), ns)
        .get(victim)
        .await
        .unwrap()
        .metadata
        .uid;
    let reader = {
        let (setup, client) = (setup, client.clone());
        tokio::spawn(async move {
            s3(
                setup,
                &client,
                ns,
                &["--duration", "45s", "read-loop", "first", "100"],
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    Api::<Pod>::namespaced(client.clone(), ns)
        .delete(
            victim,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
    for entry in std::fs::read_dir(&wiped).unwrap().flatten() {
        let path = entry.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    let reads = reader.await.unwrap().unwrap();
    assert_eq!(
        reads["failures"], 0,
        "every read during the loss succeeded: {reads}"
    );
    assert!(reads["rounds"].as_i64().unwrap() >= 1, "{reads}");
    wait_for(
        Duration::from_secs(180),
        "the killed server back and ready",
        || {
            let client = client.clone();
            let old_uid = old_uid.clone();
            async move {
                let pod = Api::<Pod>::namespaced(client, ns).get(victim).await.ok()?;
                let ready = pod.status?.container_statuses?.iter().all(|c| c.ready);
                (ready && pod.metadata.uid != old_uid).then_some(())
            }
        },
    )
    .await
    .unwrap();
    wait_for(
        Duration::from_secs(180),
        "the wiped drive formatted again",
        || {
            let done = wiped.join(".minio.sys/format.json").is_file();
            async move { done.then_some(()) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", wiped.display()));
    wait_ready(setup, &client, ns, name, Duration::from_secs(300)).await;
    let verify = s3(setup, &client, ns, &["verify", "first", "100"])
        .await
        .unwrap();
    assert_eq!(
        verify["failures"], 0,
        "every object readable after healing: {verify}"
    );

    // 4. The Tenant deleted: its pods and Services go, its claims (and data) stay; the same
    //    Tenant applied again serves the old objects.
    tenants
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(Duration::from_secs(180), "pods and Services gone", || {
        let client = client.clone();
        async move {
            let pods = pods_of(&client, ns).await.len();
            let services = Api::<Service>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .len();
            let sets = Api::<StatefulSet>::namespaced(client, ns)
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .len();
            (pods == 0 && services == 0 && sets == 0).then_some(())
        }
    })
    .await
    .unwrap();
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(claims.len(), 16, "8 servers x 2 volumes: every claim stays");
    let again: Tenant = serde_json::from_value(tenant(name, &["p0", "p1"])).unwrap();
    tenants
        .create(&PostParams::default(), &again)
        .await
        .unwrap();
    wait_ready(setup, &client, ns, name, Duration::from_secs(300)).await;
    for (bucket, count) in [("first", "100"), ("second", "30")] {
        let verify = s3(setup, &client, ns, &["verify", bucket, count])
            .await
            .unwrap();
        assert_eq!(
            verify["failures"], 0,
            "{bucket} readable after the Tenant came back: {verify}"
        );
    }
    tenants
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
}

pub(crate) fn condition_of(t: &Tenant, type_: &str) -> Option<(String, String, String)> {
    let c = t
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub(crate) async fn put_user_secret(client: &kube::Client, ns: &str, secret_key: &str) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "app-user"},
        "stringData": {"CONSOLE_ACCESS_KEY": "app-user", "CONSOLE_SECRET_KEY": secret_key}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            "app-user",
            &PatchParams::apply("real-node-test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn users_and_buckets_are_provisioned_drives_and_usage_reported_and_a_rotated_secret_takes_effect()
 {
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    let (ns, name) = ("s3-day2", "day2");
    create_namespace_with_credentials(&client, ns, name).await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), ns);
    let mut spec = tenant(name, &["p0"]);
    spec["spec"]["users"] = json!([{"name": "app-user"}]);
    spec["spec"]["buckets"] = json!([{"name": "app-data", "objectLock": true}]);
    tenants
        .create(
            &PostParams::default(),
            &serde_json::from_value(spec).unwrap(),
        )
        .await
        .unwrap();
    wait_ready(setup, &client, ns, name, Duration::from_secs(300)).await;

    // 1. The user's Secret does not exist yet: the Tenant is Ready, and says which Secret it waits for.
    let waiting = wait_for(Duration::from_secs(60), "Provisioned=False", || {
        let tenants = tenants.clone();
        async move {
            let t = tenants.get(name).await.ok()?;
            condition_of(&t, "Provisioned").filter(|c| c.0 == "False")
        }
    })
    .await
    .unwrap();
    assert_eq!(waiting.1, "UserSecretMissing", "{waiting:?}");
    assert!(
        waiting.2.contains("\"app-user\" (spec.users[0])"),
        "{waiting:?}"
    );

    // 2. The Secret appears: the watch wakes the Tenant, the user and the bucket are provisioned,
    //    and the admin API's drive counts and usage are in the status.
    put_user_secret(&client, ns, "app-user-secret-1").await;
    // Provisioning starts once the S3 cluster answers healthy, which it can with 3 of 4 servers
    // ready (yellow until the last one is): the counts are read once every server is up.
    let provisioned = wait_for(
        Duration::from_secs(120),
        "users and buckets provisioned, every server up (green)",
        || {
            let tenants = tenants.clone();
            async move {
                let t = tenants.get(name).await.ok()?;
                let s = t.status.clone()?;
                (condition_of(&t, "Provisioned")?.0 == "True"
                    && s.provisioned_users == Some(true)
                    && s.provisioned_buckets == Some(true)
                    && s.health_status.as_deref() == Some("green"))
                .then_some(t)
            }
        },
    )
    .await;
    let provisioned = match provisioned {
        Ok(t) => t,
        Err(e) => panic!("{e}\n{}", diagnose(setup, ns).await),
    };
    let status = provisioned.status.unwrap();
    assert_eq!(
        (
            status.drives_online,
            status.drives_offline,
            status.drives_healing
        ),
        (Some(8), Some(0), Some(0)),
        "4 servers x 2 drives"
    );
    assert!(
        status.write_quorum.is_some_and(|q| q > 0 && q <= 8),
        "{:?}",
        status.write_quorum
    );
    assert_eq!(status.health_status.as_deref(), Some("green"));
    let usage = status.usage.unwrap();
    assert!(
        usage.raw_capacity.unwrap_or(0) > usage.capacity.unwrap_or(0)
            && usage.capacity.unwrap_or(0) > 0,
        "net capacity is below raw by the parity share: {usage:?}"
    );

    // 3. The user writes into the provisioned bucket with its own secret.
    let user = ("app-user", "app-user-secret-1");
    let put = s3_as(setup, &client, ns, user, &["put", "app-data", "3"])
        .await
        .unwrap();
    assert_eq!(put["objects"], 3, "{put}");

    // 4. Rotating the secret in the Secret rotates it in the server; the old one stops working.
    put_user_secret(&client, ns, "app-user-secret-2").await;
    let rotated = ("app-user", "app-user-secret-2");
    wait_for(Duration::from_secs(90), "the rotated secret works", || {
        let client = client.clone();
        async move {
            s3_as(setup, &client, ns, rotated, &["verify", "app-data", "3"])
                .await
                .ok()
        }
    })
    .await
    .unwrap();
    let old = s3_as(setup, &client, ns, user, &["verify", "app-data", "3"]).await;
    assert!(old.is_err(), "the old secret still works: {old:?}");

    // 5. A server lost while its node takes no pods (as when a machine fails): the cluster reports
    //    its drives offline, and the Tenant says so (Degraded, naming the pod; yellow) until the
    //    pod is back.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let schedulable = |yes: bool| {
        let (nodes, node) = (nodes.clone(), node.clone());
        async move {
            nodes
                .patch(
                    &node,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"unschedulable": !yes}})),
                )
                .await
                .unwrap();
        }
    };
    schedulable(false).await;
    let victim = format!("{name}-p0-3");
    Api::<Pod>::namespaced(client.clone(), ns)
        .delete(
            &victim,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
    let degraded = wait_for(
        Duration::from_secs(180),
        "the lost server's drives reported offline",
        || {
            let tenants = tenants.clone();
            async move {
                let t = tenants.get(name).await.ok()?;
                let s = t.status.clone()?;
                (s.drives_offline == Some(2) && condition_of(&t, "Degraded")?.0 == "True")
                    .then_some(t)
            }
        },
    )
    .await;
    // The node takes pods again before anything is asserted: the next tests need it.
    schedulable(true).await;
    let degraded = match degraded {
        Ok(t) => t,
        Err(e) => panic!("{e}\n{}", diagnose(setup, ns).await),
    };
    // ServersNotReady while the StatefulSet counts the pod missing, DrivesOffline once it counts
    // the replacement: either way the drives and their pod are named.
    let (_, reason, message) = condition_of(&degraded, "Degraded").unwrap();
    assert!(
        reason == "ServersNotReady" || reason == "DrivesOffline",
        "{reason}: {message}"
    );
    assert!(
        message.contains(&format!("2 of 8 drives offline, on pod(s) {victim}")),
        "{message}"
    );
    let status = degraded.status.unwrap();
    assert_eq!(status.health_status.as_deref(), Some("yellow"));
    assert_eq!(status.drives_online, Some(6));
    wait_for(
        Duration::from_secs(300),
        "the server back: every drive online, Degraded cleared, green",
        || {
            let tenants = tenants.clone();
            async move {
                let t = tenants.get(name).await.ok()?;
                let s = t.status.clone()?;
                (s.drives_offline == Some(0)
                    && s.health_status.as_deref() == Some("green")
                    && condition_of(&t, "Degraded")?.0 == "False")
                    .then_some(())
            }
        },
    )
    .await
    .unwrap();
}

fn small_pool(name: &str) -> Value {
    let mut p = pool(name);
    p["servers"] = json!(2);
    p
}

async fn pool_state(tenants: &Api<Tenant>, name: &str, statefulset: &str) -> Option<String> {
    let t = tenants.get(name).await.ok()?;
    t.status?
        .pools?
        .into_iter()
        .find(|p| p.ss_name == statefulset)
        .map(|p| p.state)
}

/// Waits for the Tenant to be Ready, then until every one of `count` objects reads back whole.
async fn ready_with_every_object(
    setup: &Setup,
    client: &kube::Client,
    (ns, name): (&str, &str),
    bucket: &str,
    count: usize,
) {
    wait_ready(setup, client, ns, name, Duration::from_secs(300)).await;
    let count = count.to_string();
    let verify = wait_for(
        Duration::from_secs(120),
        "every object readable",
        || async {
            s3(setup, client, ns, &["verify", bucket, &count])
                .await
                .ok()
                .filter(|v| v["failures"] == 0)
        },
    )
    .await
    .unwrap();
    assert_eq!(verify["objects"].to_string(), count, "{verify}");
}

#[tokio::test]
async fn a_pool_asked_to_retire_is_drained_removed_and_followed_by_a_new_one_with_every_object_kept()
 {
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    let (ns, name) = ("s3-retire", "retire");
    create_namespace_with_credentials(&client, ns, name).await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), ns);
    let mut spec = tenant(name, &[]);
    spec["spec"]["pools"] = json!([small_pool("p0"), small_pool("p1")]);
    tenants
        .create(
            &PostParams::default(),
            &serde_json::from_value(spec).unwrap(),
        )
        .await
        .unwrap();
    wait_ready(setup, &client, ns, name, Duration::from_secs(300)).await;
    s3(setup, &client, ns, &["make-bucket", "kept"])
        .await
        .unwrap();
    // Healthy answers the health endpoint a moment before every pool takes writes ("Resource
    // requested is unwritable" right after start, seen once): the first writes may be retried.
    let put = wait_for(Duration::from_secs(60), "30 objects written", || async {
        s3(setup, &client, ns, &["put", "kept", "30"]).await.ok()
    })
    .await
    .unwrap();
    assert_eq!(put["objects"], 30, "{put}");
    let remove_p0 = || {
        Patch::<Value>::Json(
            serde_json::from_value(json!([
                {"op": "test", "path": "/spec/pools/0/name", "value": "p0"},
                {"op": "remove", "path": "/spec/pools/0"}
            ]))
            .unwrap(),
        )
    };

    // 1. Removing a pool unasked is refused, and the message says how to do it.
    let refused = tenants
        .patch(name, &PatchParams::default(), &remove_p0())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("annotate the Tenant s3.hanzo.ai/decommission=\\\"p0\\\"")
            || refused.contains("annotate the Tenant s3.hanzo.ai/decommission=\"p0\""),
        "{refused}"
    );

    // 2. Asked to retire p0, the operator has the server drain it and reports it drained.
    tenants
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"s3.hanzo.ai/decommission": "p0"}}})),
        )
        .await
        .unwrap();
    let drained = wait_for(Duration::from_secs(300), "p0 drained", || {
        let tenants = tenants.clone();
        async move {
            let state = pool_state(&tenants, name, "retire-p0").await?;
            (state == "PoolDecommissioned").then_some(state)
        }
    })
    .await;
    if let Err(e) = drained {
        panic!("{e}\n{}", diagnose(setup, ns).await);
    }

    // 3. Now p0 may leave: its StatefulSet goes, the servers restart with p1 alone, every object
    //    is still there.
    tenants
        .patch(name, &PatchParams::default(), &remove_p0())
        .await
        .unwrap();
    let deleted = wait_for(
        Duration::from_secs(120),
        "the StatefulSet of p0 deleted",
        || {
            let client = client.clone();
            async move {
                Api::<StatefulSet>::namespaced(client, ns)
                    .get_opt("retire-p0")
                    .await
                    .ok()?
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await;
    if let Err(e) = deleted {
        panic!("{e}\n{}", diagnose(setup, ns).await);
    }
    ready_with_every_object(setup, &client, (ns, name), "kept", 30).await;

    // 4. A new pool with a new name joins (the Go operator's #1785), and the objects stay.
    append_pool(&tenants, name, small_pool("p2")).await.unwrap();
    wait_for(Duration::from_secs(300), "p2 initialized", || {
        let tenants = tenants.clone();
        async move {
            let state = pool_state(&tenants, name, "retire-p2").await?;
            (state == "PoolInitialized").then_some(())
        }
    })
    .await
    .unwrap();
    ready_with_every_object(setup, &client, (ns, name), "kept", 30).await;
    // As after the first start, the grown cluster may answer a first write with 503 "Resource
    // requested is unwritable, please reduce your request rate" (S3's SlowDown, which SDKs retry;
    // seen once here): retried as they would.
    let put = wait_for(
        Duration::from_secs(60),
        "writes after p2 joined",
        || async { s3(setup, &client, ns, &["put", "kept", "5"]).await.ok() },
    )
    .await
    .unwrap();
    assert_eq!(put["objects"], 5, "{put}");
}

/// A Tenant of one pool of 2 servers x 2 volumes in namespace `ns`, with `spec`'s fields.
pub(crate) fn two_by_two(name: &str, ns: &str, spec: Value) -> Value {
    let mut builder = TenantBuilder::new(name)
        .namespace(ns)
        .configuration(format!("{name}-env"))
        .pool(PoolBuilder::named("p0", 2, 2).claim_name("data"));
    for (field, value) in spec.as_object().unwrap() {
        builder = builder.spec(field, value.clone());
    }
    builder.build()
}

/// Creates `tenant`'s namespace with its credentials, its certificate Secret `certificate`, then
/// the Tenant, and waits until it is Ready.
async fn ready_with_certificate(
    setup: &Setup,
    client: &kube::Client,
    tenant: Value,
    certificate: Value,
) {
    let ns = tenant["metadata"]["namespace"].as_str().unwrap().to_owned();
    let name = tenant["metadata"]["name"].as_str().unwrap().to_owned();
    create_namespace_with_credentials(client, &ns, &name).await;
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(certificate).unwrap(),
        )
        .await
        .unwrap();
    Api::<Tenant>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(tenant).unwrap(),
        )
        .await
        .unwrap();
    wait_ready(setup, client, &ns, &name, Duration::from_secs(300)).await;
}

/// A tenant that serves the user's own certificate from a Secret of `kubectl create secret tls`
/// (no `ca.crt`): its servers trust that certificate to reach each other, the operator's health
/// check accepts exactly it, and clients that trust the user's CA store and read objects.
#[tokio::test]
async fn a_tenant_serves_a_users_certificate_whose_secret_holds_no_ca() {
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    let (ns, name) = ("s3-own-cert", "owncert");
    let spec = two_by_two(
        name,
        ns,
        json!({
            "requestAutoCert": false,
            "externalCertSecret": [{"name": "own-tls", "type": "kubernetes.io/tls"}]
        }),
    );
    let typed: Tenant = serde_json::from_value(spec.clone()).unwrap();
    let ca = hanzo_s3_operator::certs::Ca::generate("a user's private CA").unwrap();
    let pair = ca
        .sign_serving(
            &hanzo_s3_operator::reconcile::configuration::certificate_names(
                &typed,
                "cluster.local",
            ),
        )
        .unwrap();
    // Ready means the operator's health check reached the servers over TLS and they answered
    // healthy: they formed their cluster over TLS with the certificate as their only CA.
    ready_with_certificate(
        setup,
        &client,
        spec,
        json!({"metadata": {"name": "own-tls"}, "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem}}),
    )
    .await;

    let user_ca = setup.cp.dir().join("owncert-ca.pem");
    std::fs::write(&user_ca, ca.cert_pem()).unwrap();
    let trusting_the_user = async |args: &[&str]| {
        s3_trusting(setup, &client, ns, (ACCESS_KEY, SECRET_KEY), &user_ca, args)
            .await
            .unwrap_or_else(|e| panic!("trusting the user's CA: {e}"))
    };
    trusting_the_user(&["make-bucket", "mine"]).await;
    trusting_the_user(&["put", "mine", "5"]).await;
    let report = trusting_the_user(&["verify", "mine", "5"]).await;
    assert_eq!(report["failures"], 0, "{report}");
    Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await
        .unwrap();
}

/// A Tenant with its own certificate for a public name beside the operator's (requestAutoCert on,
/// as the Go operators serve both): the servers answer each client with the certificate for the
/// name it asks for (SNI), the operator's to their peers and to the health check.
#[tokio::test]
async fn a_tenant_serves_a_users_certificate_for_its_name_beside_the_operators() {
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    let (ns, name) = ("s3-two-certs", "twocerts");
    let public_name = "s3.example.test";
    let ca = hanzo_s3_operator::certs::Ca::generate("a public CA").unwrap();
    let pair = ca.sign_serving(&[public_name.to_owned()]).unwrap();
    // Ready: the servers formed their cluster with the operator's certificate (their names) and
    // the health check verified the one they answered the Service's name with.
    ready_with_certificate(
        setup,
        &client,
        two_by_two(
            name,
            ns,
            json!({"externalCertSecret": [{"name": "public-tls", "type": "kubernetes.io/tls"}]}),
        ),
        json!({"metadata": {"name": "public-tls"}, "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem, "ca.crt": ca.cert_pem()}}),
    )
    .await;

    let public_ca = setup.cp.dir().join("twocerts-ca.pem");
    std::fs::write(&public_ca, ca.cert_pem()).unwrap();
    let credentials = (ACCESS_KEY, SECRET_KEY);
    // Trusting only the user's CA, asking for `host`'s certificate.
    let trusting_the_user = async |host: &str, args: &[&str]| {
        s3_at(setup, &client, ns, host, credentials, &public_ca, args).await
    };
    for args in [&["make-bucket", "public"][..], &["put", "public", "3"]] {
        trusting_the_user(public_name, args)
            .await
            .unwrap_or_else(|e| panic!("the user's certificate for {public_name}: {e}"));
    }
    // The Service's name gets the operator's certificate, which the user's CA did not sign.
    let report = s3(setup, &client, ns, &["verify", "public", "3"])
        .await
        .unwrap();
    assert_eq!(report["failures"], 0, "{report}");
    let host = format!("minio.{ns}.svc.cluster.local");
    let refused = trusting_the_user(&host, &["verify", "public", "3"]).await;
    assert!(
        refused.is_err(),
        "the Service's name answered with the user's certificate: {refused:?}"
    );
    Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tenant_denied_at_admission_never_reaches_the_node() {
    let setup = setup();
    let _turn = serial().await;
    let client = setup.cp.client().await.unwrap();
    let (ns, name) = ("s3-denied", "denied");
    create_namespace_with_credentials(&client, ns, name).await;
    let mut invalid = tenant(name, &["p0"]);
    invalid["spec"]["pools"][0]["servers"] = json!(2);
    invalid["spec"]["pools"][0]["volumesPerServer"] = json!(1);
    let invalid: Tenant = serde_json::from_value(invalid).unwrap();
    let err = Api::<Tenant>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &invalid)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("validation.tenants.hanzo.ai"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("spec.pools[0].volumesPerServer"),
        "{}",
        status.message
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        Api::<Tenant>::namespaced(client.clone(), ns)
            .get_opt(name)
            .await
            .unwrap()
            .is_none()
    );
    assert!(pods_of(&client, ns).await.is_empty(), "no Pod object");
    // And nothing of it on the node: containerd knows no container of that namespace.
    let node = setup.cp.real_node().unwrap();
    let out = Command::new(node.node_dir.join("bin/ctr"))
        .args([
            "--address",
            &node.containerd_socket.display().to_string(),
            "-n",
            "k8s.io",
            "containers",
            "ls",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let containers = String::from_utf8_lossy(&out.stdout);
    let labels = Command::new(node.node_dir.join("bin/ctr"))
        .args([
            "--address",
            &node.containerd_socket.display().to_string(),
            "-n",
            "k8s.io",
            "containers",
            "ls",
            &format!("labels.\"io.kubernetes.pod.namespace\"=={ns}"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&labels.stdout).lines().count(),
        1,
        "only the header: no container of {ns} among\n{containers}"
    );
}

/// docs/operations.md "Checking a live endpoint", run as written against the webhook the chart
/// deployed: the CA from its Secret, a port-forward to its Service (the kubelet serves it), and
/// every conformance check passing through it.
#[tokio::test]
async fn the_documented_conformance_check_passes_against_the_deployed_webhook() {
    use std::os::unix::process::CommandExt;
    let setup = setup();
    let _turn = serial().await;
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    let section = docs.split("## Checking a live endpoint").nth(1).unwrap();
    let block = section
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert!(
        block.contains("port-forward") && block.contains("conformance"),
        "{block}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_hanzo-s3-operator"),
        bin.join("hanzo-s3-operator"),
    )
    .unwrap();
    std::os::unix::fs::symlink(setup.cp.real_node().unwrap().kubectl(), bin.join("kubectl"))
        .unwrap();
    let mut child = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", block])
        .current_dir(dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("KUBECONFIG", setup.cp.kubeconfig_path())
        // The backgrounded port-forward shares the group: it is stopped with it.
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let group = child.id();
    let stdout = child.stdout.take().unwrap();
    let collected =
        tokio::task::spawn_blocking(move || std::io::read_to_string(stdout).unwrap_or_default());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let _ = Command::new("kill")
        .args(["--", &format!("-{group}")])
        .status();
    let out = collected.await.unwrap();
    assert!(
        status.success(),
        "the documented block failed ({status}):\n{out}"
    );
    let summary = out.lines().last().unwrap_or_default();
    assert_eq!(
        summary, "24 passed, 0 failed; contract 10/10, verdict 10/10, hardening 14/14",
        "{out}"
    );
    assert!(out.contains("PASS"), "{out}");
}
