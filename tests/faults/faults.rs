//! Faults, with real `hanzo-s3-operator run` processes on a real control plane: the leader killed
//! mid-reconcile, the apiserver and etcd restarted, a replica killed under 1,000 creates, the CA
//! Secret and the webhook configurations deleted, the operator cut off from the apiserver.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder, support};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const OPERATOR_NS: &str = "hanzo-s3-operator";

struct Replica {
    guard: support::ChildGuard,
    identity: String,
}

impl Replica {
    fn alive(&mut self) -> bool {
        self.guard.0.try_wait().unwrap().is_none()
    }
}

/// A replica: `run` listening on `port`, the webhooks registered at `webhook_port` (a proxy in
/// front of the replicas, as a Service would be), talking to the apiserver via `kubeconfig`.
fn replica(
    identity: &str,
    port: u16,
    webhook_port: u16,
    kubeconfig: &Path,
    extra: &[&str],
) -> Replica {
    // One file per replica of each test (the tests run side by side and name their replicas
    // alike), named on stderr so that a failure's output says where to look.
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "hanzo-fault-{}-{identity}-{n}.log",
        std::process::id()
    ));
    eprintln!(
        "{}: replica {identity} logs to {}",
        std::thread::current().name().unwrap_or("?"),
        path.display()
    );
    let log = std::fs::File::create(&path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
        .args([
            "run",
            "--namespace",
            OPERATOR_NS,
            "--ready-when",
            "pods-ready",
        ])
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--webhook-url",
            &format!("https://127.0.0.1:{webhook_port}"),
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(extra)
        .env("POD_NAME", identity)
        // HANZO_FAULT_LOG=debug,... to see the replicas' requests when a fault test fails.
        .env(
            "RUST_LOG",
            std::env::var("HANZO_FAULT_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Replica {
        guard: support::ChildGuard(child),
        identity: identity.to_owned(),
    }
}

async fn cluster(nodes: usize) -> (ControlPlane, kube::Client) {
    let cp = ControlPlane::start(Options::with_nodes(nodes))
        .await
        .unwrap();
    let client = cp.client().await.unwrap();
    hanzo_s3_operator::operator::install::install_crd(&client, "test", Duration::from_secs(10))
        .await
        .unwrap();
    namespace(&client, OPERATOR_NS).await;
    (cp, client)
}

/// Creates `object` (already existing counts), retrying while the apiserver or a webhook is
/// unavailable, for up to 60 s.
async fn create<K>(api: Api<K>, object: &K)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api.create(&PostParams::default(), object).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    create(Api::all(client.clone()), &ns).await;
}

fn tenant(name: &str, servers: i32) -> Tenant {
    TenantBuilder::new(name)
        .configuration("env")
        .pool(PoolBuilder::named("p0", servers, 1))
        .typed()
}

/// A namespace with the configuration Secret and a Tenant `t`, created through the webhooks
/// (retried while the apiserver or a webhook is unavailable).
async fn create_tenant(client: &kube::Client, ns: &str) {
    namespace(client, ns).await;
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "env"}, "stringData": {"config.env": "export S3_ROOT_USER=\"a\"\n"}})).unwrap();
    // Each retried: a Tenant whose Secret was lost to a restart never becomes Ready (this once
    // read "23 of 24 Tenants Ready").
    create(Api::namespaced(client.clone(), ns), &secret).await;
    create(Api::namespaced(client.clone(), ns), &tenant("t", 4)).await;
}

