//! Every command shown in a shell block of README.md and docs/ runs, as written, so the docs cannot
//! rot. Each one must have an entry in the table below that says where it runs (the repository,
//! or a sandbox holding the files the docs name: tenant.yaml, live.yaml, tenants/, manifests/,
//! overlays/prod/) and how: to completion, or until it is ready (servers, `dev`), then Ctrl-C. A
//! command without an entry fails the test, and so does an entry no document uses any more.
//!
//! Commands that need a cluster get a real local control plane (KWOK fake nodes) through
//! KUBECONFIG and ~/.kube/config; benchmarks run as smoke runs (HANZO_BENCH_SMOKE=1, results
//! into the sandbox). The one block that needs a node running pods (port-forward to the deployed
//! webhook) is run, as written, by tests/real_node/real_node.rs.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dir {
    /// The repository root (scripts, cargo, benches).
    Repo,
    /// A scratch directory with the files the docs refer to.
    Sandbox,
}

#[derive(Clone, Copy, Debug)]
enum How {
    /// Runs to completion and exits 0.
    Run(Dir),
    /// Runs until this text appears in its output, then gets Ctrl-C (SIGINT) and must stop.
    UntilReady(Dir, &'static str),
    /// Runs to completion against a second, empty cluster (the alternative install path).
    RunOnFreshCluster(Dir),
    /// A pattern (`...` stands for your own arguments): this concrete command runs instead.
    AsExample(Dir, &'static str),
    /// Run elsewhere, as written: the named test.
    RunBy(&'static str),
}

/// Every documented command (a prefix of it, up to its comment) and how it runs.
const TABLE: &[(&str, How)] = &[
    (
        "scripts/dev.sh",
        How::UntilReady(Dir::Repo, "press Ctrl-C to stop everything"),
    ),
    (
        "scripts/dev.sh --real-node",
        How::UntilReady(Dir::Repo, "press Ctrl-C to stop everything"),
    ),
    (
        "cargo run -p hanzo-local-cluster --bin local-controlplane -- 3",
        How::UntilReady(Dir::Repo, "ready"),
    ),
    (
        "scripts/test.sh",
        How::RunBy(".ci/run (CI runs exactly it; this test is part of it)"),
    ),
    ("cargo build --release", How::Run(Dir::Repo)),
    (
        "hanzo-s3-operator validate examples/",
        How::Run(Dir::Sandbox),
    ),
    (
        "kustomize build overlays/prod | hanzo-s3-operator validate -",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator validate --old live.yaml tenant.yaml",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator validate -o json tenants/ | jq .summary",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator validate -o github manifests/",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator validate -o junit manifests/ > tenants.xml",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator validate -o sarif manifests/ > tenants.sarif",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator default tenant.yaml",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator default --patch tenant.yaml",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator run --standalone --listen 127.0.0.1:8443 --ca-out /tmp/ca.pem",
        How::UntilReady(Dir::Sandbox, "webhook server ready"),
    ),
    (
        "hanzo-s3-operator conformance --url https://127.0.0.1:8443 --ca /tmp/ca.pem",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator run --kubeconfig ~/.kube/config --namespace hanzo-s3-operator",
        How::UntilReady(Dir::Sandbox, "webhook server ready"),
    ),
    (
        "hanzo-s3-operator webhook-config --namespace hanzo-s3-operator",
        How::Run(Dir::Sandbox),
    ),
    (
        "kubectl apply --server-side -k deploy/base",
        How::Run(Dir::Repo),
    ),
    (
        "kubectl apply --server-side -k deploy/backstop",
        How::Run(Dir::Repo),
    ),
    (
        "helm install hanzo-s3-operator deploy/helm/hanzo-s3-operator",
        How::RunOnFreshCluster(Dir::Repo),
    ),
    // Smoke runs of every benchmark (seconds each, plus their builds): they cannot rot.
    ("scripts/bench.sh all", How::Run(Dir::Repo)),
    (
        "hanzo-s3-operator crd | kubectl apply --server-side -f -",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator validate tenants/",
        How::Run(Dir::Sandbox),
    ),
    (
        "helm template ... | hanzo-s3-operator validate -",
        How::AsExample(
            Dir::Repo,
            "helm template hanzo deploy/helm/hanzo-s3-operator | hanzo-s3-operator validate -",
        ),
    ),
    (
        "kubectl get tenants -A -o yaml > live.yaml",
        How::Run(Dir::Sandbox),
    ),
    (
        "hanzo-s3-operator validate --old live.yaml tenants/",
        How::Run(Dir::Sandbox),
    ),
    (
        "kubectl -n hanzo-s3-operator get secret hanzo-s3-operator-ca",
        How::RunBy(
            "tests/real_node/real_node.rs: the_documented_conformance_check_passes_against_the_deployed_webhook",
        ),
    ),
    (
        "kubectl -n hanzo-s3-operator port-forward svc/hanzo-s3-operator-webhook",
        How::RunBy(
            "tests/real_node/real_node.rs: the_documented_conformance_check_passes_against_the_deployed_webhook",
        ),
    ),
    (
        "hanzo-s3-operator conformance --url https://127.0.0.1:9443 --ca ca.pem",
        // Another webhook's fixtures and paths: ours stands in for that webhook, judged on a
        // fixture directory of one review, with its mutating path switched off.
        How::AsExample(
            Dir::Repo,
            "d=$(mktemp -d); mkdir $d/my-reviews; \
             cp webhooks/fixtures/create-invalid.request.json $d/my-reviews/; \
             hanzo-s3-operator run --standalone --listen 127.0.0.1:9443 --ca-out $d/ca.pem 2>/dev/null & pid=$!; \
             until [ -s $d/ca.pem ]; do sleep 0.1; done; \
             hanzo-s3-operator conformance --url https://127.0.0.1:9443 --ca $d/ca.pem \
             --fixtures $d/my-reviews/ --validate-path /validate --mutate-path '' --require contract; \
             rc=$?; kill $pid; rm -rf $d; exit $rc",
        ),
    ),
    (
        "hanzo-s3-operator conformance --url https://127.0.0.1:8443 --server-name",
        How::RunBy(
            "tests/real_node/real_node.rs: the_documented_conformance_check_passes_against_the_deployed_webhook",
        ),
    ),
];

/// Whether `command` runs tenants on the machine's real node (the others use KWOK clusters).
fn needs_the_node(command: &str) -> bool {
    command.contains("--real-node")
}

/// How long each command took, written to `target/tmp/documented-commands.tsv` (slowest first):
/// where this test, a large part of CI's time, spends it.
struct Times {
    current: Option<(String, Instant)>,
    done: Vec<(Duration, String)>,
}

impl Times {
    fn new() -> Self {
        Times {
            current: None,
            done: Vec::new(),
        }
    }

    /// Ends the previous command's time (a command left running counts until the next starts).
    fn next(&mut self, at: &str) {
        if let Some((previous, since)) = self.current.replace((at.to_owned(), Instant::now())) {
            self.done.push((since.elapsed(), previous));
        }
    }

    fn write(mut self) {
        self.next("");
        self.done.sort_by_key(|(took, _)| std::cmp::Reverse(*took));
        let total: Duration = self.done.iter().map(|(d, _)| *d).sum();
        let mut text = format!("{:.1}\ttotal\n", total.as_secs_f64());
        for (took, at) in &self.done {
            text.push_str(&format!("{:.1}\t{at}\n", took.as_secs_f64()));
        }
        let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("documented-commands.tsv");
        match std::fs::write(&file, &text) {
            Ok(()) => eprintln!("==> times per command in {}", file.display()),
            Err(e) => eprintln!("==> cannot write {}: {e}", file.display()),
        }
    }
}

fn how(command: &str) -> Option<(&'static str, How)> {
    TABLE
        .iter()
        .filter(|(prefix, _)| command.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .copied()
}

/// A file for `kubectl`, `kustomize` and `helm` as the docs call them, next to our binary.
fn bin_dir(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = |name: &str, target: PathBuf| {
        assert!(
            target.is_file(),
            "{} is missing: run crates/local-cluster/build.sh and build-node.sh",
            target.display()
        );
        std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
    };
    link(
        "hanzo-s3-operator",
        PathBuf::from(env!("CARGO_BIN_EXE_hanzo-s3-operator")),
    );
    link(
        "kubectl",
        hanzo_local_cluster::node::node_dir().join("bin/kubectl"),
    );
    link("kustomize", hanzo_local_cluster::tool("kustomize"));
    link("helm", hanzo_local_cluster::tool("helm"));
    bin
}

/// The files the docs refer to, made from the examples.
fn sandbox(root: &Path, repo: &Path) {
    let examples = repo.join("examples");
    let copy_dir = |to: &str| {
        std::fs::create_dir_all(root.join(to)).unwrap();
        for e in std::fs::read_dir(&examples).unwrap().flatten() {
            std::fs::copy(e.path(), root.join(to).join(e.file_name())).unwrap();
        }
    };
    copy_dir("examples");
    copy_dir("tenants");
    copy_dir("manifests");
    std::fs::copy(
        examples.join("tenant-minimal.yaml"),
        root.join("tenant.yaml"),
    )
    .unwrap();
    std::fs::copy(examples.join("tenant-minimal.yaml"), root.join("live.yaml")).unwrap();
    std::fs::create_dir_all(root.join("overlays/prod")).unwrap();
    std::fs::copy(
        examples.join("tenant-tls.yaml"),
        root.join("overlays/prod/tenant.yaml"),
    )
    .unwrap();
    std::fs::write(
        root.join("overlays/prod/kustomization.yaml"),
        "resources: [tenant.yaml]\nnamespace: prod\n",
    )
    .unwrap();
}

/// Each command of the shell blocks of `file`, with its line; continuation lines joined.
fn commands(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && matches!(trimmed, "```sh" | "```bash" | "```shell");
            continue;
        }
        if !in_block || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        let code = trimmed.split(" #").next().unwrap_or(trimmed).trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            joined.push_str(head.trim_end());
            joined.push(' ');
            pending = Some((start, joined));
        } else {
            joined.push_str(code);
            out.push((start, joined));
        }
    }
    out
}

fn documented() -> Vec<(String, usize, String)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![repo.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .iter()
        .flat_map(|f| {
            let name = f.strip_prefix(repo).unwrap().display().to_string();
            commands(f)
                .into_iter()
                .map(move |(line, cmd)| (name.clone(), line, cmd))
        })
        .collect()
}

#[test]
fn every_documented_command_has_a_way_to_run_and_every_way_a_command() {
    let docs = documented();
    let missing: Vec<String> = docs
        .iter()
        .filter(|(_, _, c)| how(c).is_none())
        .map(|(f, l, c)| format!("{f}:{l}: {c}"))
        .collect();
    assert!(
        missing.is_empty(),
        "documented commands the table of tests/real_node/documented_commands.rs does not know: {missing:#?}"
    );
    let used: BTreeSet<&str> = docs
        .iter()
        .filter_map(|(_, _, c)| how(c))
        .map(|(p, _)| p)
        .collect();
    let stale: Vec<&str> = TABLE
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !used.contains(p))
        .collect();
    assert!(
        stale.is_empty(),
        "entries no document uses any more: {stale:#?}"
    );
    assert!(docs.len() >= 25, "{} commands found", docs.len());
}

