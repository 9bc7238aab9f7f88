//! The mutating webhook's JSONPatch: the fields defaulting wrote, recorded as it wrote them
//! ([`apply_defaults_recorded`]), and nothing else.
//!
//! Recorded, never diffed: a diff between two typed round-trips of the object cost two
//! serializations and a tree walk per review, and a diff between the raw JSON and a typed one would
//! turn every normalization of a round-trip (`cpu: 1` becoming `"1"`, `env: []` disappearing) into
//! a spurious edit. Each recorded op applies to the object as received by construction: its parent
//! is an object the typed parse read (the spec, a pool, `kes`, `certConfig`), a `replace` only
//! targets a field that held a value, and a Tenant sent without a spec gets its defaulted spec in
//! one `add`. [`defaulting_patch`] (the CLI's) checks that against the object as well.

use std::cmp::Ordering;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, ReplaceOperation};
use serde_json::Value;

use super::defaults::{DefaultsConfig, Filled, apply_defaults_recorded};
use crate::api::tenant::{Tenant, TenantSpec};

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("cannot serialize the tenant: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("the defaulting patch does not apply to the object as received: {0}")]
    DoesNotApply(String),
}

/// The patch that defaults `original` (whose typed form is `tenant`), checked to apply to it, and
/// the defaulted Tenant.
pub fn defaulting_patch(
    original: &Value,
    tenant: &Tenant,
    config: &DefaultsConfig,
) -> Result<(Patch, Tenant), PatchError> {
    let (patch, after) = defaulting_patch_of_typed(tenant.clone(), config)?;
    check_applies(original, &patch)?;
    Ok((patch, after))
}

/// The patch that defaults the object `tenant` was parsed from, and the defaulted Tenant: the
/// webhook's, which has the object only as text and never builds a tree of it.
pub fn defaulting_patch_of_typed(
    mut tenant: Tenant,
    config: &DefaultsConfig,
) -> Result<(Patch, Tenant), PatchError> {
    // Absent, `{}` and a spec of unknown fields all read as the empty spec (the last is refused for
    // its missing pools anyway): the defaulted one replaces it whole, wherever it was missing.
    let spec_was_empty = tenant.spec == TenantSpec::default();
    let mut filled = apply_defaults_recorded(&mut tenant, config);
    if filled.is_empty() {
        return Ok((Patch(Vec::new()), tenant));
    }
    if spec_was_empty {
        let op = PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["spec"]),
            value: serde_json::to_value(&tenant.spec)?,
        });
        return Ok((Patch(vec![op]), tenant));
    }
    // In the order of the object's keys (and list indices), as `kubectl` and a diff would list them.
    filled.sort_by(|a, b| by_tokens(&a.path, &b.path));
    let ops = filled
        .into_iter()
        .map(
            |Filled {
                 path,
                 value,
                 replaced,
             }| {
                let path = PointerBuf::from_tokens(path);
                if replaced {
                    PatchOperation::Replace(ReplaceOperation { path, value })
                } else {
                    PatchOperation::Add(AddOperation { path, value })
                }
            },
        )
        .collect();
    Ok((Patch(ops), tenant))
}

/// Keys in byte order, list indices in number order; a parent before its children.
fn by_tokens(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<usize>(), y.parse::<usize>()) {
            (Ok(i), Ok(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// Checks that every op applies to `original` as it is: an `add` under an object or list the
/// original has, a `replace` of a field it has. The recording makes them so (see the module's
/// doc); this holds the CLI's patch to it, without copying the original.
fn check_applies(original: &Value, patch: &Patch) -> Result<(), PatchError> {
    for op in &patch.0 {
        let path = op.path().as_str();
        let applies = match op {
            PatchOperation::Add(_) => {
                let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                original
                    .pointer(parent)
                    .is_some_and(|v| v.is_object() || v.is_array())
            }
            _ => original.pointer(path).is_some(),
        };
        if !applies {
            return Err(PatchError::DoesNotApply(format!(
                "{path} has no parent in the object"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(object: Value) -> (Value, Patch) {
        let tenant = crate::admission::parse_tenant(&object).unwrap();
        let (patch, _) = defaulting_patch(&object, &tenant, &DefaultsConfig::default()).unwrap();
        let mut patched = object;
        json_patch::patch(&mut patched, &patch).unwrap();
        (patched, patch)
    }

    #[test]
    fn a_tenant_without_spec_gets_one_from_the_patch() {
        let object = serde_json::json!({
            "apiVersion": "minio.min.io/v2", "kind": "Tenant",
            "metadata": {"name": "t", "namespace": "ns"}
        });
        let (patched, patch) = applied(object);
        assert_eq!(patch.0[0].path().as_str(), "/spec", "{patch:?}");
        assert!(patched["spec"]["image"].is_string(), "{patched}");
    }
}
