//! The webhooks against a real kube-apiserver: the server runs in this test process on 127.0.0.1
//! and is registered by URL, as Kubernetes' own webhook conformance tests do for a CRD webhook.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::certs::serving::{BundlePublisher, ServingCertificates};
use hanzo_s3_operator::certs::store::{CA_SECRET, RotationPolicy};
use hanzo_s3_operator::metrics::Metrics;
use hanzo_s3_operator::webhook::cluster::ApiCluster;
use hanzo_s3_operator::webhook::config::{self, Target};
use hanzo_s3_operator::webhook::server::{self, AppState};
use hanzo_s3_operator::webhook::tls::ServingCert;
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const SHARED_LABEL: &str = "hanzo.ai/webhook-test";

struct Webhook {
    url: String,
    cert: Arc<ServingCert>,
    ca_pem: String,
}

/// A webhook server on a thread of its own (it must outlive every test's runtime), with a serving
/// certificate from a fresh CA.
fn spawn_server() -> Webhook {
    spawn_server_as(false).0
}

/// [`spawn_server`], its caches read with the audited identity when `audited` (so that every
/// request it makes is in the apiserver's audit log), and its state.
fn spawn_server_as(audited: bool) -> (Webhook, Arc<AppState>) {
    // The tier's shared control plane: every webhook registered here judges labelled namespaces only.
    let cp = hanzo_testkit::control_plane::shared();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let client = if audited {
                cp.audited_client().await.unwrap()
            } else {
                cp.client().await.unwrap()
            };
            let ca = Ca::generate("test-webhook-ca").unwrap();
            let pair = ca.sign_serving(&["127.0.0.1".into()]).unwrap();
            let cert = Arc::new(ServingCert::default());
            cert.set_pem(&pair.cert_pem, &pair.key_pem).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("https://{}", listener.local_addr().unwrap());
            let state = Arc::new(AppState {
                defaults: DefaultsConfig::default(),
                cluster: Some(ApiCluster::cached(client, &[], std::future::pending())),
                metrics: Metrics::default(),
                cert: cert.clone(),
            });
            let hook = Webhook {
                url,
                cert,
                ca_pem: ca.cert_pem().to_owned(),
            };
            tx.send((hook, state.clone())).unwrap();
            server::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// The server most tests share, registered for namespaces labelled `hanzo.ai/webhook-test=shared`,
/// with the CRD installed.
fn webhook() -> &'static Webhook {
    static WEBHOOK: OnceLock<Webhook> = OnceLock::new();
    WEBHOOK.get_or_init(|| {
        let hook = spawn_server();
        let (url, ca_pem) = (hook.url.clone(), hook.ca_pem.clone());
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    let client = hanzo_testkit::control_plane::shared()
                        .client()
                        .await
                        .unwrap();
                    hanzo_s3_operator::operator::install::install_crd(
                        &client,
                        "test",
                        Duration::from_secs(10),
                    )
                    .await
                    .unwrap();
                    register(&client, "shared", &url, &ca_pem).await;
                })
        })
        .join()
        .unwrap();
        hook
    })
}

/// Registers both webhooks (under names suffixed with `suffix`) for namespaces labelled
/// `hanzo.ai/webhook-test=<suffix>`.
async fn register(client: &kube::Client, suffix: &str, url: &str, ca_pem: &str) {
    let options = config::Options {
        target: Target::Url(url.to_owned()),
        ca_bundle_pem: Some(ca_pem.to_owned()),
        operator_namespace: "hanzo-s3-operator".into(),
        mutation_failure_policy: "Fail".into(),
    };
    let selector = json!({"matchLabels": {SHARED_LABEL: suffix}});
    let mut mutating = serde_json::to_value(config::mutating(&options)).unwrap();
    let mut validating = serde_json::to_value(config::validating(&options)).unwrap();
    for cfg in [&mut mutating, &mut validating] {
        cfg["metadata"]["name"] = json!(format!("test-{suffix}"));
        cfg["webhooks"][0]["namespaceSelector"] = selector.clone();
    }
    apply(client, "mutatingwebhookconfigurations", &mutating).await;
    apply(client, "validatingwebhookconfigurations", &validating).await;
}

