//! `conformance`: drives a live admission webhook with AdmissionReview fixtures and the protocol
//! negatives, and says which rule each answer meets or breaks.

mod client;
mod fixtures;
mod judge;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATIONS};
pub use judge::Rule;

use client::{BOTH_VERSIONS, Conn, RawAnswer, Target, post_h2};
use fixtures::Fixture;

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
    /// PEM CA to trust for the server's certificate. No system roots are trusted: without it,
    /// every TLS check fails on the certificate.
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
    fn new(
        name: impl Into<String>,
        rules: Vec<Rule>,
        result: Result<String, judge::Broken>,
    ) -> Check {
        let (broken, detail) = match result {
            Ok(detail) => (None, detail),
            Err(b) => (Some(b.rule), b.why),
        };
        Check {
            name: name.into(),
            rules,
            broken,
            detail,
        }
    }

    /// A check of hardening alone (every server-wide one).
    fn hardening_only(name: impl Into<String>, result: Result<String, judge::Broken>) -> Check {
        Check::new(name, vec![Rule::Hardening], result)
    }

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

async fn run_checks(args: &ConformanceArgs) -> Result<Vec<Check>, String> {
    let fixtures = match &args.fixtures {
        Some(dir) => fixtures::from_dir(dir).map_err(|e| e.to_string())?,
        None => fixtures::builtin(),
    };
    let endpoints = endpoints(args)?;
    let probe = probe_of(&endpoints)?;
    let target = Target::new(&args.url, args.server_name.as_deref(), args.ca.as_deref())?;
    target.wait_until_listening().await;
    let mut checks = Vec::new();
    for &(endpoint, path) in &endpoints {
        checks.extend(check_fixtures(&target, endpoint, path, &fixtures).await?);
    }
    checks.push(check_body_limit(&target, probe.1).await);
    checks.push(check_timeout_parameter(&target, probe.1).await);
    let first = fixtures
        .iter()
        .find(|f| !f.is_negative())
        .ok_or("no fixture the apiserver could send")?;
    checks.push(check_keep_alive_idle(&target, probe.1, first, args.idle_seconds).await);
    checks.extend(check_tls_versions(&target).await);
    // HTTP/2 with a fixture that has a verdict (the Tenant fixtures: the invalid one).
    let h2_fixture = fixtures
        .iter()
        .find(|f| f.name == "create-invalid")
        .unwrap_or(first);
    checks.push(check_http2(&target, probe, h2_fixture).await);
    Ok(checks)
}

/// The webhooks checked: those whose path is not switched off with ''.
fn endpoints(args: &ConformanceArgs) -> Result<Vec<(Endpoint, &str)>, String> {
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
    Ok(endpoints)
}

/// The path the server-wide checks (body limit, timeout, idle, HTTP/2) are sent to, and the
/// endpoint an answer there is judged as: the first one at that path.
fn probe_of<'a>(endpoints: &[(Endpoint, &'a str)]) -> Result<(Endpoint, &'a str), String> {
    let path = endpoints
        .iter()
        .find(|(e, _)| *e == Endpoint::Validate)
        .or(endpoints.first())
        .map(|(_, p)| *p)
        .ok_or("both webhook paths are empty: nothing to check")?;
    let endpoint = endpoints
        .iter()
        .find(|(_, p)| *p == path)
        .map_or(Endpoint::Validate, |(e, _)| *e);
    Ok((endpoint, path))
}

/// What a server-wide check breaks: hardening alone.
fn hardening(why: String) -> judge::Broken {
    judge::broken(Rule::Hardening, why)
}

/// Every fixture on one connection per endpoint: also proves keep-alive reuse.
async fn check_fixtures(
    target: &Target,
    endpoint: Endpoint,
    path: &str,
    fixtures: &[Fixture],
) -> Result<Vec<Check>, String> {
    let mut conn = match Conn::open(target).await {
        Ok(c) => c,
        Err(e) => {
            return Ok(vec![Check::new(
                format!("connect {path}"),
                vec![Rule::Contract],
                Err(judge::broken(Rule::Contract, e.0)),
            )]);
        }
    };
    let authority = target.authority();
    let mut checks = Vec::new();
    let mut reused = 0;
    for fixture in fixtures {
        let rules = judge::rules_of(fixture, endpoint);
        let result = match conn
            .post(
                &authority,
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
                conn = Conn::open(target).await.map_err(|e2| e2.0)?;
                // No answer breaks the first rule the request exercises.
                Err(judge::broken(rules[0], e.0))
            }
        };
        checks.push(Check::new(
            format!("{path} {}", fixture.name),
            rules,
            result,
        ));
    }
    checks.push(check_keep_alive_reuse(path, reused, fixtures.len()));
    Ok(checks)
}

