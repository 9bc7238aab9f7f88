//! What GitOps tools conclude about live Tenants, from statuses the real reconciler wrote on a real
//! apiserver: Argo CD through deploy/argocd/tenant-health.lua (run in a real Lua 5.1 engine, the
//! dialect of Argo CD's gopher-lua), and Flux through kstatus (the Go library Flux uses, run by
//! tests/gitops/kstatus).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hanzo_local_cluster::ControlPlane;
use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::reconcile::{ReadyWhen, Settings};
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

const WATCHED: [&str; 4] = [
    "gitops-ready",
    "gitops-waiting",
    "gitops-invalid",
    "gitops-two",
];
const UNWATCHED: &str = "gitops-unwatched";

/// A control plane with fake nodes and the reconciler watching [`WATCHED`] (Ready means every
/// server's pod is ready: fake nodes run no S3 server). The tier's shared control plane: this
/// reconciler watches the namespaces above only, and no other module there reconciles or judges
/// them.
fn cluster() -> &'static ControlPlane {
    static STARTED: OnceLock<()> = OnceLock::new();
    let cp = hanzo_testkit::control_plane::shared();
    STARTED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    let client = cp.client().await.unwrap();
                    hanzo_s3_operator::operator::install::install_crd(
                        &client,
                        "test",
                        Duration::from_secs(10),
                    )
                    .await
                    .unwrap();
                    for ns in WATCHED.iter().chain([&UNWATCHED]) {
                        let namespace: Namespace =
                            serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
                        Api::<Namespace>::all(client.clone())
                            .create(&PostParams::default(), &namespace)
                            .await
                            .unwrap();
                    }
                    tx.send(()).unwrap();
                    let ca = Arc::new(Ca::generate("gitops-ca").unwrap());
                    let mut settings =
                        Settings::new(DefaultsConfig::default(), ca, ReadyWhen::PodsReady);
                    settings.namespaces = WATCHED.iter().map(|s| (*s).to_owned()).collect();
                    hanzo_s3_operator::reconcile::run(client, settings, std::future::pending())
                        .await;
                });
        });
        rx.recv().unwrap();
    });
    cp
}

fn tenant(name: &str, servers: i32, secret: &str) -> Tenant {
    TenantBuilder::new(name)
        .configuration(secret)
        .pool(PoolBuilder::named("p0", servers, 1))
        .typed()
}

async fn secret(client: &kube::Client, ns: &str, name: &str) {
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": name},
        "stringData": {"config.env": "export S3_ROOT_USER=\"admin\"\nexport S3_ROOT_PASSWORD=\"gitops-test-only\"\n"}}))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
}

/// The live object, as Argo CD and Flux read it (JSON with apiVersion and kind).
async fn live(client: &kube::Client, ns: &str, name: &str) -> Value {
    let mut v = serde_json::to_value(
        Api::<Tenant>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .unwrap(),
    )
    .unwrap();
    v["apiVersion"] = json!("minio.min.io/v2");
    v["kind"] = json!("Tenant");
    v
}

async fn wait_for(
    client: &kube::Client,
    ns: &str,
    name: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = live(client, ns, name).await;
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{ns}/{name}: no {what}; last: {:#}",
            v["status"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn condition_is(v: &Value, type_: &str, status: &str) -> bool {
    v["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == type_ && c["status"] == status)
    })
}

/// Argo CD's verdict: deploy/argocd/tenant-health.lua with `obj` set, as Argo CD runs it.
fn argo(object: &Value) -> (String, String) {
    use mlua::LuaSerdeExt;
    let lua = mlua::Lua::new();
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd/tenant-health.lua"),
    )
    .unwrap();
    let options = mlua::serde::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    lua.globals()
        .set("obj", lua.to_value_with(object, options).unwrap())
        .unwrap();
    let hs: mlua::Table = lua.load(&script).eval().unwrap();
    (hs.get("status").unwrap(), hs.get("message").unwrap())
}

/// Flux's verdict: kstatus on the object.
fn flux(object: &Value) -> (String, String) {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    let binary = BINARY.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("hanzo-kstatus-{}", std::process::id()));
        let status = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gitops/kstatus"))
            .status()
            .expect("go is needed to build tests/gitops/kstatus (Flux's kstatus library)");
        assert!(status.success(), "go build of tests/gitops/kstatus failed");
        out
    });
    use std::io::Write;
    let mut child = std::process::Command::new(binary)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{object}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["status"].as_str().unwrap().to_owned(),
        v["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_ready_tenant_is_healthy_and_current_and_degraded_once_its_credentials_are_gone() {
    let cp = cluster();
    let client = cp.client().await.unwrap();
    let ns = WATCHED[0];
    secret(&client, ns, "ready-env").await;
    Api::<Tenant>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &tenant("ready", 4, "ready-env"))
        .await
        .unwrap();
    let ready = wait_for(&client, ns, "ready", "Ready", |v| {
        condition_is(v, "Ready", "True")
    })
    .await;
    assert_eq!(
        argo(&ready),
        ("Healthy".into(), "4 of 4 servers ready".into())
    );
    assert_eq!(flux(&ready).0, "Current");

    // A spec change the operator has not seen yet: the same status, a newer generation.
    let mut newer = ready.clone();
    newer["metadata"]["generation"] = json!(ready["metadata"]["generation"].as_i64().unwrap() + 1);
    assert_eq!(argo(&newer).0, "Progressing");
    assert_eq!(flux(&newer).0, "InProgress");

    // The credentials deleted under a running Tenant.
    Api::<Secret>::namespaced(client.clone(), ns)
        .delete("ready-env", &DeleteParams::default())
        .await
        .unwrap();
    let degraded = wait_for(&client, ns, "ready", "Degraded", |v| {
        condition_is(v, "Degraded", "True")
    })
    .await;
    assert_eq!(
        argo(&degraded),
        (
            "Degraded".into(),
            "configuration Secret \"ready-env\" does not exist yet".into()
        )
    );
    assert_eq!(
        flux(&degraded).0,
        "InProgress",
        "still reconciling: the Secret may come back"
    );
}

