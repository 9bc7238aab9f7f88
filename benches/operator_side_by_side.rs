//! The Go operator (hanzos3/operator, module github.com/minio/operator) and ours, one after the
//! other, each on a fresh, identical control plane (etcd, kube-apiserver with an audit log,
//! controller-manager, scheduler, kwok fake nodes), with the same N Tenants (default 50, then
//! 1,000): one pool of 4 servers x 1 volume each, `requestAutoCert: false` for both (the Go
//! operator's certificate flow needs a CSR signer this control plane does not run).
//!
//! Per operator and N: the time from the first apply until every StatefulSet exists and every Pod
//! runs, the operator's peak RSS and CPU-seconds, and its API writes per Tenant. Writes are read
//! from the apiserver's audit log, not from the operator: each operator talks through a kubeconfig
//! that impersonates a user of its own, and every create, update, patch and delete by that user
//! counts, except Lease renewals (leader election writes by the clock, not by the Tenant).
//!
//!   HANZO_GO_OPERATOR=/path/to/go-operator/binary HANZO_GO_OPERATOR_SRC=/path/to/snapshot \
//!     cargo bench --bench operator_side_by_side         # -> benches/results/operator-side-by-side.md
//!
//! `scripts/bench.sh go-operator SNAPSHOT` builds the binary from an exported snapshot (never
//! committed here) and runs this. HANZO_SIDE_BY_SIDE_TENANTS="50,1000" sets the sizes; a smoke
//! run (HANZO_BENCH_SMOKE=1) runs 3 Tenants and ours alone when no Go binary is given. Each row
//! may take HANZO_SIDE_BY_SIDE_DEADLINE_SECS (two hours by default; the Go operator needs about
//! that for 1,000); one that runs out is reported with how far it got, and the results file is
//! rewritten after every row.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_testkit::bench;
use hanzo_testkit::operators::{self, Operator};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, ObjectMeta};

struct Row {
    which: Operator,
    tenants: usize,
    to_statefulsets: f64,
    to_running: f64,
    rss: f64,
    cpu: f64,
    writes: usize,
    by_resource: BTreeMap<String, usize>,
    /// StatefulSets and running Pods when the deadline came first; `None` when all were there.
    unfinished: Option<(usize, usize)>,
}

/// How many of `objects` are in the benchmark's Tenant namespaces (`side-N`).
fn benchmark_objects<'a>(objects: impl Iterator<Item = &'a ObjectMeta>) -> usize {
    objects
        .filter(|m| {
            m.namespace
                .as_deref()
                .is_some_and(|n| n.starts_with("side-"))
        })
        .count()
}

async fn measure(
    which: Operator,
    tenants: usize,
    go_binary: Option<&Path>,
    go_src: Option<&Path>,
) -> Row {
    let audit_dir = tempfile::tempdir().unwrap();
    let (apiserver_args, log) = operators::audit_args(audit_dir.path());
    let nodes = (tenants * 4).div_ceil(400).max(2);
    let options = Options {
        nodes,
        apiserver_args,
        ..Options::default()
    };
    let cp = ControlPlane::start(options).await.unwrap();
    let client = cp.client().await.unwrap();
    which.install(&client, go_src).await;

    let kubeconfig = operators::impersonating(&cp, which.user());
    // Outside the control plane's directory, which goes when it stops.
    let log_path = std::env::temp_dir().join(format!(
        "hanzo-bench-side-by-side-{}-{tenants}.log",
        which.user()
    ));
    let ours = Path::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"));
    let command = which.command(ours, &kubeconfig, "pods-ready", go_binary, &[]);
    let (operator, cpu_idle) = operators::spawn(command, &log_path).await;
    let pid = operator.id();

    let started = Instant::now();
    for i in 0..tenants {
        bench::create_small_tenant_with(&client, &format!("side-{i}"), false).await;
    }
    let statefulsets: Api<StatefulSet> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let limit = deadline();
    let mut to_statefulsets = None;
    let mut to_running = None;
    let (mut sts, mut running) = (0, 0);
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            bench::usage(pid).is_some(),
            "{} exited; see {}",
            which.label(),
            log_path.display()
        );
        sts = statefulsets
            .list_metadata(&ListParams::default())
            .await
            .map_or(sts, |l| {
                benchmark_objects(l.items.iter().map(|s| &s.metadata))
            });
        if to_statefulsets.is_none() && sts >= tenants {
            to_statefulsets = Some(started.elapsed().as_secs_f64());
        }
        running = pods
            .list_metadata(&ListParams::default().fields("status.phase=Running"))
            .await
            .map_or(running, |l| {
                benchmark_objects(l.items.iter().map(|p| &p.metadata))
            });
        if to_statefulsets.is_some() && running >= tenants * 4 {
            to_running = Some(started.elapsed().as_secs_f64());
            break;
        }
    }
    if to_running.is_none() {
        eprintln!(
            "{} at {tenants}: deadline of {} s reached with {sts} StatefulSets and {running} Pods running; see {}",
            which.label(),
            limit.as_secs(),
            log_path.display()
        );
    }
    let (cpu, rss) = bench::usage(pid).unwrap();
    drop(operator);
    cp.stop();
    let by_resource = operators::writes_of(&log, which.user());
    Row {
        which,
        tenants,
        to_statefulsets: to_statefulsets.unwrap_or(limit.as_secs_f64()),
        to_running: to_running.unwrap_or(limit.as_secs_f64()),
        unfinished: to_running.is_none().then_some((sts, running)),
        rss,
        cpu: cpu - cpu_idle,
        writes: by_resource.values().sum(),
        by_resource,
    }
}

