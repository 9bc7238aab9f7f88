//! What a `kubectl apply` of a Tenant pays for admission, on the local control plane: N Tenants
//! created and then updated one after another through the kube-apiserver, under each admission set-up
//! in turn, with the latency of every request and the apiserver's CPU-seconds per set-up.
//!
//!   a. floor:   the CRD's schema only;
//!   b. policy:  the backstop ValidatingAdmissionPolicy (the checks CEL can express, in the apiserver);
//!   c. ours:    `hanzo-s3-operator run --no-reconcile`, both webhooks, TLS (the production path);
//!   d. peer:    the Go webhook on sigs.k8s.io/controller-runtime in peers/controller-runtime, same
//!               defaults and, for this corpus, the same checks, registered the same way;
//!   e. kyverno: Kyverno (built from its Go module, crates/testkit/src/peers/kyverno.rs) with one
//!               ClusterPolicy: our defaults, and the backstop's CEL checks.
//!
//! Before anything is measured, every Tenant of the corpus is dry-run created through the apiserver
//! under c and under d, and the two must agree: same verdict, same field paths of the denial's
//! causes, the same defaulted spec. The run stops if they do not.
//!
//! The corpus: hanzo-s3-operator's examples, the Go operator's example tenants, generated Tenants of
//! about 2, 10 and 50 KB, and invalid Tenants (every third one). Each Tenant in its own namespace,
//! with the Secrets it names (configuration, users) created first.
//!
//!   cargo bench --bench admission_apply            # writes benches/results/admission-apply.md
//!
//! HANZO_APPLY_TENANTS (default 1000) sets N; HANZO_BENCH_SMOKE=1 makes it 30 and leaves Kyverno
//! out (its first build takes about 8 minutes and 1.2 GB of Go modules); HANZO_APPLY_NO_KYVERNO=1
//! leaves it out of a full run. Needs `go` (the peer
//! and Kyverno are built into the build cache on first use).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::backstop;
use hanzo_s3_operator::webhook::config::{
    self, MUTATING_CONFIGURATION, Target, VALIDATING_CONFIGURATION,
};
use hanzo_testkit::bench;
use hanzo_testkit::peers::kyverno;
use http_body_util::BodyExt;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingWebhookConfiguration,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

const OPERATOR_NS: &str = "hanzo-s3-operator";

/// One Tenant of the corpus: where it came from and the object.
struct Item {
    label: String,
    tenant: Value,
}

fn tenants_in(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &Value| v["kind"] == "Tenant")
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The distinct Tenants: valid ones, then invalid ones, each invalid one breaking one rule the peer
/// implements too.
fn templates() -> (Vec<Item>, Vec<Item>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut valid = Vec::new();
    for (dir, origin) in [
        (root.join("examples"), "example"),
        (root.join("tests/fixtures/go-examples"), "Go example"),
    ] {
        for file in yaml_files(&dir) {
            for tenant in tenants_in(&file) {
                let name = file.file_stem().unwrap().to_string_lossy().into_owned();
                valid.push(Item {
                    label: format!("{origin} {name}"),
                    tenant,
                });
            }
        }
    }
    for (pools, size) in [(2, "2 KB"), (11, "10 KB"), (57, "50 KB")] {
        valid.push(Item {
            label: format!("generated {size}"),
            tenant: bench::tenant_of(pools),
        });
    }
    let broken = |label: &str, change: &dyn Fn(&mut Value)| {
        let mut tenant = bench::tenant_of(2);
        change(&mut tenant);
        Item {
            label: format!("invalid: {label}"),
            tenant,
        }
    };
    let invalid = vec![
        broken("no servers", &|t| {
            t["spec"]["pools"][0]["servers"] = json!(0)
        }),
        broken("no volumes", &|t| {
            t["spec"]["pools"][1]["volumesPerServer"] = json!(0)
        }),
        broken("pool name twice", &|t| {
            t["spec"]["pools"][1]["name"] = json!("pool-0")
        }),
        broken("pool name not a DNS label", &|t| {
            t["spec"]["pools"][0]["name"] = json!("Pool_A")
        }),
        broken("2 servers x 1 volume", &|t| {
            t["spec"]["pools"][0]["servers"] = json!(2);
            t["spec"]["pools"][0]["volumesPerServer"] = json!(1);
        }),
        broken("17 drives, no erasure set", &|t| {
            t["spec"]["pools"][0]["servers"] = json!(17);
            t["spec"]["pools"][0]["volumesPerServer"] = json!(1);
        }),
        broken("no pools", &|t| t["spec"]["pools"] = json!([])),
        broken("podManagementPolicy", &|t| {
            t["spec"]["podManagementPolicy"] = json!("Serial")
        }),
        broken("imagePullPolicy", &|t| {
            t["spec"]["imagePullPolicy"] = json!("Sometimes")
        }),
        broken("two rules at once", &|t| {
            t["spec"]["pools"][0]["servers"] = json!(0);
            t["spec"]["imagePullPolicy"] = json!("Sometimes");
        }),
    ];
    (valid, invalid)
}