async fn all_ready(client: &kube::Client, namespaces: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut ready = 0;
        let mut waiting = Vec::new();
        for ns in namespaces {
            let t = Api::<Tenant>::namespaced(client.clone(), ns).get("t").await;
            if let Ok(t) = &t
                && t.status.as_ref().is_some_and(|s| {
                    s.observed_generation == t.metadata.generation
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            {
                ready += 1;
            } else {
                waiting.push(format!(
                    "{ns}: {:?}",
                    t.map(|t| (t.metadata.generation, t.status))
                ));
            }
        }
        if ready == namespaces.len() {
            return;
        }
        if Instant::now() >= deadline {
            // What the cluster itself says about the servers of the Tenants still waiting: tells
            // a reconciler that missed a change from a node that never made a pod ready.
            for ns in namespaces {
                if waiting.iter().any(|w| w.starts_with(&format!("{ns}:"))) {
                    waiting.push(format!(
                        "{ns} in the cluster: {}",
                        servers_seen(client, ns).await
                    ));
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{ready} of {} Tenants Ready after {timeout:?}; the others:\n{}",
            namespaces.len(),
            waiting.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Each StatefulSet's ready replicas, each pod's phase, node, readiness and (when unplaced) why,
/// and each claim's phase in `ns`, as the apiserver has them.
async fn servers_seen(client: &kube::Client, ns: &str) -> String {
    let sets = described(client, ns, |s: &StatefulSet| {
        let status = s.status.clone().unwrap_or_default();
        format!(
            "statefulset {} ready {}/{}",
            s.metadata.name.as_deref().unwrap_or("?"),
            status.ready_replicas.unwrap_or(0),
            status.replicas
        )
    })
    .await;
    let pods = described(client, ns, |p: &Pod| {
        let status = p.status.clone().unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let ready = conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        // A pod never placed says why in its PodScheduled condition.
        let unscheduled = conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status != "True")
            .map(|c| {
                format!(
                    " unscheduled: {} {}",
                    c.reason.as_deref().unwrap_or(""),
                    c.message.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default();
        format!(
            "pod {} {} node={} ready={ready}{unscheduled}",
            p.metadata.name.as_deref().unwrap_or("?"),
            status.phase.as_deref().unwrap_or("?"),
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("none")
        )
    })
    .await;
    let claims = described(client, ns, |c: &PersistentVolumeClaim| {
        format!(
            "claim {} {}",
            c.metadata.name.as_deref().unwrap_or("?"),
            c.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("?")
        )
    })
    .await;
    format!("{sets}; {pods}; {claims}")
}

/// Every object of a kind in a namespace, one description each (or why the list failed).
async fn described<K>(client: &kube::Client, ns: &str, describe: impl Fn(&K) -> String) -> String
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e.to_string(),
    }
}

async fn leader(client: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), OPERATOR_NS)
        .list(&ListParams::default())
        .await
        .ok()?
        .items
        .into_iter()
        .find_map(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Two replicas behind a proxy standing for their Service.
async fn two_replicas(cp: &ControlPlane, extra: &[&str]) -> (Replica, Replica, support::Proxy) {
    let (pa, pb) = (support::free_port(), support::free_port());
    let lb = support::Proxy::start(vec![
        format!("127.0.0.1:{pa}").parse().unwrap(),
        format!("127.0.0.1:{pb}").parse().unwrap(),
    ])
    .await;
    let a = replica("replica-a", pa, lb.port, cp.kubeconfig_path(), extra);
    let b = replica("replica-b", pb, lb.port, cp.kubeconfig_path(), extra);
    (a, b, lb)
}

#[tokio::test]
async fn the_leader_killed_mid_reconcile_hands_over_and_every_tenant_ends_ready_written_once() {
    let (cp, client) = cluster(3).await;
    let (a, b, _lb) = two_replicas(&cp, &[]).await;
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let namespaces: Vec<String> = (0..20).map(|i| format!("leader-{i}")).collect();
    for ns in &namespaces {
        create_tenant(&client, ns).await;
    }
    // Kill the leader while the 20 are being reconciled.
    let first = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = leader(&client).await {
                break l;
            }
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (mut dead, mut survivor) = if first == a.identity { (a, b) } else { (b, a) };
    let killed = Instant::now();
    dead.guard.0.kill().unwrap(); // SIGKILL: no Lease released
    dead.guard.0.wait().unwrap();
    let deadline = killed + Duration::from_secs(15 + 15);
    while leader(&client).await.as_deref() != Some(survivor.identity.as_str()) {
        assert!(
            Instant::now() < deadline,
            "{} did not take over within the lease (15 s) and a renewal",
            survivor.identity
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("takeover after {:.1}s", killed.elapsed().as_secs_f64());
    all_ready(&client, &namespaces, Duration::from_secs(240)).await;
    assert!(survivor.alive());
    // Nothing lost, nothing written twice: each StatefulSet's spec was written once (two
    // leaders writing would bump its generation past 1), each Tenant has its three Services.
    for ns in &namespaces {
        let sts = Api::<StatefulSet>::namespaced(client.clone(), ns)
            .get("t-p0")
            .await
            .unwrap();
        assert_eq!(
            sts.metadata.generation,
            Some(1),
            "{ns}: the StatefulSet's spec was written once"
        );
        let services = Api::<Service>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
        assert_eq!(services, 3, "{ns}");
    }
}

#[tokio::test]
async fn restarts_of_the_apiserver_and_of_etcd_mid_reconcile_end_with_every_tenant_ready() {
    let (cp, client) = cluster(3).await;
    let (mut a, _b, _lb) = two_replicas(&cp, &[]).await;
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let mut namespaces = Vec::new();
    for (round, component) in ["kube-apiserver", "etcd"].iter().enumerate() {
        for i in 0..8 {
            let ns = format!("restart-{round}-{i}");
            create_tenant(&client, &ns).await;
            namespaces.push(ns);
        }
        let down = Instant::now();
        cp.restart(component)
            .await
            .unwrap_or_else(|e| panic!("{component}: {e}"));
        eprintln!(
            "{component} restarted, API back after {:.1}s",
            down.elapsed().as_secs_f64()
        );
        // A kubelet lists all its pods again once its apiserver is back; KWOK's fake nodes do not,
        // and a pod whose status update the restart lost stayed Pending on its node for good (CI:
        // scheduled, claims bound, never Running). Restarting kwok is that relist; the operator,
        // which this test is about, is left alone.
        cp.restart("kwok")
            .await
            .unwrap_or_else(|e| panic!("kwok after {component}: {e}"));
        // A client made before the restart may hold dead connections: a fresh one.
        let client = cp.client().await.unwrap();
        for i in 8..12 {
            let ns = format!("restart-{round}-{i}");
            create_tenant(&client, &ns).await;
            namespaces.push(ns);
        }
    }
    let client = cp.client().await.unwrap();
    all_ready(&client, &namespaces, Duration::from_secs(240)).await;
    assert!(a.alive(), "the operator survived both restarts");
}

#[tokio::test]
async fn a_replica_killed_during_1000_creates_admits_no_invalid_tenant_and_every_retry_succeeds() {
    let (cp, client) = cluster(0).await;
    let (mut a, mut b, _lb) = two_replicas(&cp, &["--no-reconcile"]).await;
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let (mut errors, mut denied, mut created) = (0usize, 0usize, 0usize);
    for i in 0..1000usize {
        if i == 300 {
            a.guard.0.kill().unwrap();
            a.guard.0.wait().unwrap();
        }
        let ns = format!("creates-{i}");
        namespace(&client, &ns).await;
        let invalid = i % 3 == 2;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Api::<Tenant>::namespaced(client.clone(), &ns)
                .create(
                    &PostParams::default(),
                    &tenant("t", if invalid { 2 } else { 4 }),
                )
                .await
            {
                Ok(t) => {
                    assert!(!invalid, "{ns}: an invalid Tenant was admitted");
                    assert!(
                        t.spec.image.is_some(),
                        "{ns}: stored without the webhook's defaults"
                    );
                    created += 1;
                    break;
                }
                Err(kube::Error::Api(s))
                    if s.code == 422 && s.message.contains("validation.tenants.hanzo.ai") =>
                {
                    assert!(invalid, "{ns}: a valid Tenant was denied: {}", s.message);
                    denied += 1;
                    break;
                }
                Err(e) => {
                    // The webhook could not be reached (failurePolicy Fail): nothing stored.
                    errors += 1;
                    assert!(
                        attempts < 20,
                        "{ns}: still failing after {attempts} attempts: {e}"
                    );
                    assert!(
                        Api::<Tenant>::namespaced(client.clone(), &ns)
                            .get_opt("t")
                            .await
                            .unwrap()
                            .is_none()
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    eprintln!(
        "1000 creates: {created} created, {denied} denied, {errors} client errors retried successfully"
    );
    assert_eq!((created, denied), (667, 333));
    assert!(b.alive());
    let stored = Api::<Tenant>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(stored.len(), 667, "only the valid ones are stored");
    assert!(stored.iter().all(|t| t.spec.pools[0].servers == 4));
}

#[tokio::test]
async fn the_ca_secret_and_webhook_configurations_deleted_come_back_and_then_no_request_fails() {
    let (cp, client) = cluster(0).await;
    let (_a, _b, _lb) = two_replicas(&cp, &["--no-reconcile"]).await;
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let secrets = Api::<Secret>::namespaced(client.clone(), OPERATOR_NS);
    let old_ca = secrets
        .get("hanzo-s3-operator-ca")
        .await
        .unwrap()
        .data
        .unwrap()["ca.crt"]
        .clone();
    let deleted = Instant::now();
    secrets
        .delete("hanzo-s3-operator-ca", &DeleteParams::default())
        .await
        .unwrap();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete("hanzo-s3-operator", &DeleteParams::default())
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete("hanzo-s3-operator", &DeleteParams::default())
        .await
        .unwrap();
    // Back: a new CA, both configurations carrying it, admission through them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ca = secrets
            .get_opt("hanzo-s3-operator-ca")
            .await
            .unwrap()
            .and_then(|s| s.data)
            .and_then(|d| d.get("ca.crt").cloned());
        let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get_opt("hanzo-s3-operator")
            .await
            .unwrap();
        let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .get_opt("hanzo-s3-operator")
            .await
            .unwrap();
        if let (Some(ca), Some(m), Some(v)) = (ca, m, v) {
            let bundle = |b: Option<k8s_openapi::ByteString>| {
                String::from_utf8(b.map(|b| b.0).unwrap_or_default()).unwrap()
            };
            let (mb, vb) = (
                bundle(m.webhooks.unwrap()[0].client_config.ca_bundle.clone()),
                bundle(v.webhooks.unwrap()[0].client_config.ca_bundle.clone()),
            );
            let ca_text = String::from_utf8(ca.0.clone()).unwrap();
            if ca != old_ca && mb.contains(ca_text.trim()) && vb.contains(ca_text.trim()) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the CA and the configurations did not come back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    eprintln!("recovered after {:.1}s", deleted.elapsed().as_secs_f64());
    // From here on, not one request fails (both replicas serve the new CA's certificate).
    for i in 0..20 {
        let ns = format!("after-{i}");
        namespace(&client, &ns).await;
        Api::<Tenant>::namespaced(client.clone(), &ns)
            .create(&PostParams::default(), &tenant("t", 4))
            .await
            .unwrap_or_else(|e| panic!("{ns}: {e}"));
    }
}

#[tokio::test]
async fn cut_off_from_the_apiserver_for_60_seconds_the_operator_converges_after() {
    let (cp, client) = cluster(2).await;
    // The operator reaches the apiserver only through a proxy that can be cut.
    let api: std::net::SocketAddr = cp
        .server_url()
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let proxy = support::Proxy::start(vec![api]).await;
    let kubeconfig =
        std::env::temp_dir().join(format!("hanzo-cut-{}.kubeconfig", std::process::id()));
    std::fs::write(
        &kubeconfig,
        std::fs::read_to_string(cp.kubeconfig_path())
            .unwrap()
            .replace(
                cp.server_url(),
                &format!("https://127.0.0.1:{}", proxy.port),
            ),
    )
    .unwrap();
    let port = support::free_port();
    let mut operator = replica("replica-a", port, port, &kubeconfig, &[]);
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    create_tenant(&client, "cut").await;
    all_ready(&client, &["cut".to_owned()], Duration::from_secs(120)).await;

    proxy.cut();
    let services = Api::<Service>::namespaced(client.clone(), "cut");
    services
        .delete("minio", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        services.get_opt("minio").await.unwrap().is_none(),
        "cut off, the operator wrote nothing"
    );
    assert!(operator.alive(), "the operator waited out the outage");

    proxy.restore();
    let back = Instant::now();
    while services.get_opt("minio").await.unwrap().is_none() {
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "the deleted Service was not restored after the outage"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "converged {:.1}s after the connection came back",
        back.elapsed().as_secs_f64()
    );
    all_ready(&client, &["cut".to_owned()], Duration::from_secs(60)).await;
    let _ = std::fs::remove_file(&kubeconfig);
}
