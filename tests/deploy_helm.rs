//! The Helm chart (rendered by helm built from its Go module) applies to a real apiserver: its CRD
//! becomes Established, and restricted Pod Security admits the operator's pods.

use std::process::Command;
use std::time::{Duration, Instant};

use hanzo_controlplane::ControlPlane;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

#[tokio::test]
async fn the_chart_installs_on_a_real_apiserver() {
    let cp = ControlPlane::shared(1).unwrap();
    let admin = cp.client().await.unwrap();
    let ns = "hanzo-helm";
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();

    let helm = hanzo_controlplane::tool("helm");
    assert!(
        helm.is_file(),
        "{} is missing: run tests/controlplane/build.sh",
        helm.display()
    );
    let out = Command::new(&helm)
        .args([
            "template",
            "hanzo",
            "deploy/helm/hanzo-s3-operator",
            "--namespace",
            ns,
            "--include-crds",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_slice(&out.stdout)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &Value| !v.is_null())
        .collect();
    assert_eq!(
        docs.len(),
        9,
        "CRD, ServiceAccount, 4 RBAC objects, Deployment, Service, PDB"
    );
    for doc in &docs {
        let (group, version) = doc["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap_or(("", doc["apiVersion"].as_str().unwrap()));
        let kind = doc["kind"].as_str().unwrap();
        let plural = if kind == "PodDisruptionBudget" {
            "poddisruptionbudgets".to_owned()
        } else {
            format!("{}s", kind.to_lowercase())
        };
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural,
        );
        let namespaced = !matches!(
            kind,
            "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
        );
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(admin.clone(), ns, &ar)
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
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let pods: Api<Pod> = Api::namespaced(admin, ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let established = crds
            .get("tenants.minio.min.io")
            .await
            .unwrap()
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
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
}
