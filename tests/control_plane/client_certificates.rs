//! `run --client-ca-file`: the review endpoints answer only callers with a client certificate the
//! CA signed. The real apiserver presents one (its admission configuration names it) and admits
//! through the webhooks; a caller without one is refused, one with another CA cannot even
//! connect; the probes stay open for the kubelet.

use std::process::{Command, Stdio};
use std::time::Duration;

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder, support};
use kube::api::{Api, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// A CA and a client certificate it signed: (ca.pem, cert.pem, key.pem).
fn client_pki(cn: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{cn}-ca"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, cn);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn curl(
    port: u16,
    path: &str,
    cert: Option<(&std::path::Path, &std::path::Path)>,
    ca: &std::path::Path,
) -> Result<(u16, String), String> {
    let mut cmd = Command::new("curl");
    // HTTP/1.1: over HTTP/2 an answer sent before the body is read ends the stream with
    // RST_STREAM(NO_ERROR), which RFC 9113 allows and this curl sometimes reports as an error.
    cmd.args([
        "-sS",
        "--http1.1",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--cacert",
    ])
    .arg(ca);
    if let Some((c, k)) = cert {
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    cmd.args([
        "-X",
        if path == "/healthz" { "GET" } else { "POST" },
        "-d",
        "{}",
    ]);
    let out = cmd
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    Ok((code.parse().unwrap(), body.to_owned()))
}

#[tokio::test]
async fn only_the_apiserver_with_its_client_certificate_gets_reviews_answered() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let (client_ca, apiserver_cert, apiserver_key) = client_pki("kube-apiserver");
    let client_ca = write("client-ca.pem", &client_ca);
    let apiserver_cert_file = write("apiserver-client.crt", &apiserver_cert);
    let apiserver_key_file = write("apiserver-client.key", &apiserver_key);
    // The apiserver's credentials for calling webhooks: a kubeconfig whose user "*" matches
    // every webhook host.
    let kubeconfig = write(
        "webhook-kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: \"*\"\n  user:\n    client-certificate: {}\n    client-key: {}\n",
            apiserver_cert_file.display(),
            apiserver_key_file.display()
        ),
    );
    let admission = write(
        "admission.yaml",
        &format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n{}",
            ["ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"]
                .map(|p| format!("- name: {p}\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n    kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n", kubeconfig.display()))
                .join("")
        ),
    );
    let cp = ControlPlane::start(Options {
        apiserver_args: vec![format!(
            "--admission-control-config-file={}",
            admission.display()
        )],
        ..Options::api_only()
    })
    .await
    .unwrap();
    let client = cp.client().await.unwrap();
    hanzo_s3_operator::operator::install::install_crd(&client, "test", Duration::from_secs(10))
        .await
        .unwrap();
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "hanzo-s3-operator"}}))
            .unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let port = support::free_port();
    let _operator = support::ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
            .args(["run", "--namespace", "hanzo-s3-operator", "--no-reconcile"])
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--webhook-url",
                &format!("https://127.0.0.1:{port}"),
            ])
            .arg("--client-ca-file")
            .arg(&client_ca)
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The apiserver's own calls: a dry run comes back defaulted, an invalid Tenant denied.
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let t: Tenant = TenantBuilder::new("t")
        .configuration("env")
        .pool(PoolBuilder::unnamed(4, 1))
        .typed();
    let stored = Api::<Tenant>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &t)
        .await
        .unwrap();
    assert!(
        stored.spec.image.is_some(),
        "admitted and defaulted through the webhooks"
    );

    // Other callers: the operator's serving CA, from its Secret.
    let secret =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "hanzo-s3-operator")
            .get("hanzo-s3-operator-ca")
            .await
            .unwrap();
    let serving_ca = write(
        "serving-ca.pem",
        &String::from_utf8(secret.data.unwrap()["ca.crt"].0.clone()).unwrap(),
    );
    let (status, body) = curl(port, "/validate", None, &serving_ca).unwrap();
    assert_eq!(status, 401, "no certificate: refused ({body})");
    assert!(body.contains("client certificate"), "{body}");
    assert_eq!(
        curl(port, "/healthz", None, &serving_ca).unwrap().0,
        200,
        "probes stay open"
    );
    let (_, other_cert, other_key) = client_pki("intruder");
    let (other_cert, other_key) = (
        write("other.crt", &other_cert),
        write("other.key", &other_key),
    );
    let refused = curl(
        port,
        "/validate",
        Some((&other_cert, &other_key)),
        &serving_ca,
    );
    assert!(
        refused.is_err(),
        "a certificate of another CA fails the handshake: {refused:?}"
    );
    let (status, body) = curl(
        port,
        "/validate",
        Some((&apiserver_cert_file, &apiserver_key_file)),
        &serving_ca,
    )
    .unwrap();
    assert_eq!(
        status, 400,
        "the right certificate reaches the handler (an empty review is malformed): {body}"
    );
}
