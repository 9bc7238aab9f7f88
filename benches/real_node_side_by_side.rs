//! The Go operator (hanzos3/operator) and ours on the real node: one Tenant each, on a fresh
//! control plane with a real node (containerd, kubelet, CoreDNS, kube-proxy) and real S3 servers.
//! From the Tenant's apply: every Pod running, the S3 Service taking a write (a bucket made by
//! the benchmark's own S3 client, so the finish line does not depend on either operator), and the
//! operator saying the tenant is healthy (ours: Ready with reason S3Healthy; the Go operator:
//! `status.healthStatus: green`). Then 20 objects are written and read back through the Service,
//! and the operator's peak RSS, CPU-seconds and API writes (from the audit log, as in
//! operator_side_by_side) are read.
//!
//! Both run out of cluster, as in operator_side_by_side. The Go operator asks a tenant's health by
//! its cluster DNS name, so it runs in a mount namespace whose /etc/resolv.conf names the node's
//! CoreDNS (the pods' resolver); both reach Services through kube-proxy on this host. Its tenant
//! pods need its sidecar image, built by `scripts/bench.sh real-node SNAPSHOT` from the
//! snapshot's sidecar module and imported into the node. TLS is off for both tenants: the Go
//! operator's certificates come from the CSR API, whose signer this control plane does not run.
//!
//!   HANZO_GO_OPERATOR=BIN HANZO_GO_OPERATOR_SRC=SNAPSHOT HANZO_GO_SIDECAR_IMAGE=ARCHIVE \
//!   HANZO_GO_SIDECAR_REF=REF cargo bench --bench real_node_side_by_side   (root)
//!
//! Then, for each, an image change under S3 load (the load instrument of the day-two tests, 4
//! workers through the Service with minio-go's retries): the same server under a new tag (the
//! node has no registry), from the Tenant's patch until every server runs it and is Ready, with
//! 5 s of load before and after; every acknowledged object is read back. The table goes to
//! real-node-side-by-side.md and, as the day-two results' side-by-side, to day2-image.md.
//!
//! Without the Go operator (and in a smoke run) ours runs alone; a smoke run changes no image.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::{DefaultsConfig, defaulted};
use hanzo_s3_operator::api::names::SERVER_CONTAINER_NAME;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::bench;
use hanzo_testkit::load::{LoadReport, S3Load, Target};
use hanzo_testkit::operators::{self, GoBuild, Operator};
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

const NAMESPACE: &str = "bench";
const SERVERS: usize = 4;
const OBJECTS: &str = "20";
/// How long each finish line may take.
const DEADLINE: Duration = Duration::from_secs(600);
/// The image change's load: workers, and its time before and after the change.
const WORKERS: usize = 4;
const SETTLE: Duration = Duration::from_secs(5);
/// How long the image change may take (ours takes about 100 s on the real node).
const IMAGE_DEADLINE: Duration = Duration::from_secs(300);

struct Row {
    which: Operator,
    /// Seconds from the apply, or `None` when the deadline came first.
    pods_running: Option<f64>,
    s3_write: Option<f64>,
    operator_healthy: Option<f64>,
    round_trip: String,
    rss: f64,
    cpu: f64,
    by_resource: BTreeMap<String, usize>,
    image_change: Option<ImageChange>,
}

/// What an image change cost the load.
struct ImageChange {
    /// Seconds from the Tenant's patch to every server on the new image and Ready, or `None`
    /// when the deadline came first.
    seconds: Option<f64>,
    load: LoadReport,
    /// The operator's own summary of the tenant at the end (`said`).
    said: String,
}

/// Whether the operator says the tenant is healthy, each in its own words.
fn says_healthy(which: Operator, tenant: &DynamicObject) -> bool {
    let status = &tenant.data["status"];
    match which {
        Operator::Ours => status["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Ready" && c["status"] == "True" && c["reason"] == "S3Healthy"
            })
        }),
        Operator::Go => status["healthStatus"] == "green",
    }
}

/// The operator's own summary of the tenant: ours' Ready condition, the Go operator's state and
/// health.
fn said(which: Operator, tenant: &DynamicObject) -> String {
    let status = &tenant.data["status"];
    match which {
        Operator::Ours => status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| format!("Ready {} {}: {}", c["status"], c["reason"], c["message"]))
            .unwrap_or_default(),
        Operator::Go => format!(
            "{} {} {}",
            status["currentState"], status["healthStatus"], status["healthMessage"]
        ),
    }
}

