//! End to end on a real control plane with controller-manager, scheduler and kwok fake nodes: the
//! reconciler turns Tenants into running workloads and reports status.

use std::time::{Duration, Instant};

use hanzo_local_cluster::ControlPlane;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The control plane with 3 fake nodes, the CRD, and the reconciler running on its own thread:
/// the tier's standard reconciler, on a control plane of its own (it watches all namespaces, so it
/// would act on the Tenants of every other module on the tier's shared control plane).
fn cluster() -> &'static ControlPlane {
    hanzo_testkit::control_plane::reconciled()
}

fn pool(name: &str, servers: i32) -> Value {
    PoolBuilder::named(name, servers, 2)
        .claim_name("data")
        .build()
}

async fn setup(name: &str, pools: Vec<Value>) -> (kube::Client, String) {
    setup_with(name, pools, json!([])).await
}

/// The configuration Secret `name` with the tier's root credentials.
fn env_secret(name: &str) -> Secret {
    serde_json::from_value(json!({"metadata": {"name": name},
        "stringData": {"config.env": "export S3_ROOT_USER=\"admin\"\nexport S3_ROOT_PASSWORD=\"e2e-only-secret\"\n"}}))
    .unwrap()
}

/// [`setup`] with `spec.env`.
async fn setup_with(name: &str, pools: Vec<Value>, env: Value) -> (kube::Client, String) {
    let cp = cluster();
    let ns = cp.create_namespace("e2e").await.unwrap();
    let client = cp.client().await.unwrap();
    let secret: Secret = env_secret(&format!("{name}-env"));
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let tenant: Tenant = TenantBuilder::new(name)
        .configuration(format!("{name}-env"))
        .pools(pools)
        .spec("env", env)
        .typed();
    Api::<Tenant>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    (client, ns)
}

