//! `conformance`: drives a live admission webhook with AdmissionReview fixtures and the protocol
//! negatives, and says which rule each answer meets or breaks.

mod fixtures;
mod judge;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATIONS};
pub use judge::Rule;

/// Check a live admission webhook against the AdmissionReview v1 contract.
///
/// Sends the Tenant fixtures of webhooks/fixtures (valid, invalid, update removing a pool, delete,
/// dry run), or with --fixtures another webhook's own, to the mutating and validating paths, plus
/// three reviews the apiserver never sends (malformed, v1beta1, no uid). Each check is reported
/// under the rule it tests: contract (uid echo, apiVersion/kind, allowed, patch encoding and that
/// the patch applies: what the apiserver relies on), verdict (the fixture's expected answer and
/// denial code) and hardening (refusing the negatives, the body limit, the ?timeout= deadline for a
/// stalled body, denial messages, keep-alive also after an idle pause, HTTP/2, TLS 1.2 and 1.3).
/// Prints a table; exit code 1 when a check of a --require'd rule fails.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator run --standalone --listen 127.0.0.1:8443 --ca-out /tmp/ca.pem &\n  \
    hanzo-s3-operator conformance --url https://127.0.0.1:8443 --ca /tmp/ca.pem\n  \
    hanzo-s3-operator conformance --url https://127.0.0.1:9443 --ca ca.pem \\\n    \
    --fixtures my-reviews/ --validate-path /validate-pod --mutate-path '' --require contract")]
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
    /// A directory of another webhook's AdmissionReviews instead of the Tenant fixtures:
    /// `<case>.request.json` (AdmissionReview v1 with a uid), optionally with the expected answers
    /// `<case>.mutate.json` / `<case>.validate.json` (`{"response": {"allowed": false, "status":
    /// {"code": 403}}}`; without one only the contract is judged). The malformed, v1beta1 and
    /// uid-less negatives are made from the first case.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
    /// The mutating webhook's path ('' when the server has none).
    #[arg(long, value_name = "PATH", default_value = "/mutate")]
    pub mutate_path: String,
    /// The validating webhook's path ('' when the server has none).
    #[arg(long, value_name = "PATH", default_value = "/validate")]
    pub validate_path: String,
    /// The rules whose failures fail the run (exit code 1); failures of the others are printed.
    #[arg(
        long,
        value_name = "RULES",
        value_enum,
        value_delimiter = ',',
        default_value = "contract,verdict,hardening"
    )]
    pub require: Vec<Rule>,
}

/// Which webhook a request goes to (goldens differ: only a mutating one may patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Mutate,
    Validate,
}

struct Check {
    name: String,
    /// The rules this check exercises, in order (a later one is judged only when the earlier
    /// ones held).
    rules: Vec<Rule>,
    /// The rule the answer broke, if any.
    broken: Option<Rule>,
    detail: String,
}

impl Check {
    fn label(&self) -> String {
        match self.broken {
            Some(rule) => rule.label().to_owned(),
            None => self
                .rules
                .iter()
                .map(|r| r.label())
                .collect::<Vec<_>>()
                .join("+"),
        }
    }