#[tokio::test]
async fn a_tenant_waiting_for_its_secret_is_progressing_and_names_it() {
    let cp = cluster();
    let client = cp.client().await.unwrap();
    let ns = WATCHED[1];
    Api::<Tenant>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &tenant("waiting", 4, "not-yet"))
        .await
        .unwrap();
    let waiting = wait_for(&client, ns, "waiting", "a waiting state", |v| {
        v["status"]["currentState"] == "Waiting for the configuration Secret"
    })
    .await;
    let (health, message) = argo(&waiting);
    assert_eq!(health, "Progressing");
    assert!(message.contains("\"not-yet\""), "{message}");
    let (kstatus, message) = flux(&waiting);
    assert_eq!(kstatus, "InProgress");
    assert!(message.contains("\"not-yet\""), "{message}");

    // The Secret appears: Ready, Healthy, Current.
    secret(&client, ns, "not-yet").await;
    let ready = wait_for(&client, ns, "waiting", "Ready", |v| {
        condition_is(v, "Ready", "True")
    })
    .await;
    assert_eq!(argo(&ready).0, "Healthy");
    assert_eq!(flux(&ready).0, "Current");
}

#[tokio::test]
async fn an_invalid_tenant_and_a_second_tenant_in_a_namespace_are_degraded_and_failed() {
    let cp = cluster();
    let client = cp.client().await.unwrap();
    // Stored while no webhook judged it (this test registers none).
    let ns = WATCHED[2];
    Api::<Tenant>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &tenant("invalid", 2, "x"))
        .await
        .unwrap();
    let invalid = wait_for(&client, ns, "invalid", "Invalid", |v| {
        condition_is(v, "Invalid", "True")
    })
    .await;
    let (health, message) = argo(&invalid);
    assert_eq!(health, "Degraded");
    assert!(
        message.starts_with("Tenant.minio.min.io \"invalid\" is invalid: spec.pools[0]"),
        "{message}"
    );
    assert_eq!(flux(&invalid).0, "Failed");

    let ns = WATCHED[3];
    secret(&client, ns, "env").await;
    let tenants = Api::<Tenant>::namespaced(client.clone(), ns);
    tenants
        .create(&PostParams::default(), &tenant("first", 4, "env"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // creation timestamps have 1 s resolution
    tenants
        .create(&PostParams::default(), &tenant("second", 4, "env"))
        .await
        .unwrap();
    let second = wait_for(&client, ns, "second", "Stalled", |v| {
        condition_is(v, "Stalled", "True")
    })
    .await;
    assert_eq!(
        second["status"]["currentState"],
        "Another MinIO Tenant already exists in the namespace"
    );
    assert_eq!(
        argo(&second),
        (
            "Degraded".into(),
            "Tenant \"first\" already owns this namespace's S3 Service `minio`".into()
        )
    );
    assert_eq!(flux(&second).0, "Failed");
}

#[tokio::test]
async fn a_tenant_no_operator_has_seen_is_missing() {
    let cp = cluster();
    let client = cp.client().await.unwrap();
    Api::<Tenant>::namespaced(client.clone(), UNWATCHED)
        .create(&PostParams::default(), &tenant("alone", 4, "x"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alone = live(&client, UNWATCHED, "alone").await;
    assert!(alone.get("status").is_none_or(Value::is_null), "{alone}");
    let (health, message) = argo(&alone);
    assert_eq!(health, "Missing");
    assert!(
        message.contains("is hanzo-s3-operator running?"),
        "{message}"
    );
}

#[test]
fn the_argocd_cm_patch_and_the_helm_values_carry_the_script_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/argocd");
    let script = std::fs::read_to_string(root.join("tenant-health.lua")).unwrap();
    let key = "resource.customizations.health.minio.min.io_Tenant";
    let read = |file: &str| -> Value {
        serde_yaml_ng::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap()
    };
    let patch = read("argocd-cm-patch.yaml");
    assert_eq!(patch["kind"], "ConfigMap");
    assert_eq!(patch["metadata"]["name"], "argocd-cm");
    assert_eq!(patch["data"][key].as_str(), Some(script.as_str()));
    let values = read("values-argo-cd.yaml");
    assert_eq!(values["configs"]["cm"][key].as_str(), Some(script.as_str()));
}
