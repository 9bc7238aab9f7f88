//! Start-up, and clean-up even when the owning process is killed without a chance to clean up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_local_cluster::{ControlPlane, Options};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;

#[tokio::test]
async fn starts_a_real_apiserver_and_stops_it() {
    let cp = ControlPlane::start(Options::api_only()).await.unwrap();
    let client = cp.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        version.git_version,
        hanzo_local_cluster::kubernetes_version()
    );
    let ns = cp.create_namespace("lifecycle").await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    assert!(namespaces.get_opt(&ns).await.unwrap().is_some());
    let dir = cp.dir().to_owned();
    assert!(dir.join("kubeconfig").is_file());
    drop(cp);
    assert!(!dir.exists(), "the directory is removed on drop");
}

fn pids_under(dir: &str) -> Vec<String> {
    let out = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(dir) && !l.contains("kill -0"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn nothing_is_left_when_the_owner_is_killed() {
    let mut owner = Command::new(env!("CARGO_BIN_EXE_local-controlplane"))
        .arg("1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(owner.stdout.take().unwrap()).lines();
    let kubeconfig = lines.next().unwrap().unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let dir = std::path::Path::new(&kubeconfig)
        .parent()
        .unwrap()
        .display()
        .to_string();
    assert!(
        pids_under(&dir).len() >= 4,
        "etcd, apiserver, controller-manager, scheduler, kwok run: {:?}",
        pids_under(&dir)
    );
    owner.kill().unwrap(); // SIGKILL: no destructor runs
    owner.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (!pids_under(&dir).is_empty() || std::path::Path::new(&dir).exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        pids_under(&dir).is_empty(),
        "orphans: {:?}",
        pids_under(&dir)
    );
    assert!(
        !std::path::Path::new(&dir).exists(),
        "{dir} was not removed"
    );
}
