//! The reconciler at scale: 1,000 Tenants (one pool of 4 servers each) on the local control plane
//! with kwok fake nodes, reconciled by the operator as its own process (`hanzo-s3-operator run`,
//! built with the bench profile). Measures the time from the first apply to all Ready, the
//! operator's peak RSS and CPU-seconds (and every control-plane process's CPU, to show which one
//! bounds the run), API writes per Tenant, writes during a quiet period, and the time to notice
//! and restore one deleted Service. Not a test: numbers go to benches/results/reconcile-scale.md.
//!
//!   cargo bench --bench reconcile_scale
//!
//! HANZO_SCALE_TENANTS (default 1000) and HANZO_SCALE_QUIET_SECONDS (default 600) change the size;
//! HANZO_BENCH_SMOKE=1 runs 5 Tenants and 5 quiet seconds.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::bench;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, ListParams};

const OPERATOR_NS: &str = "hanzo-s3-operator";

/// The operator's reconcile counters, from its /metrics (curl: the serving certificate is for
/// the in-cluster Service name, and only numbers are read).
fn counters(port: u16) -> Option<(u64, u64)> {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "5"])
        .arg(format!("https://127.0.0.1:{port}/metrics"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let read = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((
        read("hanzo_s3_operator_reconcile_passes_total ")?,
        read("hanzo_s3_operator_reconcile_api_writes_total ")?,
    ))
}

async fn ready_count(client: &kube::Client) -> usize {
    Api::<Tenant>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|list| list.items.iter().filter(|t| bench::is_ready(t)).count())
        .unwrap_or(0)
}