/// How long one row may take: `HANZO_SIDE_BY_SIDE_DEADLINE_SECS`, default two hours. A row that
/// runs out says how far it got instead of failing the whole run.
fn deadline() -> Duration {
    Duration::from_secs(
        std::env::var("HANZO_SIDE_BY_SIDE_DEADLINE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7200),
    )
}

/// One time cell: the seconds, or how far the row got when its deadline came first.
fn time_cell(seconds: f64, done: usize, of: usize, finished: bool) -> String {
    if finished {
        format!("{seconds:.1} s")
    } else {
        format!("not within {seconds:.0} s ({done} of {of})")
    }
}

fn main() {
    let go_binary = std::env::var_os("HANZO_GO_OPERATOR").map(PathBuf::from);
    let go_src = std::env::var_os("HANZO_GO_OPERATOR_SRC").map(PathBuf::from);
    let sizes: Vec<usize> = if bench::smoke() {
        vec![3]
    } else {
        std::env::var("HANZO_SIDE_BY_SIDE_TENANTS")
            .unwrap_or_else(|_| "50,1000".to_owned())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    };
    let mut operators = vec![Operator::Ours];
    match (&go_binary, &go_src) {
        (Some(bin), Some(_)) => {
            assert!(
                bin.is_file(),
                "HANZO_GO_OPERATOR {} is not a file",
                bin.display()
            );
            // Ours first: the Go operator's 1,000 take two hours, paced by its client, so the
            // long row is the last one and a machine busy near the end shifts it least.
            operators.push(Operator::Go);
        }
        _ if bench::smoke() => {}
        _ => panic!(
            "set HANZO_GO_OPERATOR (the Go operator's binary) and HANZO_GO_OPERATOR_SRC (its source snapshot); `scripts/bench.sh go-operator SNAPSHOT` builds and sets both"
        ),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    let mut last = String::new();
    for &tenants in &sizes {
        for &which in &operators {
            let row = runtime.block_on(measure(
                which,
                tenants,
                go_binary.as_deref(),
                go_src.as_deref(),
            ));
            println!(
                "{} at {tenants}: StatefulSets {:.1} s, Pods running {:.1} s, {:.1} MiB, {:.1} CPU-s, {:.1} writes/Tenant",
                which.label(),
                row.to_statefulsets,
                row.to_running,
                row.rss,
                row.cpu,
                row.writes as f64 / tenants as f64
            );
            rows.push(row);
            last = write_results(&rows, &sizes, go_src.as_deref());
        }
    }
    print!("{last}");
}

/// Writes the results file (after every row, so a late failure keeps the rows measured before it)
/// and returns its text.
fn write_results(rows: &[Row], sizes: &[usize], go_src: Option<&Path>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark: the Go operator and ours, side by side\n");
    let _ = writeln!(
        out,
        "- command: `scripts/bench.sh go-operator SNAPSHOT` (runs `cargo bench --bench operator_side_by_side`; sizes {sizes:?})"
    );
    let _ = writeln!(out, "- date: {}", bench::chrono_now());
    let _ = writeln!(
        out,
        "- machine: {} cores; each row on a fresh control plane (etcd, kube-apiserver {} with a Metadata-level audit log of writes, controller-manager, scheduler, kwok fake nodes for 500 pods each), all on this machine",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        hanzo_local_cluster::kubernetes_version()
    );
    if let Some(src) = go_src {
        let commit = operators::go_commit(src);
        let _ = writeln!(
            out,
            "- Go operator: `operator controller --kubeconfig ...`, built with `go build ./cmd/operator` from hanzos3/operator ({commit}), with `OPERATOR_STS_ENABLED=off` (its STS endpoint, which ours does not have, needs a Deployment of its own to exist); its own CRDs (tenants, policybindings). It asks each Tenant's S3 health endpoint by its cluster DNS name during its passes; no S3 server runs on fake nodes and the name does not resolve outside a cluster, so those calls fail at once: ours is told as much by `--ready-when pods-ready`"
        );
    }
    let _ = writeln!(
        out,
        "- ours: `hanzo-s3-operator run --no-webhook-config --ready-when pods-ready` (bench profile); its own CRD"
    );
    let _ = writeln!(
        out,
        "- each Tenant: its own namespace, a configuration Secret, one pool of 4 servers x 1 volume, `requestAutoCert: false`, stored as our mutating webhook would store it (already defaulted, so neither operator has defaults left to write back)"
    );
    let _ = writeln!(
        out,
        "- writes: create, update, patch and delete requests by the operator's own (impersonated) user in the apiserver's audit log, Lease renewals left out; clock starts before the first namespace is created"
    );
    let _ = writeln!(
        out,
        "- each row may take {} s (`HANZO_SIDE_BY_SIDE_DEADLINE_SECS`); a row that runs out shows how far it got, and its RSS, CPU and writes are those at that moment\n",
        deadline().as_secs()
    );
    let _ = writeln!(
        out,
        "| operator | Tenants | all StatefulSets exist | all Pods running | peak RSS | CPU-seconds | API writes per Tenant |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        let (sts, running) = r.unfinished.unwrap_or((r.tenants, r.tenants * 4));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} MiB | {:.1} | {:.1} |",
            r.which.label(),
            r.tenants,
            time_cell(r.to_statefulsets, sts, r.tenants, sts >= r.tenants),
            time_cell(r.to_running, running, r.tenants * 4, r.unfinished.is_none()),
            r.rss,
            r.cpu,
            r.writes as f64 / r.tenants as f64
        );
    }
    let _ = writeln!(out, "\nWrites by resource (all Tenants of the row):\n");
    let _ = writeln!(
        out,
        "| operator | Tenants | writes by resource |\n|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.which.label(),
            r.tenants,
            operators::by_resource_cell(&r.by_resource)
        );
    }
    std::fs::write(bench::results_path("operator-side-by-side.md"), &out).unwrap();
    out
}