async fn until<T>(what: &str, timeout: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", cluster().log_tails(20));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `S3_ARGS` as the servers read it: from the configuration file the operator renders.
async fn s3_args(client: &kube::Client, ns: &str) -> String {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get("store-configuration")
        .await
        .unwrap();
    let text = String::from_utf8(secret.data.unwrap()["config.env"].0.clone()).unwrap();
    hanzo_s3_operator::reconcile::desired::parse_config_env(&text)
        .into_iter()
        .find(|(k, _)| k == "S3_ARGS")
        .map(|(_, v)| v)
        .unwrap()
}

/// The configuration hash a pool's pods are made with.
fn config_hash(sts: &StatefulSet) -> Option<String> {
    sts.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(hanzo_s3_operator::reconcile::desired::CONFIG_HASH_ANNOTATION)
        .cloned()
}

#[tokio::test]
async fn a_two_pool_tenant_becomes_ready_grows_heals_and_leaves_its_data_behind() {
    // Parity 2 for every pool: the sets of 4 drives of the 2-server pools could not hold the
    // parity 4 the first pool's sets of 8 would fix, and the servers would not start.
    let (client, ns) = setup_with(
        "store",
        vec![pool("p0", 4), pool("p1", 2)],
        json!([{"name": "S3_STORAGE_CLASS_STANDARD", "value": "EC:2"}]),
    )
    .await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);

    let ready = until(
        "status Ready with 6 available replicas",
        Duration::from_secs(120),
        async || {
            let t = tenants.get("store").await.ok()?;
            let s = t.status?;
            let ok = s.available_replicas == Some(6)
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
            ok.then_some(s)
        },
    )
    .await;
    assert_eq!(ready.current_state.as_deref(), Some("Initialized"));
    assert_eq!(
        ready
            .pools
            .unwrap()
            .iter()
            .map(|p| p.state.as_str())
            .collect::<Vec<_>>(),
        ["PoolInitialized", "PoolInitialized"]
    );

    // Every object, as the Go operators name and shape them.
    let p0 = sts_api.get("store-p0").await.unwrap();
    assert_eq!(p0.spec.replicas, Some(4));
    assert_eq!(p0.spec.service_name.as_deref(), Some("store-hl"));
    let args = s3_args(&client, &ns).await;
    assert!(
        args.contains(&format!(
            "https://store-p0-{{0...3}}.store-hl.{ns}.svc.cluster.local/export{{0...1}}"
        )),
        "{args}"
    );
    assert!(
        args.contains(&format!(
            "https://store-p1-{{0...1}}.store-hl.{ns}.svc.cluster.local/export{{0...1}}"
        )),
        "{args}"
    );
    let claims: Vec<String> = p0
        .spec
        .volume_claim_templates
        .unwrap()
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(claims, ["data0", "data1"]);
    for svc in ["store-hl", "minio", "store-console"] {
        assert!(
            Api::<Service>::namespaced(client.clone(), &ns)
                .get_opt(svc)
                .await
                .unwrap()
                .is_some(),
            "{svc}"
        );
    }
    assert!(
        Api::<ServiceAccount>::namespaced(client.clone(), &ns)
            .get_opt("store-sa")
            .await
            .unwrap()
            .is_some()
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    assert_eq!(
        secrets.get("store-tls").await.unwrap().type_.as_deref(),
        Some("kubernetes.io/tls")
    );
    let rendered = secrets
        .get("store-configuration")
        .await
        .unwrap()
        .data
        .unwrap()["config.env"]
        .0
        .clone();
    assert!(
        String::from_utf8(rendered)
            .unwrap()
            .contains("export S3_ROOT_USER=\"admin\"")
    );
    let running = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count();
    assert_eq!(running, 6);

    // Steady state: nothing is written again.
    let versions = |list: Vec<StatefulSet>| {
        list.into_iter()
            .map(|s| s.metadata.resource_version.unwrap())
            .collect::<Vec<_>>()
    };
    let before = versions(sts_api.list(&ListParams::default()).await.unwrap().items);
    let nudge = json!({"metadata": {"annotations": {"e2e/nudge": "1"}}});
    tenants
        .patch("store", &PatchParams::default(), &Patch::Merge(&nudge))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        versions(sts_api.list(&ListParams::default()).await.unwrap().items),
        before,
        "an unchanged tenant causes no writes"
    );

    // A deleted owned Service is restored.
    Api::<Service>::namespaced(client.clone(), &ns)
        .delete("store-console", &DeleteParams::default())
        .await
        .unwrap();
    until(
        "the console Service restored",
        Duration::from_secs(30),
        async || {
            Api::<Service>::namespaced(client.clone(), &ns)
                .get_opt("store-console")
                .await
                .ok()?
        },
    )
    .await;

    // Each change is reported as an event on the Tenant.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    let applied = until("an Applied event", Duration::from_secs(20), async || {
        let list = events.list(&ListParams::default()).await.ok()?.items;
        list.into_iter().find(|e| {
            e.reason.as_deref() == Some("Applied")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("store")
        })
    })
    .await;
    assert!(
        applied
            .note
            .unwrap_or_default()
            .contains("object(s) created or updated")
    );

    // An image change rolls every pool.
    let image = json!({"spec": {"image": "ghcr.io/hanzos3/s3:RELEASE.2025-05-01T00-00-00Z"}});
    tenants
        .patch("store", &PatchParams::default(), &Patch::Merge(&image))
        .await
        .unwrap();
    until(
        "every pool on the new image",
        Duration::from_secs(30),
        async || {
            let all = sts_api.list(&ListParams::default()).await.ok()?.items;
            all.iter()
                .all(|s| {
                    s.spec.template.spec.as_ref().is_some_and(|p| {
                        p.containers[0].image.as_deref()
                            == Some("ghcr.io/hanzos3/s3:RELEASE.2025-05-01T00-00-00Z")
                    })
                })
                .then_some(())
        },
    )
    .await;

    // Someone scales a pool's StatefulSet by hand: the operator puts the Tenant's size back.
    let scale = json!({"spec": {"replicas": 1}});
    sts_api
        .patch("store-p0", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .unwrap();
    until(
        "store-p0 scaled back to 4",
        Duration::from_secs(30),
        async || (sts_api.get("store-p0").await.ok()?.spec.replicas == Some(4)).then_some(()),
    )
    .await;

    // Appending a pool adds its StatefulSet and rolls every pool's endpoints.
    let grown = json!({"spec": {"pools": [pool("p0", 4), pool("p1", 2), pool("p2", 2)]}});
    tenants
        .patch("store", &PatchParams::default(), &Patch::Merge(&grown))
        .await
        .unwrap();
    until(
        "every pool knows the new pool",
        Duration::from_secs(60),
        async || {
            let all = sts_api.list(&ListParams::default()).await.ok()?.items;
            let hashes: std::collections::BTreeSet<Option<String>> =
                all.iter().map(config_hash).collect();
            (all.len() == 3
                && hashes.len() == 1
                && s3_args(&client, &ns).await.contains("store-p2-{0...1}"))
            .then_some(())
        },
    )
    .await;

    // Deleting the Tenant removes what it owns (garbage collector), never the claims.
    tenants
        .delete("store", &DeleteParams::foreground())
        .await
        .unwrap();
    until(
        "owned StatefulSets gone",
        Duration::from_secs(60),
        async || {
            sts_api
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let claims = Api::<PersistentVolumeClaim>::namespaced(client, &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(claims.len() >= 12, "claims are kept: {}", claims.len());
}

#[tokio::test]
async fn a_stored_invalid_tenant_is_marked_invalid_and_nothing_is_applied() {
    // Stored directly (no webhook registered here): as if written while the webhook was off.
    let (client, ns) = setup("broken", vec![pool("p0", 17)]).await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let status = until("condition Invalid", Duration::from_secs(30), async || {
        let s = tenants.get("broken").await.ok()?.status?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "Invalid" && c.status == "True")
            .then_some(s)
    })
    .await;
    let invalid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Invalid")
        .unwrap();
    assert!(
        invalid.message.contains("erasure sets"),
        "{}",
        invalid.message
    );
    assert!(
        Api::<StatefulSet>::namespaced(client, &ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// The configuration Secret is read by the servers over `spec.env`, so admission cannot see a parity
/// it sets: the reconciler refuses one that a pool cannot hold before the servers are given it, and
/// the running tenant keeps its objects as they were.
#[tokio::test]
async fn a_configuration_asking_for_a_parity_a_pool_cannot_hold_is_refused_before_the_servers_see_it()
 {
    let (client, ns) = setup("parity", vec![pool("p0", 4)]).await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let sts = until(
        "the pool's StatefulSet",
        Duration::from_secs(60),
        async || statefulsets.get_opt("parity-p0").await.ok()?,
    )
    .await;
    let rendered = |s: &Secret| s.data.as_ref().and_then(|d| d.get("config.env")).cloned();
    let before = until(
        "the rendered configuration",
        Duration::from_secs(30),
        async || rendered(&secrets.get_opt("parity-configuration").await.ok()??),
    )
    .await;
    secrets
        .patch(
            "parity-env",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"config.env":
                "export S3_ROOT_USER=\"admin\"\nexport S3_ROOT_PASSWORD=\"e2e-only-secret\"\nexport S3_STORAGE_CLASS_STANDARD=\"EC:6\"\n"}})),
        )
        .await
        .unwrap();
    let invalid = until("condition Invalid", Duration::from_secs(30), async || {
        let s = tenants.get("parity").await.ok()?.status?;
        s.conditions
            .into_iter()
            .find(|c| c.type_ == "Invalid" && c.status == "True")
    })
    .await;
    assert!(
        invalid.message.contains(
            "S3_STORAGE_CLASS_STANDARD in the configuration Secret's config.env asks for a standard parity of 6, and the erasure sets of 8 drives of pool \"p0\" hold at most 4"
        ),
        "{}",
        invalid.message
    );
    assert!(
        !invalid.message.contains("EC:6"),
        "no value of the configuration Secret is quoted: {}",
        invalid.message
    );
    let after = secrets.get("parity-configuration").await.unwrap();
    assert_eq!(
        rendered(&after),
        Some(before),
        "the servers' configuration is untouched"
    );
    let now = statefulsets.get("parity-p0").await.unwrap();
    assert_eq!(now.metadata.generation, sts.metadata.generation);
}

/// Any step refused by the API reaches the Tenant (issue: 74 Tenants without status for 12
/// minutes when the Service range was full): Ready=False with the step and the API's message, the
/// currentState, one Warning event whose count grows with the retries, and Ready again once the
/// cause is gone.
#[tokio::test]
async fn a_step_the_api_refuses_is_reported_on_the_tenant_and_cleared_when_it_succeeds() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    use k8s_openapi::api::events::v1::Event;

    let cp = cluster();
    let ns = cp.create_namespace("e2e-quota").await.unwrap();
    let client = cp.client().await.unwrap();
    let quota: ResourceQuota = serde_json::from_value(
        json!({"metadata": {"name": "no-services"}, "spec": {"hard": {"services": "0"}}}),
    )
    .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // The quota controller must have counted the namespace before it refuses anything.
    until(
        "the quota to be counted",
        Duration::from_secs(30),
        async || {
            quotas
                .get("no-services")
                .await
                .ok()?
                .status?
                .used?
                .contains_key("services")
                .then_some(())
        },
    )
    .await;
    let secret: Secret = env_secret("q-env");
    Api::<Secret>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let tenant: Tenant = TenantBuilder::new("q")
        .configuration("q-env")
        .pool(pool("p0", 4))
        .typed();
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();

    let refused = until(
        "the refusal on the Tenant",
        Duration::from_secs(60),
        async || {
            let t = tenants.get("q").await.ok()?;
            let s = t.status?;
            let ready = s.conditions.iter().find(|c| c.type_ == "Ready")?.clone();
            (ready.status == "False" && ready.reason == "ServicesFailed")
                .then_some((s.current_state, ready))
        },
    )
    .await;
    assert_eq!(
        refused.0.as_deref(),
        Some("Failed provisioning the Services")
    );
    assert!(
        refused
            .1
            .message
            .starts_with("provisioning the Services failed: services \"")
            && refused
                .1
                .message
                .contains("is forbidden: exceeded quota: no-services"),
        "the API's own message: {}",
        refused.1.message
    );

    // A minute of retries: one event for the step, its count growing, not one event per retry.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let events: Vec<Event> = Api::<Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ServicesFailed"))
        .collect();
    assert_eq!(
        events.len(),
        1,
        "one event for the failing step: {events:#?}"
    );
    let count = events[0].series.as_ref().map_or(1, |s| s.count);
    assert!(
        (3..=8).contains(&count),
        "retried with backoff (5, 10, 20, 40 s): {count} attempts in a minute"
    );
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));

    // The cause removed: the next retry succeeds and the condition clears.
    quotas
        .delete("no-services", &DeleteParams::default())
        .await
        .unwrap();
    let recovered = until(
        "Ready after the quota is gone",
        Duration::from_secs(180),
        async || {
            let s = tenants.get("q").await.ok()?.status?;
            let ready = s.conditions.iter().find(|c| c.type_ == "Ready")?.clone();
            (ready.status == "True").then_some(s)
        },
    )
    .await;
    assert_eq!(recovered.current_state.as_deref(), Some("Initialized"));
    let degraded = recovered
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.message.as_str()),
        ("False", "")
    );
}

