//! The mutating webhook's JSONPatch: the difference defaulting makes, as small as it can be, and
//! checked to apply to the object exactly as the apiserver sent it.
//!
//! The diff is taken between two typed round-trips of the object (as parsed, and as defaulted), never
//! between the raw JSON and a typed one: a round-trip normalizes things (`cpu: 1` becomes `"1"`,
//! `env: []` disappears) and a raw diff would turn every such normalization into a spurious edit.

use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::Value;

use super::defaults::{DefaultsConfig, defaulted};
use crate::api::tenant::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("cannot serialize the tenant: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("the defaulting patch does not apply to the object as received: {0}")]
    DoesNotApply(String),
}

/// The patch that defaults `original` (whose typed form is `tenant`), and the defaulted Tenant.
pub fn defaulting_patch(
    original: &Value,
    tenant: &Tenant,
    config: &DefaultsConfig,
) -> Result<(Patch, Tenant), PatchError> {
    let after = defaulted(tenant, config);
    if after == *tenant {
        return Ok((Patch(Vec::new()), after));
    }
    let before_json = serde_json::to_value(tenant)?;
    let after_json = serde_json::to_value(&after)?;
    let patch = json_patch::diff(&before_json, &after_json);
    let patch = fit_to(original, patch)?;
    Ok((patch, after))
}

/// Rewrites ops whose target exists in the round-trip but not in the original (a field the round
/// trip filled in, like a missing pool name serialized as ""), and checks every op's target, all
/// without copying the original.
fn fit_to(original: &Value, patch: Patch) -> Result<Patch, PatchError> {
    let mut added: Vec<String> = Vec::new();
    let mut ops = Vec::with_capacity(patch.0.len());
    for op in patch.0 {
        let op = match op {
            PatchOperation::Replace(r) if original.pointer(r.path.as_str()).is_none() => {
                PatchOperation::Add(AddOperation {
                    path: r.path,
                    value: r.value,
                })
            }
            PatchOperation::Remove(r) if original.pointer(r.path.as_str()).is_none() => continue,
            other => other,
        };
        let path = op.path().to_string();
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        let parent_ok = original
            .pointer(parent)
            .is_some_and(|v| v.is_object() || v.is_array())
            || added.iter().any(|a| parent.starts_with(a.as_str()));
        let target_ok = match &op {
            PatchOperation::Add(_) => parent_ok,
            _ => original.pointer(&path).is_some(),
        };
        if !target_ok {
            return Err(PatchError::DoesNotApply(format!(
                "{path} has no parent in the object"
            )));
        }
        if matches!(op, PatchOperation::Add(_)) {
            added.push(path);
        }
        ops.push(op);
    }
    Ok(Patch(ops))
}
