//! `hanzo-s3-operator run` against a real apiserver: the CA is created once in a Secret and shared
//! by replicas, the webhook configurations are applied with its bundle, Tenants are admitted through
//! the binary, and externally managed certificate files are reloaded when they change.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_s3_operator::certs::store::{CA_SECRET, ensure_ca};
use hanzo_testkit::control_plane::Dedicated;
use hanzo_testkit::{PoolBuilder, TenantBuilder, support};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The control plane this module's tests share, of its own (no fake nodes): `run` registers its
/// webhooks for every namespace and reconciles them all, which would reach every other module's
/// Tenants on the tier's shared control plane.
fn cluster() -> &'static ControlPlane {
    static CLUSTER: Dedicated = Dedicated::new();
    CLUSTER.get(Options::api_only)
}

#[tokio::test]
async fn replicas_agree_on_one_ca_kept_in_a_secret() {
    let cp = cluster();
    let ns = cp.create_namespace("ca").await.unwrap();
    let client = cp.client().await.unwrap();
    let (a, b) = tokio::join!(
        ensure_ca(client.clone(), &ns),
        ensure_ca(client.clone(), &ns)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.ca.cert_pem(),
        b.ca.cert_pem(),
        "both replicas use the CA that won the race"
    );
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get(CA_SECRET)
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(
        String::from_utf8(data["ca.crt"].0.clone()).unwrap(),
        a.ca.cert_pem()
    );
    let again = ensure_ca(client, &ns).await.unwrap();
    assert_eq!(
        again.ca.cert_pem(),
        a.ca.cert_pem(),
        "a fresh CA is kept, not rotated"
    );
}

#[tokio::test]
async fn run_registers_its_webhooks_and_admits_through_them() {
    let cp = cluster();
    let client = cp.client().await.unwrap();
    hanzo_s3_operator::operator::install::install_crd(&client, "test", Duration::from_secs(10))
        .await
        .unwrap();
    let operator_ns = cp.create_namespace("operator").await.unwrap();
    let tenants_ns = cp.create_namespace("tenants").await.unwrap();
    let port = support::free_port();
    let _operator = support::ChildGuard(
        Command::cargo_bin("hanzo-s3-operator")
            .unwrap()
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--namespace",
                &operator_ns,
            ])
            .args(["--webhook-url", &format!("https://127.0.0.1:{port}")])
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The configurations are applied with the CA from the Secret.
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    let config = loop {
        if let Some(c) = validating.get_opt("hanzo-s3-operator").await.unwrap() {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the operator never registered its webhooks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secret = Api::<Secret>::namespaced(client.clone(), &operator_ns)
        .get(CA_SECRET)
        .await
        .unwrap();
    let bundle = config.webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap()
        .0;
    assert_eq!(
        bundle,
        secret.data.unwrap()["ca.crt"].0,
        "caBundle is the CA in the Secret"
    );
    let selector = config.metadata.name.clone();
    assert_eq!(selector.as_deref(), Some("hanzo-s3-operator"));
    assert!(
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .get_opt("hanzo-s3-operator")
            .await
            .unwrap()
            .is_some()
    );

    // A Tenant is defaulted and an invalid one denied, through the binary.
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &tenants_ns);
    let manifest = |servers: i32| -> Tenant {
        TenantBuilder::new("t")
            .configuration("t-env")
            .pool(PoolBuilder::unnamed(servers, 1))
            .typed()
    };
    let mut last = String::new();
    for _ in 0..100 {
        match tenants
            .create(
                &PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &manifest(4),
            )
            .await
        {
            Ok(t) if t.spec.service_account_name.as_deref() == Some("t-sa") => {
                last.clear();
                break;
            }
            Ok(_) => last = "not defaulted yet".into(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.is_empty(), "{last}");
    let err = tenants
        .create(&PostParams::default(), &manifest(2))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a pool with 2 servers needs at least 4 volumes"),
        "{err}"
    );
    // The webhook configuration is cluster-wide: remove it so other tests are not judged by a
    // process that is about to stop.
    let _ = validating
        .delete("hanzo-s3-operator", &Default::default())
        .await;
    let _ = Api::<MutatingWebhookConfiguration>::all(client)
        .delete("hanzo-s3-operator", &Default::default())
        .await;
}

#[tokio::test]
async fn externally_managed_certificate_files_are_reloaded() {
    let cp = cluster();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let first = hanzo_s3_operator::certs::Ca::generate("first").unwrap();
    let pair = first.sign_serving(&["127.0.0.1".into()]).unwrap();
    std::fs::write(&cert_file, &pair.cert_pem).unwrap();
    std::fs::write(&key_file, &pair.key_pem).unwrap();
    let port = support::free_port();
    let ns = cp.create_namespace("files").await.unwrap();
    let _operator = support::ChildGuard(
        Command::cargo_bin("hanzo-s3-operator")
            .unwrap()
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--namespace",
                &ns,
                "--no-webhook-config",
            ])
            .arg("--tls-cert-file")
            .arg(&cert_file)
            .arg("--tls-key-file")
            .arg(&key_file)
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let trusts = |ca_pem: String| async move {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return false;
        };
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .is_ok()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !trusts(first.cert_pem().to_owned()).await {
        assert!(
            Instant::now() < deadline,
            "the server never served the first certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // cert-manager renews: new files appear; within the poll interval the new one is served.
    let second = hanzo_s3_operator::certs::Ca::generate("second").unwrap();
    let pair = second.sign_serving(&["127.0.0.1".into()]).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // a distinct mtime
    std::fs::write(&key_file, &pair.key_pem).unwrap();
    std::fs::write(&cert_file, &pair.cert_pem).unwrap();
    let deadline = Instant::now() + Duration::from_secs(25);
    while !trusts(second.cert_pem().to_owned()).await {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