fn check_keep_alive_reuse(path: &str, reused: usize, sent: usize) -> Check {
    let result = if reused == sent {
        Ok(format!("{reused} requests on one connection"))
    } else {
        Err(hardening(format!(
            "only {reused} of {sent} requests reused the connection"
        )))
    };
    Check::hardening_only(format!("{path} keep-alive reuse"), result)
}

/// The apiserver itself caps what it sends; a server that buffers any body is open to anyone
/// who can reach it. Refusing in-band (HTTP 200, status.code 413) bounds it as well.
async fn check_body_limit(target: &Target, path: &str) -> Check {
    let result = async {
        let mut conn = Conn::open(target).await.map_err(|e| hardening(e.0))?;
        let big = vec![b' '; 8 * 1024 * 1024];
        match conn.post(&target.authority(), path, big).await {
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
    }
    .await;
    Check::hardening_only("body limit (413)", result)
}

/// A request whose body stalls must be given up at its ?timeout=, not held open.
async fn check_timeout_parameter(target: &Target, path: &str) -> Check {
    let authority = target.authority();
    let head = format!(
        "POST {path}?timeout=1s HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"apiVersion\"",
    );
    let result = match target
        .send_raw(head.as_bytes(), Duration::from_secs(5))
        .await
    {
        Err(e) => Err(hardening(e.0)),
        Ok(RawAnswer { closed: false, .. }) => Err(hardening(
            "stalled body still held open 5 s after ?timeout=1s".to_owned(),
        )),
        Ok(RawAnswer { status, .. }) if status.starts_with("HTTP/1.1 2") => Err(hardening(
            format!("answered {status} to a body it never received"),
        )),
        Ok(RawAnswer { status, took, .. }) if took < Duration::from_secs(3) => Ok(format!(
            "stalled body given up after {} ms with ?timeout=1s ({status})",
            took.as_millis()
        )),
        Ok(RawAnswer { took, .. }) => Err(hardening(format!(
            "stalled body given up only after {} ms with ?timeout=1s",
            took.as_millis()
        ))),
    };
    Check::hardening_only("timeout parameter", result)
}

/// The apiserver reuses connections idle for up to 90 s (see --idle-seconds): a server that
/// drops them sooner fails the apiserver's next request on one.
async fn check_keep_alive_idle(
    target: &Target,
    path: &str,
    fixture: &Fixture,
    idle_seconds: u64,
) -> Check {
    let authority = target.authority();
    let result = async {
        let mut conn = Conn::open(target).await.map_err(|e| hardening(e.0))?;
        conn.post(&authority, path, fixture.request.clone())
            .await
            .map_err(|e| hardening(e.0))?;
        tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
        match conn.post(&authority, path, fixture.request.clone()).await {
            Ok((200, _)) => Ok(format!("connection reused after {idle_seconds} s idle")),
            Ok((status, _)) => Err(hardening(format!(
                "status {status} after {idle_seconds} s idle"
            ))),
            Err(e) => Err(hardening(format!(
                "connection closed after {idle_seconds} s idle: {}",
                e.0
            ))),
        }
    }
    .await;
    Check::hardening_only("keep-alive idle", result)
}

/// One handshake per version, offering that one alone: a server that has either switched off
/// fails the clients limited to it.
async fn check_tls_versions(target: &Target) -> Vec<Check> {
    let mut checks = Vec::new();
    for (label, version) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        let result = async {
            let config = target
                .config(&[version], &[b"http/1.1"])
                .map_err(hardening)?;
            target
                .connect(config)
                .await
                .map(|_| "handshake ok".to_owned())
                .map_err(|e| hardening(e.0))
        }
        .await;
        checks.push(Check::hardening_only(label, result));
    }
    checks
}

/// The answer over HTTP/2 (when the server chose h2 from both offered) is judged as any other.
async fn check_http2(
    target: &Target,
    (endpoint, path): (Endpoint, &str),
    fixture: &Fixture,
) -> Check {
    let result = async {
        let config = target
            .config(&BOTH_VERSIONS, &[b"h2", b"http/1.1"])
            .map_err(hardening)?;
        let tls = target.connect(config).await.map_err(|e| hardening(e.0))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(hardening(format!(
                "ALPN {:?}, not h2",
                tls.get_ref().1.alpn_protocol().map(String::from_utf8_lossy)
            )));
        }
        let uri = format!("https://{}{path}", target.authority());
        let (status, body) = post_h2(tls, uri, fixture.request.clone())
            .await
            .map_err(|e| hardening(e.0))?;
        judge::judge_answer(endpoint, fixture, status, &body)
            .map(|detail| format!("ALPN h2, {}: {detail}", fixture.name))
    }
    .await;
    Check::hardening_only("HTTP/2", result)
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
