//! `conformance`: drives a live Tenant webhook with the fixtures and the protocol negatives.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATIONS};

/// Check a live Tenant admission webhook against the AdmissionReview v1 contract.
///
/// Sends the fixtures of webhooks/fixtures (valid, invalid, update removing a pool, delete, dry
/// run, malformed) to /mutate and /validate and checks uid echo, apiVersion/kind, patch encoding and
/// that the patch applies, denial status codes, 400 for malformed reviews, 413 above the body
/// limit, the ?timeout= deadline for a stalled body, keep-alive reuse (also after an idle pause),
/// HTTP/2 and TLS 1.2 and 1.3. Prints a table; exit code 1 when any check fails.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  \
    hanzo-s3-operator run --standalone --listen 127.0.0.1:8443 --ca-out /tmp/ca.pem &\n  \
    hanzo-s3-operator conformance --url https://127.0.0.1:8443 --ca /tmp/ca.pem")]
pub struct ConformanceArgs {
    /// Base URL of the webhook server (https://host:port).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// PEM CA to trust for the server's certificate (default: the system roots).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Pause this long on an open connection before reusing it (the apiserver reuses connections
    /// idle for up to 90 s; `--idle-seconds 95` checks exactly that).
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    pub idle_seconds: u64,
    /// The name the server's certificate must carry, when the URL reaches it by another (e.g. a
    /// `kubectl port-forward` to 127.0.0.1 of a webhook whose certificate names its Service).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../webhooks/fixtures/", $name, ".request.json")),
            include_str!(concat!("../../webhooks/fixtures/", $name, ".mutate.json")),
            include_str!(concat!("../../webhooks/fixtures/", $name, ".validate.json")),
        )
    };
}

const FIXTURES: [(&str, &str, &str, &str); 8] = [
    fixture!("create-valid"),
    fixture!("create-invalid"),
    fixture!("update-removing-a-pool"),
    fixture!("delete"),
    fixture!("dry-run-create"),
    fixture!("malformed"),
    fixture!("wrong-kind"),
    fixture!("no-uid"),
];

struct Check {
    name: String,
    passed: bool,
    detail: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ConnError(String);

/// How long the endpoint may take to accept its first connection.
const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

struct Target {
    host: String,
    port: u16,
    /// The name verified in the server's certificate (and sent as SNI).
    tls_name: String,
    tls: Arc<rustls::ClientConfig>,
}

fn client_config(
    ca: Option<&PathBuf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("bad CA in {}: {e}", path.display()))?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(target: &Target, tls: Arc<rustls::ClientConfig>) -> Result<Tls, ConnError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| ConnError(format!("connect: {e}")))?;
    let name = rustls::pki_types::ServerName::try_from(target.tls_name.clone())
        .map_err(|e| ConnError(e.to_string()))?;
    TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| ConnError(format!("TLS: {e}")))
}

struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

async fn open(target: &Target) -> Result<Conn, ConnError> {
    let tls = connect(target, target.tls.clone()).await?;
    let (sender, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| ConnError(e.to_string()))?;
    tokio::spawn(conn);
    Ok(Conn { sender })
}

impl Conn {
    async fn post(
        &mut self,
        host: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ConnError> {
        self.sender
            .ready()
            .await
            .map_err(|e| ConnError(format!("connection not reusable: {e}")))?;
        let req = hyper::Request::post(path)
            .header("host", host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ConnError(e.to_string()))?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| ConnError(e.to_string()))?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| ConnError(e.to_string()))?
            .to_bytes()
            .to_vec();
        Ok((status, body))
    }
}

