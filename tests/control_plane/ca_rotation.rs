//! A rotation of the operator CA, followed by a TLS tenant in order, on a real control plane with
//! kwok nodes: the tenant's ca.crt gains the next CA while the current one still signs; the
//! servers' pod template names the CA they must trust, so they are replaced (one at a time) to
//! read it; only once every server's pod carries it does the promoted CA sign the tenant's
//! certificate, and every server's pod is then told of it (the kubelet rewrites a changed pod's
//! Secret volumes at once). The CA Secret is the real store's, rotated by its own functions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::store::{self, Announced, RotationPolicy, SharedCa};
use hanzo_s3_operator::certs::{fingerprint_of_pem, not_after_of_pem};
use hanzo_s3_operator::reconcile::{ReadyWhen, Settings};
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const TRUSTED_CA: &str = "hanzo.ai/trusted-ca";
const SIGNED_BY: &str = "hanzo.ai/signed-by";
const CERTIFICATE: &str = "hanzo.ai/certificate-not-after";

/// The tenant's TLS Secret: its ca.crt and the CA that signed it.
async fn tls(secrets: &Api<Secret>) -> Option<(String, String)> {
    let secret = secrets.get_opt("t-tls").await.ok()??;
    let signer = secret.metadata.annotations?.get(SIGNED_BY)?.clone();
    let ca = secret.data?.get("ca.crt")?.0.clone();
    Some((String::from_utf8(ca).ok()?, signer))
}

async fn template_mark(statefulsets: &Api<StatefulSet>) -> Option<String> {
    let sts = statefulsets.get_opt("t-p0").await.ok()??;
    sts.spec
        .template
        .metadata?
        .annotations?
        .get(TRUSTED_CA)
        .cloned()
}

/// The expiry of the tenant's certificate, in unix seconds.
async fn tls_not_after(secrets: &Api<Secret>) -> Option<u64> {
    let secret = secrets.get_opt("t-tls").await.ok()??;
    let pem = secret.data?.get("tls.crt")?.0.clone();
    let at = not_after_of_pem(&pem)?;
    Some(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
}

async fn pod_annotations(pods: &Api<Pod>, key: &str) -> Vec<Option<String>> {
    pods.list(&ListParams::default().labels("v1.min.io/tenant=t"))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.metadata.annotations.and_then(|a| a.get(key).cloned()))
        .collect()
}

async fn pod_marks(pods: &Api<Pod>) -> Vec<Option<String>> {
    pod_annotations(pods, TRUSTED_CA).await
}

