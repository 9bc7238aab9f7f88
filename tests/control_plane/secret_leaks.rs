//! No secret value ever leaves the operator in what people and tools read: while the operator
//! (the binary, logging at TRACE) admits and reconciles a Tenant with credentials, KES, TLS and
//! user Secrets, every log line, event, status, metric and admission message (warnings and
//! denials included) is gathered, and none holds any secret value, nor its base64.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::api::tenant::Tenant;
use hanzo_testkit::{PoolBuilder, TenantBuilder, support};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

/// A value nobody would write by chance, so finding it anywhere means it leaked.
fn marker(what: &str) -> String {
    format!(
        "leak-{what}-{:016x}",
        std::process::id() as u64 * 0x9e37_79b9 + what.len() as u64
    )
}

#[tokio::test]
async fn no_secret_value_appears_in_logs_events_status_metrics_or_admission_messages() {
    let cp = ControlPlane::start(Options::with_nodes(1)).await.unwrap();
    let client = cp.client().await.unwrap();
    hanzo_s3_operator::operator::install::install_crd(&client, "test", Duration::from_secs(10))
        .await
        .unwrap();
    for ns in ["hanzo-s3-operator", "leaks"] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
    }
    let port = support::free_port();
    let mut operator = support::ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
            .args([
                "run",
                "--namespace",
                "hanzo-s3-operator",
                "--ready-when",
                "pods-ready",
            ])
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--webhook-url",
                &format!("https://127.0.0.1:{port}"),
            ])
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path())
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = r.read_to_string(&mut all);
            all
        })
    };
    let out_thread = collect(Box::new(operator.0.stdout.take().unwrap()));
    let err_thread = collect(Box::new(operator.0.stderr.take().unwrap()));

    let ns = "leaks";
    let secrets = Api::<Secret>::namespaced(client.clone(), ns);
    let mut values = vec![
        marker("root-user"),
        marker("root-password"),
        marker("kes-api-key"),
        marker("tls-key"),
        marker("console-secret"),
        marker("env-password"),
    ];
    let secret = |name: &str, data: Value| -> Secret {
        serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap()
    };
    for s in [
        secret(
            "env",
            json!({"config.env": format!("export S3_ROOT_USER=\"{}\"\nexport S3_ROOT_PASSWORD=\"{}\"\n", values[0], values[1])}),
        ),
        secret("kes", json!({"apiKey": values[2]})),
        secret(
            "own-tls",
            json!({"tls.key": values[3], "tls.crt": "not a certificate"}),
        ),
        secret(
            "console-user",
            json!({"CONSOLE_ACCESS_KEY": "console", "CONSOLE_SECRET_KEY": values[4]}),
        ),
    ] {
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    // Wait for the webhooks, then admit a Tenant that names all of them; one with a password
    // written in spec.env (a warning that must not repeat it) and one denied (a denial that
    // must not repeat it either).
    hanzo_s3_operator::operator::install::wait_for_admission(
        &client,
        "default",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let tenant = |name: &str, env_value: &str, servers: i32| -> Tenant {
        TenantBuilder::new(name)
            .configuration("env")
            .spec("users", json!([{"name": "console-user"}]))
            .spec(
                "kes",
                json!({"kesSecret": {"name": "kes"}, "image": "kes:1"}),
            )
            .spec(
                "env",
                json!([{"name": "S3_ROOT_PASSWORD", "value": env_value}]),
            )
            .pool(PoolBuilder::named("p0", servers, 1))
            .typed()
    };
    let tenants = Api::<Tenant>::namespaced(client.clone(), ns);
    let mut admission_messages = Vec::new();
    let denied = tenants
        .create(&PostParams::default(), &tenant("denied", &values[5], 2))
        .await
        .unwrap_err();
    admission_messages.push(denied.to_string());
    // Warnings come back as Warning headers; the dry run through a raw request shows them.
    let request = axum::http::Request::post(format!(
        "/apis/minio.min.io/v2/namespaces/{ns}/tenants?dryRun=All"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(&tenant("warned", &values[5], 4)).unwrap())
    .unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    for warning in response.headers().get_all("warning") {
        admission_messages.push(warning.to_str().unwrap_or_default().to_owned());
    }
    assert!(
        admission_messages
            .iter()
            .any(|m| m.contains("credential written in plain text")),
        "{admission_messages:?}"
    );
    tenants
        .create(&PostParams::default(), &tenant("t", &values[5], 4))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        let t = tenants.get("t").await.unwrap();
        if let Some(s) = t.status.as_ref().filter(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        }) {
            break serde_json::to_string(s).unwrap();
        }
        assert!(Instant::now() < deadline, "the Tenant never became Ready");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Secrets the operator made itself: its CA's key, the tenant's TLS key, the rendered config.
    for (secret_ns, name, key) in [
        ("hanzo-s3-operator", "hanzo-s3-operator-ca", "ca.key"),
        (ns, "t-tls", "tls.key"),
    ] {
        let s = Api::<Secret>::namespaced(client.clone(), secret_ns)
            .get(name)
            .await
            .unwrap();
        let pem = String::from_utf8(s.data.unwrap()[key].0.clone()).unwrap();
        // The key's body lines (the PEM armour is no secret).
        values.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() > 20)
                .map(str::to_owned),
        );
    }

    let events = serde_json::to_string(
        &Api::<k8s_openapi::api::events::v1::Event>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let metrics = {
        let out = Command::new("curl")
            .args(["-sk", &format!("https://127.0.0.1:{port}/metrics")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        metrics.contains("hanzo_s3_operator_webhook_requests_total"),
        "{metrics}"
    );
    drop(operator);
    let logs = format!(
        "{}{}",
        out_thread.join().unwrap(),
        err_thread.join().unwrap()
    );
    assert!(
        logs.lines().count() > 100,
        "trace logs were gathered ({} lines)",
        logs.lines().count()
    );
    assert!(logs.contains("TRACE"), "at trace level");

    let places = [
        ("logs", &logs),
        ("events", &events),
        ("status", &status),
        ("metrics", &metrics),
        ("admission messages", &admission_messages.join("\n")),
    ];
    for value in &values {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        for (place, text) in places {
            assert!(
                !text.contains(value.as_str()),
                "a secret value appears in the {place}: {value}"
            );
            assert!(
                !text.contains(&b64),
                "a secret value appears base64-encoded in the {place}: {value}"
            );
        }
    }
}
