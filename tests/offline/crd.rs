//! The committed CRD is what the code generates, accepts everything the Go CRD accepts, and carries
//! the same defaults as the defaulting function.

use std::collections::HashMap;

use hanzo_s3_operator::admission::{DefaultsConfig, apply_defaults};
use hanzo_s3_operator::api::crd::{crd_yaml, tenant_schema};
use hanzo_s3_operator::api::defaults_schema::SCHEMA_DEFAULTS;
use hanzo_s3_operator::api::tenant::{KesConfig, Tenant};
use serde_json::Value;

const COMMITTED: &str = include_str!("../../crds/minio.min.io_tenants.yaml");
const GO_SHAPE: &str = include_str!("../data/go-tenant-crd-shape.tsv");

#[test]
fn committed_crd_is_what_the_code_generates() {
    let generated = crd_yaml().unwrap();
    assert!(
        generated == COMMITTED,
        "crds/minio.min.io_tenants.yaml is stale: run `cargo run -- crd > crds/minio.min.io_tenants.yaml` and commit it"
    );
}

/// path -> (type, required) for every schema node, in the notation of the shape file.
fn shape(node: &Value, path: String, out: &mut HashMap<String, (String, Vec<String>)>) {
    let ty = if node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        "int-or-string".to_owned()
    } else {
        node.get("type")
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let mut required: Vec<String> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    required.sort();
    out.insert(
        if path.is_empty() {
            ".".into()
        } else {
            path.clone()
        },
        (ty, required),
    );
    if let Some(Value::Object(props)) = node.get("properties") {
        for (k, child) in props {
            shape(child, format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = node.get("items") {
        shape(items, format!("{path}[]"), out);
    }
    if let Some(add @ Value::Object(_)) = node.get("additionalProperties") {
        shape(add, format!("{path}{{}}"), out);
    }
}

#[test]
fn accepts_every_field_of_the_go_crd_and_requires_nothing_more() {
    let mut ours = HashMap::new();
    shape(&tenant_schema().unwrap(), String::new(), &mut ours);
    let mut problems = Vec::new();
    let mut checked = 0;
    for line in GO_SHAPE.lines().filter(|l| !l.starts_with('#')) {
        let mut cols = line.split('\t');
        let (path, ty, req) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
        );
        checked += 1;
        let Some((our_ty, our_req)) = ours.get(path) else {
            problems.push(format!(
                "missing {path} (a Go-valid manifest would be pruned there)"
            ));
            continue;
        };
        if our_ty != ty {
            problems.push(format!("{path}: type {our_ty}, Go has {ty}"));
        }
        let go_req: Vec<&str> = if req == "-" {
            vec![]
        } else {
            req.split(',').collect()
        };
        for r in our_req {
            if !go_req.contains(&r.as_str()) {
                problems.push(format!("{path}: requires {r}, Go does not"));
            }
        }
    }
    assert_eq!(checked, 1945, "the shape file lost lines");
    assert!(
        problems.is_empty(),
        "{} incompatibilities:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn schema_defaults_equal_what_defaulting_fills_in() {
    let mut tenant = Tenant::new("t", "ns", Default::default());
    tenant.spec.kes = Some(KesConfig::default());
    apply_defaults(&mut tenant, &DefaultsConfig::default());
    let defaulted = serde_json::to_value(&tenant).unwrap();
    let schema = tenant_schema().unwrap();
    assert!(SCHEMA_DEFAULTS.len() >= 7);
    for (path, value) in SCHEMA_DEFAULTS {
        let pointer = format!("/{}", path.replace('.', "/"));
        assert_eq!(
            defaulted.pointer(&pointer),
            Some(&value()),
            "defaulting disagrees at {path}"
        );
        let schema_pointer = format!("/properties/{}/default", path.replace('.', "/properties/"));
        assert_eq!(
            schema.pointer(&schema_pointer),
            Some(&value()),
            "CRD default missing at {path}"
        );
    }
}

#[test]
fn keeps_go_printer_columns_short_name_and_immutability_rules() {
    let crd: Value = serde_yaml_ng::from_str(COMMITTED).unwrap();
    let version = &crd["spec"]["versions"][0];
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["jsonPath"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            ".status.currentState",
            ".status.healthStatus",
            ".metadata.creationTimestamp"
        ]
    );
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "tenant");
    assert_eq!(crd["spec"]["names"]["listKind"], "TenantList");
    let pools = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["pools"];
    assert_eq!(pools["x-kubernetes-list-type"], "map");
    let servers = &pools["items"]["properties"]["servers"]["x-kubernetes-validations"][0];
    assert_eq!(servers["message"], "servers is immutable");
    assert_eq!(servers["rule"], "self == oldSelf");
    assert!(version["schema"]["openAPIV3Schema"]["properties"]["scheduler"].is_object());
}

/// Every `default` in the schema is either one of ours (SCHEMA_DEFAULTS) or the empty reference name
/// the Go CRD has too; nothing that would silently fill `servers: 0` or a pool `name: ""`.
#[test]
fn the_only_defaults_are_ours_and_go_compatible_reference_names() {
    fn walk(node: &Value, path: String, out: &mut Vec<(String, Value)>) {
        if let Some(d) = node.get("default") {
            out.push((path.clone(), d.clone()));
        }
        if let Some(Value::Object(props)) = node.get("properties") {
            for (k, child) in props {
                walk(child, format!("{path}.{k}"), out);
            }
        }
        if let Some(items) = node.get("items") {
            walk(items, format!("{path}[]"), out);
        }
    }
    let mut defaults = Vec::new();
    walk(&tenant_schema().unwrap(), String::new(), &mut defaults);
    let ours: Vec<String> = SCHEMA_DEFAULTS
        .iter()
        .map(|(p, _)| format!(".{p}"))
        .collect();
    for (path, value) in &defaults {
        let reference_name = path.ends_with(".name") && value == &Value::from("");
        assert!(
            ours.contains(path) || reference_name,
            "unexpected default {value} at {path}"
        );
    }
    assert_eq!(
        defaults.iter().filter(|(p, _)| ours.contains(p)).count(),
        SCHEMA_DEFAULTS.len()
    );
    assert!(
        !defaults.iter().any(|(p, _)| p.starts_with(".spec.pools[].")
            && !p.contains("Ref")
            && !p.contains("secret")
            && !p.contains("configMap"))
    );
}
