//! The backstop ValidatingAdmissionPolicy on a real kube-apiserver with no webhooks registered
//! (as when they are unreachable): each rule refuses its invalid Tenant with exactly the webhook's
//! message, and no Tenant the webhook admits is refused (our examples and the Go operator's).

use std::path::Path;
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::{self, DefaultsConfig, backstop, limits, parse_tenant};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const NS: &str = "backstop";

fn tenant_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("minio.min.io", "v2", "Tenant");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

fn pool(name: &str) -> Value {
    PoolBuilder::named(name, 4, 2).build()
}

fn tenant(name: &str, pools: Vec<Value>) -> Value {
    TenantBuilder::new(name)
        .namespace(NS)
        .configuration("creds")
        .pools(pools)
        .build()
}

/// What the webhook says of `object` (and, on UPDATE, `old`): the size limits first, then review.
fn webhook_violations(object: &Value, old: Option<&Value>) -> Vec<String> {
    let over = limits::check_value(object);
    if !over.is_empty() {
        return over.iter().map(|v| v.message()).collect();
    }
    let parse = |v: &Value| -> Tenant { parse_tenant(v).expect("the sample parses") };
    let old = old.map(parse);
    admission::review(old.as_ref(), &parse(object), &DefaultsConfig::default())
        .violations
        .iter()
        .map(|v| v.message())
        .collect()
}

async fn install(client: &kube::Client) {
    hanzo_s3_operator::operator::install::install_crd(client, "test", Duration::from_secs(30))
        .await
        .unwrap();
    hanzo_s3_operator::operator::install::install_backstop(client, "backstop-test")
        .await
        .unwrap();
    let namespaces = Api::<Namespace>::all(client.clone());
    let _ = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
        )
        .await;
}

