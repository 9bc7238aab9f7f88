//! The offline CLI as GitOps pipelines run it: exit codes, messages, and no partial output.

use std::fmt::Write as _;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn cli() -> Command {
    let mut cmd = Command::cargo_bin("hanzo-s3-operator").unwrap();
    cmd.env_remove("TENANT_S3_IMAGE")
        .env_remove("CLUSTER_DOMAIN");
    cmd
}

const POOL: &str = "  pools:\n    - servers: 4\n      volumesPerServer: 1\n      volumeClaimTemplate:\n        spec:\n          accessModes: [ReadWriteOnce]\n          resources: {requests: {storage: 1Gi}}\n";

#[test]
fn validate_accepts_the_examples() {
    cli()
        .args(["validate", "examples/"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "examples/tenant-minimal.yaml: document 2 (line 16): Tenant default/minimal: valid",
        ))
        .stdout(predicate::str::contains(
            "3 tenant(s): 3 valid, 0 invalid; 3 other document(s) skipped; 0 unreadable input(s)",
        ));
}

#[test]
fn validate_reports_every_violation_and_warning_with_exit_1() {
    cli()
        .args(["validate", "tests/fixtures/cli/invalid.yaml"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "tests/fixtures/cli/invalid.yaml: document 2 (line 7): Tenant storage/broken: 2 violation(s)\n  \
             - tests/fixtures/cli/invalid.yaml:19:7: spec.pools[0].volumesPerServer: Invalid value: 1: a pool with 2 servers needs at least 4 volumes in total for erasure coding, it has 2; set volumesPerServer to 2 or more\n  \
             - tests/fixtures/cli/invalid.yaml:26:7: spec.pools[1].name: Duplicate value: \"p0\": each pool needs a name of its own: it names the pool's StatefulSet\n  \
             warning: spec.requestAutoCert: TLS is off",
        ))
        .stdout(predicate::str::contains("1 tenant(s): 0 valid, 1 invalid; 1 other document(s) skipped"));
}

#[test]
fn json_output_carries_the_webhook_denial_message() {
    let out = cli()
        .args(["validate", "-o", "json", "tests/fixtures/cli/invalid.yaml"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: Value = serde_json::from_slice(&out).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["valid"], false);
    assert_eq!(result["violations"][1]["field"], "spec.pools[1].name");
    assert_eq!(result["violations"][1]["reason"], "FieldValueDuplicate");
    let message = result["message"].as_str().unwrap();
    assert!(message.starts_with("Tenant.minio.min.io \"broken\" is invalid: [spec.pools[0].volumesPerServer: Invalid value: 1: "), "{message}");
    assert_eq!(report["summary"]["skipped"], 1);
}

#[test]
fn broken_yaml_names_file_document_and_line_with_exit_2() {
    cli()
        .args(["validate", "tests/fixtures/cli/broken.yaml"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "Tenant default/fine: 2 violation(s)",
        ))
        .stdout(predicate::str::contains(
            "error: tests/fixtures/cli/broken.yaml: document 2: line 14, column",
        ));
}

#[test]
fn unreadable_paths_exit_2_and_name_the_path() {
    cli()
        .args(["validate", "no/such/file.yaml"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "error: no/such/file.yaml: cannot read",
        ));
}

#[test]
fn empty_input_and_other_kinds_are_counted_not_failed() {
    cli()
        .args(["validate", "-"])
        .write_stdin("")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 tenant(s)"));
    cli()
        .args(["validate", "-"])
        .write_stdin("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: minio.min.io/v1\nkind: Tenant\n")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 tenant(s): 0 valid, 0 invalid; 2 other document(s) skipped"));
}

#[test]
fn json_input_and_lists_are_read() {
    let list = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"minio.min.io/v2","kind":"Tenant","metadata":{"name":"a"},"spec":{"configuration":{"name":"c"},
         "pools":[{"servers":4,"volumesPerServer":1,"volumeClaimTemplate":{"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}}]}},
        {"apiVersion":"minio.min.io/v2","kind":"Tenant","metadata":{"name":"b"},"spec":{"pools":[]}}]}"#;
    cli()
        .args(["validate", "-"])
        .write_stdin(list)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "<stdin>: document 1 (line 1): Tenant default/a: valid",
        ))
        .stdout(predicate::str::contains("Tenant default/b: 2 violation(s)"));
}

#[test]
fn a_type_mismatch_is_a_violation_with_its_path() {
    let doc = "apiVersion: minio.min.io/v2\nkind: Tenant\nmetadata: {name: t}\nspec:\n  pools:\n    - servers: four\n";
    cli()
        .args(["validate", "-"])
        .write_stdin(doc)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "- <stdin>:6:7: spec.pools[0].servers: Invalid value: invalid type: string \"four\", expected i32",
        ));
}

