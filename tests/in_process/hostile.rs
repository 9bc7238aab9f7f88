//! The hostile-input catalogue: what an attacker can send the webhook server, each with the answer
//! it must get and a bound on the time it may take, all against the real HTTPS server (the binary,
//! `run --standalone`, a process of its own so its memory can be read). While the attacks run, a
//! probe sends a well-formed review every 100 ms: every one must be answered, promptly. At the end
//! the server's peak RSS must stay under [`RSS_BOUND_MIB`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hanzo_testkit::{PoolBuilder, TenantBuilder, support};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Peak RSS the server may reach over the whole catalogue: the goal for 16 concurrent 3 MB
/// reviews (measured: 27 MiB idle, 63 MiB peak, debug build, 7 MiB bodies and 1,000 connections
/// included).
const RSS_BOUND_MIB: u64 = 128;
/// No probe may wait longer than this for its answer while the attacks run.
const PROBE_BOUND: Duration = Duration::from_secs(2);

struct Server {
    _child: support::ChildGuard,
    pid: u32,
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    tls_h2: Arc<rustls::ClientConfig>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
        .args([
            "run",
            "--standalone",
            "--listen",
            &addr.to_string(),
            "--ca-out",
        ])
        .arg(&ca_file)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let child = support::ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ca_file.exists() || TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&std::fs::read(&ca_file).unwrap()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut h2 = config.clone();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    Server {
        _child: child,
        pid,
        addr,
        tls: Arc::new(config),
        tls_h2: Arc::new(h2),
        _dir: dir,
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix(" kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls(server: &Server) -> Tls {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(server.tls.clone())
        .connect(name, tcp)
        .await
        .unwrap()
}

/// POST over a fresh HTTP/1.1 connection; the status and the answer.
async fn request(
    server: &Server,
    method: &str,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls(server).await))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let answer = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (status, answer)
}

fn review_of(object: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "hostile", "kind": {"group": "minio.min.io", "version": "v2", "kind": "Tenant"},
        "namespace": "storage", "name": "t", "operation": "CREATE", "object": object}})
}

fn pool(i: usize) -> Value {
    PoolBuilder::named(format!("p{i}"), 4, 1).build()
}

fn tenant() -> Value {
    TenantBuilder::new("t")
        .namespace("storage")
        .configuration("t-env")
        .pool(pool(0))
        .build()
}

/// The review with `object` as raw JSON text (for what serde_json would not write).
fn raw_review(object: &str) -> Vec<u8> {
    let text = review_of(json!("OBJECT")).to_string();
    text.replace("\"OBJECT\"", object).into_bytes()
}

