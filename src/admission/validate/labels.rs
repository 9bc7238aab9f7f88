//! Label and annotation maps: keys and values the apiserver would refuse on the objects made from them.

use std::collections::BTreeMap;

use super::super::syntax::{label_value, qualified_name};
use super::super::violation::{Violations, map_key};

/// Total size limit of all annotations of one object.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

pub fn validate_labels(at: &str, labels: &BTreeMap<String, String>, out: &mut Violations) {
    for (key, value) in labels {
        if let Err(e) = qualified_name(key) {
            out.invalid(map_key(at, key), key, format!("label key {e}"));
        }
        if let Err(e) = label_value(value) {
            out.invalid(map_key(at, key), value, format!("label value {e}"));
        }
    }
}

pub fn validate_annotations(
    at: &str,
    annotations: &BTreeMap<String, String>,
    out: &mut Violations,
) {
    for key in annotations.keys() {
        if let Err(e) = qualified_name(&key.to_lowercase()) {
            out.invalid(map_key(at, key), key, format!("annotation key {e}"));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS_BYTES {
        out.invalid(
            at.to_owned(),
            format!("{size} bytes"),
            "annotations may total at most 256 KiB",
        );
    }
}