/// The benchmark's S3 client against the tenant's Service (plain HTTP), by its ClusterIP.
async fn s3(cp: &ControlPlane, ip: &str, port: i32, args: &[&str]) -> Result<String, String> {
    let node = cp.real_node().unwrap();
    let out = tokio::process::Command::new(node.s3client())
        .env("S3_ACCESS_KEY", bench::BENCH_ACCESS_KEY)
        .env("S3_SECRET_KEY", bench::BENCH_SECRET_KEY)
        .args(["--timeout", "20s", "--endpoint"])
        .arg(format!("minio.{NAMESPACE}.svc.cluster.local:{port}"))
        .args(["--resolve-to", ip])
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run s3client: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

async fn measure(which: Operator, go: Option<&GoBuild>) -> Row {
    let audit_dir = tempfile::tempdir().unwrap();
    let (apiserver_args, log) = operators::audit_args(audit_dir.path());
    let options = Options {
        real_node: true,
        images: go.map(|g| g.sidecar_archive.clone()).into_iter().collect(),
        apiserver_args,
        ..Options::default()
    };
    let cp = ControlPlane::start(options).await.unwrap();
    let client = cp.client().await.unwrap();
    which.install(&client, go.map(|g| g.src.as_path())).await;

    let kubeconfig = operators::impersonating(&cp, which.user());
    let log_path = std::env::temp_dir().join(format!("hanzo-bench-real-node-{}.log", which.user()));
    let go_env = go
        .map(|g| vec![("OPERATOR_SIDECAR_IMAGE", g.sidecar_ref.clone())])
        .unwrap_or_default();
    let mut command = which.command(
        Path::new(env!("CARGO_BIN_EXE_hanzo-s3-operator")),
        &kubeconfig,
        "s3-healthy",
        go.map(|g| g.binary.as_path()),
        &go_env,
    );
    if which == Operator::Go {
        let resolv = cp.dir().join("resolv.conf");
        std::fs::write(
            &resolv,
            format!("nameserver {}\n", hanzo_local_cluster::node::BRIDGE_IP),
        )
        .unwrap();
        command = operators::with_resolv_conf(&command, &resolv);
    }
    let (operator, cpu_idle) = operators::spawn(command, &log_path).await;
    let pid = operator.id();

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
    let tenant: Tenant = TenantBuilder::new("bench")
        .namespace(NAMESPACE)
        .configuration("bench-env")
        .spec("requestAutoCert", false)
        .pool(PoolBuilder::named("p0", SERVERS as i32, 2).claim_name("data"))
        .typed();
    // Stored as our mutating webhook would store it, for both: neither has defaults to write back.
    let tenant = defaulted(&tenant, &defaults);
    let applied = Instant::now();
    Api::<Tenant>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("minio.min.io", "v2", "Tenant"));
    let tenants: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let (mut pods_running, mut s3_write, mut operator_healthy) = (None, None, None);
    let mut endpoint: Option<(String, i32)> = None;
    let mut last_s3_error = String::new();
    let mut last_said = String::new();
    while applied.elapsed() < DEADLINE
        && (pods_running.is_none() || s3_write.is_none() || operator_healthy.is_none())
    {
        assert!(
            bench::usage(pid).is_some(),
            "{} exited; see {}",
            which.label(),
            log_path.display()
        );
        let seconds = applied.elapsed().as_secs_f64();
        if pods_running.is_none() {
            let running = pods
                .list_metadata(&ListParams::default().fields("status.phase=Running"))
                .await
                .map_or(0, |l| l.items.len());
            if running >= SERVERS {
                pods_running = Some(seconds);
            }
        }
        if operator_healthy.is_none()
            && let Ok(t) = tenants.get("bench").await
        {
            // What the operator says, each time it changes: where the time between the finish
            // lines goes.
            let said = said(which, &t);
            if said != last_said {
                eprintln!("{} at {seconds:.1} s: {said}", which.label());
                last_said = said;
            }
            if says_healthy(which, &t) {
                operator_healthy = Some(seconds);
            }
        }
        if endpoint.is_none() {
            endpoint = services
                .get_opt("minio")
                .await
                .ok()
                .flatten()
                .and_then(|s| {
                    let spec = s.spec?;
                    Some((spec.cluster_ip?, spec.ports?.first()?.port))
                });
        }
        if let (None, Some((ip, port))) = (s3_write, &endpoint) {
            match s3(&cp, ip, *port, &["make-bucket", "bench"]).await {
                Ok(_) => s3_write = Some(applied.elapsed().as_secs_f64()),
                Err(e) => last_s3_error = e,
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let round_trip = match (&endpoint, s3_write) {
        (Some((ip, port)), Some(_)) => match s3(&cp, ip, *port, &["put", "bench", OBJECTS]).await {
            Ok(_) => match s3(&cp, ip, *port, &["verify", "bench", OBJECTS]).await {
                Ok(out)
                    if serde_json::from_str::<serde_json::Value>(&out)
                        .is_ok_and(|v| v["failures"] == 0) =>
                {
                    format!("{OBJECTS} objects written and read back")
                }
                Ok(out) => format!("read back with failures: {}", out.trim()),
                Err(e) => format!("read failed: {e}"),
            },
            Err(e) => format!("write failed: {e}"),
        },
        _ => format!("no write within {} s: {last_s3_error}", DEADLINE.as_secs()),
    };
    // CPU, memory and writes are the way to a healthy tenant: read before the image change.
    let (cpu, rss) = bench::usage(pid).unwrap();
    let by_resource = operators::writes_of(&log, which.user());
    let image_change = match (&endpoint, s3_write, bench::smoke()) {
        (Some((ip, port)), Some(_), false) => {
            Some(change_image(which, &cp, &client, (ip, *port)).await)
        }
        _ => None,
    };
    drop(operator);
    cp.stop();
    Row {
        which,
        pods_running,
        s3_write,
        operator_healthy,
        round_trip,
        rss,
        cpu: cpu - cpu_idle,
        by_resource,
        image_change,
    }
}

/// The image change under load: the server image under a new tag, patched into the Tenant as a
/// user would, and the load's account until every server runs it and is Ready.
async fn change_image(
    which: Operator,
    cp: &ControlPlane,
    client: &kube::Client,
    (ip, port): (&str, i32),
) -> ImageChange {
    let node = cp.real_node().unwrap();
    let image = hanzo_local_cluster::node::s3_server_image();
    let retagged = format!("{image}-day2");
    node.tag_image(image, &retagged).unwrap();
    let target = Target {
        s3client: node.s3client(),
        endpoint: format!("minio.{NAMESPACE}.svc.cluster.local:{port}"),
        cluster_ip: ip.to_owned(),
        ca_file: None,
        access_key: bench::BENCH_ACCESS_KEY,
        secret_key: bench::BENCH_SECRET_KEY,
        bucket: "day2",
    };
    let load = S3Load::start(&target, WORKERS).unwrap();
    tokio::time::sleep(SETTLE).await;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("minio.min.io", "v2", "Tenant"));
    let tenants: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    let started = Instant::now();
    tenants
        .patch(
            "bench",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": retagged}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut seconds = None;
    while started.elapsed() < IMAGE_DEADLINE {
        if every_server_on(&pods, &retagged).await {
            seconds = Some(started.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let load = load.stop(Duration::from_secs(300)).await.unwrap();
    let said = tenants
        .get("bench")
        .await
        .map_or_else(|e| e.to_string(), |t| said(which, &t));
    ImageChange {
        seconds,
        load,
        said,
    }
}

/// Whether every server pod (none terminating) runs `image` and is Ready: the finish line is the
/// same for both operators, whatever each says of its rollout.
async fn every_server_on(pods: &Api<Pod>, image: &str) -> bool {
    let Ok(list) = pods.list(&ListParams::default()).await else {
        return false;
    };
    let on = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let spec_image = p.spec.as_ref().and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| c.name == SERVER_CONTAINER_NAME)
                    .and_then(|c| c.image.as_deref())
            });
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            spec_image == Some(image) && ready
        })
        .count();
    on == SERVERS && list.items.len() == SERVERS
}

fn cell(seconds: Option<f64>) -> String {
    seconds.map_or_else(
        || format!("not within {} s", DEADLINE.as_secs()),
        |s| format!("{s:.1} s"),
    )
}

fn write_results(rows: &[Row], go: Option<&GoBuild>) -> String {
    let mut out =
        String::from("# Benchmark: the Go operator and ours on the real node, to a healthy S3\n\n");
    let _ = writeln!(
        out,
        "- command: `scripts/bench.sh real-node SNAPSHOT` (runs `cargo bench --bench real_node_side_by_side`; root)"
    );
    let _ = writeln!(out, "- date: {}", bench::chrono_now());
    let _ = writeln!(
        out,
        "- machine: {} cores; each row on a fresh control plane with one real node (containerd, runc, CNI bridge, CoreDNS, kubelet, kube-proxy; Kubernetes {}), all on this machine",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        hanzo_local_cluster::kubernetes_version()
    );
    let _ = writeln!(
        out,
        "- each Tenant: one pool of {SERVERS} servers x 2 volumes (hostPath volumes on this machine's disk), the S3 server image of the real node ({}), `requestAutoCert: false` for both (the Go operator's certificates come from the CSR API, whose signer this control plane does not run), stored as our mutating webhook would store it",
        hanzo_local_cluster::node::s3_server_image()
    );
    if let Some(go) = go {
        let _ = writeln!(
            out,
            "- Go operator: `operator controller --kubeconfig ...` from hanzos3/operator ({}), out of cluster in a mount namespace whose /etc/resolv.conf names the node's CoreDNS (it asks tenants' health by cluster DNS name), `OPERATOR_STS_ENABLED=off`, its sidecar image `{}` built from the snapshot's sidecar module (`CGO_ENABLED=0 go build ./cmd/sidecar`, FROM scratch)",
            operators::go_commit(&go.src),
            go.sidecar_ref
        );
    }
    let _ = writeln!(
        out,
        "- ours: `hanzo-s3-operator run --no-webhook-config --ready-when s3-healthy` (bench profile), out of cluster"
    );
    let _ = writeln!(
        out,
        "- clock starts at the Tenant's create; \"S3 takes a write\" is the first bucket the benchmark's own S3 client (crates/local-cluster/node/s3client, minio-go) makes through the Service's ClusterIP, polled every 250 ms; \"operator says healthy\" is ours' Ready condition with reason S3Healthy and the Go operator's `status.healthStatus: green`; writes are the operator's own requests in the apiserver's audit log (Lease renewals left out)\n"
    );
    let _ = writeln!(
        out,
        "| operator | all Pods running | S3 takes a write | operator says healthy | round trip | peak RSS | CPU-seconds | API writes |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} MiB | {:.2} | {} ({}) |",
            r.which.label(),
            cell(r.pods_running),
            cell(r.s3_write),
            cell(r.operator_healthy),
            r.round_trip,
            r.rss,
            r.cpu,
            r.by_resource.values().sum::<usize>(),
            operators::by_resource_cell(&r.by_resource)
        );
    }
    let image = image_changes(rows, go);
    if !image.is_empty() {
        out.push('\n');
        out.push_str(&image);
        std::fs::write(bench::results_path("day2-image.md"), &image).unwrap();
    }
    std::fs::write(bench::results_path("real-node-side-by-side.md"), &out).unwrap();
    out
}

