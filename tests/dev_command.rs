//! The README's main command end to end: `dev` starts the control plane and the operator, applies
//! the examples, shows a denial, and reports every example tenant Ready.

use assert_cmd::Command;
use predicates::prelude::*;

#[test]
fn dev_brings_the_examples_to_ready_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    Command::cargo_bin("hanzo-s3-operator")
        .unwrap()
        .args(["dev", "--exit-when-ready", "--nodes", "3", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .timeout(std::time::Duration::from_secs(240))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Tenant tenant-minimal/minimal admitted and defaulted: image ghcr.io/hanzos3/s3:RELEASE.2025-04-08T15-41-24Z, serviceAccountName minimal-sa, pools [\"ss-0\"]"))
        .stdout(predicate::str::contains("denied (422): admission webhook \"validation.tenants.hanzo.ai\" denied the request: Tenant.minio.min.io \"broken\" is invalid: [spec.pools[0]: Invalid value: \"servers: 17, volumesPerServer: 1\""))
        .stdout(predicate::str::contains("Tenant tenant-multi-pool/multi-pool: Initialized (6 servers available)"))
        .stdout(predicate::str::contains("Pods Running on fake nodes: 6/6"))
        .stdout(predicate::str::contains("stopped"));
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains("certificate-authority-data")
    );
}
