//! (Formerly benches/peers/kyverno.rs, taken in by `#[path]`.)
//!
//! Kyverno as the fifth admission set-up of benches/admission_apply.rs: built from its Go module,
//! run out of cluster against the local control plane (`--serverIP`, the way Kyverno's own docs
//! run it for development), with one ClusterPolicy holding the backstop's CEL checks and our
//! defaults.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_s3_operator::admission::{backstop, defaults};
use hanzo_s3_operator::api::defaults_schema as schema;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::bench;

pub const MODULE: &str = "github.com/kyverno/kyverno";
pub const VERSION: &str = "v1.19.1";
const NAMESPACE: &str = "kyverno";
pub const POLICY: &str = "hanzo-tenant";
const CA_SECRET: &str = "kyverno-svc.kyverno.svc.kyverno-tls-ca";
const PAIR_SECRET: &str = "kyverno-svc.kyverno.svc.kyverno-tls-pair";

/// Kyverno's module source (downloaded by the Go module proxy into the module cache).
fn module_dir() -> PathBuf {
    let out = Command::new("go")
        .args(["mod", "download", "-json", &format!("{MODULE}@{VERSION}")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `go` to fetch {MODULE} ({e}); install Go"));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`go mod download {MODULE}@{VERSION}` printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    PathBuf::from(
        info["Dir"]
            .as_str()
            .unwrap_or_else(|| panic!("`go mod download {MODULE}@{VERSION}` failed: {info}")),
    )
}

/// Builds `./cmd/kyverno` of the pinned version once into the build cache (about 8 minutes cold
/// on 2 cores, 260 MB) and returns the binary and the module source (for its CRDs).
pub fn build() -> (PathBuf, PathBuf) {
    let source = module_dir();
    let out = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!(".cache/hanzo-s3-operator/peers/kyverno-{VERSION}"));
    if !out.exists() {
        let partial = out.with_extension("partial");
        eprintln!("building kyverno {VERSION} (about 8 minutes on 2 cores) ...");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&partial)
            .arg("./cmd/kyverno")
            .current_dir(&source)
            .status()
            .unwrap_or_else(|e| panic!("cannot run `go` ({e})"));
        assert!(
            status.success(),
            "`go build ./cmd/kyverno` in {} failed",
            source.display()
        );
        std::fs::rename(&partial, &out).unwrap();
    }
    (out, source)
}

fn cluster_policy() -> ApiResource {
    ApiResource {
        group: "kyverno.io".into(),
        version: "v1".into(),
        api_version: "kyverno.io/v1".into(),
        kind: "ClusterPolicy".into(),
        plural: "clusterpolicies".into(),
    }
}

/// The ClusterPolicy: our defaults as add-if-absent anchors (pool names by a foreach), and the
/// backstop's CEL checks, the subset of our checks CEL can express, unchanged.
pub fn policy() -> Value {
    let matches = json!({"any": [{"resources": {
        "kinds": ["minio.min.io/v2/Tenant"], "operations": ["CREATE", "UPDATE"]}}]});
    let validations: Vec<Value> = backstop::objects()
        .into_iter()
        .find(|o| o["kind"] == "ValidatingAdmissionPolicy")
        .and_then(|o| o["spec"]["validations"].as_array().cloned())
        .expect("the backstop policy has validations");
    json!({
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "validationFailureAction": "Enforce",
            "background": false,
            "rules": [
                {"name": "defaults", "match": matches, "mutate": {"patchStrategicMerge": {"spec": {
                    "+(podManagementPolicy)": schema::DEFAULT_POD_MANAGEMENT_POLICY,
                    "+(image)": defaults::DEFAULT_S3_IMAGE,
                    "+(imagePullPolicy)": schema::DEFAULT_IMAGE_PULL_POLICY,
                    "+(mountPath)": schema::DEFAULT_MOUNT_PATH,
                    "+(requestAutoCert)": schema::DEFAULT_REQUEST_AUTO_CERT,
                    "+(serviceAccountName)": "{{request.object.metadata.name}}-sa",
                    "+(certConfig)": {
                        "+(commonName)": "*.{{request.object.metadata.name}}-hl.{{request.namespace}}.svc.cluster.local",
                        "+(organizationName)": ["system:nodes"]
                    }
                }}}},
                {"name": "pool-names", "match": matches, "mutate": {"foreach": [{
                    "list": "request.object.spec.pools",
                    "preconditions": {"all": [{"key": "{{ element.name || '' }}", "operator": "Equals", "value": ""}]},
                    "patchesJson6902": "- op: add\n  path: /spec/pools/{{elementIndex}}/name\n  value: ss-{{elementIndex}}\n"
                }]}},
                {"name": "checks", "match": matches, "validate": {"cel": {"expressions": validations}}}
            ]
        }
    })
}

