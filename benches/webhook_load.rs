//! Load benchmark of the webhook server (not a test): AdmissionReviews of about 2, 10 and 50 KB to
//! /validate and /mutate of the real binary (`run --standalone`); HTTP/1.1 keep-alive, a new
//! connection per request, and HTTP/2 streams on one connection (the apiserver's way); 1, 16 and 64
//! requests in flight; req/s, p50 and p99, next to a bare axum + rustls echo server answering the
//! same bodies in the same run (the ceiling), and optionally next to a baseline build of the binary
//! (`HANZO_BENCH_BASELINE`). Loopback only; every cell is bounded in requests and seconds.
//!
//!   benches/webhook.sh [--baseline REV]      # writes benches/results/webhook.md

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes as AxumBytes;
use axum::routing::post;
use bytes::Bytes;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::webhook::tls::{ServingCert, server_config};
use hanzo_testkit::bench;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Per cell (a smoke run: 30 requests, 0.1 s).
fn max_requests() -> usize {
    if bench::smoke() { 30 } else { 10_000 }
}

fn max_seconds() -> f64 {
    if bench::smoke() { 0.1 } else { 2.0 }
}

struct Cell {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

async fn tls_connect(
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> http1::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

async fn send(sender: &mut http1::SendRequest<Full<Bytes>>, path: &str, body: &Bytes) {
    sender.ready().await.unwrap();
    let req = hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.into_body().collect().await.unwrap();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// HTTP/1.1, one connection per in-flight worker, reused.
    KeepAlive,
    /// HTTP/1.1, a TCP connect and a full TLS handshake per request.
    NewConnection,
    /// HTTP/2, one connection, every in-flight worker a stream on it (what the apiserver does).
    Http2,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keep-alive",
            Mode::NewConnection => "new connection",
            Mode::Http2 => "HTTP/2, one connection",
        }
    }
}