/// N Tenants: every third one invalid, the others cycling through the valid templates.
fn corpus(n: usize, valid: &[Item], invalid: &[Item]) -> Vec<(usize, bool)> {
    (0..n)
        .map(|i| {
            if i % 3 == 2 {
                ((i / 3) % invalid.len(), false)
            } else {
                ((i - i / 3) % valid.len(), true)
            }
        })
        .collect()
}

fn placed(tenant: &Value, namespace: &str) -> Value {
    let mut t = tenant.clone();
    t["metadata"]["namespace"] = json!(namespace);
    if let Some(meta) = t["metadata"].as_object_mut() {
        for key in ["resourceVersion", "uid", "creationTimestamp"] {
            meta.remove(key);
        }
    }
    t
}

/// The Secrets `tenant` names (its configuration, its users'), created empty in `namespace`.
async fn create_secrets(client: &kube::Client, namespace: &str, tenant: &Value) {
    let names = std::iter::once(&tenant["spec"]["configuration"]["name"])
        .chain(
            tenant["spec"]["users"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| &u["name"]),
        )
        .filter_map(Value::as_str)
        .filter(|n| !n.is_empty());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), namespace);
    for name in names {
        let secret = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        match secrets
            .create(&kube::api::PostParams::default(), &secret)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("Secret {namespace}/{name}: {e}"),
        }
    }
}

/// The apiserver's answer: the HTTP status and the body (an object or a metav1.Status).
async fn send(client: &kube::Client, request: http::Request<Vec<u8>>) -> (u16, Value) {
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn tenants_url(namespace: &str) -> String {
    format!("/apis/minio.min.io/v2/namespaces/{namespace}/tenants")
}

async fn create(client: &kube::Client, tenant: &Value, dry_run: bool) -> (u16, Value) {
    let ns = tenant["metadata"]["namespace"].as_str().unwrap();
    let query = if dry_run { "?dryRun=All" } else { "" };
    let request = http::Request::post(format!("{}{query}", tenants_url(ns)))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(tenant).unwrap())
        .unwrap();
    send(client, request).await
}