fn main() {
    let smoke = bench::smoke();
    let tenants = if smoke {
        5
    } else {
        bench::env_number("HANZO_SCALE_TENANTS", 1000) as usize
    };
    let quiet = Duration::from_secs(if smoke {
        5
    } else {
        bench::env_number("HANZO_SCALE_QUIET_SECONDS", 600)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // 500 pods per fake node: room for every server pod.
        let nodes = (tenants * 4).div_ceil(400).max(2);
        let cp = ControlPlane::start(Options::with_nodes(nodes)).await.unwrap();
        let client = cp.client().await.unwrap();
        bench::install_crd(&client).await;
        bench::create_namespace(&client, OPERATOR_NS).await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_path = cp.dir().join("operator-scale.log");
        let operator = bench::Killed(
            Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
                .args(["run", "--no-webhook-config", "--ready-when", "pods-ready"])
                .args(["--namespace", OPERATOR_NS])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("--kubeconfig")
                .arg(cp.kubeconfig_path())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log_path).unwrap())
                .spawn()
                .unwrap(),
        );
        let pid = operator.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        while counters(port).is_none() {
            assert!(Instant::now() < deadline, "the operator did not start: {}", log_path.display());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (cpu_idle, _) = bench::usage(pid).unwrap();
        let others_before: Vec<(String, f64)> = bench::control_plane_pids(cp.dir(), pid)
            .into_iter()
            .filter_map(|(name, p)| Some((name, bench::usage(p)?.0)))
            .collect();

        // 1. Every Tenant applied, then all Ready.
        let started = Instant::now();
        for i in 0..tenants {
            bench::create_small_tenant(&client, &format!("scale-{i}")).await;
        }
        let applied = started.elapsed().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(3600);
        let mut ready = 0;
        while ready < tenants && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(2)).await;
            ready = ready_count(&client).await;
        }
        let to_ready = started.elapsed().as_secs_f64();
        assert_eq!(ready, tenants, "not every Tenant became Ready within an hour");
        let (_, writes_ready) = counters(port).unwrap();
        let (cpu_ready, rss_ready) = bench::usage(pid).unwrap();
        let others_ready: Vec<(String, f64)> = bench::control_plane_pids(cp.dir(), pid)
            .into_iter()
            .filter_map(|(name, p)| Some((name, bench::usage(p)?.0)))
            .collect();

        // 2. At rest: passes go on (health looks, resyncs), writes should not.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (passes_rest, writes_rest) = counters(port).unwrap();
        tokio::time::sleep(quiet).await;
        let (passes_after, writes_after) = counters(port).unwrap();
        let (cpu_quiet, _) = bench::usage(pid).unwrap();

        // 3. One Service deleted among all: noticed (its owner wakes) and applied again.
        let services: Api<Service> = Api::namespaced(client.clone(), &format!("scale-{}", tenants / 2));
        services.delete("minio", &DeleteParams::default()).await.unwrap();
        let deleted = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(s)) = services.get_opt("minio").await
                && s.metadata.deletion_timestamp.is_none()
            {
                break;
            }
            assert!(Instant::now() < deadline, "the deleted Service did not come back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let restored_ms = deleted.elapsed().as_secs_f64() * 1000.0;
        let (cpu_end, rss_end) = bench::usage(pid).unwrap();
        // VmHWM is folded from per-CPU counters and can read a little lower later on.
        let rss_peak = rss_end.max(rss_ready);
        drop(operator);

        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark: the reconciler at {tenants} Tenants\n");
        let _ = writeln!(out, "- command: `cargo bench --bench reconcile_scale` (HANZO_SCALE_TENANTS={tenants}, HANZO_SCALE_QUIET_SECONDS={})", quiet.as_secs());
        let _ = writeln!(out, "- date: {}", bench::chrono_now());
        let _ = writeln!(out, "- machine: {} cores; control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok with {nodes} fake nodes and the test volume provisioner, all on this machine", std::thread::available_parallelism().map_or(0, |n| n.get()));
        let _ = writeln!(out, "- operator: `hanzo-s3-operator run --no-webhook-config --ready-when pods-ready` (bench profile), its own process; each Tenant in its own namespace with a configuration Secret and one pool of 4 servers x 1 volume, stored already defaulted; clock starts before the first namespace is created");
        let _ = writeln!(out, "- writes: the operator's `hanzo_s3_operator_reconcile_api_writes_total` (applies that changed something, status patches, events)\n");
        let _ = writeln!(out, "| measure | value |\n|---|---|");
        let _ = writeln!(out, "| apply of {tenants} Tenants (namespace, Secret, Tenant each) | {applied:.1} s |");
        let _ = writeln!(out, "| first apply to all Ready | {to_ready:.1} s |");
        let _ = writeln!(out, "| operator peak RSS | {rss_peak:.1} MiB (at all Ready: {rss_ready:.1} MiB) |");
        let _ = writeln!(out, "| operator CPU until all Ready | {:.1} s |", cpu_ready - cpu_idle);
        let _ = writeln!(out, "| API writes per Tenant until Ready | {:.1} |", writes_ready as f64 / tenants as f64);
        let _ = writeln!(out, "| writes in {} s at rest | {} ({} passes) |", quiet.as_secs(), writes_after - writes_rest, passes_after - passes_rest);
        let _ = writeln!(out, "| operator CPU in {} s at rest | {:.1} s |", quiet.as_secs(), cpu_quiet - cpu_ready);
        let _ = writeln!(out, "| one deleted Service noticed and restored | {restored_ms:.0} ms |");
        let _ = writeln!(out, "| operator CPU in all | {:.1} s |", cpu_end - cpu_idle);
        let _ = writeln!(out, "\nCPU-seconds of each process from the first apply to all Ready (which one bounds the run):\n");
        let _ = writeln!(out, "| process | CPU-seconds |\n|---|---|");
        let _ = writeln!(out, "| hanzo-s3-operator | {:.1} |", cpu_ready - cpu_idle);
        for (name, after) in &others_ready {
            let before = others_before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, b)| *b);
            let _ = writeln!(out, "| {name} | {:.1} |", after - before);
        }
        print!("{out}");
        std::fs::write(bench::results_path("reconcile-scale.md"), out).unwrap();
        cp.stop();
    });
}
