//! A real node beside the fake ones: containerd (with Debian's runc), the CNI bridge, CoreDNS,
//! kubelet and kube-proxy, all built from their Go modules by `build-node.sh`, running on this
//! machine as root.
//!
//! Addresses stay on the machine: pods get 198.18.0.0/24 on a bridge the harness creates
//! (`hanzo0`, the host holds 198.18.0.1, which is also the node's and the apiserver's address),
//! Service VIPs come from 198.19.0.0/16 and are routed to the bridge only. CoreDNS answers
//! `cluster.local` on the bridge address and nothing else. One real node per machine at a time (a
//! lock file), because the bridge, the firewall rules and the cgroup are the host's.
//!
//! Everything the node makes (processes in its cgroup, mounts under its directory, the bridge and
//! veths, KUBE-/CNI- firewall rules, kernel settings) is listed in `node.env` and undone by
//! `node-cleanup.sh`, which both `stop` and the watchdog run.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

use crate::process::Processes;
use crate::{Error, free_port, version};

/// The bridge the harness creates; pods' veths attach to it.
pub const BRIDGE: &str = "hanzo0";
/// The host's address on the bridge: the pods' gateway, the node's InternalIP, where the
/// apiserver and CoreDNS listen.
pub const BRIDGE_IP: &str = "198.18.0.1";
/// Pod addresses (host-local IPAM on the bridge).
pub const POD_SUBNET: &str = "198.18.0.0/24";
/// Service VIPs (the apiserver's service-cluster-ip-range); routed to the bridge, never off the
/// machine.
pub const SERVICE_CIDR: &str = "198.19.0.0/16";
/// The `kubernetes` Service's VIP: the first address of [`SERVICE_CIDR`].
pub const KUBERNETES_SERVICE_IP: &str = "198.19.0.1";
pub const NODE_NAME: &str = "hanzo-real-node";
/// Label of the real node: pods that must really run select it.
pub const REAL_NODE_LABEL: &str = "hanzo.ai/node";
pub const REAL_NODE_LABEL_VALUE: &str = "real";
/// Taint of the fake nodes while a real node runs, so only pods that tolerate it land there.
pub const FAKE_NODE_TAINT: &str = "hanzo.ai/fake-node";
pub const CLUSTER_DOMAIN: &str = "cluster.local";
const CGROUP_ROOT: &str = "hanzo-real-node";
const LOCK_PATH: &str = "/run/lock/hanzo-s3-operator-real-node.lock";
/// Names the directory of the node holding the lock, so a later owner can clean up after one that
/// died with its watchdog.
const LOCK_NOTE: &str = "/run/lock/hanzo-s3-operator-real-node.dir";
const CLEANUP: &str = include_str!("../node-cleanup.sh");
/// Kernel settings the node (or the kubelet and kube-proxy it runs) changes; restored on cleanup.
const SYSCTLS: [&str; 9] = [
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.ipv4.conf.all.route_localnet",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
];

/// Where build-node.sh puts the node's binaries and images.
pub fn node_dir() -> PathBuf {
    crate::cache_root().join(format!(
        "node-k8s-{}-containerd-{}-cni-{}-coredns-{}-minio-{}",
        version("K8S_VERSION"),
        version("CONTAINERD_VERSION"),
        version("CNI_PLUGINS_VERSION"),
        version("COREDNS_VERSION"),
        version("MINIO_VERSION"),
    ))
}

/// The image reference of the S3 server that stands in for Hanzo S3 (imported on every real node).
pub fn s3_server_image() -> &'static str {
    version("S3_SERVER_IMAGE")
}

/// The S3 server binary inside the image (for tests that run a server without a node).
pub fn s3_server_binary() -> Result<PathBuf, Error> {
    let path = node_dir().join("image-bin/minio");
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinaries {
            dir: node_dir(),
            missing:
                "image-bin/minio (the S3 server is built by `crates/local-cluster/build-node.sh`)"
                    .to_owned(),
        })
    }
}

const NODE_FILES: [&str; 14] = [
    "bin/kubelet",
    "bin/kube-proxy",
    "bin/kubectl",
    "bin/containerd",
    "bin/ctr",
    "bin/containerd-shim-runc-v2",
    "bin/coredns",
    "bin/s3client",
    "bin/cni/bridge",
    "bin/cni/host-local",
    "bin/cni/loopback",
    "bin/cni/portmap",
    "images/pause.tar",
    "images/s3-server.tar",
];

