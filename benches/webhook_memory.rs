//! Memory of the webhook server under large reviews (not a test): the release binary runs as
//! `run --standalone` in a process of its own, 16 clients send a review of about 3 MB each at
//! once, and the server's peak RSS (VmHWM, reset between scenarios through clear_refs) is read from
//! /proc. The goal: 16 concurrent 3 MB reviews keep peak RSS under 128 MiB (one 1.7 MB review of
//! 10,000 pools took the server from 10 MiB to 176 MiB before the size limits).
//!
//!   cargo bench --bench webhook_memory     # writes benches/results/memory.md

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hanzo_testkit::bench;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const CLIENTS: usize = 16;

fn review(object: &Value, old: Option<&Value>) -> Bytes {
    let mut request = json!({"uid": "memory", "kind": {"group": "minio.min.io", "version": "v2", "kind": "Tenant"},
        "namespace": "storage", "name": "bench", "operation": if old.is_some() { "UPDATE" } else { "CREATE" }, "object": object});
    if let Some(old) = old {
        request["oldObject"] = old.clone();
    }
    Bytes::from(serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})).unwrap())
}

/// About `bytes` of Tenant within the size limits: 100 pools, and env entries with long values.
fn valid_tenant_of(bytes: usize) -> Value {
    let mut t = bench::tenant_of(100);
    let base = t.to_string().len();
    let entries = 900;
    let value_len = bytes.saturating_sub(base) / entries;
    t["spec"]["env"] = (0..entries)
        .map(|i| json!({"name": format!("HANZO_BENCH_{i}"), "value": "v".repeat(value_len.max(1))}))
        .collect::<Vec<_>>()
        .into();
    t
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

async fn send(
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    path: &'static str,
    body: Bytes,
) -> (String, Duration) {
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let answer = res.into_body().collect().await.unwrap().to_bytes();
    let verdict = match serde_json::from_slice::<Value>(&answer) {
        Ok(v) if v["response"]["allowed"] == true => format!("{status} allowed"),
        Ok(_) => format!("{status} denied"),
        Err(_) => status.to_string(),
    };
    (verdict, started.elapsed())
}

/// A fresh server process (freed memory stays with a process, so each scenario gets its own).
struct Server {
    process: bench::Standalone,
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    _dir: tempfile::TempDir,
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"));
    let process =
        bench::start_standalone(binary, dir.path(), "server", Stdio::null(), "warn").await;
    let server = Server {
        addr: process.addr,
        tls: process.tls.clone(),
        process,
        _dir: dir,
    };
    // Warm up (TLS, allocator arenas) before the idle RSS is read.
    let small = review(&bench::tenant_of(2), None);
    for path in ["/mutate", "/validate"] {
        send(server.addr, server.tls.clone(), path, small.clone()).await;
    }
    server
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let table = runtime.block_on(async {
        // A smoke run: bodies of about 300 KB.
        let scale = if bench::smoke() { 10 } else { 1 };
        let over = bench::tenant_of(3_400 / scale);
        let valid = valid_tenant_of((3 << 20) / scale);
        let valid_old = valid_tenant_of((3 << 20) / scale);
        let scenarios: Vec<(&str, &'static str, Bytes)> = vec![
            ("3,400 pools (over the size limits)", "/mutate", review(&over, None)),
            ("3,400 pools (over the size limits)", "/validate", review(&over, None)),
            ("100 pools, 900 env entries of 3 KB (within the limits)", "/mutate", review(&valid, None)),
            ("100 pools, 900 env entries of 3 KB (within the limits)", "/validate", review(&valid, None)),
            ("UPDATE: old and new of 3 MB each (within the limits)", "/validate", review(&valid, Some(&valid_old))),
        ];
        let mut table = format!(
            "| review | endpoint | body | answers ({CLIENTS} at once) | slowest | idle RSS | peak RSS | above idle / ({CLIENTS} x body) |\n|---|---|---|---|---|---|---|---|\n"
        );
        for (what, path, body) in scenarios {
            let server = start_server().await;
            let pid = server.process.child.id();
            let idle = rss_kib(pid, "VmRSS:");
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
            let sends = (0..CLIENTS).map(|_| tokio::spawn(send(server.addr, server.tls.clone(), path, body.clone())));
            let mut verdicts = std::collections::BTreeMap::new();
            let mut slowest = Duration::ZERO;
            for s in sends {
                let (verdict, took) = s.await.unwrap();
                *verdicts.entry(verdict).or_insert(0) += 1;
                slowest = slowest.max(took);
            }
            let peak = rss_kib(pid, "VmHWM:");
            let above = peak.saturating_sub(idle) as f64;
            let answers = verdicts.iter().map(|(c, n)| format!("{n} x {c}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                table,
                "| {what} | {path} | {:.1} MB | {answers} | {:.0} ms | {:.1} MiB | {:.1} MiB | {:.2} |",
                body.len() as f64 / 1e6,
                slowest.as_secs_f64() * 1000.0,
                idle as f64 / 1024.0,
                peak as f64 / 1024.0,
                above * 1024.0 / (CLIENTS as f64 * body.len() as f64)
            );
        }
        table
    });
    let mut out = String::from("# Webhook server memory under large reviews\n\n");
    let _ = writeln!(out, "- command: `cargo bench --bench webhook_memory`");
    let _ = writeln!(
        out,
        "- date: {}",
        output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        out,
        "- machine: {} cores; rustc: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        output("rustc", &["--version"])
    );
    let _ = writeln!(
        out,
        "- server: the release binary, `run --standalone`, a fresh process per scenario (default limits: 7 MiB bodies, 32 MiB of bodies in flight, reviews judged at once bounded by cores); peak RSS is its VmHWM, reset after warm-up"
    );
    let _ = writeln!(
        out,
        "- each scenario: {CLIENTS} clients send one review each at the same moment, each over its own TLS connection; answers are HTTP status and verdict"
    );
    let _ = writeln!(
        out,
        "- goal: peak RSS under 128 MiB for 16 concurrent 3 MB reviews; before the size limits, one 1.7 MB review of 10,000 pools took the server from 10 MiB to 176 MiB and one of 40,000 pools (6.7 MB) to 519 MiB\n"
    );
    out.push_str(&table);
    std::fs::write(bench::results_path("memory.md"), &out).unwrap();
    print!("{out}");
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