async fn wait<T, F: AsyncFn() -> Option<T>>(what: &str, cp_logs: impl Fn() -> String, f: F) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never came\n{}",
            cp_logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_tls_tenant_trusts_a_rotated_ca_before_it_is_signed_by_it() {
    let cp = hanzo_testkit::control_plane::shared();
    let admin = cp.client().await.unwrap();
    hanzo_s3_operator::operator::install::install_crd(&admin, "test", Duration::from_secs(10))
        .await
        .unwrap();
    let ns = cp.create_namespace("rotation").await.unwrap();
    let logs = || cp.log_tails(10);
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "t-configuration"},
        "stringData": {"config.env": "export S3_ROOT_USER=\"admin\"\nexport S3_ROOT_PASSWORD=\"rotation-test-only\"\n"}})).unwrap();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    // The operator's CA Secret lives in a namespace of its own, as in a cluster.
    let ca_ns = cp.create_namespace("rotation-ca").await.unwrap();
    let first = store::ensure_ca(admin.clone(), &ca_ns).await.unwrap();
    let first_signer = first.signer().to_owned();
    let (send, shared) = SharedCa::channel(Arc::new(first));

    let watched = ns.clone();
    let operator = admin.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(async move {
        let mut settings =
            Settings::following(DefaultsConfig::default(), shared, ReadyWhen::PodsReady);
        settings.namespaces = vec![watched];
        hanzo_s3_operator::reconcile::run(operator, settings, async move {
            let _ = stopped.await;
        })
        .await;
    });
    let tenant: Tenant = TenantBuilder::new("t")
        .configuration("t-configuration")
        .pools([PoolBuilder::named("p0", 4, 1)])
        .typed();
    Api::<Tenant>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &tenant)
        .await
        .unwrap();
    let statefulsets: Api<StatefulSet> = Api::namespaced(admin.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);

    // Before any rotation: signed by the first CA, and no pod template names a CA (templates
    // made before rotations existed stay as they were).
    let (bundle, signer) = wait("the TLS Secret", logs, async || tls(&secrets).await).await;
    assert_eq!(signer, first_signer);
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1);
    wait("4 pods", logs, async || {
        (pod_marks(&pods).await.len() == 4).then_some(())
    })
    .await;
    assert_eq!(template_mark(&statefulsets).await, None);

    // Announced: the bundle carries both CAs, the first still signs, the template names the next.
    let (announced, how) = store::announce_now(admin.clone(), &ca_ns).await.unwrap();
    assert_eq!(how, Announced::Now);
    let next_mark = announced.trust_mark.clone().unwrap();
    send.send(Arc::new(announced)).unwrap();
    let (bundle, signer) = wait("the bundle of both CAs in ca.crt", logs, async || {
        tls(&secrets)
            .await
            .filter(|(b, _)| b.matches("BEGIN CERTIFICATE").count() == 2)
    })
    .await;
    assert_eq!(signer, first_signer, "the first CA signs until promoted");
    assert!(
        fingerprint_of_pem(bundle.as_bytes()).is_some_and(|f| f == first_signer),
        "the current CA first"
    );
    let mark = wait("the template naming the next CA", logs, async || {
        template_mark(&statefulsets).await
    })
    .await;
    assert_eq!(mark, next_mark);

    // Promoted at once, while the servers are still being replaced: the tenant's certificate
    // waits for every pod to carry the mark, then moves to the promoted CA.
    let policy = RotationPolicy {
        announce_for: Duration::ZERO,
        keep_previous_for: Duration::from_secs(3600),
    };
    let promoted = store::ensure_ca_with(admin.clone(), &ca_ns, &policy)
        .await
        .unwrap();
    assert_eq!(promoted.signer(), next_mark, "the announced CA signs");
    let at_promotion = pod_marks(&pods).await;
    assert!(
        at_promotion
            .iter()
            .any(|m| m.as_deref() != Some(&next_mark)),
        "the servers were all replaced before the promotion, so nothing would have to wait: {at_promotion:?}"
    );
    send.send(Arc::new(promoted)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let marks = pod_marks(&pods).await;
        let (_, signer) = tls(&secrets).await.unwrap();
        let all_trust = marks.len() == 4 && marks.iter().all(|m| m.as_deref() == Some(&next_mark));
        if signer == next_mark {
            // Pods seen after the Secret: had one still lacked the mark then, it would now too
            // (pods only gain it).
            assert!(
                all_trust,
                "signed by the next CA while a pod does not trust it: {marks:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the promoted CA never signed the tenant's certificate: pods {marks:?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The certificate signed again is handed to every server's pod.
    let not_after = tls_not_after(&secrets).await.unwrap().to_string();
    wait("every pod told of the new certificate", logs, async || {
        let told = pod_annotations(&pods, CERTIFICATE).await;
        (told.len() == 4 && told.iter().all(|t| t.as_deref() == Some(&not_after))).then_some(())
    })
    .await;
    let _ = stop.send(());
    controller.await.unwrap();
}

/// `rotate-ca` as a user runs it: it creates the CA when there is none and announces a next one;
/// asked again during the rotation, it says so and changes nothing.
#[tokio::test]
async fn rotate_ca_announces_a_next_ca_once() {
    let cp = hanzo_testkit::control_plane::shared();
    let admin = cp.client().await.unwrap();
    let ns = cp.create_namespace("rotate-ca").await.unwrap();
    let rotate = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
            .args(["rotate-ca", "--namespace", &ns, "--kubeconfig"])
            .arg(cp.kubeconfig_path())
            .env_remove("POD_NAMESPACE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let said = rotate();
    assert!(said.starts_with("announced a next operator CA ("), "{said}");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let data = secrets.get(store::CA_SECRET).await.unwrap().data.unwrap();
    let next = fingerprint_of_pem(&data["next-ca.crt"].0).unwrap();
    assert!(said.contains(&next), "names the next CA: {said}");
    assert_ne!(fingerprint_of_pem(&data["ca.crt"].0).unwrap(), next);
    assert_eq!(data["rotations"].0, b"1");
    let again = rotate();
    assert!(
        again.starts_with(&format!(
            "a rotation is already under way: the next CA ({next})"
        )),
        "{again}"
    );
    let after = secrets.get(store::CA_SECRET).await.unwrap().data.unwrap();
    assert_eq!(after, data, "asked again, nothing changed");
}