#[test]
fn old_judges_the_change_as_an_update() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.yaml");
    let head = "apiVersion: minio.min.io/v2\nkind: Tenant\nmetadata: {name: t, namespace: s}\nspec:\n  configuration: {name: c}\n";
    std::fs::write(&old, format!("{head}{POOL}")).unwrap();
    let new = format!("{head}{}", POOL.replace("servers: 4", "servers: 8"));
    cli()
        .args(["validate", "--old", old.to_str().unwrap(), "-"])
        .write_stdin(new)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "spec.pools[0].servers: Forbidden: servers is immutable: changed from 4 to 8",
        ));
}

#[test]
fn a_very_large_file_is_handled() {
    let mut text = String::new();
    for i in 0..3000 {
        write!(text, "---\napiVersion: minio.min.io/v2\nkind: Tenant\nmetadata: {{name: t{i}}}\nspec:\n  configuration: {{name: c}}\n{POOL}").unwrap();
    }
    cli()
        .args(["validate", "-"])
        .write_stdin(text)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("3000 tenant(s): 3000 valid"));
}

#[test]
fn default_prints_the_defaulted_tenant_and_the_patch() {
    cli()
        .args(["default", "examples/tenant-minimal.yaml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("serviceAccountName: minimal-sa"))
        .stdout(predicate::str::contains("  - name: ss-0\n"))
        .stdout(predicate::str::contains("kind: Secret"));
    let out = cli()
        .args(["default", "--patch", "examples/tenant-minimal.yaml"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let patch: Value = serde_json::from_slice(&out).unwrap();
    let ops = patch.as_array().unwrap();
    assert!(ops.iter().any(|op| op["path"] == "/spec/pools/0/name"
        && op["value"] == "ss-0"
        && op["op"] == "add"));
    cli()
        .args(["default", "-"])
        .env("TENANT_S3_IMAGE", "registry.local/s3:7")
        .write_stdin(format!(
            "apiVersion: minio.min.io/v2\nkind: Tenant\nmetadata: {{name: t}}\nspec:\n{POOL}"
        ))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("image: registry.local/s3:7"));
}

#[test]
fn default_writes_nothing_when_any_input_is_broken() {
    cli()
        .args(["default", "tests/fixtures/cli/broken.yaml"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "error: tests/fixtures/cli/broken.yaml: document 2: line 14",
        ));
}

#[test]
fn help_shows_examples() {
    cli()
        .args(["validate", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("hanzo-s3-operator validate --old"));
    cli()
        .args(["--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Examples:"));
}

#[test]
fn crd_prints_the_committed_crd() {
    cli()
        .arg("crd")
        .assert()
        .code(0)
        .stdout(predicate::eq(include_str!(
            "../../crds/minio.min.io_tenants.yaml"
        )));
}

#[test]
fn the_cli_reference_is_current() {
    let committed = include_str!("../../docs/cli.md");
    for cmd in [
        "validate",
        "default",
        "crd",
        "backstop",
        "run",
        "webhook-config",
        "rotate-ca",
        "conformance",
    ] {
        let help = cli()
            .env("COLUMNS", "100")
            .args([cmd, "--help"])
            .output()
            .unwrap()
            .stdout;
        assert!(
            committed.contains(String::from_utf8_lossy(&help).trim()),
            "docs/cli.md is stale for `{cmd}`: run scripts/cli-reference.sh"
        );
    }
}
