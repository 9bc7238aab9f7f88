//! Where the Tenant's schema has an object, a JSON list does not fit.
//!
//! serde reads a struct from a JSON array too (its fields in order), so a typed parse takes
//! `"spec": []` for an empty spec (found by fuzzing). The apiserver would refuse such an object
//! only after the mutating webhooks ran, by its schema; the webhook and the CLI refuse it first,
//! naming the field, by the same schema (the committed CRD). Only the object-versus-
//! list confusion needs this: every other wrong type already fails the typed parse with its path.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// The part of a JSON schema this check reads: whether a node is an object, and how to go down.
#[derive(Default)]
struct Shape {
    object: bool,
    properties: HashMap<String, Shape>,
    additional: Option<Box<Shape>>,
    items: Option<Box<Shape>>,
}

impl Shape {
    fn of(schema: &Value) -> Shape {
        let child = |key: &str| schema.get(key).filter(|v| v.is_object()).map(Shape::of);
        Shape {
            object: schema.get("type").and_then(Value::as_str) == Some("object"),
            properties: schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, v)| (k.clone(), Shape::of(v)))
                        .collect()
                })
                .unwrap_or_default(),
            additional: child("additionalProperties").map(Box::new),
            items: child("items").map(Box::new),
        }
    }
}

/// The schema of the committed CRD, the one the apiserver validates with (tests/offline/crd.rs keeps it
/// equal to what the types generate). Reading it takes milliseconds; generating it from the types
/// took 200 ms, on the first review after start.
const CRD: &str = include_str!("../../crds/minio.min.io_tenants.yaml");

fn tenant() -> Option<&'static Shape> {
    static SHAPE: OnceLock<Option<Shape>> = OnceLock::new();
    SHAPE
        .get_or_init(|| {
            let crd: Value = serde_yaml_ng::from_str(CRD).ok()?;
            let schema = crd
                .pointer("/spec/versions")?
                .as_array()?
                .iter()
                .find(|v| v.get("name").and_then(Value::as_str) == Some("v2"))?
                .pointer("/schema/openAPIV3Schema")?;
            Some(Shape::of(schema))
        })
        .as_ref()
}

/// Reads the schema now rather than on the first review (the server calls it before it is ready).
pub fn load() -> bool {
    tenant().is_some()
}

/// One step down a path: a map key, or a list index.
pub enum Step<'a> {
    Key(&'a str),
    Index,
}

/// Whether the Tenant schema has an object at `path`. Fields the schema does not know are never
/// judged here (the apiserver prunes them).
pub fn object_expected<'a>(path: impl IntoIterator<Item = Step<'a>>) -> bool {
    let Some(mut at) = tenant() else {
        return false;
    };
    for step in path {
        let next = match step {
            Step::Key(key) => at.properties.get(key).or(at.additional.as_deref()),
            Step::Index => at.items.as_deref(),
        };
        match next {
            Some(shape) => at = shape,
            None => return false,
        }
    }
    at.object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &[&str]) -> bool {
        object_expected(path.iter().map(|s| match *s {
            "[]" => Step::Index,
            key => Step::Key(key),
        }))
    }

    #[test]
    fn objects_of_the_schema_are_known_by_path() {
        assert!(load(), "the committed CRD has a v2 schema");
        assert!(at(&[]));
        assert!(at(&["spec"]));
        assert!(at(&["spec", "pools", "[]"]));
        assert!(at(&["spec", "pools", "[]", "resources"]));
        assert!(at(&["spec", "configuration"]));
        assert!(at(&["metadata"]));
    }

    #[test]
    fn lists_scalars_and_unknown_fields_are_not_objects() {
        assert!(!at(&["spec", "pools"]));
        assert!(!at(&["spec", "pools", "[]", "servers"]));
        assert!(!at(&["spec", "image"]));
        assert!(!at(&["spec", "noSuchField"]));
        assert!(!at(&["metadata", "labels", "a"]));
    }
}