/// The image changes' table (empty when no row changed its image).
fn image_changes(rows: &[Row], go: Option<&GoBuild>) -> String {
    let mut out = String::new();
    if rows.iter().all(|r| r.image_change.is_none()) {
        return out;
    }
    let _ = writeln!(
        out,
        "## An image change under S3 load, the Go operator and ours\n\n\
        From one run of `scripts/bench.sh real-node SNAPSHOT` on {} (the Go operator: hanzos3/operator {}), each operator on its own fresh control plane with the real node, each tenant as above (4 servers x 2 drives, plain HTTP). Once the tenant is healthy, {WORKERS} workers write, read and list 64 KiB checksummed objects through its Service with minio-go's standard retries (the day-two tests' load instrument); after {} s the Tenant's `spec.image` becomes the same server under a new tag (`-day2`: the node has no registry to pull a new version from), and the duration runs until every server pod runs it and is Ready; the load runs {} s more, then every acknowledged object is read back.\n",
        bench::chrono_now(),
        go.map_or_else(|| "not run".to_owned(), |g| operators::go_commit(&g.src)),
        SETTLE.as_secs(),
        SETTLE.as_secs()
    );
    let _ = writeln!(
        out,
        "| operator | to every server on the new image and Ready | requests | failed after retries | failed attempts before retries | longest failing stretch (after / before retries) | objects lost | the operator's status at the end |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let Some(change) = &r.image_change else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.which.label(),
            change.seconds.map_or_else(
                || format!("not within {} s", IMAGE_DEADLINE.as_secs()),
                |s| format!("{s:.1} s")
            ),
            change.load.table_cells(),
            change.said.replace('|', "/")
        );
    }
    out
}

