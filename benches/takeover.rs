//! Taking over a running tenant from the Go operator (hanzos3/operator), under S3 load, on the
//! real node (issue 25, part 9).
//!
//! The Go operator makes a TLS Tenant (its certificate from the CSR API: the control plane's
//! controller-manager signs `kubernetes.io/kubelet-serving`) of one pool of 4 servers x 2 volumes.
//! Once it serves, the S3 load (`s3client load`: workers writing, reading and listing checksummed
//! objects through the tenant's Service with minio-go's retries, trusting only the cluster CA)
//! runs while the Go operator is stopped, our CRD replaces its CRD and ours starts. The clock
//! runs from ours' start until every server runs our template and the Tenant is Ready; the load
//! goes on 10 s more, then reads back every object it was acknowledged. The results say what the
//! clients saw, how many servers were replaced or restarted, what became of the StatefulSet, the
//! TLS Secret and the Go operator's other objects.
//!
//!   HANZO_GO_OPERATOR=BIN HANZO_GO_OPERATOR_SRC=SNAPSHOT HANZO_GO_SIDECAR_IMAGE=ARCHIVE \
//!   HANZO_GO_SIDECAR_REF=REF cargo bench --bench takeover   (root; scripts/bench.sh takeover SNAPSHOT)
//!
//! The Go operator runs out of cluster as in real_node_side_by_side, in a mount namespace that
//! looks like a pod's to it: /etc/resolv.conf names the node's CoreDNS, and its service-account
//! directory holds the cluster CA, which it trusts its tenants' certificates by.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::{DefaultsConfig, defaulted};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::load::{LoadReport, S3Load, Target};
use hanzo_testkit::operators::{self, GoBuild, Operator};
use hanzo_testkit::{PoolBuilder, TenantBuilder, bench};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const NAMESPACE: &str = "bench";
const TENANT: &str = "bench";
const SERVERS: usize = 4;
const WORKERS: usize = 4;
/// How long each stage may take.
const DEADLINE: Duration = Duration::from_secs(600);

/// The tenant's pods, by name: UID, container names, restarts, Ready.
#[derive(Clone, Debug, PartialEq)]
struct PodState {
    name: String,
    uid: String,
    containers: Vec<String>,
    init_containers: usize,
    restarts: i32,
    ready: bool,
}

async fn pod_states(pods: &Api<Pod>) -> Vec<PodState> {
    let list = pods
        .list(&ListParams::default().labels(&format!("v1.min.io/tenant={TENANT}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut states: Vec<PodState> = list
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let spec = p.spec.clone().unwrap_or_default();
            let status = p.status.clone().unwrap_or_default();
            PodState {
                name: p.metadata.name.clone().unwrap_or_default(),
                uid: p.metadata.uid.clone().unwrap_or_default(),
                containers: spec.containers.iter().map(|c| c.name.clone()).collect(),
                init_containers: spec.init_containers.map_or(0, |c| c.len()),
                restarts: status
                    .container_statuses
                    .iter()
                    .flatten()
                    .map(|c| c.restart_count)
                    .sum(),
                ready: status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
            }
        })
        .collect();
    states.sort_by(|a, b| a.name.cmp(&b.name));
    states
}

fn ready_condition(tenant: &Tenant) -> String {
    tenant
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| format!("Ready={} {}: {}", c.status, c.reason, c.message))
        .unwrap_or_default()
}

/// The names of the objects of kind `K` in the tenant's namespace.
async fn names<K>(client: &kube::Client) -> Vec<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), NAMESPACE)
        .list_metadata(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .collect()
        })
        .unwrap_or_default()
}

struct Outcome {
    go_ready_s: f64,
    takeover_s: Option<f64>,
    load: LoadReport,
    pods_before: Vec<PodState>,
    pods_after: Vec<PodState>,
    statefulset: String,
    tls: String,
    leftovers: String,
    events: Vec<String>,
}