async fn update(client: &kube::Client, namespace: &str, name: &str) -> (u16, Value) {
    let request = http::Request::patch(format!("{}/{name}", tenants_url(namespace)))
        .header("content-type", "application/merge-patch+json")
        .body(br#"{"metadata":{"labels":{"bench.hanzo.ai/revision":"2"}}}"#.to_vec())
        .unwrap();
    send(client, request).await
}

async fn delete(client: &kube::Client, namespace: &str, name: &str) {
    let request = http::Request::delete(format!("{}/{name}", tenants_url(namespace)))
        .body(Vec::new())
        .unwrap();
    send(client, request).await;
}

/// What an admission set-up made of one Tenant: its verdict, the denial's cause fields (sorted), and
/// the spec as stored.
#[derive(Debug, PartialEq)]
struct Verdict {
    allowed: bool,
    fields: Vec<String>,
    spec: Value,
}

fn verdict_of(status: u16, body: &Value) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict {
            allowed: true,
            fields: Vec::new(),
            spec: body["spec"].clone(),
        };
    }
    let mut fields: Vec<String> = body["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["field"].as_str().map(str::to_owned))
        .collect();
    fields.sort();
    fields.dedup();
    Verdict {
        allowed: false,
        fields,
        spec: Value::Null,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// One row of `hanzo-s3-operator conformance`.
#[derive(Clone)]
struct ConformanceCheck {
    name: String,
    passed: bool,
    /// The rules the check held, or the one it broke (contract, verdict, hardening).
    rule: String,
    detail: String,
}

impl ConformanceCheck {
    fn cell(&self) -> String {
        format!(
            "{} ({}) {}",
            if self.passed { "PASS" } else { "FAIL" },
            self.rule,
            self.detail.replace('|', "/")
        )
    }
}

/// `hanzo-s3-operator conformance` against `url`: its rows and its summary line.
fn conformance(url: &str, ca: &Path, extra: &[&str]) -> (Vec<ConformanceCheck>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
        .args(["conformance", "--url", url, "--ca"])
        .arg(ca)
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let checks: Vec<ConformanceCheck> = text
        .lines()
        .filter_map(|line| {
            let (at, verdict) = [" PASS ", " FAIL "]
                .iter()
                .find_map(|v| line.find(v).map(|at| (at, *v)))?;
            let rest = line[at + verdict.len()..].trim_start();
            let (rule, detail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(ConformanceCheck {
                name: line[..at].trim().to_owned(),
                passed: verdict == " PASS ",
                rule: rule.to_owned(),
                detail: detail.trim().to_owned(),
            })
        })
        .collect();
    let summary = text
        .lines()
        .find(|l| l.contains(" passed, "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        !checks.is_empty() && !summary.is_empty(),
        "conformance against {url} printed no checks: {text}"
    );
    (checks, summary)
}

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Floor,
    Policy,
    Ours,
    Peer,
    Kyverno,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::Floor => "a. CRD schema only (floor)",
            Setup::Policy => "b. ValidatingAdmissionPolicy (backstop, CEL)",
            Setup::Ours => "c. hanzo-s3-operator webhooks",
            Setup::Peer => "d. controller-runtime webhook (Go)",
            Setup::Kyverno => "e. Kyverno ClusterPolicy (Go)",
        }
    }
}

/// Starts what `setup` needs and returns the webhook process (if any) once admission answers.
async fn start(
    setup: Setup,
    cp: &ControlPlane,
    client: &kube::Client,
    binaries: &Binaries,
    probe: &Value,
) -> Option<bench::Killed> {
    let peer = binaries.peer.as_path();
    let dir = cp.dir();
    match setup {
        Setup::Floor => None,
        Setup::Policy => {
            for object in backstop::objects() {
                let kind = object["kind"].as_str().unwrap().to_owned();
                let name = object["metadata"]["name"].as_str().unwrap().to_owned();
                let params = PatchParams::apply("bench").force();
                if kind == "ValidatingAdmissionPolicy" {
                    Api::<ValidatingAdmissionPolicy>::all(client.clone())
                        .patch(&name, &params, &Patch::Apply(&object))
                        .await
                        .unwrap();
                } else {
                    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
                        .patch(&name, &params, &Patch::Apply(&object))
                        .await
                        .unwrap();
                }
            }
            // The policy is enforced once the apiserver's informer has it: wait for a denial.
            until_probe(
                client,
                probe,
                Duration::from_secs(30),
                "the backstop policy was not enforced within 30 s",
                |status, _| status >= 400,
            )
            .await;
            None
        }
        Setup::Ours => {
            let port = bench::free_port();
            let url = format!("https://127.0.0.1:{port}");
            let log = std::fs::File::create(dir.join("bench-ours.log")).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
                .args(["run", "--no-reconcile", "--namespace", OPERATOR_NS])
                .args([
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--webhook-url",
                    &url,
                ])
                .arg("--kubeconfig")
                .arg(cp.kubeconfig_path())
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let process = bench::Killed(child);
            admitting(client).await;
            Some(process)
        }
        Setup::Peer => {
            let bench::Peer {
                process,
                url,
                ca_pem,
                ..
            } = bench::start_peer(peer, dir);
            let options = config::Options {
                target: Target::Url(url),
                ca_bundle_pem: Some(ca_pem),
                operator_namespace: OPERATOR_NS.to_owned(),
                mutation_failure_policy: "Fail".to_owned(),
            };
            config::apply(client, &options, "bench").await.unwrap();
            admitting(client).await;
            Some(process)
        }
        Setup::Kyverno => Some(start_kyverno(cp, client, binaries, probe).await.process),
    }
}

/// Kyverno with the policy, once a Tenant the checks refuse is refused through the apiserver.
async fn start_kyverno(
    cp: &ControlPlane,
    client: &kube::Client,
    binaries: &Binaries,
    probe: &Value,
) -> kyverno::Running {
    let dir = cp.dir();
    let (binary, source) = binaries
        .kyverno
        .as_ref()
        .expect("Kyverno is built when its set-up runs");
    let running = kyverno::start(client, cp.kubeconfig_path(), dir, binary, source).await;
    // Refused by the policy itself: a webhook that cannot be called refuses too (failurePolicy
    // Fail), for instance while Kyverno is still loading its serving certificate.
    until_probe(
        client,
        probe,
        Duration::from_secs(60),
        &format!(
            "Kyverno's policy was not enforced within 60 s (log: {})",
            dir.join("kyverno.log").display()
        ),
        |status, body| status >= 400 && body.to_string().contains(kyverno::POLICY),
    )
    .await;
    running
}

/// Dry-run creates `probe` until `done` holds for the answer; panics with `failure` and the last
/// answer when `within` has passed.
async fn until_probe(
    client: &kube::Client,
    probe: &Value,
    within: Duration,
    failure: &str,
    done: impl Fn(u16, &Value) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = create(client, probe, true).await;
        if done(status, &body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{failure}; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Go programs of set-ups d and e.
struct Binaries {
    peer: PathBuf,
    /// Kyverno's binary and module source; None in a smoke run or with HANZO_APPLY_NO_KYVERNO.
    kyverno: Option<(PathBuf, PathBuf)>,
}

/// Returns once both registered webhooks judge Tenants.
async fn admitting(client: &kube::Client) {
    hanzo_s3_operator::operator::install::wait_for_admission(
        client,
        "apply-probe",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
}

/// Removes what `setup` registered, so the next set-up starts from the floor.
async fn stop(setup: Setup, client: &kube::Client, probe: &Value) {
    let gone = DeleteParams::default();
    match setup {
        Setup::Floor => {}
        Setup::Policy => {
            let _ = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
                .delete(backstop::POLICY_NAME, &gone)
                .await;
            let _ = Api::<ValidatingAdmissionPolicy>::all(client.clone())
                .delete(backstop::POLICY_NAME, &gone)
                .await;
        }
        Setup::Kyverno => kyverno::stop(client).await,
        Setup::Ours | Setup::Peer => {
            let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
                .delete(MUTATING_CONFIGURATION, &gone)
                .await;
            let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
                .delete(VALIDATING_CONFIGURATION, &gone)
                .await;
        }
    }
    // The apiserver drops a deleted configuration from its informer within moments: wait until a
    // dry run admits an invalid Tenant again.
    until_probe(
        client,
        probe,
        Duration::from_secs(30),
        "admission was still enforced 30 s after removal",
        |status, _| status < 400,
    )
    .await;
}

struct Row {
    setup: Setup,
    create: Vec<Duration>,
    update: Vec<Duration>,
    denied: usize,
    apiserver_cpu: f64,
    webhook_cpu: Option<f64>,
}

fn main() {
    let n = if bench::smoke() {
        30
    } else {
        bench::env_number("HANZO_APPLY_TENANTS", 1000) as usize
    };
    let binaries = Binaries {
        peer: bench::build_peer(),
        kyverno: (!bench::smoke() && std::env::var_os("HANZO_APPLY_NO_KYVERNO").is_none())
            .then(kyverno::build),
    };
    let (valid, invalid) = templates();
    // An invalid Tenant every enforcing set-up refuses and the floor stores: tells when a set-up
    // has taken effect, and when it is gone.
    let probe = placed(&invalid[0].tenant, "apply-probe");
    let items = corpus(n, &valid, &invalid);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cp = ControlPlane::start(Options::api_only()).await.unwrap();
        let client = cp.client().await.unwrap();
        bench::install_crd(&client).await;
        // `storage`: the namespace of the conformance fixtures, which Kyverno looks up.
        let names: Vec<String> = std::iter::once(OPERATOR_NS.to_owned())
            .chain(["apply-probe".to_owned(), "apply-agree".to_owned(), "storage".to_owned()])
            .chain((0..n).map(|i| format!("apply-{i}")))
            .collect();
        for name in &names {
            bench::create_namespace(&client, name).await;
        }
        // Each Tenant's configuration and user Secrets exist before it is applied, as they do when
        // a user or a chart creates the credentials first: the webhook's Secret checks find them.
        for (i, (template, is_valid)) in items.iter().enumerate() {
            let source = if *is_valid { &valid[*template] } else { &invalid[*template] };
            create_secrets(&client, &format!("apply-{i}"), &source.tenant).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let apiserver = bench::control_plane_pids(cp.dir(), 0)
            .into_iter()
            .find(|(name, _)| name == "kube-apiserver")
            .map(|(_, pid)| pid)
            .expect("no kube-apiserver process found");

        // 1. The peer agrees with ours on every template, through the apiserver.
        let all: Vec<&Item> = valid.iter().chain(invalid.iter()).collect();
        let mut verdicts: Vec<Vec<Verdict>> = Vec::new();
        for setup in [Setup::Ours, Setup::Peer] {
            let process = start(setup, &cp, &client, &binaries, &probe).await;
            let mut seen = Vec::new();
            for item in &all {
                let (status, body) = create(&client, &placed(&item.tenant, "apply-agree"), true).await;
                seen.push(verdict_of(status, &body));
            }
            drop(process);
            stop(setup, &client, &probe).await;
            verdicts.push(seen);
        }
        let mut disagreements = Vec::new();
        for (i, item) in all.iter().enumerate() {
            if verdicts[0][i] != verdicts[1][i] {
                disagreements.push(format!(
                    "{}:\n  ours: {:?}\n  peer: {:?}",
                    item.label, verdicts[0][i], verdicts[1][i]
                ));
            }
        }
        assert!(
            disagreements.is_empty(),
            "the controller-runtime peer and ours disagree:\n{}",
            disagreements.join("\n")
        );
        let denied_templates = verdicts[0].iter().filter(|v| !v.allowed).count();
        assert_eq!(
            denied_templates,
            invalid.len(),
            "every invalid template, and only those, is denied"
        );

        // 2. The AdmissionReview contract, checked on both servers directly (no apiserver).
        let conformance_rows = {
            let ours = bench::start_standalone(
                Path::new(env!("CARGO_BIN_EXE_hanzo-s3-operator")),
                cp.dir(),
                "conformance-ours",
                Stdio::null(),
                "warn",
            )
            .await;
            let ours_checks = conformance(
                &format!("https://{}", ours.addr),
                &cp.dir().join("conformance-ours-ca.pem"),
                &[],
            );
            let running = bench::start_peer(&binaries.peer, cp.dir());
            let peer_checks = conformance(&running.url, &cp.dir().join("peer-ca.pem"), &[]);
            drop(running);
            // Kyverno judges Tenants only through its policy, so it runs against the cluster.
            let kyverno_checks = match binaries.kyverno {
                Some(_) => {
                    let running = start_kyverno(&cp, &client, &binaries, &probe).await;
                    let checks = conformance(
                        &running.url,
                        &running.ca_file,
                        &["--mutate-path", "/mutate/fail", "--validate-path", "/validate/fail"],
                    );
                    drop(running);
                    stop(Setup::Kyverno, &client, &probe).await;
                    Some(checks)
                }
                None => None,
            };
            let find = |checks: &(Vec<ConformanceCheck>, String), name: &str| {
                checks.0.iter().find(|c| c.name.replace("/mutate/fail", "/mutate").replace("/validate/fail", "/validate") == name).cloned()
            };
            let rows = ours_checks
                .0
                .iter()
                .map(|ours| {
                    let peer = find(&peer_checks, &ours.name);
                    let kyverno = kyverno_checks.as_ref().and_then(|k| find(k, &ours.name));
                    (ours.clone(), peer, kyverno)
                })
                .collect::<Vec<_>>();
            (
                rows,
                ours_checks.1,
                peer_checks.1,
                kyverno_checks.map(|k| k.1),
            )
        };

        // 3. Create, then update, N Tenants under each set-up.
        let mut rows = Vec::new();
        let setups = [Setup::Floor, Setup::Policy, Setup::Ours, Setup::Peer, Setup::Kyverno]
            .into_iter()
            .filter(|s| *s != Setup::Kyverno || binaries.kyverno.is_some());
        for setup in setups {
            let process = start(setup, &cp, &client, &binaries, &probe).await;
            let webhook_pid = process.as_ref().map(bench::Killed::id);
            let (api_before, _) = bench::usage(apiserver).unwrap();
            let hook_before = webhook_pid.and_then(bench::usage).map(|u| u.0);
            let mut row = Row {
                setup,
                create: Vec::with_capacity(n),
                update: Vec::new(),
                denied: 0,
                apiserver_cpu: 0.0,
                webhook_cpu: None,
            };
            let mut stored = Vec::new();
            for (i, (template, is_valid)) in items.iter().enumerate() {
                let source = if *is_valid { &valid[*template] } else { &invalid[*template] };
                let namespace = format!("apply-{i}");
                let tenant = placed(&source.tenant, &namespace);
                let started = Instant::now();
                let (status, body) = create(&client, &tenant, false).await;
                row.create.push(started.elapsed());
                // The set-ups that default (c, d, e) name unnamed pools, which the schema needs.
                let defaults = matches!(setup, Setup::Ours | Setup::Peer | Setup::Kyverno);
                assert!(
                    !*is_valid || !defaults || (200..300).contains(&status),
                    "{}: {} refused a valid Tenant: {body}",
                    setup.label(),
                    source.label
                );
                if (200..300).contains(&status) {
                    stored.push((namespace, tenant["metadata"]["name"].as_str().unwrap().to_owned()));
                } else {
                    row.denied += 1;
                }
            }
            for (namespace, name) in &stored {
                let started = Instant::now();
                let (status, body) = update(&client, namespace, name).await;
                row.update.push(started.elapsed());
                assert!((200..300).contains(&status), "update of {namespace}/{name} refused: {body}");
            }
            row.apiserver_cpu = bench::usage(apiserver).unwrap().0 - api_before;
            row.webhook_cpu = hook_before
                .and_then(|before| Some(bench::usage(webhook_pid?)?.0 - before));
            drop(process);
            for (namespace, name) in &stored {
                delete(&client, namespace, name).await;
            }
            stop(setup, &client, &probe).await;
            row.create.sort();
            row.update.sort();
            rows.push(row);
        }

        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark: what `kubectl apply` of a Tenant pays for admission\n");
        let _ = writeln!(out, "- command: `cargo bench --bench admission_apply` (HANZO_APPLY_TENANTS={n}{})", if binaries.kyverno.is_none() && !bench::smoke() { " HANZO_APPLY_NO_KYVERNO=1" } else { "" });
        let _ = writeln!(out, "- date: {}", bench::chrono_now());
        let _ = writeln!(out, "- machine: {} cores; etcd and kube-apiserver {} on this machine, the webhook servers too (loopback, TLS)", std::thread::available_parallelism().map_or(0, |x| x.get()), hanzo_local_cluster::kubernetes_version());
        let _ = writeln!(out, "- corpus: {} valid templates (hanzo-s3-operator's {} examples, the Go operator's example tenants, generated Tenants of about 2, 10 and 50 KB) and {} invalid ones; {n} Tenants, every third invalid, each in its own namespace with the Secrets it names (configuration, users) created first", valid.len(), yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")).len(), invalid.len());
        let _ = writeln!(out, "- requests: one at a time from one client (as `kubectl apply` sends them): a create of each Tenant, then a merge patch of a label on each stored one (an UPDATE review); latency is the client's, request sent to answer read");
        let _ = writeln!(out, "- agreement, checked first in this run: for all {} templates, dry-run creates under c and d gave the same verdict, the same cause field paths and the same defaulted spec", all.len());
        let _ = writeln!(out, "- ours: `hanzo-s3-operator run --no-reconcile --webhook-url ...` (bench profile, logging at info); peer: peers/controller-runtime (sigs.k8s.io/controller-runtime v0.25.2, go build)");
        let _ = writeln!(out, "- kyverno: {} {} built from its module, run out of cluster (`--serverIP`, admission reports off), one ClusterPolicy: our defaults as add-if-absent anchors and the backstop's CEL checks; asserted in this run to refuse no valid Tenant, as c and d{}\n", kyverno::MODULE, kyverno::VERSION, if binaries.kyverno.is_none() { " (left out of this run: HANZO_BENCH_SMOKE or HANZO_APPLY_NO_KYVERNO)" } else { "" });
        let _ = writeln!(out, "| set-up | creates | denied | create p50 | create p99 | updates | update p50 | update p99 | apiserver CPU-s | webhook CPU-s |");
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        for row in &rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} ms | {:.2} ms | {} | {:.2} ms | {:.2} ms | {:.1} | {} |",
                row.setup.label(),
                row.create.len(),
                row.denied,
                percentile(&row.create, 0.5),
                percentile(&row.create, 0.99),
                row.update.len(),
                percentile(&row.update, 0.5),
                percentile(&row.update, 0.99),
                row.apiserver_cpu,
                row.webhook_cpu.map_or("-".to_owned(), |c| format!("{c:.1}")),
            );
        }
        let _ = writeln!(out, "\n## The AdmissionReview contract: `hanzo-s3-operator conformance --url` on each server\n");
        let _ = writeln!(out, "Sent directly to each server (no apiserver), with the fixtures of webhooks/fixtures. ours: `run --standalone`; peer: as above; Kyverno: with the policy above, at its paths `/mutate/fail` and `/validate/fail` (its rows are named by ours). Each check names the rules it exercises: contract (what the apiserver relies on), verdict (the fixture's expected answer) and hardening (beyond the contract); a failure names the rule it broke. docs/operations.md (Checking a live endpoint) says what the failures mean.\n");
        let _ = writeln!(out, "| check | ours | controller-runtime peer | Kyverno |\n|---|---|---|---|");
        let (conformance_rows, ours_summary, peer_summary, kyverno_summary) = &conformance_rows;
        let cell = |c: &Option<ConformanceCheck>| c.as_ref().map_or("not run".to_owned(), ConformanceCheck::cell);
        for (ours, peer, kyverno) in conformance_rows {
            let _ = writeln!(out, "| {} | {} | {} | {} |", ours.name, ours.cell(), cell(peer), cell(kyverno));
        }
        let _ = writeln!(out, "| summary | {ours_summary} | {peer_summary} | {} |", kyverno_summary.as_deref().unwrap_or("not run"));
        print!("{out}");
        std::fs::write(bench::results_path("admission-apply.md"), out).unwrap();
        cp.stop();
    });
}
