//! The deploy manifests on a real apiserver: the kustomize base and the Helm chart render, take the
//! CRD from crds/, agree on RBAC, apply cleanly (restricted Pod Security admits the operator pods),
//! and the deployed ServiceAccount can do all the operator's work and nothing else.

use std::path::Path;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::webhook::config::{self, Target};
use hanzo_testkit::support;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

const NS: &str = "hanzo-s3-operator";

fn render(tool: &str, args: &[&str]) -> Vec<Value> {
    support::render(tool, args)
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn both_take_the_crd_from_crds_and_agree_on_rbac() {
    let committed: Value =
        serde_yaml_ng::from_str(include_str!("../../crds/minio.min.io_tenants.yaml")).unwrap();
    let base = render("kustomize", &["build", "deploy/base"]);
    let mut base_crd = of_kind(&base, "CustomResourceDefinition")[0].clone();
    // kustomize adds the base's common labels; everything else must be the committed CRD.
    if let Some(meta) = base_crd["metadata"].as_object_mut() {
        meta.remove("labels");
    }
    assert!(
        base_crd == committed,
        "the kustomize base must use crds/minio.min.io_tenants.yaml itself"
    );
    let chart_crd = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/helm/hanzo-s3-operator/crds/minio.min.io_tenants.yaml");
    assert_eq!(
        std::fs::read_to_string(chart_crd).unwrap(),
        include_str!("../../crds/minio.min.io_tenants.yaml"),
        "the chart's CRD is a copy of crds/: cp crds/minio.min.io_tenants.yaml deploy/helm/hanzo-s3-operator/crds/"
    );
    let chart = render(
        "helm",
        &[
            "template",
            "t",
            "deploy/helm/hanzo-s3-operator",
            "--namespace",
            NS,
        ],
    );
    for kind in ["ClusterRole", "Role"] {
        assert_eq!(
            of_kind(&base, kind)[0]["rules"],
            of_kind(&chart, kind)[0]["rules"],
            "{kind} rules differ"
        );
    }
    let cm = render(
        "helm",
        &[
            "template",
            "t",
            "deploy/helm/hanzo-s3-operator",
            "--namespace",
            NS,
            "--set",
            "certificates.mode=certManager",
        ],
    );
    let args = of_kind(&cm, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        .to_string();
    assert!(
        args.contains("--tls-cert-file=/certs/tls.crt") && args.contains("--no-webhook-config"),
        "{args}"
    );
    assert_eq!(of_kind(&cm, "Certificate").len(), 1);
    assert_eq!(
        of_kind(&cm, "ValidatingWebhookConfiguration")[0]["webhooks"][0]["failurePolicy"],
        "Fail"
    );
    for docs in [&base, &chart] {
        let c = &of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["securityContext"];
        assert_eq!(c["readOnlyRootFilesystem"], true);
        assert_eq!(c["allowPrivilegeEscalation"], false);
        assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
    }
}

fn resource(doc: &Value) -> ApiResource {
    let (group, version) = doc["apiVersion"]
        .as_str()
        .unwrap()
        .rsplit_once('/')
        .unwrap_or(("", doc["apiVersion"].as_str().unwrap()));
    let kind = doc["kind"].as_str().unwrap();
    let plural = match kind {
        "PodDisruptionBudget" => "poddisruptionbudgets".to_owned(),
        other if other.ends_with('y') => {
            format!("{}ies", other.trim_end_matches('y').to_lowercase())
        }
        other => format!("{}s", other.to_lowercase()),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}

#[tokio::test]
async fn the_base_applies_and_its_service_account_can_do_the_operators_work_and_no_more() {
    // A control plane of this test's own: the base's cluster roles and webhook configurations and
    // a reconciler of all namespaces reach every Tenant of its cluster.
    let cp = ControlPlane::start(Options::with_nodes(3)).await.unwrap();
    let admin = cp.client().await.unwrap();
    for doc in render("kustomize", &["build", "deploy/base"]) {
        let ar = resource(&doc);
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
            None => Api::all_with(admin.clone(), &ar),
        };
        api.patch(
            &name,
            &PatchParams::apply("deploy-test").force(),
            &Patch::Apply(&doc),
        )
        .await
        .unwrap();
    }
    // Restricted Pod Security is enforced in the namespace: the operator's pods must pass it.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let deadline = Instant::now() + Duration::from_secs(60);
    while pods.list(&ListParams::default()).await.unwrap().items.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the operator's pods were not admitted\n{}",
            cp.log_tails(20)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let sa = support::impersonated(&cp, NS, "hanzo-s3-operator").await;
    // The CA Secret and the leader Lease in its namespace.
    hanzo_s3_operator::certs::store::ensure_ca(sa.clone(), NS)
        .await
        .unwrap();
    let leases: Api<Lease> = Api::namespaced(sa.clone(), NS);
    assert!(
        hanzo_s3_operator::reconcile::leader::try_lead(
            &leases,
            &hanzo_s3_operator::reconcile::leader::LeaseConfig::new(NS, "test")
        )
        .await
        .unwrap()
    );
    // The webhook configurations (removed again at once: nothing listens at that URL).
    let options = config::Options {
        target: Target::Url("https://127.0.0.1:9".into()),
        ca_bundle_pem: None,
        operator_namespace: NS.into(),
        mutation_failure_policy: "Fail".into(),
    };
    config::apply(&sa, &options, "hanzo-s3-operator")
        .await
        .unwrap();
    for plural in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        let kind = if plural.starts_with("mutating") {
            "MutatingWebhookConfiguration"
        } else {
            "ValidatingWebhookConfiguration"
        };
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind),
            plural,
        );
        Api::<DynamicObject>::all_with(admin.clone(), &ar)
            .delete("hanzo-s3-operator", &DeleteParams::default())
            .await
            .unwrap();
    }

    // A whole reconciliation under the ServiceAccount's identity, once the apiserver has dropped
    // the deleted webhooks (its configuration informer lags the deletion, by more on a loaded
    // machine, and a create meanwhile would be sent to the URL where nothing listens).
    let ns = cp.create_namespace("deployed").await.unwrap();
    let probe: hanzo_s3_operator::api::tenant::Tenant = hanzo_testkit::TenantBuilder::new("probe")
        .pool(hanzo_testkit::PoolBuilder::named("p0", 4, 1))
        .typed();
    let tenants: Api<hanzo_s3_operator::api::tenant::Tenant> = Api::namespaced(admin.clone(), &ns);
    let dry_run = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = tenants.create(&dry_run, &probe).await {
        assert!(
            Instant::now() < deadline,
            "the apiserver still calls the deleted webhooks after 30 s: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    support::reconcile_to_ready(&cp, &admin, sa.clone(), &ns, Vec::new()).await;

    // And nothing more.
    let forbidden =
        |r: Result<(), kube::Error>| matches!(r, Err(kube::Error::Api(e)) if e.code == 403);
    // StatefulSets may be deleted (a retired pool's, after the server drained it); Services,
    // which hold no data and are never retired, may not.
    assert!(forbidden(
        Api::<Service>::namespaced(sa.clone(), &ns)
            .delete("minio", &DeleteParams::default())
            .await
            .map(|_| ())
    ));
    // Pods may be listed and watched (each server's health is asked by pod IP, and the rollout
    // follows them), deleted (the rollout replaces one server at a time) and patched (a server
    // restarted in place gets the configuration's hashes and the current revision label: no more
    // than the StatefulSets the operator may patch already give), never created: the
    // StatefulSets make them.
    let pods = Api::<Pod>::namespaced(sa.clone(), &ns);
    assert!(pods.list(&ListParams::default()).await.is_ok());
    assert!(
        pods.watch(&kube::api::WatchParams::default(), "0")
            .await
            .is_ok()
    );
    let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "intruder"},
        "spec": {"containers": [{"name": "c", "image": "x"}]}}))
    .unwrap();
    assert!(forbidden(
        pods.create(&kube::api::PostParams::default(), &pod)
            .await
            .map(|_| ())
    ));
    let patched = pods
        .patch(
            "t-p0-0",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .map(|_| ());
    assert!(
        patched.is_ok(),
        "a server's pod may be patched: {patched:?}"
    );
    // ConfigMaps: the cluster CA's alone (a Tenant taken over from the Go operator trusts it).
    let maps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(sa.clone(), &ns);
    let cluster_ca = maps.get("kube-root-ca.crt").await.map(|_| ());
    assert!(cluster_ca.is_ok(), "{cluster_ca:?}");
    assert!(forbidden(
        maps.list(&ListParams::default()).await.map(|_| ())
    ));
    assert!(forbidden(
        Api::<ClusterRole>::all(sa.clone())
            .list(&ListParams::default())
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(sa, &ns)
            .delete("data0-t-p0-0", &DeleteParams::default())
            .await
            .map(|_| ())
    ));
}
