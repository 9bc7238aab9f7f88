//! The HTTPS transport of the webhook server, in process on 127.0.0.1: TLS 1.2 and 1.3 with an
//! ECDSA P-256 key, HTTP/1.1 keep-alive with idle and header timeouts, HTTP/2, 413 above the body
//! limit, 400 for malformed reviews, the `?timeout=` deadline for slow bodies, concurrency limits,
//! health, readiness, metrics and a graceful shutdown that finishes in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::metrics::Metrics;
use hanzo_s3_operator::webhook::server::{self, AppState, ServerOptions};
use hanzo_s3_operator::webhook::tls::ServingCert;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/webhooks/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}.request.json")).unwrap()
}

struct Server {
    addr: SocketAddr,
    ca_pem: String,
    cert: Arc<ServingCert>,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(options: ServerOptions) -> Server {
        let ca = Ca::generate("test-ca").unwrap();
        let pair = ca
            .sign_serving(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let cert = Arc::new(ServingCert::default());
        cert.set_pem(&pair.cert_pem, &pair.key_pem).unwrap();
        let state = Arc::new(AppState {
            defaults: DefaultsConfig::default(),
            cluster: None,
            metrics: Metrics::default(),
            cert: cert.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::serve_with(
            listener,
            state.clone(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        Server {
            addr,
            ca_pem: ca.cert_pem().to_owned(),
            cert,
            state,
            stop: Some(stop),
            task,
        }
    }

    fn tls(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    async fn connect_with(
        &self,
        config: Arc<rustls::ClientConfig>,
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap()
    }

    async fn connect(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
        self.connect_with(self.tls(
            &[&rustls::version::TLS13, &rustls::version::TLS12],
            &[b"http/1.1"],
        ))
        .await
    }

    async fn http1(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(self.connect().await))
                .await
                .unwrap();
        tokio::spawn(conn);
        sender
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn post(path: &str, body: impl Into<Bytes>) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

fn get(path: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> (u16, Bytes) {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

/// Reads until the server closes the connection or `limit` passes; returns what was read and
/// whether it closed.
async fn read_until_closed(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

#[tokio::test]
async fn tls_1_2_and_1_3_with_an_ecdsa_p256_certificate() {
    let server = Server::start(ServerOptions::default()).await;
    for (version, expected) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let tls = server
            .connect_with(server.tls(&[version], &[b"http/1.1"]))
            .await;
        let (_, session) = tls.get_ref();
        assert_eq!(session.protocol_version(), Some(expected));
        let leaf = &session.peer_certificates().unwrap()[0];
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).unwrap();
        let spki = cert.public_key();
        assert_eq!(
            spki.algorithm.algorithm.to_id_string(),
            "1.2.840.10045.2.1",
            "id-ecPublicKey"
        );
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap();
        assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7", "prime256v1");
        let names: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["DNSName(localhost)", "IPAddress(7f:00:00:01)"]);
    }
    server.stop().await;
}

#[tokio::test]
async fn reviews_over_one_keep_alive_connection_echo_their_uid() {
    let server = Server::start(ServerOptions::default()).await;
    let mut sender = server.http1().await;
    for (path, name) in [
        ("/mutate?timeout=5s", "create-valid"),
        ("/validate?timeout=5s", "create-valid"),
        ("/validate", "create-invalid"),
        ("/mutate", "delete"),
        ("/validate", "update-removing-a-pool"),
    ] {
        let request = json(&fixture(name));
        let (status, body) = send(&mut sender, post(path, fixture(name))).await;
        assert_eq!(status, 200, "{path} {name}");
        let review = json(&body);
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(review["response"]["uid"], request["request"]["uid"]);
    }
    // The mutating answer's patch applies to the object it was computed for.
    let (_, body) = send(&mut sender, post("/mutate", fixture("create-valid"))).await;
    let review = json(&body);
    assert_eq!(review["response"]["patchType"], "JSONPatch");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(review["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&raw).unwrap();
    let mut object = json(&fixture("create-valid"))["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).unwrap();
    server.stop().await;
}

#[tokio::test]
async fn malformed_reviews_get_400_with_the_reason_never_a_200() {
    let server = Server::start(ServerOptions::default()).await;
    let mut sender = server.http1().await;
    for (body, reason) in [
        (fixture("malformed"), "malformed AdmissionReview"),
        (
            fixture("wrong-kind"),
            "expected apiVersion admission.k8s.io/v1 kind AdmissionReview",
        ),
        (fixture("no-uid"), "AdmissionReview request has no uid"),
        (b"".to_vec(), "malformed AdmissionReview: EOF"),
        (b"\xff\xfe\x00garbage".to_vec(), "malformed AdmissionReview"),
    ] {
        for path in ["/mutate", "/validate"] {
            let (status, text) = send(&mut sender, post(path, body.clone())).await;
            assert_eq!(status, 400, "{path}: {text:?}");
            let text = String::from_utf8_lossy(&text);
            assert!(text.starts_with(reason), "{path}: {text}");
        }
    }
    // Still serving on the same connection.
    let (status, _) = send(&mut sender, post("/validate", fixture("create-valid"))).await;
    assert_eq!(status, 200);
    // Wrong methods and paths are not reviews.
    let (status, _) = send(&mut sender, get("/validate")).await;
    assert_eq!(status, 405);
    let (status, _) = send(&mut sender, post("/other", fixture("create-valid"))).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn bodies_above_the_limit_get_413_declared_or_chunked() {
    let server = Server::start(ServerOptions::default()).await;
    let mut sender = server.http1().await;
    let big = Bytes::from(vec![b' '; server::BODY_LIMIT + 1]);
    let (status, text) = send(&mut sender, post("/validate", big.clone())).await;
    assert_eq!(status, 413, "{text:?}");
    // The oversized body was drained, so the connection is still good for the next review.
    let (status, _) = send(&mut sender, post("/validate", fixture("create-valid"))).await;
    assert_eq!(status, 200);
    // Without a Content-Length (chunked), the limit is found while reading.
    let mut sender = server.http1().await;
    let stream = futures::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| {
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::copy_from_slice(
                    c,
                )))
            })
            .collect::<Vec<_>>(),
    );
    let request = hyper::Request::post("/mutate")
        .header("host", "127.0.0.1")
        .body(http_body_util::StreamBody::new(stream))
        .unwrap();
    let (sender2, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(server.connect().await))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut sender2 = sender2;
    sender2.ready().await.unwrap();
    let response = sender2.send_request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // Just under the limit is read (and refused as JSON, not for its size).
    let mut under = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec();
    under.resize(server::BODY_LIMIT, b' ');
    let (status, text) = send(&mut sender, post("/validate", under)).await;
    assert_eq!(status, 400, "{text:?}");
    assert!(String::from_utf8_lossy(&text).contains("has no request"));
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_times_out_with_the_requests_deadline_without_starving_others() {
    let server = Server::start(ServerOptions::default()).await;
    let mut slow = server.connect().await;
    let started = Instant::now();
    slow.write_all(
        b"POST /validate?timeout=1s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n{\"apiVersion\"",
    )
    .await
    .unwrap();
    slow.flush().await.unwrap();
    // Meanwhile, others are answered at once.
    let mut sender = server.http1().await;
    for _ in 0..20 {
        let (status, _) = send(&mut sender, post("/validate", fixture("create-valid"))).await;
        assert_eq!(status, 200);
    }
    assert!(started.elapsed() < Duration::from_millis(900));
    let (text, _) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_live_past_a_pause_and_are_closed_after_the_idle_timeout() {
    let options = ServerOptions {
        idle_timeout: Duration::from_secs(3),
        header_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let server = Server::start(options).await;
    let mut sender = server.http1().await;
    let (status, _) = send(&mut sender, post("/validate", fixture("create-valid"))).await;
    assert_eq!(status, 200);
    // Idle longer than the header timeout: an idle connection is not a slow request.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = send(&mut sender, post("/validate", fixture("create-valid"))).await;
    assert_eq!(status, 200, "reused after 1.5 s idle");
    // Past the idle timeout the server closes it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        sender.ready().await.is_err() || sender.is_closed(),
        "closed after the idle timeout"
    );
    // The defaults keep idle connections longer than the apiserver's 90 s.
    assert!(ServerOptions::default().idle_timeout > Duration::from_secs(90));
    server.stop().await;
}

#[tokio::test]
async fn a_request_head_that_trickles_is_cut_after_the_header_timeout() {
    let options = ServerOptions {
        header_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let server = Server::start(options).await;
    let mut stuck = server.connect().await;
    let started = Instant::now();
    stuck
        .write_all(b"POST /validate HTTP/1.1\r\nhost: ")
        .await
        .unwrap();
    stuck.flush().await.unwrap();
    let (_, closed) = read_until_closed(&mut stuck, Duration::from_secs(5)).await;
    assert!(closed, "closed");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn http2_is_negotiated_and_serves_concurrent_streams() {
    let server = Server::start(ServerOptions::default()).await;
    let tls = server
        .connect_with(server.tls(
            &[&rustls::version::TLS13, &rustls::version::TLS12],
            &[b"h2", b"http/1.1"],
        ))
        .await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut streams = Vec::new();
    for i in 0..32 {
        let mut sender = sender.clone();
        streams.push(tokio::spawn(async move {
            let name = if i % 2 == 0 {
                "create-valid"
            } else {
                "create-invalid"
            };
            let request = hyper::Request::post("https://127.0.0.1/validate?timeout=5s")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(fixture(name))))
                .unwrap();
            sender.ready().await.unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            assert_eq!(response.status().as_u16(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let review = json(&body);
            assert_eq!(
                review["response"]["uid"],
                json(&fixture(name))["request"]["uid"]
            );
            assert_eq!(review["response"]["allowed"], i % 2 == 0);
        }));
    }
    for s in streams {
        s.await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_gracefully_after_the_idle_timeout() {
    let options = ServerOptions {
        idle_timeout: Duration::from_secs(1),
        ..ServerOptions::default()
    };
    let server = Server::start(options).await;
    let tls = server
        .connect_with(server.tls(&[&rustls::version::TLS13], &[b"h2"]))
        .await;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let started = Instant::now();
    // Busy for longer than the idle timeout: requests keep it open.
    while started.elapsed() < Duration::from_millis(1500) {
        let request = hyper::Request::post("https://127.0.0.1/validate")
            .body(Full::new(Bytes::from(fixture("create-valid"))))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let idle_from = Instant::now();
    // Then idle: the server sends GOAWAY and the connection ends without an error.
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("closed by the server")
        .unwrap()
        .unwrap();
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(600) && idle < Duration::from_secs(3),
        "{idle:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn many_clients_at_once_are_all_answered_with_one_review_at_a_time() {
    let options = ServerOptions {
        max_concurrent_reviews: 1,
        ..ServerOptions::default()
    };
    let server = Arc::new(Server::start(options).await);
    let mut clients = Vec::new();
    for _ in 0..64 {
        let server = server.clone();
        clients.push(tokio::spawn(async move {
            let mut sender = server.http1().await;
            for _ in 0..5 {
                let (status, _) = send(
                    &mut sender,
                    post("/validate?timeout=10s", fixture("create-valid")),
                )
                .await;
                assert_eq!(status, 200);
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    let server = Arc::into_inner(server).unwrap();
    server.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_new_connections_wait_for_a_free_slot() {
    let options = ServerOptions {
        max_connections: 2,
        ..ServerOptions::default()
    };
    let server = Server::start(options).await;
    let first = server.http1().await;
    let _second = server.http1().await;
    // The third TCP connection is made (the kernel's backlog) but not served yet.
    let third = tokio::spawn({
        let (addr, config) = (
            server.addr,
            server.tls(&[&rustls::version::TLS13], &[b"http/1.1"]),
        );
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map(|_| ())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "the third waits while two are open");
    drop(first);
    tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = Server::start(ServerOptions::default()).await;
    let mut sender = server.http1().await;
    let (status, body) = send(&mut sender, get("/healthz")).await;
    assert_eq!((status, body.as_ref()), (200, &b"ok"[..]));
    let (status, body) = send(&mut sender, get("/readyz")).await;
    assert_eq!(status, 200, "{body:?}");
    send(&mut sender, post("/mutate", fixture("create-valid"))).await;
    send(&mut sender, post("/validate", fixture("create-invalid"))).await;
    send(&mut sender, post("/validate", fixture("malformed"))).await;
    let (status, body) = send(&mut sender, get("/metrics")).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    for line in [
        "hanzo_s3_operator_webhook_requests_total{webhook=\"mutate\",verdict=\"patched\"} 1",
        "hanzo_s3_operator_webhook_requests_total{webhook=\"validate\",verdict=\"denied\"} 1",
        "hanzo_s3_operator_webhook_requests_total{webhook=\"validate\",verdict=\"bad_request\"} 1",
        "hanzo_s3_operator_webhook_request_duration_seconds_bucket{le=",
        "hanzo_s3_operator_webhook_in_flight_requests 0",
        "hanzo_s3_operator_webhook_open_connections 1",
        // No reconciler runs in this process: its counters are there, at zero.
        "# TYPE hanzo_s3_operator_reconcile_passes counter",
        "hanzo_s3_operator_reconcile_passes_total 0",
        "hanzo_s3_operator_reconcile_api_writes_total 0",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
    let expiry: i64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("hanzo_s3_operator_webhook_certificate_expiry_timestamp_seconds ")
        })
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let expected = server
        .cert
        .not_after()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(expiry, expected);
    server.stop().await;
}

#[tokio::test]
async fn readiness_waits_for_a_certificate() {
    let state = Arc::new(AppState {
        defaults: DefaultsConfig::default(),
        cluster: None,
        metrics: Metrics::default(),
        cert: Arc::new(ServingCert::default()),
    });
    let app = server::router(state.clone());
    let response = app.clone().oneshot(get_axum("/readyz")).await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let pair = Ca::generate("t")
        .unwrap()
        .sign_serving(&["localhost".into()])
        .unwrap();
    state.cert.set_pem(&pair.cert_pem, &pair.key_pem).unwrap();
    let response = app.oneshot(get_axum("/readyz")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

fn get_axum(path: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_new_certificate_is_served_to_new_connections_without_a_restart() {
    let server = Server::start(ServerOptions::default()).await;
    let mut old_conn = server.http1().await;
    let next = Ca::generate("next-ca").unwrap();
    let pair = next.sign_serving(&["127.0.0.1".into()]).unwrap();
    server.cert.set_pem(&pair.cert_pem, &pair.key_pem).unwrap();
    // The open connection keeps working.
    let (status, _) = send(&mut old_conn, post("/validate", fixture("create-valid"))).await;
    assert_eq!(status, 200);
    // A new one is handed the new certificate: it fails against the old CA only...
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let old_only = tokio_rustls::TlsConnector::from(server.tls(&[&rustls::version::TLS13], &[]))
        .connect(name.clone(), tcp)
        .await;
    assert!(
        old_only.is_err(),
        "the new certificate is not from the old CA"
    );
    // ...and succeeds against the new one.
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(next.cert_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_stops_accepting() {
    let server = Server::start(ServerOptions::default()).await;
    let body = fixture("create-valid");
    let (head, tail) = body.split_at(body.len() / 2);
    let mut in_flight = server.connect().await;
    in_flight
        .write_all(
            format!(
                "POST /validate?timeout=10s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    in_flight.write_all(head).await.unwrap();
    in_flight.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = server.http1().await;
    let addr = server.addr;
    let state = server.state.clone();
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "waits for the request in flight");
    assert!(
        idle.is_closed()
            || tokio::time::timeout(Duration::from_secs(2), async {
                let mut idle = idle;
                idle.ready().await
            })
            .await
            .is_ok_and(|r| r.is_err()),
        "idle keep-alive connections are closed"
    );
    in_flight.write_all(tail).await.unwrap();
    in_flight.flush().await.unwrap();
    let (text, _) = read_until_closed(&mut in_flight, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("0f1c6f8e-0001-4a6b-9d3e-000000000001"),
        "{text}"
    );
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    assert_eq!(state.metrics.in_flight.get(), 0);
}
