//! The `tenants.minio.min.io` CustomResourceDefinition, generated from the Rust types.
//!
//! The schema is derived with the same schemars settings and structural rewrites kube-derive uses;
//! then the parts a derive cannot express are added: the root `apiVersion`/`kind`/`metadata`, the
//! `pools` list-map keyed by `name`, the required lists and CEL immutability rules of the Go CRD,
//! and every default that OpenAPI can carry, so the stored object is the same with or without the
//! mutating webhook.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value, json};

use super::defaults_schema::SCHEMA_DEFAULTS;
use super::tenant::{GROUP, KIND, PLURAL, Tenant, VERSION};

pub const CRD_NAME: &str = "tenants.minio.min.io";

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("generated schema has no node at {0}: the Tenant types and the CRD generator disagree")]
    MissingNode(String),
    #[error("generated schema is not a valid JSONSchemaProps: {0}")]
    InvalidSchema(#[from] serde_json::Error),
    #[error("cannot render the CRD as YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// The CRD, exactly as committed in `crds/minio.min.io_tenants.yaml`.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let schema: JSONSchemaProps = serde_json::from_value(tenant_schema()?)?;
    Ok(CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(CRD_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.to_owned(),
            names: CustomResourceDefinitionNames {
                kind: KIND.to_owned(),
                list_kind: Some(format!("{KIND}List")),
                plural: PLURAL.to_owned(),
                singular: Some("tenant".to_owned()),
                short_names: Some(vec!["tenant".to_owned()]),
                ..CustomResourceDefinitionNames::default()
            },
            scope: "Namespaced".to_owned(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.to_owned(),
                served: true,
                storage: true,
                additional_printer_columns: Some(vec![
                    column("State", "string", ".status.currentState"),
                    column("Health", "string", ".status.healthStatus"),
                    column("Age", "date", ".metadata.creationTimestamp"),
                ]),
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(schema),
                }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(json!({}))),
                    ..CustomResourceSubresources::default()
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    })
}

/// The CRD as YAML, with a leading `---` like the Go project's generated file.
pub fn crd_yaml() -> Result<String, CrdError> {
    Ok(format!("---\n{}", serde_yaml_ng::to_string(&crd()?)?))
}

fn column(name: &str, type_: &str, json_path: &str) -> CustomResourceColumnDefinition {
    CustomResourceColumnDefinition {
        name: name.to_owned(),
        type_: type_.to_owned(),
        json_path: json_path.to_owned(),
        ..CustomResourceColumnDefinition::default()
    }
}

