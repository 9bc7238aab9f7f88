//! Every example tenant of the Go operator is admitted by ours with no violation, and survives a
//! typed round trip unchanged.

use std::path::Path;

use hanzo_s3_operator::admission::{DefaultsConfig, parse_tenant, review};
use serde_json::Value;

#[test]
fn every_go_example_tenant_is_admitted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected the 15 overlays' tenants, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        let value: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let tenant = match parse_tenant(&value) {
            Ok(t) => t,
            Err(v) => {
                failures.push(format!("{name}: does not parse: {}", v.message()));
                continue;
            }
        };
        let verdict = review(None, &tenant, &DefaultsConfig::default());
        failures.extend(
            verdict
                .violations
                .iter()
                .map(|v| format!("{name}: {}", v.message())),
        );
        let again = parse_tenant(&serde_json::to_value(&tenant).unwrap()).unwrap();
        if again != tenant {
            failures.push(format!("{name}: changes in a typed round trip"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_gcp_example_placeholder_is_refused_as_no_service_account_can_have_it() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/go-examples/tenant-kes-encryption-gcp.yaml");
    let mut value: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    value["spec"]["kes"]["serviceAccountName"] = Value::from("<SERVICE_ACCOUNT>");
    let verdict = review(
        None,
        &parse_tenant(&value).unwrap(),
        &DefaultsConfig::default(),
    );
    let messages: Vec<String> = verdict.violations.iter().map(|v| v.message()).collect();
    assert_eq!(
        messages,
        [
            "spec.kes.serviceAccountName: Invalid value: \"<SERVICE_ACCOUNT>\": must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
        ]
    );
}
