//! The real node: a pod really runs (its own network namespace, an address on the harness's
//! bridge, a Service VIP in front of it, DNS from CoreDNS), and when the owning process is killed
//! without a chance to clean up, nothing the node made is left on the machine.
//!
//! Needs root and `build-node.sh`'s output (built on first use). When the node cannot start,
//! the test fails with the harness's message naming what is missing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kubectl(kubeconfig: &str, args: &[&str]) -> std::process::Output {
    Command::new(hanzo_local_cluster::node::node_dir().join("bin/kubectl"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap()
}

fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "no {what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Everything of the machine a real node touches, as text, so a leftover shows in the assertion.
fn leftovers(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    let sh = |script: &str| {
        String::from_utf8_lossy(
            &Command::new("sh")
                .args(["-c", script])
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .to_owned()
    };
    let processes = sh(&format!(
        "ps -eo pid,args | grep -E '{dir}|containerd-shim|/pause|s3-entrypoint|minio' | grep -v grep"
    ));
    if !processes.is_empty() {
        found.push(format!("processes:\n{processes}"));
    }
    let mounts = sh(&format!("grep -F '{dir}' /proc/self/mountinfo"));
    if !mounts.is_empty() {
        found.push(format!("mounts:\n{mounts}"));
    }
    if Path::new("/sys/class/net/hanzo0").exists() {
        found.push("the bridge hanzo0".into());
    }
    let veths = sh("ip -o link show type veth");
    if !veths.is_empty() {
        found.push(format!("veths:\n{veths}"));
    }
    let namespaces = sh("ip netns list");
    if !namespaces.is_empty() {
        found.push(format!("network namespaces:\n{namespaces}"));
    }
    let rules = sh("iptables-save | grep -E 'KUBE-|CNI-'");
    if !rules.is_empty() {
        found.push(format!("firewall rules:\n{rules}"));
    }
    let cgroups = sh("ls -d /sys/fs/cgroup/*/hanzo-real-node 2>/dev/null");
    if !cgroups.is_empty() {
        found.push(format!("cgroups:\n{cgroups}"));
    }
    if Path::new(dir).exists() {
        found.push(format!("the directory {dir}"));
    }
    found
}

#[test]
fn a_pod_runs_on_the_real_node_and_nothing_is_left_when_the_owner_is_killed() {
    hanzo_local_cluster::ensure_built().unwrap();
    hanzo_local_cluster::node::ensure_node_built().unwrap();
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let mut owner = Command::new(env!("CARGO_BIN_EXE_local-controlplane"))
        .arg("--real-node")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(owner.stdout.take().unwrap()).lines();
    let kubeconfig = lines
        .next()
        .expect("local-controlplane printed nothing: it failed, see its stderr above")
        .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let dir = Path::new(&kubeconfig)
        .parent()
        .unwrap()
        .display()
        .to_string();

    // A pod with its own network namespace and a Service in front of it.
    let manifest = format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: sleeper, namespace: default, labels: {{app: sleeper}}}}
spec:
  containers:
  - {{name: pause, image: {}, imagePullPolicy: Never}}
---
apiVersion: v1
kind: Service
metadata: {{name: sleeper, namespace: default}}
spec: {{selector: {{app: sleeper}}, ports: [{{port: 80}}]}}
",
        "localhost/hanzo/pause:3.10"
    );
    let file = Path::new(&dir).join("sleeper.yaml");
    std::fs::write(&file, manifest).unwrap();
    let applied = kubectl(&kubeconfig, &["apply", "-f", &file.display().to_string()]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    wait("Running pod", Duration::from_secs(60), || {
        let out = kubectl(
            &kubeconfig,
            &[
                "get",
                "pod",
                "sleeper",
                "-o",
                "jsonpath={.status.phase} {.status.podIP}",
            ],
        );
        String::from_utf8_lossy(&out.stdout).starts_with("Running 198.18.0.")
    });
    // The Service has a VIP from the harness's range, and CoreDNS answers its name on the bridge.
    let vip = String::from_utf8_lossy(
        &kubectl(
            &kubeconfig,
            &[
                "get",
                "service",
                "sleeper",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ],
        )
        .stdout,
    )
    .into_owned();
    assert!(vip.starts_with("198.19."), "{vip}");
    // The host itself does not use CoreDNS; ask it directly (no dig here: a UDP query by hand).
    assert_eq!(
        dns_a_record("sleeper.default.svc.cluster.local"),
        Some(vip.clone())
    );
    assert!(
        leftovers(&dir).len() > 3,
        "while running, the node's traces are there: {:?}",
        leftovers(&dir)
    );

    owner.kill().unwrap(); // SIGKILL: no destructor runs; the watchdog must clean up
    owner.wait().unwrap();
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        last = leftovers(&dir);
        if last.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(last.is_empty(), "left behind: {last:#?}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        forward,
        "ip_forward restored"
    );
}

/// An A record from CoreDNS on the bridge address: a minimal DNS query over UDP.
fn dns_a_record(name: &str) -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket
        .send_to(&query, (hanzo_local_cluster::node::BRIDGE_IP, 53))
        .ok()?;
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    let answers = u16::from_be_bytes([buf[6], buf[7]]);
    if answers == 0 || n < query.len() + 16 {
        return None;
    }
    // The answer follows the question; its last 4 bytes are the address of an A record.
    let rdata = &buf[n - 4..n];
    Some(format!(
        "{}.{}.{}.{}",
        rdata[0], rdata[1], rdata[2], rdata[3]
    ))
}
