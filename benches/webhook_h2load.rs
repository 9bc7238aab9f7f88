//! The webhook's share of its own transport, measured by h2load (nghttp2's HTTP/2 load generator,
//! a client that is not ours): a 10 KB Tenant AdmissionReview POSTed over one HTTP/2 connection
//! with 16 streams in flight (how the kube-apiserver calls webhooks) to /validate and /mutate, and
//! a GET of the same server's /healthz, whose answer costs nothing: /validate ÷ /healthz is the
//! share of the server's ceiling a review leaves. The goals: /validate at least 0.35, /mutate at least
//! 0.30. Rounds alternate the endpoints (and, with `HANZO_BENCH_BASELINE`, a baseline binary
//! started beside ours), and the median round counts. Loopback only; each run is bounded in
//! requests and seconds.
//!
//!   benches/webhook.sh [--baseline REV]      # also writes benches/results/webhook-h2load.md

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use hanzo_testkit::bench;

const STREAMS: &str = "16";
const ENDPOINTS: [&str; 3] = ["/healthz", "/validate", "/mutate"];

fn requests() -> &'static str {
    if bench::smoke() { "200" } else { "20000" }
}

fn rounds() -> usize {
    if bench::smoke() { 1 } else { 5 }
}

/// Requests per second of one h2load run (a POST of `body`, or a GET without one), after checking
/// that every request was answered 2xx.
fn h2load(url: &str, body: Option<&Path>) -> f64 {
    let mut command = Command::new("h2load");
    command.args([
        "-n",
        requests(),
        "-c",
        "1",
        "-m",
        STREAMS,
        "-T",
        "10",
        "-N",
        "10",
    ]);
    if let Some(body) = body {
        command
            .args(["-H", "content-type: application/json", "-d"])
            .arg(body);
    }
    let output = command
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run h2load ({e}): install it with `apt-get install nghttp2-client` (scripts/setup.sh does)")
        });
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "h2load {url} failed:\n{text}");
    let counts = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no requests line from h2load:\n{text}"));
    let number = |label: &str| -> u64 {
        counts
            .split(',')
            .find_map(|part| {
                part.trim()
                    .strip_suffix(label)?
                    .trim()
                    .rsplit(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    let total: u64 = requests().parse().unwrap();
    assert_eq!(
        number("succeeded"),
        total,
        "not every request to {url} answered 2xx:\n{text}"
    );
    let finished = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .unwrap_or_else(|| panic!("no finished line from h2load:\n{text}"));
    finished
        .split(',')
        .nth(1)
        .and_then(|s| s.trim().strip_suffix(" req/s"))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read req/s from {finished:?}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("review-10KB.json");
    // The same 10 KB review as webhook_load's.
    let bytes = bench::create_review(11);
    std::fs::write(&body, &bytes).unwrap();
    let mut binaries: Vec<(String, PathBuf)> = vec![(
        "ours".to_owned(),
        PathBuf::from(env!("CARGO_BIN_EXE_hanzo-s3-operator")),
    )];
    if let Some(baseline) = std::env::var_os("HANZO_BENCH_BASELINE") {
        let rev = std::env::var("HANZO_BENCH_BASELINE_REV").unwrap_or_else(|_| "baseline".into());
        binaries.push((format!("before ({rev})"), PathBuf::from(baseline)));
    }
    let servers: Vec<_> = binaries
        .iter()
        .map(|(label, binary)| {
            let log =
                std::fs::File::create(dir.path().join(format!("{}.log", label.replace(' ', "_"))))
                    .unwrap();
            let label_file = label.split(' ').next().unwrap().to_owned();
            runtime.block_on(bench::start_standalone(
                binary,
                dir.path(),
                &label_file,
                log.into(),
                "info",
            ))
        })
        .collect();
    // rps[binary][endpoint] over rounds, the endpoints and binaries alternating within a round.
    let mut rps = vec![vec![Vec::new(); ENDPOINTS.len()]; servers.len()];
    for _ in 0..rounds() {
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            for (b, server) in servers.iter().enumerate() {
                // /healthz is GET-only (a POST is refused before its body is read, and h2load
                // then loses the connection): the ceiling is a request without a body, a
                // stricter one than the same body answered at once.
                let body = (*endpoint != "/healthz").then_some(body.as_path());
                rps[b][e].push(h2load(&format!("https://{}{endpoint}", server.addr), body));
            }
        }
    }
    let mut table = String::from(
        "| binary | /healthz req/s | /validate req/s | /mutate req/s | /validate ÷ /healthz (goal ≥ 0.35) | /mutate ÷ /healthz (goal ≥ 0.30) |\n|---|---|---|---|---|---|\n",
    );
    for (b, (label, _)) in binaries.iter().enumerate() {
        let [h, v, m] = [0, 1, 2].map(|e| median(rps[b][e].clone()));
        let _ = writeln!(
            table,
            "| {label} | {h:.0} | {v:.0} | {m:.0} | {:.2} | {:.2} |",
            v / h,
            m / h
        );
    }
    drop(servers);
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark: the webhook under h2load\n");
    let command = match std::env::var("HANZO_BENCH_BASELINE_REV") {
        Ok(rev) => format!("benches/webhook.sh --baseline {rev}"),
        Err(_) => "benches/webhook.sh".to_owned(),
    };
    let _ = writeln!(
        out,
        "- command: `{command}` (runs `cargo bench --bench webhook_h2load`, a release build)"
    );
    let _ = writeln!(out, "- date: {}", bench::chrono_now());
    let _ = writeln!(
        out,
        "- machine: {} cores; h2load and the servers share it (loopback)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = writeln!(
        out,
        "- h2load: `h2load -n {} -c 1 -m {STREAMS} -H 'content-type: application/json' -d review-10KB.json https://127.0.0.1:PORT/ENDPOINT` ({} bytes: CREATE of an 11-pool Tenant, no defaults set); every answer checked (2xx); /healthz is asked with a GET of no body (it is GET-only), so the ceiling does not include receiving 10 KB: a stricter ceiling than the echo of webhook.md",
        requests(),
        bytes.len()
    );
    let _ = writeln!(
        out,
        "- servers: `hanzo-s3-operator run --standalone` (default logging at info to a file), each its own process; {} rounds, endpoints and binaries alternating within each, median round shown",
        rounds()
    );
    let _ = writeln!(
        out,
        "- the ratio compares a review with the cheapest answer the same server gives over the same kind of connection: the share of the transport's ceiling a review leaves\n"
    );
    out.push_str(&table);
    std::fs::write(bench::results_path("webhook-h2load.md"), &out).unwrap();
    print!("{out}");
}