async fn apply(client: &kube::Client, plural: &str, object: &Value) {
    let gvk = kube::core::GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        object["kind"].as_str().unwrap(),
    );
    let resource = kube::core::ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &resource);
    let name = object["metadata"]["name"].as_str().unwrap();
    api.patch(
        name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap();
}

/// A fresh namespace labelled for the webhooks registered under `suffix`.
async fn namespace(suffix: &str) -> (kube::Client, String) {
    let cp = hanzo_testkit::control_plane::shared();
    let _ = webhook();
    let ns = cp.create_namespace("wh").await.unwrap();
    let client = cp.client().await.unwrap();
    let patch = json!({"metadata": {"labels": {SHARED_LABEL: suffix}}});
    Api::<Namespace>::all(client.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    if suffix == "shared" {
        wait_until_judged(&client, &ns).await;
    }
    (client, ns)
}

/// The apiserver selects webhooks by namespace labels from its informer, a moment behind the
/// label patch: wait until a Tenant in `ns` is judged by the webhook (a dry run, so nothing stays).
async fn wait_until_judged(client: &kube::Client, ns: &str) {
    let api: Api<Tenant> = Api::namespaced(client.clone(), ns);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let judged = eventually(
        async || {
            api.create(&dry, &typed(&tenant("probe", 17)))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |r| r.as_ref().is_err_and(|e| e.contains("erasure sets")),
    )
    .await;
    assert!(
        judged.as_ref().is_err_and(|e| e.contains("erasure sets")),
        "the webhook never judged a Tenant in {ns}: {judged:?}"
    );
}

fn tenant(name: &str, servers: i32) -> Value {
    TenantBuilder::new(name)
        .configuration(format!("{name}-env"))
        .pool(PoolBuilder::unnamed(servers, 2))
        .build()
}

fn typed(v: &Value) -> Tenant {
    serde_json::from_value(v.clone()).unwrap()
}

/// Webhook configurations take effect asynchronously in the apiserver: retry while the answer
/// still looks like no webhook was called.
async fn eventually<T>(
    mut attempt: impl AsyncFnMut() -> Result<T, String>,
    ready: impl Fn(&Result<T, String>) -> bool,
) -> Result<T, String> {
    let mut last = attempt().await;
    for _ in 0..50 {
        if ready(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = attempt().await;
    }
    last
}

#[tokio::test]
async fn create_is_defaulted_and_the_stored_object_equals_the_defaulted_one() {
    let (client, ns) = namespace("shared").await;
    // Sent as raw JSON, so the field unknown to the schema reaches the apiserver.
    let resource = kube::core::ApiResource::erase::<Tenant>(&());
    let raw: Api<kube::core::DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let mut manifest = tenant("store", 4);
    manifest["spec"]["notAField"] = json!("pruned");
    let manifest: kube::core::DynamicObject = serde_json::from_value(manifest).unwrap();
    let created = eventually(
        async || {
            raw.create(&PostParams::default(), &manifest)
                .await
                .map_err(|e| e.to_string())
        },
        |r| {
            r.as_ref()
                .is_ok_and(|t| t.data["spec"].get("image").is_some())
        },
    )
    .await
    .unwrap();
    let stored_raw = raw.get("store").await.unwrap();
    assert!(
        stored_raw.data["spec"].get("notAField").is_none(),
        "unknown fields are pruned after mutation: {}",
        stored_raw.data["spec"]
    );
    let api: Api<Tenant> = Api::namespaced(client, &ns);
    let stored = api.get("store").await.unwrap();
    assert_eq!(stored.spec.pools[0].name, "ss-0");
    assert_eq!(
        stored.spec.image.as_deref(),
        Some("ghcr.io/hanzos3/s3:RELEASE.2025-04-08T15-41-24Z")
    );
    assert_eq!(
        stored.spec.service_account_name.as_deref(),
        Some("store-sa")
    );
    assert_eq!(
        stored.spec.pod_management_policy.as_deref(),
        Some("Parallel")
    );
    let expected = hanzo_s3_operator::admission::defaulted(&stored, &DefaultsConfig::default());
    assert_eq!(
        stored.spec, expected.spec,
        "defaulting the stored object changes nothing"
    );
    assert_eq!(created.data["spec"], stored_raw.data["spec"]);
    // What the offline `default` command predicts is what was stored.
    let predicted = hanzo_s3_operator::admission::defaulted(
        &typed(&tenant("store", 4)),
        &DefaultsConfig::default(),
    );
    let mut predicted_spec = serde_json::to_value(&predicted.spec).unwrap();
    let mut stored_spec = serde_json::to_value(&stored.spec).unwrap();
    for spec in [&mut predicted_spec, &mut stored_spec] {
        // Depends on the namespace, which the offline object lacks.
        spec.as_object_mut().unwrap().remove("certConfig");
    }
    assert_eq!(stored_spec, predicted_spec);
}

#[tokio::test]
async fn invalid_tenants_are_denied_with_every_violation() {
    let (client, ns) = namespace("shared").await;
    let api: Api<Tenant> = Api::namespaced(client, &ns);
    let mut bad = tenant("bad", 2);
    bad["spec"]["pools"][0]["volumesPerServer"] = json!(1);
    bad["spec"]["podManagementPolicy"] = json!("parallel");
    let err = eventually(
        async || {
            api.create(&PostParams::default(), &typed(&bad))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |r| r.is_err(),
    )
    .await
    .unwrap_err();
    assert!(err.contains("spec.pools[0].volumesPerServer: Invalid value: 1: a pool with 2 servers needs at least 4 volumes"), "{err}");
    assert!(
        err.contains("spec.podManagementPolicy: Unsupported value: \"parallel\""),
        "{err}"
    );
    // The apiserver relays each violation as a cause a client can act on: the field and its
    // machine-readable reason (decoded by the apiserver from our answer, so a misspelt key is lost).
    let Err(kube::Error::Api(status)) = api.create(&PostParams::default(), &typed(&bad)).await
    else {
        panic!("the invalid Tenant was not refused by the API");
    };
    let causes: Vec<(String, String)> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .map(|c| (c.field.clone(), c.reason.clone()))
        .collect();
    assert_eq!(
        causes,
        [
            (
                "spec.pools[0].volumesPerServer".to_owned(),
                "FieldValueInvalid".to_owned()
            ),
            (
                "spec.podManagementPolicy".to_owned(),
                "FieldValueNotSupported".to_owned()
            ),
        ],
        "{status:?}"
    );
    assert!(api.get_opt("bad").await.unwrap().is_none());
}

#[tokio::test]
async fn dry_run_is_judged_and_stores_nothing() {
    let (client, ns) = namespace("shared").await;
    let api: Api<Tenant> = Api::namespaced(client, &ns);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answer = eventually(
        async || {
            api.create(&dry, &typed(&tenant("dry", 4)))
                .await
                .map_err(|e| e.to_string())
        },
        |r| r.as_ref().is_ok_and(|t| t.spec.image.is_some()),
    )
    .await
    .unwrap();
    assert_eq!(answer.spec.service_account_name.as_deref(), Some("dry-sa"));
    assert!(
        api.get_opt("dry").await.unwrap().is_none(),
        "dry run stored nothing"
    );
    let err = api
        .create(&dry, &typed(&tenant("dry", 17)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("erasure sets"), "{err}");
}

#[tokio::test]
async fn updates_by_every_route_are_judged_and_pools_are_protected() {
    let (client, ns) = namespace("shared").await;
    let api: Api<Tenant> = Api::namespaced(client, &ns);
    let mut two_pools = tenant("upd", 4);
    let pool = two_pools["spec"]["pools"][0].clone();
    two_pools["spec"]["pools"][0]["name"] = json!("a");
    let mut second = pool;
    second["name"] = json!("b");
    two_pools["spec"]["pools"]
        .as_array_mut()
        .unwrap()
        .push(second);
    eventually(
        async || {
            api.create(&PostParams::default(), &typed(&two_pools))
                .await
                .map_err(|e| e.to_string())
        },
        |r| r.as_ref().is_ok_and(|t| t.spec.image.is_some()),
    )
    .await
    .unwrap();
    // JSON patch removing a pool.
    let remove = kube_json_patch::Patch(
        serde_json::from_value(json!([{"op": "remove", "path": "/spec/pools/1"}])).unwrap(),
    );
    let err = api
        .patch("upd", &PatchParams::default(), &Patch::<()>::Json(remove))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pool \\\"b\\\" (spec.pools[1]) was removed")
            || err.contains("pool \"b\" (spec.pools[1]) was removed"),
        "{err}"
    );
    // Merge patch renaming via a whole new list (client-side apply sends merge patches).
    let renamed = PoolBuilder::named("c", 4, 2).build();
    let rename = json!({"spec": {"pools": [two_pools["spec"]["pools"][0].clone(), renamed]}});
    let err = api
        .patch("upd", &PatchParams::default(), &Patch::Merge(&rename))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("renamed to"), "{err}");
    // Server-side apply changing the volume size.
    let mut resized = two_pools.clone();
    resized["spec"]["pools"][0]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] =
        json!("2Gi");
    let err = api
        .patch(
            "upd",
            &PatchParams::apply("tester").force(),
            &Patch::Apply(&resized),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the volume size is immutable"), "{err}");
    // A valid server-side apply (appending a pool) passes and is defaulted.
    let mut appended = two_pools.clone();
    let mut third = two_pools["spec"]["pools"][0].clone();
    third["name"] = json!("c");
    appended["spec"]["pools"]
        .as_array_mut()
        .unwrap()
        .push(third);
    let t = api
        .patch(
            "upd",
            &PatchParams::apply("tester").force(),
            &Patch::Apply(&appended),
        )
        .await
        .unwrap();
    assert_eq!(t.spec.pools.len(), 3);
    // Deletion is allowed.
    api.delete("upd", &DeleteParams::default()).await.unwrap();
}

/// Soft issues reach the client as `Warning` headers and do not deny: here the configuration
/// Secret that does not exist (yet), checked through the API at admission time.
#[tokio::test]
async fn soft_issues_come_back_as_warnings_and_do_not_deny() {
    let (client, ns) = namespace("shared").await;
    let body = serde_json::to_vec(&tenant("warned", 4)).unwrap();
    let request = axum::http::Request::post(format!(
        "/apis/minio.min.io/v2/namespaces/{ns}/tenants?dryRun=All"
    ))
    .header("content-type", "application/json")
    .body(kube::client::Body::from(body))
    .unwrap();
    let response = client.send(request).await.unwrap();
    let status = response.status();
    let warnings: Vec<String> = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    assert!(status.is_success(), "{status}: {warnings:?}");
    assert!(
        warnings.iter().any(|w| w.starts_with("299 - ")
            && w.contains("spec.configuration.name: Secret")
            && w.contains("warned-env")
            && w.contains("does not exist yet")),
        "{warnings:?}"
    );
    // Once the Secret exists, that warning is gone.
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "warned-env"}, "stringData": {"config.env": ""}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let request = axum::http::Request::post(format!(
        "/apis/minio.min.io/v2/namespaces/{ns}/tenants?dryRun=All"
    ))
    .header("content-type", "application/json")
    .body(kube::client::Body::from(
        serde_json::to_vec(&tenant("warned", 4)).unwrap(),
    ))
    .unwrap();
    let response = client.send(request).await.unwrap();
    let warnings: Vec<String> = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    assert!(
        !warnings.iter().any(|w| w.contains("does not exist yet")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_second_tenant_in_a_namespace_is_forbidden() {
    let (client, ns) = namespace("shared").await;
    let api: Api<Tenant> = Api::namespaced(client, &ns);
    eventually(
        async || {
            api.create(&PostParams::default(), &typed(&tenant("first", 4)))
                .await
                .map_err(|e| e.to_string())
        },
        |r| r.as_ref().is_ok_and(|t| t.spec.image.is_some()),
    )
    .await
    .unwrap();
    let err = api
        .create(&PostParams::default(), &typed(&tenant("second", 4)))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 403, "{status:?}");
    assert!(
        status.message.contains("already has Tenant \"first\""),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn fails_closed_when_the_webhook_is_unreachable_and_honours_the_timeout() {
    let (client, ns) = namespace("unreachable").await;
    // A port nobody listens on, and one that accepts but never answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let ca = Ca::generate("unused").unwrap();
    register(
        &client,
        "unreachable",
        &format!("https://{closed}"),
        ca.cert_pem(),
    )
    .await;
    let api: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let err = eventually(
        async || {
            api.create(&PostParams::default(), &typed(&tenant("t", 4)))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |r| {
            r.as_ref()
                .is_err_and(|e| e.contains("failed calling webhook"))
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("failed calling webhook"), "{err}");

    let (client2, ns2) = namespace("silent").await;
    register(
        &client2,
        "silent",
        &format!("https://{silent_addr}"),
        ca.cert_pem(),
    )
    .await;
    let started = std::time::Instant::now();
    let api2: Api<Tenant> = Api::namespaced(client2, &ns2);
    let err = eventually(
        async || {
            api2.create(&PostParams::default(), &typed(&tenant("t", 4)))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |r| {
            r.as_ref()
                .is_err_and(|e| e.contains("failed calling webhook"))
        },
    )
    .await
    .unwrap_err();
    assert!(err.contains("failed calling webhook"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "the apiserver waited timeoutSeconds (5 s) before failing"
    );
}

#[tokio::test]
async fn configuration_changes_change_enforcement_including_match_conditions() {
    let (client, ns) = namespace("changing").await;
    let hook = webhook();
    register(&client, "changing", &hook.url, &hook.ca_pem).await;
    let api: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let invalid = |name: &str, skip: bool| {
        let mut t = tenant(name, 17);
        if skip {
            t["metadata"]["labels"] = json!({"skip-validation": "yes"});
        }
        typed(&t)
    };
    let err = eventually(
        async || {
            api.create(&PostParams::default(), &invalid("a", false))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |r| r.as_ref().is_err_and(|e| e.contains("erasure sets")),
    )
    .await
    .unwrap_err();
    assert!(err.contains("erasure sets"), "{err}");

    // matchConditions: objects labelled skip-validation=yes are not sent to the validating webhook.
    let cfgs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let patch = json!([{"op": "add", "path": "/webhooks/0/matchConditions", "value": [
        {"name": "not-skipped", "expression": "!has(object.metadata.labels) || !('skip-validation' in object.metadata.labels)"}]}]);
    let patch = kube_json_patch::Patch(serde_json::from_value(patch).unwrap());
    cfgs.patch(
        "test-changing",
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await
    .unwrap();
    let skipped = eventually(
        async || {
            api.create(&PostParams::default(), &invalid("b", true))
                .await
                .map_err(|e| e.to_string())
        },
        |r| r.is_ok(),
    )
    .await;
    assert!(
        skipped.is_ok(),
        "matchConditions excluded the labelled object: {skipped:?}"
    );
    api.delete("b", &DeleteParams::default()).await.unwrap();

    // Listing shows ours; deleting the validating configuration stops enforcement.
    let names: Vec<String> = cfgs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(names.contains(&"test-changing".to_owned()), "{names:?}");
    cfgs.delete("test-changing", &DeleteParams::default())
        .await
        .unwrap();
    let admitted = eventually(
        async || {
            api.create(&PostParams::default(), &invalid("c", false))
                .await
                .map_err(|e| e.to_string())
        },
        |r| r.is_ok(),
    )
    .await;
    assert!(
        admitted.is_ok(),
        "without the validating webhook, nothing judges it: {admitted:?}"
    );
}

/// The test's webhook registration (under `rotation` names and selector) as the operator's
/// certificate refresh publishes it.
struct TestRegistration {
    client: kube::Client,
    url: String,
}

impl BundlePublisher for TestRegistration {
    async fn publish(&self, bundle_pem: &str) -> Result<(), kube::Error> {
        register(&self.client, "rotation", &self.url, bundle_pem).await;
        Ok(())
    }
}

/// A full CA rotation by the operator's own code (announce, promote, forget), with 8 clients
/// creating and deleting Tenants throughout. Each client has a namespace of its own (one Tenant per
/// namespace); the last step drops the old CA from the bundle, which makes the apiserver open new
/// connections that must accept the certificate of the new CA.
#[tokio::test]
async fn a_certificate_rotation_under_load_fails_no_request() {
    let (client, ca_ns) = namespace("rotation-ca").await;
    let hook = spawn_server();
    let policy = RotationPolicy {
        announce_for: Duration::from_secs(2),
        keep_previous_for: Duration::from_secs(2),
    };
    let mut certificates = ServingCertificates::new(
        client.clone(),
        &ca_ns,
        vec!["127.0.0.1".into()],
        hook.cert.clone(),
        TestRegistration {
            client: client.clone(),
            url: hook.url.clone(),
        },
    )
    .with_policy(policy);
    let first = certificates.refresh().await.unwrap();
    let old_ca = first.ca.cert_pem().to_owned();

    let mut namespaces = Vec::new();
    for _ in 0..8 {
        namespaces.push(namespace("rotation").await.1);
    }
    // Wait until the registration is live (an invalid tenant is denied).
    let probe: Api<Tenant> = Api::namespaced(client.clone(), &namespaces[0]);
    eventually(
        async || {
            probe
                .create(&PostParams::default(), &typed(&tenant("probe", 17)))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |r| r.as_ref().is_err_and(|e| e.contains("erasure sets")),
    )
    .await
    .unwrap_err();

    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut clients = Vec::new();
    for ns in namespaces {
        let (api, running) = (
            Api::<Tenant>::namespaced(client.clone(), &ns),
            running.clone(),
        );
        clients.push(tokio::spawn(async move {
            let (mut done, mut failures) = (0, Vec::new());
            let mut i = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let name = format!("load-{i}");
                match api
                    .create(&PostParams::default(), &typed(&tenant(&name, 4)))
                    .await
                {
                    Ok(t) if t.spec.image.is_some() => done += 1,
                    Ok(_) => failures.push(format!("{name}: stored without defaults")),
                    Err(e) => failures.push(format!("{name}: {e}")),
                }
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
            (done, failures)
        }));
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ca_ns);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A third of the CA's life left: due for rotation.
    let soon = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    secrets
        .patch(
            CA_SECRET,
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"not-after": soon.to_string()}})),
        )
        .await
        .unwrap();
    // Announce: both CAs trusted, the old one still signs.
    let announced = certificates.refresh().await.unwrap();
    assert_eq!(announced.ca.cert_pem(), old_ca);
    assert_eq!(announced.bundle_pem.matches("BEGIN CERTIFICATE").count(), 2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Promote: the new CA signs the served certificate; both still trusted.
    let promoted = certificates.refresh().await.unwrap();
    assert_ne!(promoted.ca.cert_pem(), old_ca);
    assert_eq!(promoted.bundle_pem.matches("BEGIN CERTIFICATE").count(), 2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Forget: only the new CA is trusted; the apiserver reconnects and must accept the new
    // certificate.
    let forgotten = certificates.refresh().await.unwrap();
    assert_eq!(forgotten.bundle_pem, promoted.ca.cert_pem());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_forget = eventually(
        async || {
            probe
                .create(&PostParams::default(), &typed(&tenant("probe", 17)))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |r| r.as_ref().is_err_and(|e| e.contains("erasure sets")),
    )
    .await;
    assert!(
        after_forget
            .as_ref()
            .is_err_and(|e| e.contains("erasure sets")),
        "the webhook still judges with only the new CA trusted: {after_forget:?}"
    );
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let (mut done, mut failures) = (0, Vec::new());
    for c in clients {
        let (d, f) = c.await.unwrap();
        done += d;
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} of {} creates failed: {:?}",
        failures.len(),
        done + failures.len(),
        failures.first()
    );
    assert!(done >= 40, "only {done} creates during the rotation");
    eprintln!("{done} Tenants created and deleted during the rotation, none failed");
}

/// The webhooks judge from their watch caches: while they answer creates, updates and dry runs,
/// the apiserver's audit log holds no request of theirs but the watches themselves; a refusal of a
/// second Tenant costs exactly one live LIST (the cache may hold a Tenant deleted a moment ago).
#[tokio::test]
async fn the_webhooks_judge_from_their_caches_and_ask_the_apiserver_nothing() {
    let cp = hanzo_testkit::control_plane::shared();
    let _ = webhook(); // the CRD
    let (hook, state) = spawn_server_as(true);
    let client = cp.client().await.unwrap();
    register(&client, "audited", &hook.url, &hook.ca_pem).await;
    let mut namespaces = Vec::new();
    for _ in 0..4 {
        let ns = cp.create_namespace("audited").await.unwrap();
        let patch = json!({"metadata": {"labels": {SHARED_LABEL: "audited"}}});
        Api::<Namespace>::all(client.clone())
            .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        wait_until_judged(&client, &ns).await;
        namespaces.push(ns);
    }
    let cluster = state.cluster.as_ref().unwrap();
    for _ in 0..100 {
        if cluster.synced() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cluster.synced(), "the admission caches never synced");
    let config = |name: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-env")},
            "stringData": {"config.env": "export MINIO_ROOT_USER=audited\nexport MINIO_ROOT_PASSWORD=audited-password\n"}
        }))
        .unwrap()
    };
    for ns in &namespaces {
        Api::<Secret>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &config("first"))
            .await
            .unwrap();
    }
    // The Secrets are in the caches before the count starts.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Allowed: dry runs, creates and updates, each judged by both webhooks.
    let before = cp.audited_requests().unwrap().len();
    let mut allowed = 0;
    for ns in &namespaces {
        let api: Api<Tenant> = Api::namespaced(client.clone(), ns);
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let judged = api.create(&dry, &typed(&tenant("first", 4))).await.unwrap();
        assert!(judged.spec.image.is_some(), "the dry run was defaulted");
        api.create(&PostParams::default(), &typed(&tenant("first", 4)))
            .await
            .unwrap();
        let patch = json!({"metadata": {"labels": {"edited": "yes"}}});
        api.patch("first", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        allowed += 3;
    }
    let asked = |from: usize| -> Vec<String> {
        cp.audited_requests().unwrap()[from..]
            .iter()
            .filter(|r| r.verb != "watch")
            .map(|r| format!("{} {}", r.verb, r.request_uri))
            .collect()
    };
    let during_allowed = asked(before);
    assert!(
        during_allowed.is_empty(),
        "{allowed} reviews allowed, and the webhook asked the apiserver:\n{}",
        during_allowed.join("\n")
    );

    // Refused: a second Tenant, at once (this replica remembers what it admitted) and once the
    // cache has the first; each refusal confirmed by one live LIST.
    let before = cp.audited_requests().unwrap().len();
    let mut refused = 0;
    for second in ["second", "third"] {
        for ns in &namespaces {
            let api: Api<Tenant> = Api::namespaced(client.clone(), ns);
            let err = api
                .create(&PostParams::default(), &typed(&tenant(second, 4)))
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("already has Tenant \"first\""),
                "{err}"
            );
            refused += 1;
        }
    }
    let during_refused = asked(before);
    let lists = during_refused
        .iter()
        .filter(|r| r.starts_with("list ") && r.contains("/tenants"))
        .count();
    // The two unknown configuration Secrets (`second-env`, `third-env`) are not asked about:
    // a refused Tenant is refused before its Secrets are looked at.
    assert_eq!(
        (lists, during_refused.len()),
        (refused, refused),
        "{refused} refusals, and the webhook asked the apiserver:\n{}",
        during_refused.join("\n")
    );
}
