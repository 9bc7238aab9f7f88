//! `run --standalone` passes `conformance`, and `conformance` fails a server that breaks the
//! contract (a 200 with an empty uid).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::webhook::tls::{ServingCert, server_config};
use hanzo_testkit::support;
use hyper_util::rt::{TokioExecutor, TokioIo};
use predicates::prelude::*;

#[test]
fn the_standalone_server_passes_every_conformance_check() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let port = support::free_port();
    let _server = support::ChildGuard(
        Command::cargo_bin("hanzo-s3-operator")
            .unwrap()
            .args([
                "run",
                "--standalone",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--ca-out",
            ])
            .arg(&ca)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while (!ca.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_cmd::Command::cargo_bin("hanzo-s3-operator")
        .unwrap()
        .args([
            "conformance",
            "--url",
            &format!("https://127.0.0.1:{port}"),
            "--ca",
        ])
        .arg(&ca)
        .assert()
        .code(0)
        .stdout(predicate::str::is_match(r"/validate create-invalid\s+PASS  contract\+verdict\s+denied 422").unwrap())
        .stdout(predicate::str::is_match(r"/validate no-uid\s+PASS  hardening\s+400").unwrap())
        .stdout(predicate::str::is_match(r"body limit \(413\)\s+PASS  hardening").unwrap())
        .stdout(predicate::str::is_match(r"timeout parameter\s+PASS  hardening\s+stalled body given up after \d+ ms with \?timeout=1s \(HTTP/1.1 408").unwrap())
        .stdout(predicate::str::is_match(r"HTTP/2\s+PASS  hardening\s+ALPN h2, create-invalid: denied 422").unwrap())
        .stdout(predicate::str::contains(
            "24 passed, 0 failed; contract 10/10, verdict 10/10, hardening 14/14",
        ));

    // Another webhook's own fixtures: one case with a validate golden only, the negatives made
    // from it, and the mutating path switched off.
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    std::fs::copy(
        "webhooks/fixtures/create-invalid.request.json",
        fixtures.join("mine.request.json"),
    )
    .unwrap();
    std::fs::write(
        fixtures.join("mine.validate.json"),
        r#"{"response": {"allowed": false, "status": {"code": 422}}}"#,
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("hanzo-s3-operator")
        .unwrap()
        .args([
            "conformance",
            "--url",
            &format!("https://127.0.0.1:{port}"),
            "--mutate-path",
            "",
            "--fixtures",
        ])
        .arg(&fixtures)
        .arg("--ca")
        .arg(&ca)
        .assert()
        .code(0)
        .stdout(
            predicate::str::is_match(r"/validate mine\s+PASS  contract\+verdict\s+denied 422")
                .unwrap(),
        )
        .stdout(
            predicate::str::is_match(r"/validate no-uid \(from mine\)\s+PASS  hardening\s+400")
                .unwrap(),
        )
        .stdout(predicate::str::contains("contract 1/1, verdict 1/1"))
        .get_output()
        .stdout
        .clone();
    assert!(
        !String::from_utf8_lossy(&out).contains("/mutate"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test]
async fn a_server_that_breaks_the_contract_fails() {
    let ca = Ca::generate("bad-ca").unwrap();
    let pair = ca.sign_serving(&["127.0.0.1".into()]).unwrap();
    let cert = Arc::new(ServingCert::default());
    cert.set_pem(&pair.cert_pem, &pair.key_pem).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(cert, None).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}"#;
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(body)),
                    ))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("hanzo-s3-operator")
            .unwrap()
            .args(["conformance", "--url", &format!("https://{addr}"), "--ca"])
            .arg(&ca_file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = |pattern: &str| regex_lite_match(&stdout, pattern);
    assert!(
        line("/validate create-valid FAIL contract uid \"\" does not echo"),
        "{stdout}"
    );
    assert!(
        line(
            "/validate malformed FAIL hardening judged it instead of refusing it: HTTP 200, allowed=true"
        ),
        "{stdout}"
    );
    assert!(
        line(
            "timeout parameter FAIL hardening answered HTTP/1.1 200 OK to a body it never received"
        ),
        "{stdout}"
    );
}

/// Whether some line equals `pattern` once runs of spaces are folded.
fn regex_lite_match(text: &str, pattern: &str) -> bool {
    let fold = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    text.lines().any(|l| fold(l).starts_with(&fold(pattern)))
}
