//! (Formerly benches/support/operators.rs, taken in by `#[path]`.)
//!
//! The two operators the side-by-side benchmarks run (on fake nodes in operator_side_by_side, on
//! the real node in real_node_side_by_side): how each is started, under which user it talks to
//! the apiserver, and how its writes are read back from the apiserver's audit log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hanzo_local_cluster::ControlPlane;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
pub enum Operator {
    Go,
    Ours,
}

impl Operator {
    pub fn label(self) -> &'static str {
        match self {
            Operator::Go => "hanzos3/operator (Go)",
            Operator::Ours => "hanzo-s3-operator",
        }
    }

    /// The user its kubeconfig impersonates, so the audit log tells its requests apart.
    pub fn user(self) -> &'static str {
        match self {
            Operator::Go => "bench-go-operator",
            Operator::Ours => "bench-hanzo-s3-operator",
        }
    }

    pub fn namespace(self) -> &'static str {
        match self {
            Operator::Go => "minio-operator",
            Operator::Ours => "hanzo-s3-operator",
        }
    }

    /// Its CRDs: ours from the code, the Go operator's from the snapshot it was built from.
    pub fn crds(self, go_src: Option<&Path>) -> Vec<Value> {
        match self {
            Operator::Ours => {
                vec![serde_json::to_value(hanzo_s3_operator::api::crd::crd().unwrap()).unwrap()]
            }
            Operator::Go => {
                let src = go_src
                    .expect("HANZO_GO_OPERATOR_SRC names the snapshot the binary was built from");
                [
                    "resources/base/crds/minio.min.io_tenants.yaml",
                    "resources/base/crds/sts.min.io_policybindings.yaml",
                ]
                .iter()
                .map(|f| {
                    let text = std::fs::read_to_string(src.join(f))
                        .unwrap_or_else(|e| panic!("{}: {e}", src.join(f).display()));
                    serde_yaml_ng::from_str(&text).unwrap()
                })
                .collect()
            }
        }
    }

    /// Its CRDs, applied server-side, and its namespace.
    pub async fn install(self, client: &kube::Client, go_src: Option<&Path>) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::api::{Api, Patch, PatchParams};
        for object in self.crds(go_src) {
            let name = object["metadata"]["name"].as_str().unwrap().to_owned();
            Api::<CustomResourceDefinition>::all(client.clone())
                .patch(
                    &name,
                    &PatchParams::apply("bench").force(),
                    &Patch::Apply(&object),
                )
                .await
                .unwrap();
        }
        crate::bench::create_namespace(client, self.namespace()).await;
        // A new CRD is served a moment after it is created.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }

    /// The command that runs it out of cluster with `kubeconfig`. Ours is `our_binary` (the
    /// benchmark's `CARGO_BIN_EXE_hanzo-s3-operator`, which only the operator's own targets are
    /// given) and reports a Tenant Ready when `ready_when` says so. `go_binary` is the Go
    /// operator's; `go_env` is added to its environment.
    pub fn command(
        self,
        our_binary: &Path,
        kubeconfig: &Path,
        ready_when: &str,
        go_binary: Option<&Path>,
        go_env: &[(&str, String)],
    ) -> Command {
        match self {
            Operator::Go => {
                // It serves tenant upgrades on :4221 of every address, and a second one on this
                // machine restarts that server in a loop that burns a core (its CPU-seconds).
                assert!(
                    std::net::TcpListener::bind("0.0.0.0:4221").is_ok(),
                    "port 4221 is taken: is another Go operator (which binds it) running on this machine? Run one at a time"
                );
                let mut c = Command::new(go_binary.expect("HANZO_GO_OPERATOR names its binary"));
                c.arg("controller").arg("--kubeconfig").arg(kubeconfig);
                // Its STS endpoint (not a thing ours has) wants its own Deployment to own a
                // certificate, and there is none outside a cluster.
                c.env("HOSTNAME", "bench-go-operator")
                    .env("OPERATOR_STS_ENABLED", "off");
                for (k, v) in go_env {
                    c.env(k, v);
                }
                c
            }
            Operator::Ours => {
                let mut c = Command::new(our_binary);
                c.args(["run", "--no-webhook-config", "--ready-when", ready_when])
                    .args(["--namespace", self.namespace(), "--listen"])
                    .arg(format!("127.0.0.1:{}", crate::bench::free_port()))
                    .arg("--kubeconfig")
                    .arg(kubeconfig)
                    .env("RUST_LOG", "warn");
                c
            }
        }
    }
}

/// What the real-node benchmarks run of the Go operator, built by `scripts/bench.sh` from a
/// snapshot: its binary, the snapshot (its CRDs and commit), its sidecar image's archive and
/// reference. From `HANZO_GO_OPERATOR`, `HANZO_GO_OPERATOR_SRC`, `HANZO_GO_SIDECAR_IMAGE` and
/// `HANZO_GO_SIDECAR_REF`; `None` unless all are set.
pub struct GoBuild {
    pub binary: PathBuf,
    pub src: PathBuf,
    pub sidecar_archive: PathBuf,
    pub sidecar_ref: String,
}

impl GoBuild {
    pub fn from_env() -> Option<GoBuild> {
        let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let go = GoBuild {
            binary: var("HANZO_GO_OPERATOR")?,
            src: var("HANZO_GO_OPERATOR_SRC")?,
            sidecar_archive: var("HANZO_GO_SIDECAR_IMAGE")?,
            sidecar_ref: std::env::var("HANZO_GO_SIDECAR_REF").ok()?,
        };
        for path in [&go.binary, &go.sidecar_archive] {
            assert!(path.is_file(), "{} is not a file", path.display());
        }
        Some(go)
    }
}

