//! The apiserver calls an admission webhook served by this test process on 127.0.0.1, registered
//! by `clientConfig.url` with its caBundle, exactly as the operator's integration tests do.

use std::sync::Arc;

use axum::{Json, Router, routing::post};
use base64::Engine;
use hanzo_local_cluster::ControlPlane;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Denies ConfigMaps labelled `deny: "yes"`, allows everything else.
async fn review(Json(review): Json<Value>) -> Json<Value> {
    let request = &review["request"];
    let denied = request["object"]["metadata"]["labels"]["deny"] == "yes";
    let mut response = json!({"uid": request["uid"], "allowed": !denied});
    if denied {
        response["status"] =
            json!({"code": 403, "message": "labelled deny=yes by the test webhook"});
    }
    Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}

/// Serves `review` over TLS on a free loopback port; returns the URL and the CA to trust.
async fn serve() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/validate", post(review));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://{addr}/validate"), cert.pem())
}

#[tokio::test]
async fn the_apiserver_calls_a_webhook_served_from_the_host() {
    // The binary's one shared control plane, with the fake nodes statefulset_on_fake_nodes needs.
    let cp = ControlPlane::shared(crate::SHARED_NODES).unwrap();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("webhook").await.unwrap();
    let (url, ca) = serve().await;
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": format!("deny-labelled-{ns}")},
        "webhooks": [{
            "name": "deny.test.hanzo.ai",
            "clientConfig": {"url": url, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail", "timeoutSeconds": 5
        }]
    }))
    .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &config)
        .await
        .unwrap();

    let maps: Api<ConfigMap> = Api::namespaced(client, &ns);
    let map = |name: &str, deny: bool| -> ConfigMap {
        let labels = if deny {
            json!({"deny": "yes"})
        } else {
            json!({})
        };
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    };
    // Webhook configurations take effect asynchronously: retry the allowed create briefly.
    let mut allowed = Err(String::new());
    for _ in 0..50 {
        allowed = maps
            .create(&PostParams::default(), &map("plain", false))
            .await
            .map_err(|e| e.to_string());
        if allowed.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    allowed.unwrap();
    let mut denied = String::new();
    for _ in 0..50 {
        match maps
            .create(&PostParams::default(), &map("labelled", true))
            .await
        {
            Err(e) => {
                denied = e.to_string();
                break;
            }
            Ok(_) => {
                // Created before the configuration was seen: remove it and try again.
                let _ = maps.delete("labelled", &Default::default()).await;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    assert!(
        denied.contains("labelled deny=yes by the test webhook"),
        "{denied}\n{}",
        cp.log_tails(30)
    );
}