async fn h2_connect(
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

async fn send_h2(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    path: &str,
    body: &Bytes,
) {
    sender.ready().await.unwrap();
    let req = hyper::Request::post(format!("https://127.0.0.1{path}"))
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.into_body().collect().await.unwrap();
}

async fn cell(
    addr: std::net::SocketAddr,
    path: &'static str,
    tls: Arc<rustls::ClientConfig>,
    tls_h2: Arc<rustls::ClientConfig>,
    body: Bytes,
    in_flight: usize,
    mode: Mode,
) -> Cell {
    let h2 = if mode == Mode::Http2 {
        Some(h2_connect(addr, tls_h2).await)
    } else {
        None
    };
    let started = Instant::now();
    let per_worker = (max_requests() / in_flight).max(1);
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (tls, body, mut h2) = (tls.clone(), body.clone(), h2.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            let mut sender = if mode == Mode::KeepAlive {
                Some(tls_connect(addr, tls.clone()).await)
            } else {
                None
            };
            for _ in 0..per_worker {
                // At least one request each: on a busy machine the connection alone can outlast
                // a smoke run's bound, and a cell with no sample has no percentile.
                if !latencies.is_empty() && started.elapsed().as_secs_f64() > max_seconds() {
                    break;
                }
                let t = Instant::now();
                match (sender.as_mut(), h2.as_mut()) {
                    (Some(s), _) => send(s, path, &body).await,
                    (None, Some(h2)) => send_h2(h2, path, &body).await,
                    (None, None) => {
                        send(&mut tls_connect(addr, tls.clone()).await, path, &body).await
                    }
                }
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Cell {
        rps: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

/// A server under load: this checkout's release binary, a baseline binary, or the echo ceiling.
struct Target {
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    tls_h2: Arc<rustls::ClientConfig>,
    _process: Option<bench::Standalone>,
}

/// `hanzo-s3-operator run --standalone` from `binary`, with its default logging (info, to a file
/// nobody reads): the production path, allocator and all.
async fn start_binary(
    label: &'static str,
    binary: &std::path::Path,
    dir: &std::path::Path,
) -> Target {
    let log = std::fs::File::create(dir.join(format!("{label}.log"))).unwrap();
    let process = bench::start_standalone(binary, dir, label, log.into(), "info").await;
    Target {
        addr: process.addr,
        tls: process.tls.clone(),
        tls_h2: process.tls_h2.clone(),
        _process: Some(process),
    }
}

/// The ceiling: the same rustls + hyper + axum stack, in this process, answering each body with
/// itself.
async fn start_echo() -> Target {
    let ca = Ca::generate("bench-ca").unwrap();
    let pair = ca.sign_serving(&["127.0.0.1".into()]).unwrap();
    let cert = Arc::new(ServingCert::default());
    cert.set_pem(&pair.cert_pem, &pair.key_pem).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(cert, None).unwrap()));
    let app = Router::new().route("/echo", post(|body: AxumBytes| async move { body }));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
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
    let (tls, tls_h2) = bench::client_configs(ca.cert_pem().as_bytes());
    Target {
        addr,
        tls,
        tls_h2,
        _process: None,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let ours = start_binary("ours", std::path::Path::new(env!("CARGO_BIN_EXE_hanzo-s3-operator")), dir.path()).await;
        // HANZO_BENCH_BASELINE: another build of the binary (benches/webhook.sh --baseline REV
        // builds one), measured in the same run for a before/after comparison.
        let baseline_bin = std::env::var_os("HANZO_BENCH_BASELINE").map(std::path::PathBuf::from);
        let before = match &baseline_bin {
            Some(bin) => Some(start_binary("before", bin, dir.path()).await),
            None => None,
        };
        let echo = start_echo().await;
        // The Go webhook on controller-runtime (peers/controller-runtime), same rules for this
        // body: what a Go team would run instead.
        let peer_process = bench::start_peer(&bench::build_peer(), dir.path());
        let (peer_tls, peer_tls_h2) = bench::client_configs(peer_process.ca_pem.as_bytes());
        let peer = Target {
            addr: peer_process.addr,
            tls: peer_tls,
            tls_h2: peer_tls_h2,
            _process: None,
        };

        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        let mut header = String::from("| body | mode | in flight | path | ours req/s | ours p50 | ours p99 |");
        let mut rule = String::from("|---|---|---|---|---|---|---|");
        if before.is_some() {
            header.push_str(" before req/s | before p50 | before p99 |");
            rule.push_str("---|---|---|");
        }
        header.push_str(" peer req/s | peer p50 | peer p99 | echo req/s | echo p50 | echo p99 | ours/echo | peer/echo | ours/peer |");
        rule.push_str("---|---|---|---|---|---|---|---|---|");
        if before.is_some() {
            header.push_str(" before/echo | ours/before |");
            rule.push_str("---|---|");
        }
        let mut table = format!("{header}\n{rule}\n");
        println!("{header}");
        for pools in [2usize, 11, 57] {
            let body = Bytes::from(bench::create_review(pools));
            let size = format!("{} KB", body.len() / 1024);
            if !selected("HANZO_WEBHOOK_SIZES", &size) {
                continue;
            }
            for mode in [Mode::KeepAlive, Mode::NewConnection, Mode::Http2] {
                if !selected("HANZO_WEBHOOK_MODES", mode.label()) {
                    continue;
                }
                for in_flight in [1usize, 16, 64] {
                    let run = |t: &Target, path: &'static str| cell(t.addr, path, t.tls.clone(), t.tls_h2.clone(), body.clone(), in_flight, mode);
                    let e = run(&echo, "/echo").await;
                    for path in ["/validate", "/mutate"] {
                        let o = run(&ours, path).await;
                        let b = match &before {
                            Some(t) => Some(run(t, path).await),
                            None => None,
                        };
                        let g = run(&peer, path).await;
                        let mut line = format!("| {size} | {} | {in_flight} | {path} | {:.0} | {} | {} |", mode.label(), o.rps, ms(o.p50), ms(o.p99));
                        if let Some(b) = &b {
                            line.push_str(&format!(" {:.0} | {} | {} |", b.rps, ms(b.p50), ms(b.p99)));
                        }
                        line.push_str(&format!(" {:.0} | {} | {} |", g.rps, ms(g.p50), ms(g.p99)));
                        line.push_str(&format!(" {:.0} | {} | {} | {:.2} | {:.2} | {:.2} |", e.rps, ms(e.p50), ms(e.p99), o.rps / e.rps, g.rps / e.rps, o.rps / g.rps));
                        if let Some(b) = &b {
                            line.push_str(&format!(" {:.2} | {:.2} |", b.rps / e.rps, o.rps / b.rps));
                        }
                        println!("{line}");
                        table.push_str(&line);
                        table.push('\n');
                    }
                }
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark: webhook load\n");
        let command = match std::env::var("HANZO_BENCH_BASELINE_REV") {
            Ok(rev) => format!("benches/webhook.sh --baseline {rev}"),
            Err(_) => "benches/webhook.sh".to_owned(),
        };
        let _ = writeln!(out, "- command: `{command}` (runs `cargo bench --bench webhook_load`, a release build)");
        let _ = writeln!(out, "- date: {}", utc_now());
        let _ = writeln!(out, "- machine: {}; client, servers and echo share it (loopback)", machine());
        let _ = writeln!(out, "- rustc: {}", command_output("rustc", &["--version"]));
        let _ = writeln!(out, "- ours: this checkout's binary, `hanzo-s3-operator run --standalone` (a process of its own, default logging at info to a file), commit {}", command_output("git", &["describe", "--always", "--dirty"]));
        if let Ok(rev) = std::env::var("HANZO_BENCH_BASELINE_REV") {
            let _ = writeln!(out, "- before: the same binary built from commit {rev}, run the same way, measured in the same run");
        }
        let _ = writeln!(out, "- each cell: at most {} requests or {} s, every answer checked for HTTP 200; /validate and /mutate of a Tenant AdmissionReview (CREATE, no defaults set, so /mutate answers with a patch; no cluster checks)", max_requests(), max_seconds());
        let _ = writeln!(out, "- keep-alive: HTTP/1.1, each in-flight worker holds one connection; new connection: HTTP/1.1, a TCP connect and a full TLS handshake (no resumption) per request; HTTP/2: one connection, each in-flight worker a stream on it (the kube-apiserver calls webhooks over HTTP/2)");
        let _ = writeln!(out, "- peer: peers/controller-runtime, a Go webhook on sigs.k8s.io/controller-runtime v0.25.2 with the same defaults and, for this body, the same checks (benches/admission_apply.rs asserts they agree), its own process, Go's TLS and HTTP/2");
        let _ = writeln!(out, "- echo: the same rustls + hyper + axum stack, in the benchmark's process, answering the body with itself: the ceiling for this transport; ours/echo is the share of that ceiling the webhook reaches\n");
        out.push_str(&table);
        std::fs::write(bench::results_path("webhook.md"), out).unwrap();
    });
}

/// Whether a cell's `value` is among those `var` lists (comma-separated; all when unset), so a
/// profile can load one cell, e.g. HANZO_WEBHOOK_SIZES="10 KB" HANZO_WEBHOOK_MODES=keep-alive.
fn selected(var: &str, value: &str) -> bool {
    std::env::var(var).map_or(true, |list| list.split(',').any(|v| v.trim() == value))
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn utc_now() -> String {
    command_output("date", &["-u", "+%Y-%m-%dT%H:%MZ"])
}

/// Cores, memory and CPU model, from /proc.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("? GiB".to_owned(), |kb| {
            format!("{:.0} GiB", kb / 1048576.0)
        });
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |v| {
            v.trim_start_matches([' ', '\t', ':']).trim()
        });
    format!("{cores} cores, {gib}, {model}")
}