/// Server-side applies every CRD of Kyverno's `config/crds`.
async fn install_crds(client: &kube::Client, source: &Path) {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let params = PatchParams::apply("bench").force();
    let root = source.join("config/crds");
    for group in std::fs::read_dir(&root).unwrap().flatten() {
        for file in std::fs::read_dir(group.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap();
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let Ok(crd) = <Value as serde::Deserialize>::deserialize(doc) else {
                    continue;
                };
                if crd["kind"] != "CustomResourceDefinition" {
                    continue;
                }
                let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
                crds.patch(&name, &params, &Patch::Apply(&crd))
                    .await
                    .unwrap_or_else(|e| panic!("applying {}: {e}", file.path().display()));
            }
        }
    }
}

/// A running Kyverno and what reaches it.
pub struct Running {
    pub process: bench::Killed,
    pub url: String,
    /// Its serving CA, written to `dir/kyverno-ca.pem`.
    pub ca_file: PathBuf,
}

/// Installs Kyverno's CRDs and configuration, starts it with its webhook on a free loopback
/// port, applies the policy and returns once Kyverno has registered the policy's webhooks.
pub async fn start(
    client: &kube::Client,
    kubeconfig: &Path,
    dir: &Path,
    binary: &Path,
    source: &Path,
) -> Running {
    install_crds(client, source).await;
    let params = PatchParams::apply("bench").force();
    Api::<Namespace>::all(client.clone())
        .patch(
            NAMESPACE,
            &params,
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
            ),
        )
        .await
        .unwrap();
    for name in ["kyverno", "kyverno-metrics"] {
        Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE)
            .patch(
                name,
                &params,
                &Patch::Apply(
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}),
                ),
            )
            .await
            .unwrap();
    }
    let port = bench::free_port();
    let log = std::fs::File::create(dir.join("kyverno.log")).unwrap();
    let child = Command::new(binary)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--serverIP",
            &format!("127.0.0.1:{port}"),
            "--webhookServerHost",
            "127.0.0.1",
            "--webhookServerPort",
            &port.to_string(),
            "--metricsPort",
            &bench::free_port().to_string(),
            "--profilePort",
            &bench::free_port().to_string(),
            "--caSecretName",
            CA_SECRET,
            "--tlsSecretName",
            PAIR_SECRET,
            // Reports are a background feature with no part in the admission answer.
            "--admissionReports=false",
        ])
        .env("KYVERNO_NAMESPACE", NAMESPACE)
        .env(
            "KYVERNO_SERVICEACCOUNT_NAME",
            "kyverno-admission-controller",
        )
        .env("KYVERNO_DEPLOYMENT", "kyverno-admission-controller")
        .env("KYVERNO_POD_NAME", "kyverno-bench")
        .env("KYVERNO_SVC", "kyverno-svc")
        .env("INIT_CONFIG", "kyverno")
        .env("METRICS_CONFIG", "kyverno-metrics")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let process = bench::Killed(child);
    let url = format!("https://127.0.0.1:{port}");
    // The policy is accepted once Kyverno's own policy webhook answers (it validates policies).
    let policies = Api::<DynamicObject>::all_with(client.clone(), &cluster_policy());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let object: DynamicObject = serde_json::from_value(policy()).unwrap();
        match policies
            .patch(POLICY, &params, &Patch::Apply(&object))
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "Kyverno did not accept the policy within 120 s: {e} (log: {})",
                    dir.join("kyverno.log").display()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    // The resource webhooks carry Tenants once the policy is compiled and registered.
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    loop {
        let registered = validating
            .get_opt("kyverno-resource-validating-webhook-cfg")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.webhooks)
            .is_some_and(|w| !w.is_empty());
        if registered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Kyverno did not register its resource webhooks within 120 s (log: {})",
            dir.join("kyverno.log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ca = Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .get(CA_SECRET)
        .await
        .unwrap();
    let pem = ca
        .data
        .as_ref()
        .and_then(|d| d.get("tls.crt"))
        .map(|b| b.0.clone())
        .expect("Kyverno's CA secret has tls.crt");
    let ca_file = dir.join("kyverno-ca.pem");
    std::fs::write(&ca_file, pem).unwrap();
    Running {
        process,
        url,
        ca_file,
    }
}

/// Removes Kyverno's webhooks (so nothing calls a stopped server), the policy and its certificates
/// (the next start is a fresh install).
pub async fn stop(client: &kube::Client) {
    let managed = ListParams::default().labels("webhook.kyverno.io/managed-by=kyverno");
    let gone = DeleteParams::default();
    let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete_collection(&gone, &managed)
        .await;
    let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete_collection(&gone, &managed)
        .await;
    let _ = Api::<DynamicObject>::all_with(client.clone(), &cluster_policy())
        .delete(POLICY, &gone)
        .await;
    for secret in [CA_SECRET, PAIR_SECRET] {
        let _ = Api::<Secret>::namespaced(client.clone(), NAMESPACE)
            .delete(secret, &gone)
            .await;
    }
}