/// A running Go-operator tenant, as hanzos3/operator leaves it (read from its source and seen on
/// the real node, benches/results/takeover.md): a StatefulSet whose pod template another field
/// manager wrote, with its sidecar, init container, extra volume and `RollingUpdate`, and an
/// `Opaque` TLS Secret with `public.crt`/`private.key`. Ours takes both over: the StatefulSet
/// is replaced keeping its pods' claims, the Secret keeps its certificate.
#[tokio::test]
async fn a_go_operator_tenant_is_taken_over_keeping_its_claims_and_certificate() {
    use hanzo_s3_operator::admission::{DefaultsConfig, defaulted};
    use hanzo_s3_operator::reconcile::desired;
    use k8s_openapi::api::core::v1::{Container, Volume};

    let cp = cluster();
    let ns = cp.create_namespace("e2e").await.unwrap();
    let client = cp.client().await.unwrap();
    // No configuration Secret yet: ours waits for it and touches nothing, the Go operator's
    // objects go in meanwhile (they name the Tenant's UID).
    let tenant: Tenant = TenantBuilder::new("legacy")
        .configuration("legacy-env")
        .pool(pool("p0", 2))
        .typed();
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let stored = tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let owner = json!([{"apiVersion": "minio.min.io/v2", "kind": "Tenant", "name": "legacy",
        "uid": stored.metadata.uid, "controller": true, "blockOwnerDeletion": true}]);

    // The Go operator's TLS Secret: a certificate of another CA (the cluster's, through the CSR API).
    let go_ca = hanzo_s3_operator::certs::Ca::generate("go-cluster-ca").unwrap();
    let go_cert = go_ca
        .sign_serving(&[format!("minio.{ns}.svc.cluster.local")])
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let go_tls: Secret = serde_json::from_value(json!({
        "metadata": {"name": "legacy-tls", "labels": {"v1.min.io/tenant": "legacy"}, "ownerReferences": owner},
        "type": "Opaque",
        "stringData": {"public.crt": go_cert.cert_pem, "private.key": go_cert.key_pem}}))
    .unwrap();
    secrets
        .create(&PostParams::default(), &go_tls)
        .await
        .unwrap();

    // Its ServiceAccount (ours applies the same one) ...
    let account: ServiceAccount = serde_json::from_value(
        json!({"metadata": {"name": "legacy-sa", "ownerReferences": owner}}),
    )
    .unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    // ... and its StatefulSet: ours' names, selector and claims (the Go operator's are the same), with
    // what only it has, written by its field manager.
    let rendered_for = defaulted(&stored, &DefaultsConfig::default());
    let mut go_sts = desired::pool_statefulset(
        &rendered_for,
        &rendered_for.spec.pools[0],
        &desired::Rendered::default(),
    );
    go_sts.metadata.owner_references = serde_json::from_value(owner).unwrap();
    go_sts.metadata.namespace = Some(ns.clone());
    go_sts.spec.update_strategy = serde_json::from_value(json!({"type": "RollingUpdate"})).unwrap();
    let pod_spec = go_sts.spec.template.spec.as_mut().unwrap();
    let sidecar: Container = serde_json::from_value(
        json!({"name": "sidecar", "image": "quay.io/minio/operator-sidecar:v7"}),
    )
    .unwrap();
    pod_spec.containers.push(sidecar.clone());
    pod_spec.init_containers = Some(vec![Container {
        name: "validate-arguments".to_owned(),
        ..sidecar
    }]);
    let cfg: Volume = serde_json::from_value(json!({"name": "cfg-vol", "emptyDir": {}})).unwrap();
    pod_spec.volumes.get_or_insert_default().push(cfg);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let go_sts = sts_api
        .create(
            &PostParams {
                field_manager: Some("operator".to_owned()),
                ..PostParams::default()
            },
            &go_sts,
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let go_claims = until(
        "the Go StatefulSet's 4 claims and 2 pods",
        Duration::from_secs(60),
        async || {
            let running = pods
                .list(&ListParams::default().fields("status.phase=Running"))
                .await
                .ok()?
                .items
                .len();
            let mut names: Vec<(String, String)> = claims
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .map(|c| (c.metadata.name.unwrap(), c.metadata.uid.unwrap()))
                .collect();
            names.sort();
            (names.len() == 4 && running == 2).then_some(names)
        },
    )
    .await;

    // The move: the configuration appears, ours goes on.
    let secret: Secret = env_secret("legacy-env");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let ours = until(
        "our StatefulSet in place of the Go one",
        Duration::from_secs(60),
        async || {
            let sts = sts_api.get("legacy-p0").await.ok()?;
            (sts.metadata.uid != go_sts.metadata.uid).then_some(sts)
        },
    )
    .await;
    let template = ours.spec.template.spec.clone().unwrap();
    assert_eq!(
        (
            template
                .containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            template.init_containers.map_or(0, |c| c.len()),
            template
                .volumes
                .unwrap_or_default()
                .iter()
                .any(|v| v.name == "cfg-vol"),
            ours.spec.update_strategy.and_then(|u| u.type_),
        ),
        (vec!["minio"], 0, false, Some("OnDelete".to_owned())),
        "nothing of the Go operator's template is left"
    );
    assert!(
        ours.metadata
            .managed_fields
            .iter()
            .flatten()
            .all(|m| m.manager.as_deref() != Some("operator")),
        "{:?}",
        ours.metadata.managed_fields
    );
    // Every server ends on our template, on the claims it had.
    until(
        "every server on our template",
        Duration::from_secs(120),
        async || {
            let list = pods.list(&ListParams::default()).await.ok()?.items;
            let ok = list.len() == 2
                && list.iter().all(|p| {
                    p.spec
                        .as_ref()
                        .is_some_and(|s| s.containers.len() == 1 && s.init_containers.is_none())
                        && p.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|o| Some(&o.uid) == ours.metadata.uid.as_ref())
                });
            ok.then_some(())
        },
    )
    .await;
    let mut after: Vec<(String, String)> = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| (c.metadata.name.unwrap(), c.metadata.uid.unwrap()))
        .collect();
    after.sort();
    assert_eq!(after, go_claims, "the same claims, none made anew");

    // The certificate is the Go operator's still, in a Secret of ours, trusted beside ours.
    let tls = until(
        "the adopted TLS Secret",
        Duration::from_secs(30),
        async || {
            let s = secrets.get("legacy-tls").await.ok()?;
            (s.type_.as_deref() == Some("kubernetes.io/tls")).then_some(s)
        },
    )
    .await;
    let data = tls.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(text("tls.crt"), go_cert.cert_pem);
    assert_eq!(text("tls.key"), go_cert.key_pem);
    let bundle = text("ca.crt");
    assert!(
        bundle.contains(go_cert.cert_pem.trim()) && bundle.contains(cp.ca_pem().trim()),
        "ca.crt trusts the adopted certificate and the cluster CA: {bundle}"
    );
    assert_eq!(
        tls.metadata.annotations.unwrap()["hanzo.ai/signed-by"],
        "adopted"
    );
}