fn check_node_files() -> Result<PathBuf, Error> {
    let dir = node_dir();
    if let Some(missing) = NODE_FILES.iter().find(|f| !dir.join(f).is_file()) {
        return Err(Error::MissingBinaries {
            dir,
            missing: format!(
                "{missing} (the real node is built by `crates/local-cluster/build-node.sh`)"
            ),
        });
    }
    Ok(dir)
}

/// Builds the real node when anything is missing (runs build-node.sh, which prints its
/// progress), then returns its directory.
pub fn ensure_node_built() -> Result<PathBuf, Error> {
    if let Ok(dir) = check_node_files() {
        return Ok(dir);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build-node.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .map_err(|e| Error::io("run crates/local-cluster/build-node.sh", e))?;
    if !status.success() {
        return Err(Error::Build(format!("build-node.sh: {status}")));
    }
    check_node_files()
}

fn real_node_error(what: impl Into<String>) -> Error {
    Error::RealNode(what.into())
}

/// A command that must succeed; its stderr is in the error.
fn run(program: &str, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| real_node_error(format!("cannot run {program}: {e}")))?;
    if !out.status.success() {
        return Err(real_node_error(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Held while the node runs: the machine-wide lock.
pub struct NodeLock {
    _file: File,
}

/// What a running real node offers the tests.
#[derive(Clone, Debug)]
pub struct RealNode {
    pub name: String,
    /// build-node.sh's output: `bin/` (kubectl, ctr, s3client, ...) and `images/`.
    pub node_dir: PathBuf,
    /// containerd's socket, for `ctr --address`.
    pub containerd_socket: PathBuf,
    /// Where the provisioner puts each claim's data: `<volumes>/<namespace>/<claim>`.
    pub volumes_dir: PathBuf,
}

impl RealNode {
    /// A `kubectl` built with the node, at the control plane's version.
    pub fn kubectl(&self) -> PathBuf {
        self.node_dir.join("bin/kubectl")
    }

    /// The S3 test client (`crates/local-cluster/node/s3client`).
    pub fn s3client(&self) -> PathBuf {
        self.node_dir.join("bin/s3client")
    }

    /// Gives an image in the node's containerd a second name (`ctr images tag`): an image change
    /// for upgrade tests without a second build.
    pub fn tag_image(&self, source: &str, target: &str) -> Result<(), Error> {
        let ctr = self.node_dir.join("bin/ctr");
        run(
            &ctr.display().to_string(),
            &[
                "--address",
                &self.containerd_socket.display().to_string(),
                "--namespace",
                "k8s.io",
                "images",
                "tag",
                "--force",
                source,
                target,
            ],
        )
        .map(drop)
    }

    /// Imports an image archive (docker-archive or OCI) into the node's containerd, where pods
    /// with `imagePullPolicy: Never` or `IfNotPresent` find it.
    pub fn import_image(&self, archive: &Path) -> Result<(), Error> {
        let ctr = self.node_dir.join("bin/ctr");
        run(
            &ctr.display().to_string(),
            &[
                "--address",
                &self.containerd_socket.display().to_string(),
                "--namespace",
                "k8s.io",
                "images",
                "import",
                "--local",
                &archive.display().to_string(),
            ],
        )
        .map(drop)
    }
}

/// Checks what the node needs from the machine, takes the lock, records what it will change, and
/// creates the bridge, the route for Service VIPs and the cgroup. Runs before the apiserver starts:
/// it listens on the bridge address.
pub fn prepare_host(dir: &Path) -> Result<NodeLock, Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(real_node_error(
            "the real node needs root (it creates a bridge, firewall rules, cgroups and mounts); run as root",
        ));
    }
    for (program, package) in [
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("iptables-save", "iptables"),
        ("runc", "runc"),
        ("sysctl", "procps"),
    ] {
        if find_program(program).is_none() {
            return Err(real_node_error(format!(
                "`{program}` is not installed: run scripts/setup.sh (Debian package {package})"
            )));
        }
    }
    for needed in [
        "/proc/sys/net/bridge/bridge-nf-call-iptables",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/cpuset",
    ] {
        if !Path::new(needed).exists() {
            return Err(real_node_error(format!(
                "the kernel lacks {needed}, which the real node needs (br_netfilter, cgroup v1 controllers)"
            )));
        }
    }
    if !std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .contains("overlay")
    {
        return Err(real_node_error(
            "the kernel has no overlay filesystem, which containerd's snapshotter needs",
        ));
    }

    let lock = take_lock()?;
    // A previous node whose owner and watchdog both died left its note: clean up after it.
    if let Ok(previous) = std::fs::read_to_string(LOCK_NOTE) {
        let previous = previous.trim();
        if !previous.is_empty() && Path::new(previous).join("node.env").is_file() {
            let _ = Command::new("sh")
                .arg(Path::new(previous).join("node-cleanup.sh"))
                .arg(previous)
                .status();
        }
    }
    if Path::new(&format!("/sys/class/net/{BRIDGE}")).exists() {
        // Left by a node nobody can clean up any more (its directory is gone).
        let _ = run("ip", &["link", "del", BRIDGE]);
    }

    let write = |name: &str, content: &str| -> Result<(), Error> {
        std::fs::write(dir.join(name), content).map_err(|e| Error::io("write node files", e))
    };
    write("node-cleanup.sh", CLEANUP)?;
    let mut saved = String::new();
    for key in SYSCTLS {
        if let Ok(value) = run("sysctl", &["-n", key]) {
            saved.push_str(&format!("{key} {}\n", value.trim()));
        }
    }
    write("sysctl.saved", &saved)?;
    let kube_proxy = node_dir().join("bin/kube-proxy");
    write(
        "node.env",
        &format!(
            "BRIDGE={BRIDGE}\nCGROUP_ROOT={CGROUP_ROOT}\nKUBE_PROXY='{}'\nLOCK_NOTE={LOCK_NOTE}\n",
            kube_proxy.display()
        ),
    )?;
    std::fs::write(LOCK_NOTE, dir.display().to_string())
        .map_err(|e| Error::io("write the real node's lock note", e))?;

    create_cgroups()?;
    run("sysctl", &["-qw", "net.ipv4.ip_forward=1"])?;
    run("sysctl", &["-qw", "net.bridge.bridge-nf-call-iptables=1"])?;
    run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    run(
        "ip",
        &["addr", "add", &format!("{BRIDGE_IP}/24"), "dev", BRIDGE],
    )?;
    run("ip", &["link", "set", BRIDGE, "up"])?;
    // Service VIPs are reached from the host (tests, `dev`) through kube-proxy's rules; this route
    // makes the kernel pick the bridge rather than the default route for them.
    run("ip", &["route", "add", SERVICE_CIDR, "dev", BRIDGE])?;
    Ok(lock)
}

fn take_lock() -> Result<NodeLock, Error> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(LOCK_PATH)
        .map_err(|e| Error::io("open the real node's lock file", e))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(real_node_error(format!(
            "another real node runs on this machine (lock {LOCK_PATH} held by pid {}); one at a time",
            holder.trim()
        )));
    }
    file.set_len(0)
        .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()))
        .map_err(|e| Error::io("write the real node's lock file", e))?;
    Ok(NodeLock { _file: file })
}