fn main() {
    let go = if bench::smoke() {
        None
    } else {
        GoBuild::from_env()
    };
    hanzo_local_cluster::ensure_built().unwrap();
    hanzo_local_cluster::node::ensure_node_built().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    let mut last = String::new();
    let mut operators = vec![Operator::Ours];
    if go.is_some() {
        operators.push(Operator::Go);
    }
    for which in operators {
        let row = runtime.block_on(measure(which, go.as_ref()));
        println!(
            "{}: Pods running {}, S3 takes a write {}, says healthy {}; {}",
            which.label(),
            cell(row.pods_running),
            cell(row.s3_write),
            cell(row.operator_healthy),
            row.round_trip
        );
        rows.push(row);
        last = write_results(&rows, go.as_ref());
    }
    print!("{last}");
    // Every row must have reached S3: a finish line that never came is a broken set-up, not a
    // number.
    for r in &rows {
        assert!(
            r.s3_write.is_some(),
            "{}: S3 never took a write ({})",
            r.which.label(),
            r.round_trip
        );
    }
    // Ours' image change must finish and lose nothing (the run fails after writing it down); the
    // Go operator's is what it is.
    for r in &rows {
        if let Some(change) = &r.image_change {
            eprintln!(
                "{}: image change: {}",
                r.which.label(),
                change.load.summary()
            );
            assert!(
                r.which == Operator::Go
                    || change.seconds.is_some() && change.load.objects_lost() == 0,
                "{}: image change: {}",
                r.which.label(),
                change.load.summary()
            );
        }
    }
}