/// The `openAPIV3Schema` of a Tenant as JSON.
pub fn tenant_schema() -> Result<Value, CrdError> {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let mut root = serde_json::to_value(generator.into_root_schema_for::<Tenant>())?;
    if let Some(obj) = root.as_object_mut() {
        // Descriptions of Kubernetes' nested types make the CRD ten times larger and are served by
        // `kubectl explain` from the upstream types anyway; ours are kept on our own fields.
        obj.remove("title");
    }
    // schemars writes a `default` for every `#[serde(default)]` field (`servers: 0`, pool `name: ""`,
    // ...). Those are deserialization conveniences, not API defaults: drop them all, then add back
    // exactly the Go CRD's and ours.
    strip_defaults(&mut root);
    relax_to_go_strictness(&mut root, true);
    strip_nested_descriptions(&mut root, 0);

    let props = node(&mut root, &["properties"])?;
    props.insert("apiVersion".into(), json!({"type": "string"}));
    props.insert("kind".into(), json!({"type": "string"}));
    // Root metadata is validated by the apiserver itself; a CRD may only say it is an object.
    props.insert("metadata".into(), json!({"type": "object"}));
    node(&mut root, &[])?.insert("required".into(), json!(["spec"]));
    node(&mut root, &["properties", "spec"])?.insert("required".into(), json!(["pools"]));

    let pools = node(&mut root, &["properties", "spec", "properties", "pools"])?;
    pools.insert("x-kubernetes-list-type".into(), json!("map"));
    pools.insert("x-kubernetes-list-map-keys".into(), json!(["name"]));
    let pool = node(
        &mut root,
        &["properties", "spec", "properties", "pools", "items"],
    )?;
    pool.insert(
        "required".into(),
        json!(["name", "servers", "volumeClaimTemplate", "volumesPerServer"]),
    );
    let pool_path = [
        "properties",
        "spec",
        "properties",
        "pools",
        "items",
        "properties",
    ];
    node(&mut root, &[&pool_path[..], &["name"]].concat())?.insert("minLength".into(), json!(1));
    for field in ["servers", "volumesPerServer"] {
        node(&mut root, &[&pool_path[..], &[field]].concat())?.insert(
            "x-kubernetes-validations".into(),
            json!([{"rule": "self == oldSelf", "message": format!("{field} is immutable")}]),
        );
    }
    node(&mut root, &["properties", "spec", "properties", "kes"])?
        .insert("required".into(), json!(["kesSecret"]));
    node(&mut root, &["properties", "scheduler"])?.insert("required".into(), json!(["name"]));

    for (path, value) in SCHEMA_DEFAULTS {
        let mut segments = vec!["properties"];
        for (i, part) in path.split('.').enumerate() {
            if i > 0 {
                segments.push("properties");
            }
            segments.push(part);
        }
        node(&mut root, &segments)?.insert("default".into(), value());
    }
    Ok(root)
}

fn node<'a>(root: &'a mut Value, path: &[&str]) -> Result<&'a mut Map<String, Value>, CrdError> {
    let mut cur = root;
    for key in path {
        cur = cur
            .get_mut(*key)
            .ok_or_else(|| CrdError::MissingNode(path.join(".")))?;
    }
    cur.as_object_mut()
        .ok_or_else(|| CrdError::MissingNode(path.join(".")))
}

fn strip_defaults(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("default");
            map.values_mut().for_each(strip_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

/// Upstream marks some reference names "effectively required, but allowed to be empty" and gives
/// them `default: ""`; k8s-openapi turns that into `required`, which the Go CRD is not. Embedded
/// `metadata` is likewise optional there. Relax both so every manifest the Go CRD accepts is
/// accepted here.
fn relax_to_go_strictness(v: &mut Value, is_root: bool) {
    const EMPTY_ALLOWED: &str = "This field is effectively required, but due to backwards \
                                 compatibility is allowed to be empty";
    match v {
        Value::Object(map) => {
            let mut optional: Vec<String> = Vec::new();
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (key, prop) in props.iter_mut() {
                    let empty_allowed = prop
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| d.contains(EMPTY_ALLOWED));
                    if empty_allowed {
                        if let Some(obj) = prop.as_object_mut() {
                            obj.insert("default".into(), json!(""));
                        }
                        optional.push(key.clone());
                    }
                    if key == "metadata" && !is_root {
                        optional.push(key.clone());
                    }
                }
            }
            if let Some(Value::Array(required)) = map.get_mut("required") {
                required.retain(|r| !optional.iter().any(|o| r.as_str() == Some(o)));
                if required.is_empty() {
                    map.remove("required");
                }
            }
            for child in map.values_mut() {
                relax_to_go_strictness(child, false);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|c| relax_to_go_strictness(c, false)),
        _ => {}
    }
}

/// Keep descriptions on the Tenant's own levels (depth counts schema objects from the root) and
/// drop them below, inside the embedded Kubernetes types.
fn strip_nested_descriptions(v: &mut Value, depth: usize) {
    match v {
        Value::Object(map) => {
            if depth > 4 {
                map.remove("description");
            }
            for (key, child) in map.iter_mut() {
                let next = if key == "properties" || key == "items" {
                    depth + 1
                } else {
                    depth
                };
                strip_nested_descriptions(child, next);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|c| strip_nested_descriptions(c, depth)),
        _ => {}
    }
}