/// The node's cgroup in every hierarchy: the kubelet's `cgroupRoot` (it refuses a root that does
/// not exist) and, below it, `runtime` for containerd and its shims.
fn create_cgroups() -> Result<(), Error> {
    let entries =
        std::fs::read_dir("/sys/fs/cgroup").map_err(|e| Error::io("read /sys/fs/cgroup", e))?;
    for entry in entries.flatten() {
        let root = entry.path().join(CGROUP_ROOT);
        if let Err(e) = std::fs::create_dir_all(root.join("runtime"))
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(real_node_error(format!(
                "cannot create the cgroup {}: {e}",
                root.display()
            )));
        }
        if entry.file_name() == "cpuset" {
            // cgroup v1 cpusets start empty, and nothing can join an empty one.
            for child in [root.clone(), root.join("runtime")] {
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let value = std::fs::read_to_string(entry.path().join(file))
                        .map_err(|e| Error::io("read the root cpuset", e))?;
                    std::fs::write(child.join(file), value.trim())
                        .map_err(|e| Error::io("write a cpuset", e))?;
                }
            }
        }
    }
    Ok(())
}

/// Starts containerd, CoreDNS, the kubelet and kube-proxy, imports the images, and waits until the
/// node is Ready.
pub async fn start(
    processes: &std::sync::Mutex<Processes>,
    dir: &Path,
    kubeconfig: &Path,
    client: kube::Client,
    images: &[PathBuf],
) -> Result<RealNode, Error> {
    let node = check_node_files()?;
    let bin = node.join("bin");
    let runc = find_program("runc")
        .ok_or_else(|| real_node_error("`runc` is not installed: run scripts/setup.sh"))?;
    let path_env = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        bin.display()
    );
    let state = dir.join("containerd");
    let socket = state.join("containerd.sock");
    let cni_conf = dir.join("cni/net.d");
    for d in [&state, &cni_conf, &dir.join("kubelet")] {
        std::fs::create_dir_all(d).map_err(|e| Error::io("create node directories", e))?;
    }
    let write = |path: PathBuf, content: String| -> Result<PathBuf, Error> {
        std::fs::write(&path, content).map_err(|e| Error::io("write node configuration", e))?;
        Ok(path)
    };
    write(
        cni_conf.join("10-hanzo.conflist"),
        cni_config(&dir.join("cni/ipam")),
    )?;
    let containerd_config = write(
        dir.join("containerd.toml"),
        containerd_config(&state, &socket, &bin, &runc, &cni_conf),
    )?;
    let env = [("PATH", path_env.as_str())];
    let containerd_pid = processes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .spawn_with_env(
            "containerd",
            &bin.join("containerd"),
            &[
                "--config".to_owned(),
                containerd_config.display().to_string(),
            ],
            &env,
        )?;
    // containerd's shims (and so every container they start) inherit this cgroup: cleanup finds
    // them there even though they leave the process group.
    std::fs::write(
        format!("/sys/fs/cgroup/pids/{CGROUP_ROOT}/runtime/cgroup.procs"),
        containerd_pid.to_string(),
    )
    .map_err(|e| Error::io("move containerd into the node's cgroup", e))?;

    let node_info = RealNode {
        name: NODE_NAME.to_owned(),
        node_dir: node.clone(),
        containerd_socket: socket.clone(),
        volumes_dir: dir.join("volumes"),
    };
    wait_for(
        Duration::from_secs(30),
        "containerd's socket",
        processes,
        || {
            let ok = socket.exists()
                && Command::new(bin.join("ctr"))
                    .args(["--address", &socket.display().to_string(), "version"])
                    .output()
                    .is_ok_and(|o| o.status.success());
            async move { ok }
        },
    )
    .await?;
    for archive in [
        node.join("images/pause.tar"),
        node.join("images/s3-server.tar"),
    ]
    .iter()
    .chain(images)
    {
        node_info.import_image(archive)?;
    }

    let corefile = write(dir.join("Corefile"), corefile(kubeconfig))?;
    let resolv = write(dir.join("resolv.conf"), format!("nameserver {BRIDGE_IP}\n"))?;
    let kubelet_config = write(
        dir.join("kubelet.yaml"),
        kubelet_config(&socket, &resolv, free_port()?, free_port()?),
    )?;
    {
        let mut procs = processes.lock().unwrap_or_else(|p| p.into_inner());
        procs.spawn_with_env(
            "coredns",
            &bin.join("coredns"),
            &[
                "-conf".to_owned(),
                corefile.display().to_string(),
                "-dns.port".to_owned(),
                "53".to_owned(),
            ],
            &env,
        )?;
        procs.spawn_with_env(
            "kubelet",
            &bin.join("kubelet"),
            &[
                format!("--config={}", kubelet_config.display()),
                format!("--kubeconfig={}", kubeconfig.display()),
                format!("--root-dir={}", dir.join("kubelet").display()),
                format!("--cert-dir={}", dir.join("kubelet-pki").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={BRIDGE_IP}"),
                format!("--node-labels={REAL_NODE_LABEL}={REAL_NODE_LABEL_VALUE}"),
                "--v=1".to_owned(),
            ],
            &env,
        )?;
        procs.spawn_with_env(
            "kube-proxy",
            &bin.join("kube-proxy"),
            &[
                format!("--kubeconfig={}", kubeconfig.display()),
                format!("--hostname-override={NODE_NAME}"),
                "--proxy-mode=iptables".to_owned(),
                // Every Service connection is SNATed to the bridge address, so replies come back
                // through the host even between pods on the same bridge (no br_netfilter games).
                "--masquerade-all".to_owned(),
                format!("--cluster-cidr={POD_SUBNET}"),
                format!("--healthz-bind-address=127.0.0.1:{}", free_port()?),
                format!("--metrics-bind-address=127.0.0.1:{}", free_port()?),
                // Leave the host's conntrack table sizes and timeouts alone.
                "--conntrack-max-per-core=0".to_owned(),
                "--conntrack-tcp-timeout-established=0".to_owned(),
                "--conntrack-tcp-timeout-close-wait=0".to_owned(),
                "--iptables-localhost-nodeports=false".to_owned(),
                "--v=1".to_owned(),
            ],
            &env,
        )?;
    }

    let nodes: Api<Node> = Api::all(client);
    wait_for(
        Duration::from_secs(120),
        "the real node to be Ready",
        processes,
        || {
            let nodes = nodes.clone();
            async move {
                nodes
                    .get_opt(NODE_NAME)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|n| {
                        n.status.and_then(|s| s.conditions).is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                    })
            }
        },
    )
    .await?;
    Ok(node_info)
}