/// A certificate Secret of the user's (`externalCertSecret`) is waited for, then mounted by the
/// keys it holds: one of `kubectl create secret tls` has no CA, and the servers then trust its
/// certificate itself, as the Go operators mount it (before, the pods asked for a `ca.crt` it
/// does not have and never started).
#[tokio::test]
async fn a_users_certificate_secret_without_a_ca_is_waited_for_then_mounted() {
    let cp = cluster();
    let ns = cp.create_namespace("e2e").await.unwrap();
    let client = cp.client().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let env: Secret = env_secret("own-env");
    secrets.create(&PostParams::default(), &env).await.unwrap();
    let tenant: Tenant = TenantBuilder::new("own")
        .configuration("own-env")
        .pool(pool("p0", 2))
        .spec("requestAutoCert", false)
        .spec(
            "externalCertSecret",
            json!([{"name": "own-cert", "type": "kubernetes.io/tls"}]),
        )
        .typed();
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let waiting = until(
        "the Tenant waiting for its certificate",
        Duration::from_secs(30),
        async || {
            let status = tenants.get("own").await.ok()?.status?;
            (status.current_state.as_deref() == Some("Waiting for the certificate Secret"))
                .then_some(status)
        },
    )
    .await;
    let ready = waiting
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "CertificateMissing");
    assert!(ready.message.contains("own-cert"), "{}", ready.message);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert!(
        sts_api.get_opt("own-p0").await.unwrap().is_none(),
        "no server is given a certificate that is not there"
    );

    let ca = hanzo_s3_operator::certs::Ca::generate("a private CA").unwrap();
    let pair = ca
        .sign_serving(&[format!("minio.{ns}.svc.cluster.local")])
        .unwrap();
    let cert: Secret = serde_json::from_value(json!({"metadata": {"name": "own-cert"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem}}))
    .unwrap();
    secrets.create(&PostParams::default(), &cert).await.unwrap();
    let sts = until(
        "the pool's StatefulSet",
        Duration::from_secs(30),
        async || sts_api.get_opt("own-p0").await.ok()?,
    )
    .await;
    let (secret, items) = hanzo_testkit::support::tls_items(&sts);
    assert_eq!(secret, "own-cert");
    assert_eq!(
        items,
        [
            ("tls.crt", "public.crt"),
            ("tls.key", "private.key"),
            ("tls.crt", "CAs/ca.crt")
        ]
        .map(|(k, p)| (k.to_owned(), p.to_owned()))
    );
}

