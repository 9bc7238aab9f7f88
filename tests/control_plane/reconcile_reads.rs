//! The reconciler's reads come from its watch caches. Once a Tenant is Ready, a pass over it (a
//! health look every 30 s, any touch of the Tenant) sends the apiserver no GET or LIST: a thousand
//! Tenants used to cost a request per pool and object per pass, forever. Counted on the wire, with
//! a layer in the operator's own client, against the real apiserver with kwok nodes.
//!
//! The configuration Secret is named `t-configuration`, the name the operator renders it under (as
//! the examples and many users name it): the caches must never serve the user's copy from the
//! operator's own, slimmed one, or the next pass would render an empty configuration over it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hanzo_local_cluster::ControlPlane;
use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::reconcile::{ReadyWhen, Settings, passes};
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// Every request the operator's client sends, as `METHOD path?query`.
type Log = Arc<Mutex<Vec<String>>>;

async fn counting_client(cp: &ControlPlane, log: Log) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(cp.kubeconfig().clone(), &Default::default())
        .await
        .unwrap();
    let layer = tower::util::MapRequestLayer::new(move |request: http::Request<_>| {
        log.lock().unwrap().push(format!(
            "{} {}",
            request.method(),
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("")
        ));
        request
    });
    kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&layer)
        .build()
}

fn is_read(request: &str) -> bool {
    request.starts_with("GET ") && !request.contains("watch=true")
}

async fn ready(tenants: &Api<Tenant>) -> bool {
    tenants
        .get("t")
        .await
        .ok()
        .and_then(|t| t.status)
        .is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

#[tokio::test]
async fn passes_over_a_ready_tenant_read_nothing_from_the_apiserver() {
    // In a process of its own: passes() counts the passes of every reconciler in the process, and
    // other modules of this binary run theirs (gitops_health's, the standard one of e2e_reconcile).
    if !hanzo_testkit::isolation::alone(
        module_path!(),
        "passes_over_a_ready_tenant_read_nothing_from_the_apiserver",
    ) {
        return;
    }
    let cp = hanzo_testkit::control_plane::shared();
    let admin = cp.client().await.unwrap();
    hanzo_s3_operator::operator::install::install_crd(&admin, "test", Duration::from_secs(10))
        .await
        .unwrap();
    let ns = cp.create_namespace("reads").await.unwrap();
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "t-configuration"},
        "stringData": {"config.env": "export S3_ROOT_USER=\"admin\"\nexport S3_ROOT_PASSWORD=\"reads-test-only\"\n"}})).unwrap();
    Api::<Secret>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let pool = |name: &str| PoolBuilder::named(name, 4, 2);
    let tenant: Tenant = TenantBuilder::new("t")
        .configuration("t-configuration")
        .pools([pool("p0"), pool("p1")])
        .typed();
    let tenants: Api<Tenant> = Api::namespaced(admin.clone(), &ns);
    tenants
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();

    let log: Log = Arc::default();
    let operator = counting_client(cp, log.clone()).await;
    let watched = ns.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(async move {
        let ca = Arc::new(Ca::generate("reads-test-ca").unwrap());
        let mut settings = Settings::new(DefaultsConfig::default(), ca, ReadyWhen::PodsReady);
        settings.namespaces = vec![watched];
        hanzo_s3_operator::reconcile::run(operator, settings, async move {
            let _ = stopped.await;
        })
        .await;
    });

    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(&tenants).await {
        assert!(
            Instant::now() < deadline,
            "Tenant {ns}/t never became Ready\n{}",
            cp.log_tails(10)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Creating reads what does not exist yet: a handful of GETs, once.
    let creating: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| is_read(r))
        .cloned()
        .collect();
    assert!(
        creating.iter().any(|r| r.contains("/statefulsets/")),
        "a StatefulSet not yet cached is looked up before it is created: {creating:#?}"
    );

    // Let the writes of becoming Ready come back through the watches, then count from here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let from = log.lock().unwrap().len();
    let before = passes();
    for i in 0..5 {
        let seen = passes();
        tenants
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"test/touch": i.to_string()}}})),
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while passes() == seen {
            assert!(
                Instant::now() < deadline,
                "touching the Tenant started no pass"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let passes_run = passes() - before;
    let since: Vec<String> = log.lock().unwrap()[from..].to_vec();
    let _ = stop.send(());
    let _ = controller.await;

    assert!(passes_run >= 5, "{passes_run} passes");
    let reads: Vec<&String> = since.iter().filter(|r| is_read(r)).collect();
    assert!(
        reads.is_empty(),
        "{passes_run} passes over a Ready Tenant read from the apiserver:\n{reads:#?}\nall requests:\n{since:#?}"
    );
    assert!(ready(&tenants).await);
    let config = Api::<Secret>::namespaced(admin, &ns)
        .get("t-configuration")
        .await
        .unwrap()
        .data
        .and_then(|d| d.get("config.env").cloned())
        .map(|b| String::from_utf8(b.0).unwrap())
        .unwrap_or_default();
    assert!(
        config.contains("S3_ROOT_USER") && config.contains("S3_ROOT_PASSWORD"),
        "the configuration lost its credentials: {config:?}"
    );
}
