//! How far the validating webhook's Tenant cache lags the apiserver under a burst of creates: N
//! Tenants, each in its own namespace, created by 8 clients at once on the local control plane,
//! and for each the time from the create's answer until the webhook's cache
//! (`webhook::cluster::ApiCluster`, the very watch the webhooks read) holds it. This is the window
//! in which a second Tenant of the same namespace, judged by another replica, could be admitted
//! (the replica that admitted the first remembers it; the reconciler's guard refuses the second).
//!
//!   cargo bench --bench admission_cache_lag     # writes benches/results/admission-cache-lag.md
//!
//! HANZO_LAG_TENANTS (default 1000) sets N; HANZO_BENCH_SMOKE=1 makes it 40. The cache is polled
//! every millisecond, which bounds the resolution.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::{DefaultsConfig, defaulted};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::webhook::cluster::ApiCluster;
use hanzo_testkit::{PoolBuilder, TenantBuilder, bench};
use kube::api::{Api, PostParams};

const CLIENTS: usize = 8;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let n = if bench::smoke() {
        40
    } else {
        bench::env_number("HANZO_LAG_TENANTS", 1000) as usize
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (acks, lags) = runtime.block_on(async {
        let cp = ControlPlane::start(Options::api_only()).await.unwrap();
        let client = cp.client().await.unwrap();
        bench::install_crd(&client).await;
        for i in 0..n {
            bench::create_namespace(&client, &format!("lag-{i}")).await;
        }
        let cluster = Arc::new(ApiCluster::cached(
            client.clone(),
            &[],
            std::future::pending(),
        ));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cluster.synced() {
            assert!(Instant::now() < deadline, "the caches never synced");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (client, cluster) = (client.clone(), cluster.clone());
                tokio::spawn(async move {
                    let mut measured = Vec::new();
                    for i in (c..n).step_by(CLIENTS) {
                        let ns = format!("lag-{i}");
                        let tenant: Tenant = TenantBuilder::new("t")
                            .namespace(&ns)
                            .configuration("t-env")
                            .pool(PoolBuilder::named("p0", 4, 1))
                            .typed();
                        let tenant = defaulted(&tenant, &DefaultsConfig::default());
                        let sent = Instant::now();
                        Api::<Tenant>::namespaced(client.clone(), &ns)
                            .create(&PostParams::default(), &tenant)
                            .await
                            .unwrap();
                        let acked = Instant::now();
                        while !cluster.cache_has_tenant(&ns, "t") {
                            assert!(
                                acked.elapsed() < Duration::from_secs(30),
                                "{ns}/t never cached"
                            );
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        measured.push((acked - sent, acked.elapsed()));
                    }
                    measured
                })
            })
            .collect();
        let (mut acks, mut lags) = (Vec::new(), Vec::new());
        for task in tasks {
            for (ack, lag) in task.await.unwrap() {
                acks.push(ack);
                lags.push(lag);
            }
        }
        cp.stop();
        (acks, lags)
    });
    let (mut acks, mut lags) = (acks, lags);
    acks.sort();
    lags.sort();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Benchmark: how far the admission cache lags a burst of creates\n"
    );
    let _ = writeln!(
        out,
        "- command: `cargo bench --bench admission_cache_lag` (HANZO_LAG_TENANTS={n})"
    );
    let _ = writeln!(out, "- date: {}", bench::chrono_now());
    let _ = writeln!(
        out,
        "- machine: {} cores; etcd and kube-apiserver {} on this machine (loopback)",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        hanzo_local_cluster::kubernetes_version()
    );
    let _ = writeln!(
        out,
        "- burst: {n} Tenants, each in its own namespace, created by {CLIENTS} clients at once (no webhooks registered: the cache, not admission, is measured); the cache is `webhook::cluster::ApiCluster`, polled every millisecond\n"
    );
    let _ = writeln!(out, "| measure | p50 | p90 | p99 | max |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (name, values) in [
        ("create answered (client's latency)", &acks),
        ("answer to in the cache (the lag)", &lags),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            ms(percentile(values, 0.5)),
            ms(percentile(values, 0.9)),
            ms(percentile(values, 0.99)),
            ms(values.last().copied().unwrap_or_default())
        );
    }
    let path = bench::results_path("admission-cache-lag.md");
    std::fs::write(&path, &out).unwrap();
    print!("{out}");
    eprintln!("written to {}", path.display());
}
