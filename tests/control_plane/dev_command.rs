//! The README's main command end to end: `dev` starts the control plane and the operator, applies
//! the examples, shows a denial, and reports every example tenant Ready.

use assert_cmd::Command;
use hanzo_testkit::{PoolBuilder, TenantBuilder, support};
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

/// A script that waits for the kubeconfig and applies at once (as the README invites) must get
/// defaults and validation: dev writes the file only when both webhooks judge Tenants.
#[test]
fn a_tenant_applied_the_instant_the_kubeconfig_appears_is_defaulted_and_validated() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut dev = support::ChildGuard(
        std::process::Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"))
            .args(["dev", "--no-examples", "--nodes", "1", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(240);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "no kubeconfig from dev");
        assert!(dev.0.try_wait().unwrap().is_none(), "dev exited early");
        std::thread::sleep(Duration::from_millis(5));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let yaml = std::fs::read_to_string(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&yaml).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let tenants: kube::Api<hanzo_s3_operator::api::tenant::Tenant> =
            kube::Api::namespaced(client.clone(), "default");
        let tenant = |servers: i32| -> hanzo_s3_operator::api::tenant::Tenant {
            TenantBuilder::new(format!("instant-{servers}"))
                .configuration("env")
                .pool(PoolBuilder::unnamed(servers, 1))
                .typed()
        };
        // The very first request: no retry, no wait.
        let stored = tenants
            .create(&kube::api::PostParams::default(), &tenant(4))
            .await
            .unwrap();
        assert!(
            stored.spec.image.is_some(),
            "stored with the webhook's defaults"
        );
        assert_eq!(stored.spec.pools[0].name, "ss-0");
        let denied = tenants
            .create(&kube::api::PostParams::default(), &tenant(2))
            .await
            .unwrap_err();
        assert!(
            denied.to_string().contains("validation.tenants.hanzo.ai"),
            "{denied}"
        );
        // What a default install has: the backstop policy, bound.
        let policies: kube::Api<
            k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        > = kube::Api::all(client);
        let binding = policies
            .get(hanzo_s3_operator::admission::backstop::POLICY_NAME)
            .await
            .unwrap();
        assert_eq!(binding.spec.validation_actions, vec!["Deny".to_owned()]);
    });
    let _ = std::process::Command::new("kill")
        .args(["-INT", &dev.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while dev.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}