/// The apiserver's answer to creating `object` (a dry run unless `persist`): Ok, or the message.
async fn create(client: &kube::Client, object: &Value, persist: bool) -> Result<(), (u16, String)> {
    let api = tenant_api(client, NS);
    let params = PostParams {
        dry_run: !persist,
        ..PostParams::default()
    };
    let object: DynamicObject = serde_json::from_value(object.clone()).unwrap();
    match api.create(&params, &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) => Err((e.code, e.message)),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn the_policy_refuses_what_it_covers_with_the_webhooks_words_and_nothing_else() {
    // A control plane of this test's own: the policy judges every Tenant of its cluster.
    let cp = ControlPlane::start(Options::api_only()).await.unwrap();
    let client = cp.client().await.unwrap();
    install(&client).await;

    // The policy takes effect when the admission plugin has seen it: wait for a first refusal.
    let deadline = Instant::now() + Duration::from_secs(60);
    while create(&client, &tenant("probe", vec![]), false)
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "the policy never took effect");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let policy = Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .get(backstop::POLICY_NAME)
        .await
        .unwrap();
    let warnings = policy
        .status
        .and_then(|s| s.type_checking)
        .and_then(|t| t.expression_warnings)
        .unwrap_or_default();
    assert!(warnings.is_empty(), "type checking: {warnings:?}");

    let long_name = "n".repeat(56);
    let mut enums = tenant("enums", vec![pool("pool-0")]);
    enums["spec"]["podManagementPolicy"] = json!("parallel");
    let mut pulls = tenant("pulls", vec![pool("pool-0")]);
    pulls["spec"]["imagePullPolicy"] = json!("always");
    let with = |name: &str, key: &str, value: i64| {
        let mut p = pool("pool-0");
        p[key] = json!(value);
        tenant(name, vec![pool("pool-a"), p])
    };
    let cases: Vec<(&str, Value)> = vec![
        ("pools-required", tenant("empty", vec![])),
        (
            "pools-at-most",
            tenant(
                "many",
                (0..129).map(|i| pool(&format!("p{i}"))).collect::<Vec<_>>(),
            ),
        ),
        ("servers-at-least-one", with("no-servers", "servers", 0)),
        (
            "volumes-at-least-one",
            with("no-volumes", "volumesPerServer", 0),
        ),
        ("servers-at-most", with("huge", "servers", 1001)),
        ("volumes-at-most", with("deep", "volumesPerServer", 257)),
        ("pod-management-policy", enums),
        ("image-pull-policy", pulls),
        ("name-length", tenant(&long_name, vec![pool("pool-0")])),
    ];
    let covered: Vec<&str> = cases.iter().map(|(id, _)| *id).collect();
    for (id, object) in &cases {
        let expected = webhook_violations(object, None);
        // A long tenant name also makes its generated names too long (rules the policy leaves
        // to the webhook); every other sample breaks one rule only.
        let alone = if *id == "name-length" { 3 } else { 1 };
        assert_eq!(expected.len(), alone, "{id}: {expected:?}");
        let (code, message) = create(&client, object, false)
            .await
            .expect_err(&format!("{id}: admitted"));
        assert_eq!(code, 422, "{id}: {message}");
        assert!(
            message.contains(backstop::POLICY_NAME),
            "{id}: not the policy: {message}"
        );
        assert!(
            message.ends_with(&expected[0]),
            "{id}: the apiserver said\n  {message}\nthe webhook says\n  {}",
            expected[0]
        );
    }

    // UPDATE: a pool removed, and a pool renamed.
    let two = tenant("grows", vec![pool("pool-0"), pool("pool-1")]);
    create(&client, &two, true).await.unwrap();
    let api = tenant_api(&client, NS);
    for (id, pools) in [
        ("pools-kept (removed)", vec![pool("pool-0")]),
        ("pools-kept (renamed)", vec![pool("pool-0"), pool("pool-x")]),
    ] {
        let mut stored = api.get("grows").await.unwrap();
        let old = serde_json::to_value(&stored).unwrap();
        stored.data["spec"]["pools"] = json!(pools);
        let new = serde_json::to_value(&stored).unwrap();
        let expected = webhook_violations(&new, Some(&old));
        assert_eq!(expected.len(), 1, "{id}: {expected:?}");
        let err = api
            .replace("grows", &PostParams::default(), &stored)
            .await
            .expect_err(id);
        let kube::Error::Api(e) = err else {
            panic!("{id}: {err}")
        };
        assert!(
            e.message.ends_with(&expected[0]),
            "{id}: the apiserver said\n  {}\nthe webhook says\n  {}",
            e.message,
            expected[0]
        );
    }
    // Appending a pool is fine.
    let mut stored = api.get("grows").await.unwrap();
    stored.data["spec"]["pools"] = json!([pool("pool-0"), pool("pool-1"), pool("pool-2")]);
    api.replace("grows", &PostParams::default(), &stored)
        .await
        .unwrap();
    // A pool asked to retire may leave once the status reports it drained, and not before.
    let mut stored = api.get("grows").await.unwrap();
    stored.metadata.annotations = Some(
        [("s3.hanzo.ai/decommission".to_owned(), "pool-0".to_owned())]
            .into_iter()
            .collect(),
    );
    let stored = api
        .replace("grows", &PostParams::default(), &stored)
        .await
        .unwrap();
    let mut without_first = stored.clone();
    without_first.data["spec"]["pools"] = json!([pool("pool-1"), pool("pool-2")]);
    let early = api
        .replace("grows", &PostParams::default(), &without_first)
        .await
        .expect_err("a pool left before it was drained");
    assert!(early.to_string().contains("was removed"), "{early}");
    let mut with_status = stored.clone();
    with_status.data["status"] = json!({"pools": [
        {"ssName": "grows-pool-0", "state": "PoolDecommissioned"},
        {"ssName": "grows-pool-1", "state": "PoolInitialized"},
        {"ssName": "grows-pool-2", "state": "PoolInitialized"}
    ]});
    let drained = api
        .replace_status("grows", &PostParams::default(), &with_status)
        .await
        .unwrap();
    let mut without_first = drained.clone();
    without_first.data["spec"]["pools"] = json!([pool("pool-1"), pool("pool-2")]);
    let old = serde_json::to_value(&drained).unwrap();
    let new = serde_json::to_value(&without_first).unwrap();
    assert_eq!(webhook_violations(&new, Some(&old)), Vec::<String>::new());
    api.replace("grows", &PostParams::default(), &without_first)
        .await
        .unwrap();

    // Every rule of the policy has a case here.
    for rule in backstop::rules() {
        assert!(
            rule.id == "pools-kept" || covered.contains(&rule.id),
            "rule {} has no case in this test",
            rule.id
        );
    }

    // Nothing the webhook admits is refused: our examples and the Go operator's, as written
    // (without our defaults, as when the mutating webhook is down too).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = ["examples", "tests/fixtures/go-examples"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap())
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in hanzo_s3_operator::manifest::parse("example", &text).documents {
            if !doc.is_tenant() {
                continue;
            }
            let mut object = doc.value.clone();
            object["metadata"]["namespace"] = json!(NS);
            assert!(
                webhook_violations(&object, None).is_empty(),
                "{}: the webhook refuses it",
                file.display()
            );
            // As the mutating webhook leaves it: admitted.
            let tenant = parse_tenant(&object).unwrap();
            let (patch, _) =
                admission::patch::defaulting_patch(&object, &tenant, &DefaultsConfig::default())
                    .unwrap();
            let mut defaulted = object.clone();
            json_patch::patch(&mut defaulted, &patch).unwrap();
            if let Err((_, message)) = create(&client, &defaulted, false).await {
                panic!("{}: defaulted, refused: {message}", file.display());
            }
            // As written, when the mutating webhook is down too: the CRD's schema may refuse it
            // (a pool without a name), the backstop never does.
            if let Err((_, message)) = create(&client, &object, false).await {
                assert!(
                    !message.contains(backstop::POLICY_NAME),
                    "{}: refused by the backstop: {message}",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 18, "only {checked} example tenants found");
}

#[test]
fn the_committed_manifests_are_the_generated_ones() {
    let generated = backstop::yaml().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(root.join("deploy/backstop/backstop.yaml")).unwrap();
    assert_eq!(
        committed, generated,
        "deploy/backstop/backstop.yaml is stale: hanzo-s3-operator backstop > deploy/backstop/backstop.yaml"
    );
    let chart =
        std::fs::read_to_string(root.join("deploy/helm/hanzo-s3-operator/templates/backstop.yaml"))
            .unwrap();
    let body: String = generated
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        chart.contains(&body),
        "the chart's templates/backstop.yaml is stale: regenerate it from `hanzo-s3-operator backstop`"
    );
}