    /// Whether the check exercised `rule` and the answer held it (an earlier rule broken means
    /// this one was never reached, which counts as not held).
    fn holds(&self, rule: Rule) -> Option<bool> {
        let exercised = self.rules.contains(&rule) || self.broken == Some(rule);
        exercised.then(|| self.broken.is_none_or(|broken| broken > rule))
    }
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

async fn run_checks(args: &ConformanceArgs) -> Result<Vec<Check>, String> {
    let fixtures = match &args.fixtures {
        Some(dir) => fixtures::from_dir(dir).map_err(|e| e.to_string())?,
        None => fixtures::builtin(),
    };
    let endpoints: Vec<(Endpoint, &str)> = [
        (Endpoint::Mutate, args.mutate_path.as_str()),
        (Endpoint::Validate, args.validate_path.as_str()),
    ]
    .into_iter()
    .filter(|(_, path)| !path.is_empty())
    .collect();
    if let Some((_, path)) = endpoints.iter().find(|(_, p)| !p.starts_with('/')) {
        return Err(format!("a webhook path must start with '/', got {path:?}"));
    }
    // The path the server-wide checks (body limit, timeout, idle, HTTP/2) are sent to.
    let probe_path = endpoints
        .iter()
        .find(|(e, _)| *e == Endpoint::Validate)
        .or(endpoints.first())
        .map(|(_, p)| (*p).to_owned())
        .ok_or("both webhook paths are empty: nothing to check")?;
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
    let mut push = |name: String, rules: Vec<Rule>, result: Result<String, judge::Broken>| {
        let (broken, detail) = match result {
            Ok(detail) => (None, detail),
            Err(b) => (Some(b.rule), b.why),
        };
        checks.push(Check {
            name,
            rules,
            broken,
            detail,
        });
    };
    let hardening = |why: String| judge::broken(Rule::Hardening, why);
    let authority_host = authority_host(&host, port);

    // Every fixture on one connection per endpoint: also proves keep-alive reuse.
    for &(endpoint, path) in &endpoints {
        let mut conn = match open(&target).await {
            Ok(c) => c,
            Err(e) => {
                push(
                    format!("connect {path}"),
                    vec![Rule::Contract],
                    Err(judge::broken(Rule::Contract, e.0)),
                );
                continue;
            }
        };
        let mut reused = 0;
        for fixture in &fixtures {
            let rules = judge::rules_of(fixture, endpoint);
            let result = match conn
                .post(
                    &authority_host,
                    &format!("{path}?timeout=5s"),
                    fixture.request.clone(),
                )
                .await
            {
                Ok((status, body)) => {
                    reused += 1;
                    judge::judge_answer(endpoint, fixture, status, &body)
                }
                Err(e) => {
                    // The server closed the connection (e.g. after a 400): continue on a new one.
                    match open(&target).await {
                        Ok(c) => conn = c,
                        Err(e2) => return Err(e2.0),
                    }
                    // No answer breaks the first rule the request exercises.
                    Err(judge::broken(rules[0], e.0))
                }
            };
            push(format!("{path} {}", fixture.name), rules, result);
        }
        push(
            format!("{path} keep-alive reuse"),
            vec![Rule::Hardening],
            if reused == fixtures.len() {
                Ok(format!("{reused} requests on one connection"))
            } else {
                Err(hardening(format!(
                    "only {reused} of {} requests reused the connection",
                    fixtures.len()
                )))
            },
        );
    }

    // The apiserver itself caps what it sends; a server that buffers any body is open to anyone
    // who can reach it. Refusing in-band (HTTP 200, status.code 413) bounds it as well.
    let body_limit = async {
        let mut conn = open(&target).await.map_err(|e| hardening(e.0))?;
        let big = vec![b' '; 8 * 1024 * 1024];
        match conn.post(&authority_host, &probe_path, big).await {
            Ok((413, _)) => Ok("413 for an 8 MiB body".to_owned()),
            Ok((200, body))
                if serde_json::from_slice(&body)
                    .ok()
                    .and_then(|review| judge::in_band_code(&review))
                    == Some(413) =>
            {
                Ok("refused in-band: HTTP 200, allowed=false, status.code 413".to_owned())
            }
            Ok((status, _)) => Err(hardening(format!(
                "expected 413 for an 8 MiB body, got {status}"
            ))),
            Err(e) => Err(hardening(format!("no answer to an 8 MiB body: {}", e.0))),
        }
    };
    push(
        "body limit (413)".into(),
        vec![Rule::Hardening],
        body_limit.await,
    );

    // A request whose body stalls must be given up at its ?timeout=, not held open.
    let deadline = async {
        let mut tls = connect(&target, target.tls.clone())
            .await
            .map_err(|e| hardening(e.0))?;
        let head = format!(
            "POST {probe_path}?timeout=1s HTTP/1.1\r\nhost: {authority_host}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"apiVersion\"",
        );
        tls.write_all(head.as_bytes())
            .await
            .map_err(|e| hardening(format!("write: {e}")))?;
        tls.flush()
            .await
            .map_err(|e| hardening(format!("write: {e}")))?;
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
            Ok(_) if status.starts_with("HTTP/1.1 2") => Err(hardening(format!(
                "answered {status} to a body it never received"
            ))),
            Ok(_) if took < Duration::from_secs(3) => Ok(format!(
                "stalled body given up after {} ms with ?timeout=1s ({status})",
                took.as_millis()
            )),
            Ok(_) => Err(hardening(format!(
                "stalled body given up only after {} ms with ?timeout=1s",
                took.as_millis()
            ))),
            Err(_) => Err(hardening(
                "stalled body still held open 5 s after ?timeout=1s".to_owned(),
            )),
        }
    };
    push(
        "timeout parameter".into(),
        vec![Rule::Hardening],
        deadline.await,
    );

    let first = fixtures
        .iter()
        .find(|f| !f.is_negative())
        .ok_or("no fixture the apiserver could send")?;
    let idle = async {
        let mut conn = open(&target).await.map_err(|e| hardening(e.0))?;
        conn.post(&authority_host, &probe_path, first.request.clone())
            .await
            .map_err(|e| hardening(e.0))?;
        tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
        match conn
            .post(&authority_host, &probe_path, first.request.clone())
            .await
        {
            Ok((200, _)) => Ok(format!(
                "connection reused after {} s idle",
                args.idle_seconds
            )),
            Ok((status, _)) => Err(hardening(format!(
                "status {status} after {} s idle",
                args.idle_seconds
            ))),
            Err(e) => Err(hardening(format!(
                "connection closed after {} s idle: {}",
                args.idle_seconds, e.0
            ))),
        }
    };
    push("keep-alive idle".into(), vec![Rule::Hardening], idle.await);

