//! Monitoring, with real parts: every alert rule passes `promtool test rules` (promtool built from
//! Prometheus' Go module), the chart and the kustomize component ship the same rules and dashboard
//! (the chart's off by default), and their objects, and the ServiceMonitors the reconciler makes
//! for a Tenant, are accepted by a real apiserver under the Prometheus operator's own CRDs
//! (copied from its Go module), strictly: a field their schemas do not know is an error.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::reconcile::scrape;
use hanzo_testkit::{PoolBuilder, TenantBuilder, control_plane};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use hanzo_testkit::support::{self, render};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn built(name: &str) -> std::path::PathBuf {
    let bin = hanzo_local_cluster::tool(name);
    assert!(
        bin.is_file(),
        "{} is missing: run crates/local-cluster/build.sh",
        bin.display()
    );
    bin
}

#[test]
fn every_alert_fires_on_its_series_and_stays_quiet_on_healthy_ones() {
    let rule: Value = serde_yaml_ng::from_slice(
        &std::fs::read(repo("deploy/monitoring/prometheusrule.yaml")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml_ng::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        repo("tests/monitoring/alerts.test.yaml"),
        dir.path().join("alerts.test.yaml"),
    )
    .unwrap();
    let promtool = built("promtool");
    for args in [
        ["check", "rules", "rules.yaml"],
        ["test", "rules", "alerts.test.yaml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every alert has a test that expects it to fire.
    let tests = std::fs::read_to_string(repo("tests/monitoring/alerts.test.yaml")).unwrap();
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for alert in group["rules"].as_array().unwrap() {
            let name = alert["alert"].as_str().unwrap();
            assert!(
                tests.contains(&format!(
                    "alertname: {name}\n        exp_alerts:\n          - "
                )),
                "{name} has no test in which it fires"
            );
            let annotations = &alert["annotations"];
            assert!(
                annotations["summary"].is_string() && annotations["description"].is_string(),
                "{name} says what happened and what to do"
            );
        }
    }
}

#[test]
fn the_chart_and_the_component_ship_the_same_monitoring_and_the_chart_only_when_asked() {
    for file in ["prometheusrule.yaml", "dashboard.json"] {
        assert_eq!(
            std::fs::read(repo(&format!("deploy/monitoring/{file}"))).unwrap(),
            std::fs::read(repo(&format!("deploy/helm/hanzo-s3-operator/files/{file}"))).unwrap(),
            "deploy/helm/hanzo-s3-operator/files/{file} is a copy of deploy/monitoring/{file}"
        );
    }
    let kinds = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .filter(|d| {
                d["apiVersion"] == "monitoring.coreos.com/v1"
                    || d["metadata"]["name"] == "hanzo-s3-operator-dashboard"
            })
            .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let chart = "deploy/helm/hanzo-s3-operator";
    assert!(kinds(&render("helm", &["template", "h", chart])).is_empty());
    let mut on = kinds(&render(
        "helm",
        &["template", "h", chart, "--set", "monitoring.enabled=true"],
    ));
    on.sort();
    assert_eq!(on, ["ConfigMap", "PrometheusRule", "ServiceMonitor"]);
    let mut component = kinds(&render(
        "kustomize",
        &["build", "tests/data/monitoring-overlay"],
    ));
    component.sort();
    assert_eq!(component, ["ConfigMap", "PrometheusRule", "ServiceMonitor"]);
}

async fn apply(client: &kube::Client, ns: &str, doc: &Value) -> Result<(), kube::Error> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = doc["kind"].as_str().unwrap_or_default();
    let plural = format!("{}s", kind.to_lowercase());
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural);
    let api: Api<DynamicObject> = if kind == "CustomResourceDefinition" {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), ns, &ar)
    };
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply("monitoring-test")
        .force()
        .validation_strict();
    api.patch(name, &params, &Patch::Apply(doc))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn the_monitoring_objects_install_under_the_prometheus_operators_crds() {
    let cp = control_plane::shared();
    let client = cp.client().await.unwrap();
    for plural in ["servicemonitors", "prometheusrules"] {
        let path = hanzo_local_cluster::prometheus_operator_crd(plural);
        assert!(
            path.is_file(),
            "{} is missing: run crates/local-cluster/build.sh",
            path.display()
        );
        let crd: Value = serde_yaml_ng::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        apply(&client, "", &crd).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in [
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        while !support::crd_established(&client, name).await {
            assert!(Instant::now() < deadline, "{name} never Established");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let ns = "monitoring-objects";
    for name in [ns, "monitoring-component"] {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    let chart = render(
        "helm",
        &[
            "template",
            "h",
            "deploy/helm/hanzo-s3-operator",
            "--namespace",
            ns,
            "--set",
            "monitoring.enabled=true",
        ],
    );
    let component = render("kustomize", &["build", "tests/data/monitoring-overlay"]);
    let mut applied = 0;
    for (target, docs) in [(ns, &chart), ("monitoring-component", &component)] {
        for doc in docs
            .iter()
            .filter(|d| d["apiVersion"] == "monitoring.coreos.com/v1")
        {
            let mut doc = doc.clone();
            doc["metadata"]["namespace"] = json!(target);
            apply(&client, target, &doc)
                .await
                .unwrap_or_else(|e| panic!("{target}: {}: {e}", doc["kind"]));
            applied += 1;
        }
    }
    assert_eq!(
        applied, 4,
        "a ServiceMonitor and a PrometheusRule from each"
    );
    // What the reconciler makes for Tenants: TLS with several paths, and plain with none asked.
    for (name, spec) in [
        (
            "tls",
            json!({"prometheusOperatorScrapeMetricsPaths": ["/minio/v2/metrics/cluster", "/minio/v2/metrics/node", "/minio/v2/metrics/resource"]}),
        ),
        ("plain", json!({"requestAutoCert": false})),
    ] {
        let mut builder = TenantBuilder::new(name)
            .namespace(ns)
            .pool(PoolBuilder::named("p0", 4, 2))
            .spec("prometheusOperator", json!(true));
        for (field, value) in spec.as_object().unwrap() {
            builder = builder.spec(field, value.clone());
        }
        let tenant: Tenant = builder.typed();
        let monitor = scrape::service_monitor(&tenant, "cluster.local", name == "tls");
        apply(&client, ns, &monitor)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{monitor:#}"));
    }
}