/// Starts `command` with its stderr in `log` (outside any control plane's directory, which goes
/// when it stops), lets it settle for 3 s and returns it with the CPU-seconds it spent starting,
/// which the caller takes off its total.
pub async fn spawn(mut command: Command, log: &Path) -> (crate::bench::Killed, f64) {
    let operator = crate::bench::Killed(
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (cpu_idle, _) = crate::bench::usage(operator.id())
        .unwrap_or_else(|| panic!("the operator exited at start: {}", log.display()));
    (operator, cpu_idle)
}

/// `inner` run in a mount namespace of its own whose /etc/resolv.conf is `resolv`: names resolve
/// there as in a pod, while the rest of this host stays as it is. `unshare` and `sh` exec in turn,
/// so the process keeps the pid the caller measures.
pub fn with_resolv_conf(inner: &Command, resolv: &Path) -> Command {
    in_mount_namespace(
        inner,
        r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#,
        &[resolv],
    )
}

/// [`with_resolv_conf`], with a fresh /run whose service-account directory holds `ca` (the
/// cluster CA) as `ca.crt` and `minio-operator` as its namespace: the Go operator trusts its
/// tenants' CSR-signed certificates through it, as it does in a pod.
pub fn like_a_pod(inner: &Command, resolv: &Path, ca: &Path) -> Command {
    in_mount_namespace(
        inner,
        concat!(
            r#"mount --bind "$0" /etc/resolv.conf && mount -t tmpfs tmpfs /run && "#,
            r#"d=/run/secrets/kubernetes.io/serviceaccount && mkdir -p "$d" && cp "$1" "$d/ca.crt" && "#,
            r#"printf minio-operator > "$d/namespace" && shift && exec "$@""#
        ),
        &[resolv, ca],
    )
}

/// `inner` after `script` (`sh -c`, given `files` as `$0`, `$1`, ... and then `inner`'s command
/// line, which it must shift to and exec) in a private mount namespace.
fn in_mount_namespace(inner: &Command, script: &str, files: &[&Path]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(script)
        .args(files)
        .arg(inner.get_program())
        .args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(v) => c.env(key, v),
            None => c.env_remove(key),
        };
    }
    c
}

/// An audit policy that records every write (and nothing else) at Metadata level.
pub const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
"#;

/// The kube-apiserver flags that write the audit log of [`AUDIT_POLICY`] to `dir/audit.log`.
pub fn audit_args(dir: &Path) -> (Vec<String>, PathBuf) {
    let policy = dir.join("policy.yaml");
    let log = dir.join("audit.log");
    std::fs::write(&policy, AUDIT_POLICY).unwrap();
    let args = vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log.display()),
        "--audit-log-format=json".to_owned(),
        "--audit-log-mode=blocking".to_owned(),
        // Rotation at 0 means lumberjack's default, 100 MB, not "never": a two-hour run of 4,000
        // fake pods wrote past it and three quarters of the Go operator's writes went to backups.
        "--audit-log-maxsize=1000000".to_owned(),
    ];
    (args, log)
}

/// The control plane's kubeconfig, impersonating `user` (in system:masters), so that the audit log
/// tells this operator's requests from everyone else's.
pub fn impersonating(cp: &ControlPlane, user: &str) -> PathBuf {
    let text = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    let mut config: Value = serde_yaml_ng::from_str(&text).unwrap();
    for entry in config["users"].as_array_mut().unwrap() {
        entry["user"]["as"] = json!(user);
        entry["user"]["as-groups"] = json!(["system:masters"]);
    }
    let path = cp.dir().join(format!("kubeconfig-{user}"));
    std::fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    path
}

/// Writes by `user` in the audit log, Lease renewals left out (leader election writes by the
/// clock, not by the Tenant), by resource.
pub fn writes_of(log: &Path, user: &str) -> BTreeMap<String, usize> {
    let mut by_resource = BTreeMap::new();
    // The log and any backups rotated out of it (`audit-<time>.log` beside it).
    let dir = log.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("audit") && n.ends_with(".log"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["stage"] != "ResponseComplete" || event["impersonatedUser"]["username"] != user {
            continue;
        }
        let resource = event["objectRef"]["resource"].as_str().unwrap_or("?");
        if resource == "leases" {
            continue;
        }
        let key = match event["objectRef"]["subresource"].as_str() {
            Some(s) => format!("{resource}/{s}"),
            None => resource.to_owned(),
        };
        *by_resource.entry(key).or_insert(0) += 1;
    }
    by_resource
}

/// `resource N, ...` for a results table.
pub fn by_resource_cell(by_resource: &BTreeMap<String, usize>) -> String {
    by_resource
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Go operator's commit for the results: HANZO_GO_OPERATOR_COMMIT (an exported snapshot has
/// no history), else the snapshot's git HEAD.
pub fn go_commit(src: &Path) -> String {
    std::env::var("HANZO_GO_OPERATOR_COMMIT")
        .ok()
        .or_else(|| {
            Command::new("git")
                .arg("-C")
                .arg(src)
                .args(["rev-parse", "--short", "HEAD"])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .map_or_else(
            || "an exported snapshot".to_owned(),
            |c| format!("commit {c}"),
        )
}