struct Env {
    path: String,
    home: PathBuf,
    kubeconfig: PathBuf,
    results: PathBuf,
}

fn shell(command: &str, dir: &Path, env: &Env, kubeconfig: &Path, sandbox: bool) -> Command {
    let mut cmd = Command::new("bash");
    cmd.args(["-o", "pipefail", "-c", command])
        .current_dir(dir)
        .env("PATH", &env.path)
        .env("KUBECONFIG", kubeconfig)
        .env("HANZO_BENCH_SMOKE", "1")
        .env("HANZO_BENCH_OUT", &env.results);
    // `~/.kube/config` in the sandbox is the test cluster's; in the repository the caches of the
    // real home (Go modules, control-plane binaries, cargo) must stay in reach.
    if sandbox {
        cmd.env("HOME", &env.home);
    }
    cmd
}

/// Starts `command`, waits for `ready` in its stdout or stderr.
fn start_until(
    command: &str,
    dir: &Path,
    sandbox: bool,
    env: &Env,
    ready: &str,
) -> (Child, Vec<String>) {
    use std::os::unix::process::CommandExt;
    let mut child = shell(
        &format!("exec {command}"),
        dir,
        env,
        &env.kubeconfig,
        sandbox,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .spawn()
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let done = line.contains(ready);
                seen.push(line);
                if done {
                    // Keep draining so the process never blocks on a full pipe.
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return (child, seen);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{command}` never printed {ready:?}:\n{}", seen.join("\n"))
            }
        }
    }
}

/// A command started in a process group of its own: on drop (a failed assertion included) the
/// whole group is killed, so nothing outlives the test.
struct Running {
    child: Child,
    command: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Usually gone already (stopped by Ctrl-C): then kill has nothing to say.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Ctrl-C, as a terminal sends it: SIGINT to the whole foreground process group (`cargo run`
/// passes it on that way to what it runs). The command must stop.
fn interrupt(mut running: Running) {
    let group = running.child.id();
    let _ = Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "`{}` did not stop on Ctrl-C",
            running.command
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_documented_command_runs_as_written() {
    // Builds and benchmark smokes below: no load measurement beside them.
    let _quiet = super::QUIET_MACHINE.blocking_lock();
    // `scripts/dev.sh --real-node` starts the machine's one real node: a turn among this binary's
    // tests, given back once that command has run (the rest runs on KWOK clusters).
    let mut turn = Some(hanzo_testkit::real_node::turn());
    let last_on_node = documented()
        .iter()
        .rposition(|(_, _, command)| needs_the_node(command));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().unwrap();
    let sandbox_dir = root.path().join("sandbox");
    std::fs::create_dir_all(&sandbox_dir).unwrap();
    sandbox(&sandbox_dir, repo);
    let bin = bin_dir(root.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime
        .block_on(ControlPlane::start(Options::with_nodes(1)))
        .unwrap();
    let fresh = runtime
        .block_on(ControlPlane::start(Options::with_nodes(1)))
        .unwrap();
    // Where `run --namespace hanzo-s3-operator` keeps its CA (the deploy manifests make it).
    runtime.block_on(async {
        let client = cluster.client().await.unwrap();
        let ns: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "hanzo-s3-operator"}}))
                .unwrap();
        kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
            .create(&Default::default(), &ns)
            .await
            .unwrap();
    });
    let home = root.path().join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    std::fs::copy(cluster.kubeconfig_path(), home.join(".kube/config")).unwrap();
    let results = root.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    let env = Env {
        path: format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
        home,
        kubeconfig: cluster.kubeconfig_path().to_owned(),
        results: results.clone(),
    };
    let dir = |d: Dir| {
        if d == Dir::Repo {
            repo.to_path_buf()
        } else {
            sandbox_dir.clone()
        }
    };

    let mut running: Option<Running> = None;
    let mut ran = 0;
    let mut times = Times::new();
    for (index, (file, line, command)) in documented().into_iter().enumerate() {
        let (_, how) = how(&command).unwrap();
        let at = format!("{file}:{line}: {command}");
        eprintln!("==> {at}");
        times.next(&at);
        match how {
            How::RunBy(by) => {
                eprintln!("    run by {by}");
                continue;
            }
            How::UntilReady(d, ready) => {
                if let Some(previous) = running.take() {
                    interrupt(previous);
                }
                let (child, _) = start_until(&command, &dir(d), d == Dir::Sandbox, &env, ready);
                let started = Running {
                    child,
                    command: command.clone(),
                };
                if needs_the_node(&command) {
                    // Stopped at once: its tenants would load the machine through the commands
                    // that follow, and the node is wanted by real_node's tests.
                    interrupt(started);
                    if Some(index) == last_on_node {
                        turn = None;
                    }
                } else {
                    running = Some(started);
                }
            }
            How::Run(d) | How::RunOnFreshCluster(d) | How::AsExample(d, _) => {
                let (text, kubeconfig) = match how {
                    How::AsExample(_, concrete) => (concrete.to_owned(), env.kubeconfig.clone()),
                    How::RunOnFreshCluster(_) => {
                        (command.clone(), fresh.kubeconfig_path().to_owned())
                    }
                    _ => (command.clone(), env.kubeconfig.clone()),
                };
                let out = shell(&text, &dir(d), &env, &kubeconfig, d == Dir::Sandbox)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{at}\nexited {}:\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        ran += 1;
    }
    if let Some(last) = running.take() {
        interrupt(last);
    }
    drop(turn);
    times.write();
    assert!(ran >= 24, "{ran} commands ran");
    // What the commands made is what the docs say they make.
    for file in ["tenants.xml", "tenants.sarif", "live.yaml"] {
        assert!(
            sandbox_dir.join(file).metadata().unwrap().len() > 0,
            "{file} written"
        );
    }
    for file in ["admission.md", "webhook.md"] {
        let text = std::fs::read_to_string(results.join(file)).unwrap();
        assert!(text.contains("| "), "{file} has a table:\n{text}");
    }
    let live = std::fs::read_to_string(sandbox_dir.join("live.yaml")).unwrap();
    assert!(live.contains("kind: List"), "{live}");
}