    for (label, versions) in [
        ("TLS 1.3", &[&rustls::version::TLS13][..]),
        ("TLS 1.2", &[&rustls::version::TLS12][..]),
    ] {
        let result = async {
            let config = Arc::new(
                client_config(args.ca.as_ref(), versions, &[b"http/1.1"]).map_err(hardening)?,
            );
            connect(&target, config)
                .await
                .map(|_| "handshake ok".to_owned())
                .map_err(|e| hardening(e.0))
        };
        push(label.into(), vec![Rule::Hardening], result.await);
    }

    // HTTP/2 with a fixture that has a verdict (the Tenant fixtures: the invalid one).
    let h2_fixture = fixtures
        .iter()
        .find(|f| f.name == "create-invalid")
        .unwrap_or(first);
    let h2_endpoint = endpoints
        .iter()
        .find(|(_, p)| *p == probe_path)
        .map_or(Endpoint::Validate, |(e, _)| *e);
    let h2 = async {
        let config = Arc::new(
            client_config(args.ca.as_ref(), &both, &[b"h2", b"http/1.1"]).map_err(hardening)?,
        );
        let tls = connect(&target, config).await.map_err(|e| hardening(e.0))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(hardening(format!(
                "ALPN {:?}, not h2",
                tls.get_ref().1.alpn_protocol().map(String::from_utf8_lossy)
            )));
        }
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .map_err(|e| hardening(format!("HTTP/2 handshake: {e}")))?;
        tokio::spawn(conn);
        let req = hyper::Request::post(format!("https://{authority_host}{probe_path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(h2_fixture.request.clone())))
            .map_err(|e| hardening(e.to_string()))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| hardening(format!("HTTP/2 request: {e}")))?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| hardening(e.to_string()))?
            .to_bytes();
        judge::judge_answer(h2_endpoint, h2_fixture, status, &body)
            .map(|detail| format!("ALPN h2, {}: {detail}", h2_fixture.name))
    };
    push("HTTP/2".into(), vec![Rule::Hardening], h2.await);
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
            "{:<width$}  {}  {:<16}  {}",
            c.name,
            if c.broken.is_none() { "PASS" } else { "FAIL" },
            c.label(),
            c.detail
        );
    }
    let failed = checks.iter().filter(|c| c.broken.is_some()).count();
    let by_rule: Vec<String> = [Rule::Contract, Rule::Verdict, Rule::Hardening]
        .into_iter()
        .filter_map(|rule| {
            let held: Vec<bool> = checks.iter().filter_map(|c| c.holds(rule)).collect();
            let required = if args.require.contains(&rule) {
                ""
            } else {
                " (not required)"
            };
            (!held.is_empty()).then(|| {
                let passed = held.iter().filter(|h| **h).count();
                format!("{} {passed}/{}{required}", rule.label(), held.len())
            })
        })
        .collect();
    println!(
        "{} passed, {} failed; {}",
        checks.len() - failed,
        failed,
        by_rule.join(", ")
    );
    exit_code(&checks, &args.require)
}

/// 1 when a check broke a required rule: a webhook of another kind can be held to the contract
/// alone, and still be shown what hardening it lacks.
fn exit_code(checks: &[Check], require: &[Rule]) -> u8 {
    if checks
        .iter()
        .any(|c| c.broken.is_some_and(|rule| require.contains(&rule)))
    {
        EXIT_VIOLATIONS
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rules: &[Rule], broken: Option<Rule>) -> Check {
        Check {
            name: "c".into(),
            rules: rules.to_vec(),
            broken,
            detail: String::new(),
        }
    }

    #[test]
    fn a_broken_rule_fails_the_run_only_when_required() {
        let checks = [
            check(&[Rule::Contract, Rule::Verdict], None),
            check(&[Rule::Hardening], Some(Rule::Hardening)),
        ];
        assert_eq!(exit_code(&checks, &[Rule::Contract]), EXIT_OK);
        assert_eq!(
            exit_code(&checks, &[Rule::Contract, Rule::Hardening]),
            EXIT_VIOLATIONS
        );
    }

    #[test]
    fn a_broken_contract_leaves_the_verdict_unheld_and_labels_the_row() {
        let c = check(&[Rule::Contract, Rule::Verdict], Some(Rule::Contract));
        assert_eq!(c.holds(Rule::Contract), Some(false));
        assert_eq!(c.holds(Rule::Verdict), Some(false));
        assert_eq!(c.holds(Rule::Hardening), None);
        assert_eq!(c.label(), "contract");
        let c = check(&[Rule::Contract, Rule::Verdict], Some(Rule::Verdict));
        assert_eq!(c.holds(Rule::Contract), Some(true));
        assert_eq!(c.holds(Rule::Verdict), Some(false));
        let c = check(&[Rule::Contract, Rule::Verdict], None);
        assert_eq!(c.label(), "contract+verdict");
    }
}