#[tokio::test]
async fn every_certificate_secret_is_waited_for_then_served_beside_the_operators() {
    let cp = cluster();
    let ns = cp.create_namespace("e2e").await.unwrap();
    let client = cp.client().await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    secrets
        .create(&PostParams::default(), &env_secret("both-env"))
        .await
        .unwrap();
    let ca = hanzo_s3_operator::certs::Ca::generate("a public CA").unwrap();
    let pair = ca.sign_serving(&["s3.example.com".to_owned()]).unwrap();
    let cert: Secret = serde_json::from_value(json!({"metadata": {"name": "public-cert"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem, "ca.crt": ca.cert_pem()}}))
    .unwrap();
    secrets.create(&PostParams::default(), &cert).await.unwrap();
    // requestAutoCert is left to its default (on): the Go operators serve both certificates.
    let tenant: Tenant = TenantBuilder::new("both")
        .configuration("both-env")
        .pool(pool("p0", 2))
        .spec(
            "externalCertSecret",
            json!([{"name": "public-cert", "type": "kubernetes.io/tls"}]),
        )
        .spec("externalCaCertSecret", json!([{"name": "idp-ca"}]))
        .typed();
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let waiting = until(
        "the Tenant waiting for its CA Secret",
        Duration::from_secs(30),
        async || {
            let status = tenants.get("both").await.ok()?.status?;
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready")?;
            (ready.reason == "CertificateMissing").then(|| ready.message.clone())
        },
    )
    .await;
    assert!(
        waiting.contains("idp-ca") && waiting.contains("spec.externalCaCertSecret[0]"),
        "{waiting}"
    );
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    assert!(sts_api.get_opt("both-p0").await.unwrap().is_none());

    let idp: Secret = serde_json::from_value(json!({"metadata": {"name": "idp-ca"},
        "stringData": {"public.crt": ca.cert_pem()}}))
    .unwrap();
    secrets.create(&PostParams::default(), &idp).await.unwrap();
    let sts = until(
        "the pool's StatefulSet",
        Duration::from_secs(30),
        async || sts_api.get_opt("both-p0").await.ok()?,
    )
    .await;
    let names: Vec<(String, Vec<String>)> = hanzo_testkit::support::tls_sources(&sts)
        .into_iter()
        .map(|(secret, items)| (secret, items.into_iter().map(|(_, path)| path).collect()))
        .collect();
    let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names,
        vec![
            (
                "public-cert".to_owned(),
                paths(&["public.crt", "private.key", "CAs/ca.crt"])
            ),
            (
                "both-tls".to_owned(),
                paths(&[
                    "hostname-1/public.crt",
                    "hostname-1/private.key",
                    "CAs/hostname-1.crt"
                ])
            ),
            ("idp-ca".to_owned(), paths(&["CAs/ca-0.crt"])),
        ]
    );
}