async fn wait_for<F, Fut>(
    timeout: Duration,
    what: &str,
    processes: &std::sync::Mutex<Processes>,
    mut probe: F,
) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if probe().await {
            return Ok(());
        }
        let exited = processes.lock().unwrap_or_else(|p| p.into_inner()).exited();
        let reason = match exited {
            Some(exited) => Some(format!("{exited} while waiting for {what}")),
            None if Instant::now() > deadline => {
                Some(format!("no {what} within {}s", timeout.as_secs()))
            }
            None => None,
        };
        if let Some(reason) = reason {
            let logs = processes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .log_tails(30);
            return Err(Error::NotReady { reason, logs });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn cni_config(ipam_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "hanzo",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": BRIDGE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir.display().to_string()
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

fn containerd_config(
    state: &Path,
    socket: &Path,
    bin: &Path,
    runc: &Path,
    cni_conf: &Path,
) -> String {
    format!(
        r#"version = 3
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause}"

[plugins.'io.containerd.cri.v1.runtime']
  # root here lacks CAP_SYS_RESOURCE: no process may lower its oom_score_adj.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state directory (not /var/run/netns), where cleanup
  # unmounts them with everything else.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{cni_conf}"
"#,
        root = state.join("root").display(),
        state = state.join("state").display(),
        socket = socket.display(),
        pause = version("PAUSE_IMAGE"),
        runc = runc.display(),
        cni_bin = bin.join("cni").display(),
        cni_conf = cni_conf.display(),
    )
}

fn corefile(kubeconfig: &Path) -> String {
    format!(
        "{CLUSTER_DOMAIN}:53 in-addr.arpa:53 {{
    bind {BRIDGE_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa {{
        kubeconfig {kubeconfig} hanzo-local
        pods insecure
        ttl 5
    }}
}}
.:53 {{
    bind {BRIDGE_IP}
    # Nothing leaves the machine: every other name is unknown.
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
",
        kubeconfig = kubeconfig.display()
    )
}

fn kubelet_config(socket: &Path, resolv: &Path, port: u16, healthz_port: u16) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine's cgroups are hybrid (v1 controllers): the kubelet needs to be told that is fine.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{CGROUP_ROOT}
failSwapOn: false
containerRuntimeEndpoint: unix://{socket}
address: {BRIDGE_IP}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
authentication:
  anonymous: {{enabled: true}}
  webhook: {{enabled: false}}
authorization:
  mode: AlwaysAllow
clusterDNS: [{BRIDGE_IP}]
clusterDomain: {CLUSTER_DOMAIN}
resolvConf: {resolv}
# Images are imported, never pulled: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# No node-pressure eviction. This node shares its machine with the builds and its own control
# plane; a CI run once had every pod here evicted (the operator's replicas over and over, the
# servers left Pending behind the pressure taint) while the machine's page cache (memory in use to
# cgroup v1) and build caches (disk) grew beside it. A test then measures the machine, not the
# operator. '0%' turns a signal off; a real shortage still fails a test, whose diagnosis prints
# the node's conditions and the disk and memory left.
evictionHard:
  memory.available: '0%'
  nodefs.available: '0%'
  nodefs.inodesFree: '0%'
  imagefs.available: '0%'
  imagefs.inodesFree: '0%'
serializeImagePulls: false
maxPods: 110
",
        socket = socket.display(),
        resolv = resolv.display(),
    )
}

/// Makes the directory a claim's hostPath volume lives in, writable by the unprivileged users of
/// the pods that mount it (hostPath volumes ignore fsGroup).
pub fn make_volume_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
}
