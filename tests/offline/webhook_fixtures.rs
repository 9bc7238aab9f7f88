//! Every AdmissionReview fixture in webhooks/fixtures gets exactly its golden answer from both
//! endpoints, and the committed webhook configurations are what the code generates.
//! `UPDATE_GOLDEN=1 cargo test --test offline webhook_fixtures` rewrites the golden files.

use std::path::{Path, PathBuf};

use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::webhook::config::{self, Target};
use hanzo_s3_operator::webhook::review::{ClusterView, Webhook, answer};
use serde_json::{Value, json};

/// The cluster as the fixtures assume it: no other Tenant, every Secret present. (The real API
/// answers these in tests/control_plane/webhook_apiserver.rs.)
struct QuietCluster;

impl ClusterView for QuietCluster {
    async fn other_tenants(&self, _: &str, _: &str) -> Option<Vec<String>> {
        Some(Vec::new())
    }
    async fn secret_exists(&self, _: &str, _: &str) -> Option<bool> {
        Some(true)
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".request.json"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_fixture_gets_its_golden_answer() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = fixtures();
    assert!(files.len() >= 8, "fixtures missing: {files:?}");
    let mut mismatches = Vec::new();
    for request in &files {
        let body = std::fs::read(request).unwrap();
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            let actual =
                match answer(webhook, &body, &DefaultsConfig::default(), &QuietCluster).await {
                    Ok((review, _)) => review,
                    Err(bad) => json!({"httpStatus": 400, "reason": bad.0}),
                };
            let golden = PathBuf::from(
                request
                    .to_string_lossy()
                    .replace(".request.json", &format!(".{}.json", webhook.as_str())),
            );
            if update {
                std::fs::write(
                    &golden,
                    serde_json::to_string_pretty(&actual).unwrap() + "\n",
                )
                .unwrap();
                continue;
            }
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(&golden).unwrap_or_default())
                    .unwrap_or(Value::Null);
            if expected != actual {
                mismatches.push(format!(
                    "{}:\n  expected {expected}\n  actual   {actual}",
                    golden.display()
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn committed_webhook_configurations_are_current() {
    let options = config::Options {
        target: Target::Service {
            namespace: "hanzo-s3-operator".into(),
            name: "hanzo-s3-operator-webhook".into(),
        },
        ca_bundle_pem: None,
        operator_namespace: "hanzo-s3-operator".into(),
        mutation_failure_policy: "Fail".into(),
    };
    let generated = config::yaml(&options).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/webhook-configurations.yaml");
    assert!(
        std::fs::read_to_string(&path).unwrap_or_default() == generated,
        "webhooks/webhook-configurations.yaml is stale: run `cargo run -- webhook-config > webhooks/webhook-configurations.yaml`"
    );
}