fn verdict(answer: &[u8]) -> (bool, u64, String) {
    let v: Value = serde_json::from_slice(answer)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(answer)));
    let r = &v["response"];
    (
        r["allowed"].as_bool().unwrap(),
        r["status"]["code"].as_u64().unwrap_or(0),
        r["status"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

/// Expects HTTP 200 with a denial of `code` whose message contains `says`.
async fn denied(
    server: &Server,
    path: &str,
    body: Vec<u8>,
    code: u64,
    says: &str,
) -> Result<(), String> {
    let (status, answer) = request(
        server,
        "POST",
        path,
        body,
        &[("content-type", "application/json")],
    )
    .await;
    if status != 200 {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    let (allowed, got, message) = verdict(&answer);
    if allowed || got != code || !message.contains(says) {
        return Err(format!("allowed {allowed}, code {got}, message {message}"));
    }
    Ok(())
}

/// Expects the plain HTTP status `want` (400, 413, 404, ...).
async fn refused(
    server: &Server,
    method: &str,
    path: &str,
    body: Vec<u8>,
    want: u16,
) -> Result<(), String> {
    let (status, answer) = request(
        server,
        method,
        path,
        body,
        &[("content-type", "application/json")],
    )
    .await;
    if status != want {
        return Err(format!(
            "HTTP {status} instead of {want}: {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    Ok(())
}

/// Whether the server closed `stream` within `within` (reads EOF or an error).
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// One class of attack: its name, and what must come of it.
struct Class {
    name: &'static str,
    /// The most it may take (answers and deadlines included).
    bound: Duration,
    outcome: Result<(), String>,
}

async fn class(
    name: &'static str,
    bound: Duration,
    attack: impl std::future::Future<Output = Result<(), String>>,
) -> Class {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(bound, attack).await {
        Ok(r) => r,
        Err(_) => Err(format!("took longer than {bound:?}")),
    };
    eprintln!(
        "{name}: {:?} in {:.2}s",
        outcome.as_ref().map(|_| "ok"),
        started.elapsed().as_secs_f64()
    );
    Class {
        name,
        bound,
        outcome,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_gets_its_answers_while_well_formed_reviews_are_served() {
    let server = Arc::new(start().await);
    let idle_rss = rss_kib(server.pid, "VmRSS:");

    // The probe: a well-formed review every 100 ms, each answered 200 within PROBE_BOUND.
    let stop = Arc::new(AtomicBool::new(false));
    let worst_ms = Arc::new(AtomicU64::new(0));
    let probe = {
        let (server, stop, worst_ms) = (server.clone(), stop.clone(), worst_ms.clone());
        tokio::spawn(async move {
            let mut answered = 0u32;
            let body = review_of(tenant()).to_string().into_bytes();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (status, answer) = tokio::time::timeout(
                    PROBE_BOUND,
                    request(&server, "POST", "/validate", body.clone(), &[]),
                )
                .await
                .unwrap_or_else(|_| {
                    panic!("a well-formed review was not answered within {PROBE_BOUND:?}")
                });
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
                assert!(verdict(&answer).0, "the probe's Tenant is valid");
                worst_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                answered += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answered
        })
    };

    let s = &*server;
    let short = Duration::from_secs(10);
    let mut results = Vec::new();

    // Malformed JSON and envelopes: HTTP 400 with the reason, never a 200.
    results.push(
        class("json nested 100,000 deep in the object", short, async {
            // Well-formed JSON, an absurd object: the size limits name where it gets too deep.
            denied(
                s,
                "/validate",
                raw_review(&format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
                422,
                "nested deeper than 64 levels",
            )
            .await
        })
        .await,
    );
    results.push(
        class("json nested 100,000 deep in the envelope", short, async {
            let mut body = review_of(tenant()).to_string();
            body = body.replacen(
                "\"uid\"",
                &format!(
                    "\"userInfo\":{}{},\"uid\"",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                ),
                1,
            );
            // In a field the handler never reads: skipped (without recursion), the review judged
            // on its merits.
            let (status, answer) = request(s, "POST", "/validate", body.into_bytes(), &[]).await;
            (status == 200 && verdict(&answer).0)
                .then_some(())
                .ok_or(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&answer)
                ))
        })
        .await,
    );
    results.push(
        class("invalid UTF-8", short, async {
            let mut body = review_of(tenant()).to_string().into_bytes();
            let at = body.len() / 2;
            body[at] = 0xff;
            refused(s, "POST", "/validate", body, 400).await
        })
        .await,
    );
    results.push(
        class(
            "an empty body",
            short,
            refused(s, "POST", "/validate", Vec::new(), 400),
        )
        .await,
    );
    for (name, envelope) in [
        (
            "apiVersion a number",
            json!({"apiVersion": 1, "kind": "AdmissionReview", "request": {"uid": "u"}}),
        ),
        (
            "kind a list",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": [], "request": {"uid": "u"}}),
        ),
        (
            "request a string",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": "x"}),
        ),
        (
            "uid a number",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}),
        ),
        (
            "request.kind a string",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "kind": "Tenant"}}),
        ),
        (
            "operation an object",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "operation": {}}}),
        ),
        (
            "dryRun a string",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "dryRun": "yes"}}),
        ),
        (
            "no request at all",
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
        ),
    ] {
        results.push(
            class(
                name,
                short,
                refused(
                    s,
                    "POST",
                    "/validate",
                    envelope.to_string().into_bytes(),
                    400,
                ),
            )
            .await,
        );
    }
    results.push(
        class("a CREATE review without an object", short, async {
            let mut r = review_of(tenant());
            r["request"].as_object_mut().unwrap().remove("object");
            refused(s, "POST", "/mutate", r.to_string().into_bytes(), 400).await
        })
        .await,
    );

    // Hostile Tenants: denied with the field named, quickly, with bounded memory.
    results.push(
        // No float holds it, so neither the apiserver's decoder nor the size walk (which decodes
        // every value, also in fields nothing reads) accepts it: the review is malformed, and
        // the answer says where.
        class("a number like 1e400", short, async {
            let body = raw_review(
                &tenant()
                    .to_string()
                    .replace("\"servers\":4", "\"servers\":1e400"),
            );
            let (status, answer) = request(
                s,
                "POST",
                "/validate",
                body,
                &[("content-type", "application/json")],
            )
            .await;
            let answer = String::from_utf8_lossy(&answer);
            match status {
                400 if answer.contains("number out of range at line 1") => Ok(()),
                _ => Err(format!("HTTP {status}: {answer}")),
            }
        })
        .await,
    );
    results.push(
        class("-0 servers", short, async {
            denied(
                s,
                "/validate",
                raw_review(
                    &tenant()
                        .to_string()
                        .replace("\"servers\":4", "\"servers\":-0"),
                ),
                422,
                "spec.pools[0].servers",
            )
            .await
        })
        .await,
    );
    results.push(
        class("duplicate keys", short, async {
            denied(
                s,
                "/validate",
                raw_review(
                    &tenant()
                        .to_string()
                        .replace("\"servers\":4", "\"servers\":4,\"servers\":0"),
                ),
                422,
                "spec.pools[0].servers: Duplicate value: this key is written more than once",
            )
            .await
        })
        .await,
    );
    results.push(
        class("NUL bytes in a name", short, async {
            let mut t = tenant();
            t["spec"]["pools"][0]["name"] = json!("p\u{0}0");
            denied(
                s,
                "/validate",
                review_of(t).to_string().into_bytes(),
                422,
                "spec.pools[0].name",
            )
            .await
        })
        .await,
    );
    results.push(
        class("a name of 10,000 characters", short, async {
            let mut t = tenant();
            t["metadata"]["name"] = json!("a".repeat(10_000));
            denied(
                s,
                "/validate",
                review_of(t).to_string().into_bytes(),
                422,
                "metadata.name",
            )
            .await
        })
        .await,
    );
    results.push(class("quantity 1e999Ti", short, async {
        let mut t = tenant();
        t["spec"]["pools"][0]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] = json!("1e999Ti");
        denied(s, "/validate", review_of(t).to_string().into_bytes(), 422, "storage").await
    }).await);
    results.push(class("quantity -1", short, async {
        let mut t = tenant();
        t["spec"]["pools"][0]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] = json!("-1");
        denied(s, "/validate", review_of(t).to_string().into_bytes(), 422, "storage").await
    }).await);
    results.push(
        class("10,000 pools", short, async {
            let mut t = tenant();
            t["spec"]["pools"] = (0..10_000).map(pool).collect::<Vec<_>>().into();
            denied(
                s,
                "/mutate",
                review_of(t).to_string().into_bytes(),
                422,
                "spec.pools: Too many: 10000",
            )
            .await
        })
        .await,
    );
    results.push(
        class("100,000 labels", short, async {
            let mut t = tenant();
            t["metadata"]["labels"] = (0..100_000)
                .map(|i| (format!("l{i}"), json!("v")))
                .collect::<serde_json::Map<_, _>>()
                .into();
            denied(
                s,
                "/validate",
                review_of(t).to_string().into_bytes(),
                422,
                "metadata.labels: Too many: 100000",
            )
            .await
        })
        .await,
    );
    results.push(
        class("a 7 MiB body of tiny pools", short, async {
            let mut t = tenant();
            let one = pool(0).to_string().len();
            t["spec"]["pools"] = (0..(7 * 1024 * 1024 - 2048) / (one + 1))
                .map(|_| json!({}))
                .collect::<Vec<_>>()
                .into();
            let body = review_of(t).to_string().into_bytes();
            assert!(body.len() <= 7 * 1024 * 1024, "{}", body.len());
            denied(s, "/mutate", body, 422, "spec.pools: Too many").await
        })
        .await,
    );
    results.push(
        class(
            "7 MiB + 1 byte",
            short,
            refused(s, "POST", "/validate", vec![b' '; 7 * 1024 * 1024 + 1], 413),
        )
        .await,
    );

    // Reviews that must pass through untouched.
    results.push(
        class("a review for another kind", short, async {
            let mut r = review_of(json!({"apiVersion": "v1", "kind": "Pod"}));
            r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
            let (status, answer) =
                request(s, "POST", "/validate", r.to_string().into_bytes(), &[]).await;
            (status == 200 && verdict(&answer).0)
                .then_some(())
                .ok_or(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&answer)
                ))
        })
        .await,
    );
    results.push(
        class(
            "unknown fields survive the defaulting patch",
            short,
            async {
                let mut t = tenant();
                t["spec"]["someFutureField"] = json!({"keep": "me"});
                t["spec"]["pools"][0]["alsoUnknown"] = json!(1);
                let (status, answer) = request(
                    s,
                    "POST",
                    "/mutate",
                    review_of(t.clone()).to_string().into_bytes(),
                    &[],
                )
                .await;
                let v: Value =
                    serde_json::from_slice(&answer).map_err(|e| format!("HTTP {status}: {e}"))?;
                use base64::Engine;
                let patch: json_patch::Patch = serde_json::from_slice(
                    &base64::engine::general_purpose::STANDARD
                        .decode(v["response"]["patch"].as_str().ok_or("no patch")?)
                        .unwrap(),
                )
                .unwrap();
                json_patch::patch(&mut t, &patch).map_err(|e| e.to_string())?;
                (t["spec"]["someFutureField"]["keep"] == "me"
                    && t["spec"]["pools"][0]["alsoUnknown"] == 1
                    && t["spec"]["image"].is_string())
                .then_some(())
                .ok_or(format!("after the patch: {t}"))
            },
        )
        .await,
    );
    results.push(
        class("a timeout parameter that is garbage", short, async {
            let (status, _) = request(
                s,
                "POST",
                "/validate?timeout=banana&x=%ff",
                review_of(tenant()).to_string().into_bytes(),
                &[],
            )
            .await;
            (status == 200)
                .then_some(())
                .ok_or(format!("HTTP {status}"))
        })
        .await,
    );
    results.push(
        class(
            "GET on /validate",
            short,
            refused(s, "GET", "/validate", Vec::new(), 405),
        )
        .await,
    );
    results.push(
        class(
            "an unknown path",
            short,
            refused(s, "POST", "/../../etc/passwd", Vec::new(), 404),
        )
        .await,
    );

    // HTTP and TLS abuse: cut off within the server's deadlines, nobody else waits.
    let slow = Duration::from_secs(20);
    let slow_attacks = async {
        let chunked = class("a chunked body that never ends", slow, async {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tls(s).await))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let (tx, rx) =
                tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(1);
            let feeder = tokio::spawn(async move {
                for _ in 0..60 {
                    if tx
                        .send(Ok(Frame::data(Bytes::from_static(b" "))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
            let req = hyper::Request::post("/validate?timeout=3s")
                .header("host", "127.0.0.1")
                .body(StreamBody::new(tokio_stream_from(rx)))
                .unwrap();
            let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
            feeder.abort();
            (res.status().as_u16() == 408)
                .then_some(())
                .ok_or(format!("HTTP {}", res.status()))
        });
        let headers = class("headers that never end", slow, async {
            let mut stream = tls(s).await;
            stream
                .write_all(b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\n")
                .await
                .unwrap();
            let trickle = async {
                loop {
                    if stream.write_all(b"x-a: b\r\n").await.is_err() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if closed_within(&mut stream, Duration::from_millis(1)).await {
                        return true;
                    }
                }
            };
            tokio::time::timeout(Duration::from_secs(15), trickle)
                .await
                .ok()
                .filter(|c| *c)
                .map(drop)
                .ok_or("the connection stayed open past the header timeout".into())
        });
        let handshakes = class("TLS handshakes that never finish (50)", slow, async {
            let mut streams = Vec::new();
            for i in 0..50 {
                let mut tcp = TcpStream::connect(s.addr).await.unwrap();
                if i % 2 == 0 {
                    // Half a ClientHello: a record header promising 512 bytes, then nothing.
                    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                        .await
                        .unwrap();
                }
                streams.push(tcp);
            }
            for tcp in &mut streams {
                if !closed_within(tcp, Duration::from_secs(15)).await {
                    return Err("a stalled handshake was not cut".into());
                }
            }
            Ok(())
        });
        let idle = class("1,000 idle TLS connections", slow, async {
            let mut open = Vec::new();
            for _ in 0..1000 {
                open.push(tls(s).await);
            }
            // With them all open, a review still gets its answer.
            let (status, _) = request(
                s,
                "POST",
                "/validate",
                review_of(tenant()).to_string().into_bytes(),
                &[],
            )
            .await;
            drop(open);
            (status == 200)
                .then_some(())
                .ok_or(format!("HTTP {status}"))
        });
        let reset = class(
            "HTTP/2 rapid reset (5,000 streams opened and cancelled)",
            slow,
            async {
                let tcp = TcpStream::connect(s.addr).await.unwrap();
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let stream = tokio_rustls::TlsConnector::from(s.tls_h2.clone())
                    .connect(name, tcp)
                    .await
                    .unwrap();
                let (sender, conn) = hyper::client::conn::http2::handshake(
                    TokioExecutor::new(),
                    TokioIo::new(stream),
                )
                .await
                .unwrap();
                tokio::spawn(conn);
                let body = Bytes::from(review_of(tenant()).to_string());
                for _ in 0..5000 {
                    let mut sender = sender.clone();
                    if sender.ready().await.is_err() {
                        break; // the server sent GOAWAY: allowed
                    }
                    let req = hyper::Request::post("/validate")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    // Started and dropped at once: HEADERS then RST_STREAM.
                    let call = sender.send_request(req);
                    drop(tokio::time::timeout(Duration::from_micros(1), call).await);
                }
                Ok(())
            },
        );
        tokio::join!(chunked, headers, handshakes, idle, reset)
    };
    let (a, b, c, d, e) = slow_attacks.await;
    results.extend([a, b, c, d, e]);
    results.push(
        class("thousands of header lines", short, async {
            let mut stream = tls(s).await;
            let mut head = String::from("POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\n");
            for i in 0..10_000 {
                head.push_str(&format!("x-{i}: y\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            let text = String::from_utf8_lossy(&answer);
            (text.is_empty() || text.starts_with("HTTP/1.1 431"))
                .then_some(())
                .ok_or(format!("answered: {}", text.lines().next().unwrap_or("")))
        })
        .await,
    );
    results.push(
        class("a 1 MB URL", short, async {
            let mut stream = tls(s).await;
            let _ = stream
                .write_all(
                    format!("POST /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(1 << 20)).as_bytes(),
                )
                .await;
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
            let text = String::from_utf8_lossy(&answer);
            (text.is_empty() || text.starts_with("HTTP/1.1 4"))
                .then_some(())
                .ok_or(format!("answered: {}", text.lines().next().unwrap_or("")))
        })
        .await,
    );
    results.push(
        class("plain HTTP to the TLS port", short, async {
            let mut tcp = TcpStream::connect(s.addr).await.unwrap();
            tcp.write_all(b"POST /validate HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            closed_within(&mut tcp, Duration::from_secs(5))
                .await
                .then_some(())
                .ok_or("kept talking plain HTTP".into())
        })
        .await,
    );

    stop.store(true, Ordering::Relaxed);
    let answered = probe
        .await
        .expect("the probe saw every review answered in time");
    let peak_mib = rss_kib(server.pid, "VmHWM:") / 1024;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|c| {
            c.outcome
                .as_ref()
                .err()
                .map(|e| format!("{} (bound {:?}): {e}", c.name, c.bound))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(results.len() >= 25, "{} classes", results.len());
    assert!(
        answered >= 20,
        "the probe ran through the attacks ({answered} reviews)"
    );
    assert!(
        peak_mib < RSS_BOUND_MIB,
        "peak RSS {peak_mib} MiB (idle {} MiB)",
        idle_rss / 1024
    );
    eprintln!(
        "{} classes; probe: {answered} reviews, worst {} ms; server RSS idle {} MiB, peak {peak_mib} MiB",
        results.len(),
        worst_ms.load(Ordering::Relaxed),
        idle_rss / 1024
    );
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
