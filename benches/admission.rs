//! The admission core on Tenants of about 2, 10 and 50 KB: parsing, the whole review (defaults +
//! validation + warnings), and the defaulting patch. Run with `scripts/bench.sh admission`, which
//! writes the numbers to benches/results/admission.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hanzo_s3_operator::admission::patch::defaulting_patch;
use hanzo_s3_operator::admission::{DefaultsConfig, parse_tenant, review};
use hanzo_s3_operator::webhook::review::{NoCluster, Webhook, answer};
use hanzo_testkit::bench::tenant_of;
use serde_json::{Value, json};

fn bench(c: &mut Criterion) {
    let config = DefaultsConfig::default();
    let mut group = c.benchmark_group("admission");
    for pools in [2usize, 11, 57] {
        let doc = tenant_of(pools);
        let bytes = serde_json::to_vec(&doc).unwrap();
        let label = format!("{}KB", bytes.len() / 1024);
        let tenant = parse_tenant(&doc).unwrap();
        let doc = (doc, tenant.clone());
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
        // The steps the webhook takes on the object's text before the review: the size walk, then
        // the typed parse.
        let text = String::from_utf8(bytes.clone()).unwrap();
        group.bench_with_input(BenchmarkId::new("limits_walk", &label), &text, |b, text| {
            b.iter(|| hanzo_s3_operator::admission::limits::check_json(text).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("parse_str", &label), &text, |b, text| {
            b.iter(|| hanzo_s3_operator::admission::parse_tenant_str(text).unwrap())
        });
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
            &doc,
            |b, d| b.iter(|| defaulting_patch(&d.0, &d.1, &config).unwrap()),
        );
        // The whole handler, body bytes in and the response tree out, as the server calls it.
        let review_body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "bench", "kind": {"group": "minio.min.io", "version": "v2", "kind": "Tenant"},
            "namespace": "storage", "name": "bench", "operation": "CREATE", "object": doc.0}}))
        .unwrap();
        for (name, webhook) in [
            ("answer_validate", Webhook::Validate),
            ("answer_mutate", Webhook::Mutate),
        ] {
            group.bench_with_input(BenchmarkId::new(name, &label), &review_body, |b, body| {
                b.iter(|| {
                    let answered = answer(webhook, body, &config, &NoCluster);
                    futures::executor::block_on(answered).unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = bench
}
criterion_main!(benches);