/// Checks one answer against its golden file's essentials (not byte equality: another server may
/// word its messages differently and still honour the contract).
fn judge_answer(
    endpoint: &str,
    request: &Value,
    golden: &Value,
    status: u16,
    body: &[u8],
) -> Result<String, String> {
    if golden.get("httpStatus").is_some() {
        return if status == 400 {
            Ok("400".into())
        } else {
            Err(format!("expected HTTP 400, got {status}"))
        };
    }
    if status != 200 {
        return Err(format!(
            "expected HTTP 200, got {status}: {}",
            String::from_utf8_lossy(body)
        ));
    }
    let review: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not JSON: {e}"))?;
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(format!(
            "wrong GVK: {} {}",
            review["apiVersion"], review["kind"]
        ));
    }
    let response = &review["response"];
    if response["uid"] != request["request"]["uid"] {
        return Err(format!(
            "uid {} does not echo {}",
            response["uid"], request["request"]["uid"]
        ));
    }
    let allowed = response["allowed"].as_bool().ok_or("no allowed")?;
    if allowed != golden["response"]["allowed"].as_bool().unwrap_or(!allowed) {
        return Err(format!(
            "allowed={allowed}, expected {}",
            golden["response"]["allowed"]
        ));
    }
    if !allowed {
        let code = response["status"]["code"].as_i64().unwrap_or(0);
        let expected = golden["response"]["status"]["code"].as_i64();
        if code != 422 && code != 403 {
            return Err(format!("denial status.code {code}, expected 422 or 403"));
        }
        if expected.is_some_and(|e| e != code) {
            return Err(format!(
                "denial status.code {code}, expected {}",
                expected.unwrap_or_default()
            ));
        }
        if response["status"]["message"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return Err("a denial without a status.message".into());
        }
    }
    match (endpoint, response.get("patch")) {
        ("/validate", Some(_)) => return Err("the validating webhook returned a patch".into()),
        (_, Some(patch)) => {
            if response["patchType"] != "JSONPatch" {
                return Err(format!("patchType {}", response["patchType"]));
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(patch.as_str().unwrap_or_default())
                .map_err(|e| format!("patch is not base64: {e}"))?;
            let ops: json_patch::Patch = serde_json::from_slice(&raw)
                .map_err(|e| format!("patch is not a JSONPatch: {e}"))?;
            let mut object = request["request"]["object"].clone();
            json_patch::patch(&mut object, &ops)
                .map_err(|e| format!("patch does not apply: {e}"))?;
            crate::admission::parse_tenant(&object)
                .map_err(|v| format!("patched object is no Tenant: {}", v.message()))?;
            return Ok(format!("allowed, {} patch op(s) apply", ops.0.len()));
        }
        _ => {}
    }
    Ok(if allowed {
        "allowed".into()
    } else {
        format!("denied {}", response["status"]["code"])
    })
}

