//! Shared by the benchmarks: Tenants of realistic shape and size.

use serde_json::{Value, json};

/// A Tenant with `pools` pools, each carrying affinity, tolerations and resources like real ones.
#[allow(dead_code)]
pub fn tenant_of(pools: usize) -> Value {
    let pool = |i: usize| {
        json!({
            "name": format!("pool-{i}"), "servers": 4, "volumesPerServer": 4,
            "volumeClaimTemplate": {"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd",
                "resources": {"requests": {"storage": "1Ti"}}}},
            "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "32Gi"}},
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchExpressions": [{"key": "v1.min.io/tenant", "operator": "In", "values": ["bench"]},
                                                       {"key": "v1.min.io/pool", "operator": "In", "values": [format!("pool-{i}")]}]},
                "topologyKey": "kubernetes.io/hostname"}]}},
            "tolerations": [{"key": "storage", "operator": "Equal", "value": "dedicated", "effect": "NoSchedule"}],
            "nodeSelector": {"node.kubernetes.io/pool": "storage"},
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": true},
            "labels": {"team": "storage"}, "annotations": {"example.com/owner": "storage-team"}
        })
    };
    json!({
        "apiVersion": "minio.min.io/v2", "kind": "Tenant",
        "metadata": {"name": "bench", "namespace": "storage", "labels": {"app": "s3"}},
        "spec": {
            "configuration": {"name": "bench-env"},
            "env": [{"name": "S3_BROWSER", "value": "on"}, {"name": "S3_STORAGE_CLASS_STANDARD", "value": "EC:2"}],
            "features": {"bucketDNS": true, "domains": {"minio": ["s3.example.com"], "console": "console.example.com"}},
            "buckets": [{"name": "logs"}, {"name": "backups", "objectLock": true}],
            "pools": (0..pools).map(pool).collect::<Vec<_>>()
        }
    })
}

/// `HANZO_BENCH_SMOKE=1`: a run of seconds that only proves the benchmark still works (CI and the
/// documented-commands test run it so); the numbers mean nothing.
#[allow(dead_code)]
pub fn smoke() -> bool {
    std::env::var("HANZO_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// Where a benchmark writes `<file>`: `HANZO_BENCH_OUT` when set (a smoke run must not overwrite
/// the measured results), else benches/results.
#[allow(dead_code)]
pub fn results_path(file: &str) -> std::path::PathBuf {
    std::env::var_os("HANZO_BENCH_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results"))
        .join(file)
}
