//! `dev --real-node`, as a user runs it: the example tenants run on real S3 servers, become Ready
//! when their clusters answer, and the commands it prints (curl with SigV4 to the S3 Service,
//! kubectl port-forward to a server pod) work exactly as printed, from the directory it ran in.
//! Needs root and the real node (built on first use).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_testkit::support;

#[test]
fn dev_real_node_prints_commands_that_work_as_printed() {
    // `dev --real-node` starts the machine's one real node: a turn among this binary's tests.
    let _turn = hanzo_testkit::real_node::turn();
    let dir = tempfile::tempdir().unwrap();
    let mut dev = support::ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
            .args(["dev", "--real-node"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = dev.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut output = Vec::new();
    while !output.iter().any(|l: &String| l.contains("press Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => output.push(line),
            Err(_) => panic!("dev --real-node did not get ready:\n{}", output.join("\n")),
        }
    }
    let text = output.join("\n");
    assert!(
        text.contains("Tenants are admitted through both webhooks; kubeconfig written"),
        "{text}"
    );
    assert!(text.contains("skipping examples/tenant-multi-pool.yaml on the real node: it asks for the image ghcr.io/hanzos3/s3:"), "{text}");
    assert!(
        text.contains("Tenant tenant-tls/secure: Initialized (4 servers available)"),
        "{text}"
    );
    assert!(
        text.contains("Pods Running on the real node: 4/4"),
        "{text}"
    );
    let command = |prefix: &str, tenant: &str| -> String {
        output
            .iter()
            .skip_while(|l| !l.contains(&format!("Tenant {tenant}: https://")))
            .find_map(|l| {
                l.trim()
                    .strip_prefix(prefix)
                    .map(str::trim)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no {prefix:?} line for {tenant} in\n{text}"))
    };
    let run = |line: &str| {
        let out = Command::new("bash")
            .args(["-c", line])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{line}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for tenant in ["tenant-tls/secure", "tenant-minimal/minimal"] {
        run(&command("make a bucket:", tenant));
        let listing = run(&command("list buckets:", tenant));
        assert!(listing.contains("<Name>demo</Name>"), "{tenant}: {listing}");
    }
    let credentials = dir.path().join("hanzo-dev-tenant-tls.credentials");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // The printed port-forward, then the S3 health endpoint through it, with the operator's CA.
    let forward = command("or through a pod:", "tenant-tls/secure");
    let mut pf = support::ChildGuard(
        Command::new("bash")
            .args(["-c", &forward])
            .current_dir(dir.path())
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    // Kept open until the end: kubectl writes more lines, and a closed pipe would kill it.
    let mut forwarding = BufReader::new(pf.0.stdout.take().unwrap());
    forwarding.read_line(&mut first).unwrap();
    assert!(first.contains("Forwarding from 127.0.0.1:9000"), "{first}");
    let health = run(
        "curl -sS -o /dev/null -w '%{http_code}' --cacert hanzo-dev-ca.pem --resolve minio.tenant-tls.svc.cluster.local:9000:127.0.0.1 https://minio.tenant-tls.svc.cluster.local:9000/minio/health/cluster",
    );
    assert_eq!(health, "200");
    // bash and the kubectl it started share the process group.
    let _ = Command::new("kill")
        .args(["--", &format!("-{}", pf.0.id())])
        .status();
    drop((forwarding, pf));

    // Ctrl-C stops everything.
    let interrupted = Command::new("kill")
        .args(["-INT", &dev.0.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while dev.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dev did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !std::path::Path::new("/sys/class/net/hanzo0").exists(),
        "the bridge is gone"
    );
}