async fn run(go: &GoBuild) -> Outcome {
    let options = Options {
        real_node: true,
        images: vec![go.sidecar_archive.clone()],
        ..Options::default()
    };
    let cp = ControlPlane::start(options).await.unwrap();
    let client = cp.client().await.unwrap();
    Operator::Go.install(&client, Some(&go.src)).await;

    // The Go operator, as in a pod.
    let resolv = cp.dir().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {}\n", hanzo_local_cluster::node::BRIDGE_IP),
    )
    .unwrap();
    let cluster_ca = cp.dir().join("cluster-ca.crt");
    std::fs::write(&cluster_ca, cp.ca_pem()).unwrap();
    let kubeconfig = operators::impersonating(&cp, Operator::Go.user());
    let our_binary = Path::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"));
    let go_command = Operator::Go.command(
        our_binary,
        &kubeconfig,
        "s3-healthy",
        Some(&go.binary),
        &[("OPERATOR_SIDECAR_IMAGE", go.sidecar_ref.clone())],
    );
    let go_log = std::env::temp_dir().join("hanzo-bench-takeover-go.log");
    let (go_operator, _) = operators::spawn(
        operators::like_a_pod(&go_command, &resolv, &cluster_ca),
        &go_log,
    )
    .await;

    bench::create_namespace(&client, NAMESPACE).await;
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "bench-env"}, "stringData": {"config.env": bench::bench_config_env()}})).unwrap();
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let defaults = DefaultsConfig {
        s3_image: hanzo_local_cluster::node::s3_server_image().to_owned(),
        ..DefaultsConfig::default()
    };
    let tenant: Tenant = TenantBuilder::new(TENANT)
        .namespace(NAMESPACE)
        .configuration("bench-env")
        .spec("requestAutoCert", true)
        .pool(PoolBuilder::named("p0", SERVERS as i32, 2).claim_name("data"))
        .typed();
    // Stored as in real_node_side_by_side (ours' defaults written, which the Go operator
    // reads as a user's spec), so the two benchmarks' Go tenants are the same.
    let tenant = defaulted(&tenant, &defaults);
    let started = Instant::now();
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), NAMESPACE);
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();

    // The Go operator's tenant serves: every server Ready, and its Service takes a write over
    // TLS that chains to the cluster CA.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let node = cp.real_node().unwrap();
    let cluster_ip = loop {
        assert!(
            started.elapsed() < DEADLINE,
            "the Go operator's tenant did not serve within {} s: pods {:?}; see {}",
            DEADLINE.as_secs(),
            pod_states(&pods).await,
            go_log.display()
        );
        assert!(
            bench::usage(go_operator.id()).is_some(),
            "the Go operator exited; see {}",
            go_log.display()
        );
        let states = pod_states(&pods).await;
        let ip = services
            .get_opt("minio")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.spec?.cluster_ip);
        if states.len() == SERVERS
            && states.iter().all(|p| p.ready)
            && let Some(ip) = ip
        {
            let made = tokio::process::Command::new(node.s3client())
                .env("S3_ACCESS_KEY", bench::BENCH_ACCESS_KEY)
                .env("S3_SECRET_KEY", bench::BENCH_SECRET_KEY)
                .args(["--timeout", "10s", "--endpoint"])
                .arg(format!("minio.{NAMESPACE}.svc.cluster.local:443"))
                .args(["--resolve-to", &ip, "--ca"])
                .arg(&cluster_ca)
                .args(["make-bucket", "probe"])
                .output()
                .await
                .unwrap();
            if made.status.success() {
                break ip;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let go_ready_s = started.elapsed().as_secs_f64();
    eprintln!("the Go operator's tenant serves after {go_ready_s:.1} s");
    let pods_before = pod_states(&pods).await;

    // The clients trust what they trusted under the Go operator, the cluster CA, and nothing
    // of ours: the adopted certificate keeps serving them.
    let load = S3Load::start(
        &Target {
            s3client: node.s3client(),
            endpoint: format!("minio.{NAMESPACE}.svc.cluster.local:443"),
            cluster_ip: cluster_ip.clone(),
            ca_file: Some(&cluster_ca),
            access_key: bench::BENCH_ACCESS_KEY,
            secret_key: bench::BENCH_SECRET_KEY,
            bucket: "load",
        },
        WORKERS,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;

    // The move, as docs/migration.md says: the Go operator stops, our CRD replaces its own, ours
    // starts.
    drop(go_operator);
    Operator::Ours.install(&client, None).await;
    let ours_log = std::env::temp_dir().join("hanzo-bench-takeover-ours.log");
    let mut ours_command =
        Operator::Ours.command(our_binary, cp.kubeconfig_path(), "s3-healthy", None, &[]);
    ours_command.env("RUST_LOG", "info");
    let taking_over = Instant::now();
    let (ours, _) = operators::spawn(ours_command, &ours_log).await;
    let mut last_said = String::new();
    let takeover_s = loop {
        if taking_over.elapsed() > DEADLINE {
            break None;
        }
        assert!(
            bench::usage(ours.id()).is_some(),
            "hanzo-s3-operator exited; see {}",
            ours_log.display()
        );
        let states = pod_states(&pods).await;
        let said = tenants
            .get(TENANT)
            .await
            .map(|t| ready_condition(&t))
            .unwrap_or_default();
        if said != last_said {
            eprintln!(
                "ours at {:.1} s: {said}",
                taking_over.elapsed().as_secs_f64()
            );
            last_said = said.clone();
        }
        let ours_everywhere = states.len() == SERVERS
            && states
                .iter()
                .all(|p| p.ready && p.containers == ["minio"] && p.init_containers == 0);
        if ours_everywhere && said.starts_with("Ready=True S3Healthy") {
            break Some(taking_over.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    let load = load
        .stop(Duration::from_secs(300))
        .await
        .unwrap_or_else(|e| panic!("the load: {e}"));
    let pods_after = pod_states(&pods).await;

    let sts = Api::<StatefulSet>::namespaced(client.clone(), NAMESPACE)
        .get(&format!("{TENANT}-p0"))
        .await
        .unwrap();
    let template = sts.spec.template.spec.clone().unwrap_or_default();
    let managers: Vec<String> = sts
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    let statefulset = format!(
        "containers {:?}, init containers {}, volumes {:?}, update strategy {:?}, field managers {:?}",
        template
            .containers
            .iter()
            .map(|c| &c.name)
            .collect::<Vec<_>>(),
        template.init_containers.as_ref().map_or(0, Vec::len),
        template
            .volumes
            .iter()
            .flatten()
            .map(|v| &v.name)
            .collect::<Vec<_>>(),
        sts.spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_.clone()),
        managers
    );
    let tls_secret = Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .get(&format!("{TENANT}-tls"))
        .await
        .unwrap();
    let data = tls_secret.data.clone().unwrap_or_default();
    let keys: Vec<&String> = data.keys().collect();
    let tls = format!(
        "type {:?}, keys {:?}, signed-by {:?}",
        tls_secret.type_.as_deref().unwrap_or_default(),
        keys,
        tls_secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("hanzo.ai/signed-by"))
    );
    let roles = names::<Role>(&client).await;
    let bindings = names::<RoleBinding>(&client).await;
    let accounts = names::<ServiceAccount>(&client).await;
    let leftovers =
        format!("Roles {roles:?}, RoleBindings {bindings:?}, ServiceAccounts {accounts:?}");
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|e| e.reporting_controller.as_deref() == Some("hanzo-s3-operator"))
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.reason.as_deref().unwrap_or_default(),
                        e.note.as_deref().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    drop(ours);
    cp.stop();
    Outcome {
        go_ready_s,
        takeover_s,
        load,
        pods_before,
        pods_after,
        statefulset,
        tls,
        leftovers,
        events,
    }
}

fn write_results(go: &GoBuild, o: &Outcome) -> String {
    let mut out = String::from(
        "# Benchmark: taking over a running TLS tenant from the Go operator, under S3 load, on the real node\n\n",
    );
    let _ = writeln!(
        out,
        "- command: `scripts/bench.sh takeover SNAPSHOT` (runs `cargo bench --bench takeover`; root)"
    );
    let _ = writeln!(out, "- date: {}", bench::chrono_now());
    let _ = writeln!(
        out,
        "- machine: {} cores; a fresh control plane with one real node (Kubernetes {}), the controller-manager signing CSRs with the cluster CA",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        hanzo_local_cluster::kubernetes_version()
    );
    let _ = writeln!(
        out,
        "- the Go operator: hanzos3/operator ({}), out of cluster in a mount namespace with the node's CoreDNS and the cluster CA in its service-account directory, sidecar image `{}`; its Tenant: one pool of {SERVERS} servers x 2 volumes, `requestAutoCert: true` (CSR API), image {}",
        operators::go_commit(&go.src),
        go.sidecar_ref,
        hanzo_local_cluster::node::s3_server_image()
    );
    let _ = writeln!(
        out,
        "- the move: S3 load starts ({WORKERS} workers through the Service's ClusterIP, minio-go's retries, trusting only the cluster CA, as the Go operator's clients do), 15 s later the Go operator is stopped, our CRD applied over its CRD and `hanzo-s3-operator run --ready-when s3-healthy` started; the clock runs from that start until every server runs our template (no sidecar, no init container) and the Tenant is Ready; the load runs 10 s more and reads every acknowledged object back\n"
    );
    let _ = writeln!(out, "| what | result |");
    let _ = writeln!(out, "|---|---|");
    let _ = writeln!(
        out,
        "| Go operator's tenant serving over TLS | {:.1} s after its create |",
        o.go_ready_s
    );
    let _ = writeln!(
        out,
        "| ours' takeover, to every server on our template and Ready | {} |",
        o.takeover_s.map_or_else(
            || format!("not within {} s", DEADLINE.as_secs()),
            |s| format!("{s:.1} s")
        )
    );
    let l = &o.load;
    let _ = writeln!(
        out,
        "| requests | {} in {:.0} s ({} PUT, {} GET, {} LIST) |",
        l.requests, l.seconds, l.puts, l.gets, l.lists
    );
    let _ = writeln!(
        out,
        "| failed after retries | {} {:?} |",
        l.failed_after_retries(),
        l.failed_by_kind
    );
    let _ = writeln!(
        out,
        "| failed before retries | {} {:?} |",
        l.raw_errors, l.raw_errors_by_kind
    );
    let _ = writeln!(
        out,
        "| longest failing stretch | {} ms after retries, {} ms before |",
        l.longest_failing_ms, l.longest_raw_failing_ms
    );
    let _ = writeln!(
        out,
        "| objects | {} acknowledged, {} verified, {} lost |",
        l.acknowledged,
        l.verified,
        l.objects_lost()
    );
    let replaced = o
        .pods_before
        .iter()
        .filter(|b| !o.pods_after.iter().any(|a| a.uid == b.uid))
        .count();
    let restarts: i32 = o.pods_after.iter().map(|p| p.restarts).sum();
    let _ = writeln!(
        out,
        "| servers | {replaced} of {} pods replaced, {restarts} container restarts after |",
        o.pods_before.len()
    );
    let _ = writeln!(out, "| StatefulSet after | {} |", o.statefulset);
    let _ = writeln!(out, "| TLS Secret after | {} |", o.tls);
    let _ = writeln!(out, "| the Go operator's other objects | {} |", o.leftovers);
    let _ = writeln!(out, "\nEvents of hanzo-s3-operator:\n");
    for e in &o.events {
        let _ = writeln!(out, "- {}", e.replace('\n', " "));
    }
    if let Some(f) = &l.first_failure {
        let _ = writeln!(out, "\nFirst failure: {f}");
    }
    if !l.failure_timeline.is_empty() {
        let _ = writeln!(out, "\nFailure timeline:\n");
        for line in &l.failure_timeline {
            let _ = writeln!(out, "- {line}");
        }
    }
    std::fs::write(bench::results_path("takeover.md"), &out).unwrap();
    out
}

fn main() {
    let go = GoBuild::from_env().expect(
        "HANZO_GO_OPERATOR, HANZO_GO_OPERATOR_SRC, HANZO_GO_SIDECAR_IMAGE and HANZO_GO_SIDECAR_REF name the Go operator's build: run `scripts/bench.sh takeover SNAPSHOT`, which builds it from an exported hanzos3/operator tree",
    );
    hanzo_local_cluster::ensure_built().unwrap();
    hanzo_local_cluster::node::ensure_node_built().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let outcome = runtime.block_on(run(&go));
    print!("{}", write_results(&go, &outcome));
    assert!(
        outcome.takeover_s.is_some(),
        "ours did not take the tenant over within {} s",
        DEADLINE.as_secs()
    );
    outcome.load.assert_nothing_lost("the takeover", 100);
}
