//! The Helm chart (rendered by helm built from its Go module) applies to a real apiserver: its CRD
//! becomes Established, and restricted Pod Security admits the operator's pods.

use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_testkit::support;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

fn render(ns: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        "hanzo",
        "deploy/helm/hanzo-s3-operator",
        "--namespace",
        ns,
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    support::render("helm", &args)
}

async fn apply_all(admin: &kube::Client, ns: &str, docs: &[Value]) {
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = doc["kind"].as_str().unwrap();
        let plural = match kind {
            "PodDisruptionBudget" => "poddisruptionbudgets".to_owned(),
            "ValidatingAdmissionPolicy" => "validatingadmissionpolicies".to_owned(),
            _ => format!("{}s", kind.to_lowercase()),
        };
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural,
        );
        let namespaced = !matches!(
            kind,
            "CustomResourceDefinition"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
        );
        let target_ns = doc["metadata"]["namespace"].as_str().unwrap_or(ns);
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(admin.clone(), target_ns, &ar)
        } else {
            Api::all_with(admin.clone(), &ar)
        };
        let name = doc["metadata"]["name"].as_str().unwrap();
        api.patch(
            name,
            &PatchParams::apply("helm-test").force(),
            &Patch::Apply(doc),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn the_chart_installs_on_a_real_apiserver() {
    // A control plane of this test's own: the chart's cluster roles and backstop policy reach
    // every Tenant of its cluster.
    let cp = ControlPlane::start(Options::with_nodes(1)).await.unwrap();
    let admin = cp.client().await.unwrap();
    let ns = "hanzo-helm";
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();

    let docs = render(ns, &[]);
    assert_eq!(
        docs.len(),
        11,
        "CRD, ServiceAccount, 4 RBAC objects, Deployment, Service, PDB, backstop policy and binding"
    );
    apply_all(&admin, ns, &docs).await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let established = support::crd_established(&admin, "tenants.minio.min.io").await;
        let admitted = pods.list(&ListParams::default()).await.unwrap().items.len();
        if established && admitted >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CRD established: {established}, operator pods admitted: {admitted}\n{}",
            cp.log_tails(20)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Upgrade: confine the operator to one namespace.
    watched_namespaces_confine_the_operator(&cp, &admin, ns).await;
}

/// With `watchedNamespaces`, the ServiceAccount reconciles a Tenant in a watched namespace and
/// cannot read Secrets anywhere else.
async fn watched_namespaces_confine_the_operator(
    cp: &ControlPlane,
    admin: &kube::Client,
    release_ns: &str,
) {
    use k8s_openapi::api::core::v1::Secret;
    let (watched, other) = ("team-a", "team-b");
    for ns in [watched, other] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
    }
    let docs = render(release_ns, &["--set", "watchedNamespaces={team-a}"]);
    let args = docs.iter().find(|d| d["kind"] == "Deployment").unwrap()["spec"]["template"]["spec"]
        ["containers"][0]["args"]
        .to_string();
    assert!(args.contains("--watch-namespaces=team-a"), "{args}");
    apply_all(admin, release_ns, &docs).await;
    let sa = support::impersonated(cp, release_ns, "hanzo-s3-operator").await;
    // RBAC changes reach the authorizer within moments: wait for the narrower rules to apply.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = Api::<Secret>::namespaced(sa.clone(), other)
            .list(&ListParams::default())
            .await;
        if matches!(listed, Err(kube::Error::Api(ref e)) if e.code == 403) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Secrets outside the watched namespaces stayed readable"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Api::<Secret>::namespaced(sa.clone(), watched)
        .list(&ListParams::default())
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the watched namespace's Role never took effect"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A whole reconciliation in the watched namespace under the ServiceAccount's identity.
    support::reconcile_to_ready(cp, admin, sa, watched, vec![watched.to_owned()]).await;
}