async fn run_checks(args: &ConformanceArgs) -> Result<Vec<Check>, String> {
    let url = args.url.trim_end_matches('/');
    let authority = url
        .strip_prefix("https://")
        .ok_or("the URL must start with https://")?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_matches(['[', ']']).to_owned(),
            p.parse::<u16>().map_err(|_| "bad port")?,
        ),
        None => (authority.to_owned(), 443),
    };
    let both = [&rustls::version::TLS13, &rustls::version::TLS12];
    let tls = Arc::new(client_config(args.ca.as_ref(), &both, &[b"http/1.1"])?);
    let target = Target {
        host: host.clone(),
        port,
        tls_name: args.server_name.clone().unwrap_or_else(|| host.clone()),
        tls,
    };
    // An endpoint just started (or a `kubectl port-forward` just backgrounded) may not accept
    // connections yet: give it a moment before the first check counts.
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    while TcpStream::connect((target.host.as_str(), target.port))
        .await
        .is_err()
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut checks = Vec::new();
    let mut push = |name: String, result: Result<String, String>| {
        let passed = result.is_ok();
        checks.push(Check {
            name,
            passed,
            detail: result.unwrap_or_else(|e| e),
        });
    };

    // Every fixture on one connection per endpoint: also proves keep-alive reuse.
    for endpoint in ["/mutate", "/validate"] {
        let mut conn = match open(&target).await {
            Ok(c) => c,
            Err(e) => {
                push(format!("connect {endpoint}"), Err(e.0));
                continue;
            }
        };
        let mut reused = 0;
        for (name, request, mutate, validate) in FIXTURES {
            let golden: Value = serde_json::from_str(if endpoint == "/mutate" {
                mutate
            } else {
                validate
            })
            .unwrap_or(Value::Null);
            let request_json: Value = serde_json::from_str(request).unwrap_or(Value::Null);
            let result = match conn
                .post(
                    &authority_host(&host, port),
                    &format!("{endpoint}?timeout=5s"),
                    request.as_bytes().to_vec(),
                )
                .await
            {
                Ok((status, body)) => {
                    reused += 1;
                    judge_answer(endpoint, &request_json, &golden, status, &body)
                }
                Err(e) => {
                    // The server closed the connection (e.g. after a 400): continue on a new one.
                    match open(&target).await {
                        Ok(c) => conn = c,
                        Err(e2) => return Err(e2.0),
                    }
                    Err(e.0)
                }
            };
            push(format!("{endpoint} {name}"), result);
        }
        push(
            format!("{endpoint} keep-alive reuse"),
            if reused == FIXTURES.len() {
                Ok(format!("{reused} requests on one connection"))
            } else {
                Err(format!(
                    "only {reused} of {} requests reused the connection",
                    FIXTURES.len()
                ))
            },
        );
    }

    let body_limit = async {
        let mut conn = open(&target).await.map_err(|e| e.0)?;
        let big = vec![b' '; 8 * 1024 * 1024];
        match conn
            .post(&authority_host(&host, port), "/validate", big)
            .await
        {
            Ok((413, _)) => Ok("413 for an 8 MiB body".to_owned()),
            Ok((status, _)) => Err(format!("expected 413 for an 8 MiB body, got {status}")),
            Err(e) => Err(format!("no answer to an 8 MiB body: {}", e.0)),
        }
    };
    push("body limit (413)".into(), body_limit.await);

    // A request whose body stalls must be given up at its ?timeout=, not held open.
    let deadline = async {
        let mut tls = connect(&target, target.tls.clone())
            .await
            .map_err(|e| e.0)?;
        let head = format!(
            "POST /validate?timeout=1s HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"apiVersion\"",
            authority_host(&host, port)
        );
        tls.write_all(head.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        tls.flush().await.map_err(|e| format!("write: {e}"))?;
        let started = Instant::now();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
        let took = started.elapsed();
        let status = String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or("connection closed")
            .to_owned();
        match read {
            Ok(_) if status.starts_with("HTTP/1.1 2") => {
                Err(format!("answered {status} to a body it never received"))
            }
            Ok(_) if took < Duration::from_secs(3) => Ok(format!(
                "stalled body given up after {} ms with ?timeout=1s ({status})",
                took.as_millis()
            )),
            Ok(_) => Err(format!(
                "stalled body given up only after {} ms with ?timeout=1s",
                took.as_millis()
            )),
            Err(_) => Err("stalled body still held open 5 s after ?timeout=1s".to_owned()),
        }
    };
    push("timeout parameter".into(), deadline.await);

    let idle = async {
        let mut conn = open(&target).await.map_err(|e| e.0)?;
        let body = FIXTURES[0].1.as_bytes().to_vec();
        let host = authority_host(&host, port);
        conn.post(&host, "/validate", body.clone())
            .await
            .map_err(|e| e.0)?;
        tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
        match conn.post(&host, "/validate", body).await {
            Ok((200, _)) => Ok(format!(
                "connection reused after {} s idle",
                args.idle_seconds
            )),
            Ok((status, _)) => Err(format!(
                "status {status} after {} s idle",
                args.idle_seconds
            )),
            Err(e) => Err(format!(
                "connection closed after {} s idle: {}",
                args.idle_seconds, e.0
            )),
        }
    };
    push("keep-alive idle".into(), idle.await);

    for (label, versions) in [
        ("TLS 1.3", &[&rustls::version::TLS13][..]),
        ("TLS 1.2", &[&rustls::version::TLS12][..]),
    ] {
        let result = async {
            let config = Arc::new(client_config(args.ca.as_ref(), versions, &[b"http/1.1"])?);
            connect(&target, config)
                .await
                .map(|_| "handshake ok".to_owned())
                .map_err(|e| e.0)
        };
        push(label.into(), result.await);
    }
    let h2 = async {
        let config = Arc::new(client_config(
            args.ca.as_ref(),
            &both,
            &[b"h2", b"http/1.1"],
        )?);
        let tls = connect(&target, config).await.map_err(|e| e.0)?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(format!(
                "ALPN {:?}, not h2",
                tls.get_ref().1.alpn_protocol().map(String::from_utf8_lossy)
            ));
        }
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        tokio::spawn(conn);
        let (name, request, _, validate) = FIXTURES[1];
        let req = hyper::Request::post(format!("https://{}/validate", authority_host(&host, port)))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(request)))
            .map_err(|e| e.to_string())?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| format!("HTTP/2 request: {e}"))?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let request_json: Value = serde_json::from_str(request).unwrap_or(Value::Null);
        let golden: Value = serde_json::from_str(validate).unwrap_or(Value::Null);
        judge_answer("/validate", &request_json, &golden, status, &body)
            .map(|detail| format!("ALPN h2, {name}: {detail}"))
    };
    push("HTTP/2".into(), h2.await);
    Ok(checks)
}

fn authority_host(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

pub fn run(args: &ConformanceArgs) -> u8 {
    let checks = match super::block_on(run_checks(args), EXIT_UNREADABLE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
    for c in &checks {
        println!(
            "{:<width$}  {}  {}",
            c.name,
            if c.passed { "PASS" } else { "FAIL" },
            c.detail
        );
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    println!("{} passed, {} failed", checks.len() - failed, failed);
    if failed == 0 {
        EXIT_OK
    } else {
        EXIT_VIOLATIONS
    }
}
