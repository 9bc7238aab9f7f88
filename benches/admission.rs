//! The admission core on Tenants of about 2, 10 and 50 KB: parsing, the whole review (defaults +
//! validation + warnings), and the defaulting patch. Run with `scripts/bench.sh admission`, which
//! writes the numbers to benches/results/admission.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hanzo_s3_operator::admission::patch::defaulting_patch;
use hanzo_s3_operator::admission::{DefaultsConfig, parse_tenant, review};
use serde_json::{Value, json};

/// A Tenant with `pools` pools, each carrying affinity, tolerations and resources like real ones.
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

fn bench(c: &mut Criterion) {
    let config = DefaultsConfig::default();
    let mut group = c.benchmark_group("admission");
    for pools in [2usize, 11, 57] {
        let doc = tenant_of(pools);
        let bytes = serde_json::to_vec(&doc).unwrap();
        let label = format!("{}KB", bytes.len() / 1024);
        let tenant = parse_tenant(&doc).unwrap();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("parse_bytes", &label),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let v: Value = serde_json::from_slice(bytes).unwrap();
                    parse_tenant(&v).unwrap()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("review", &label), &tenant, |b, t| {
            b.iter(|| review(None, t, &config))
        });
        group.bench_with_input(
            BenchmarkId::new("review_update", &label),
            &tenant,
            |b, t| b.iter(|| review(Some(t), t, &config)),
        );
        group.bench_with_input(
            BenchmarkId::new("defaulting_patch", &label),
            &(doc, tenant),
            |b, (d, t)| b.iter(|| defaulting_patch(d, t, &config).unwrap()),
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
