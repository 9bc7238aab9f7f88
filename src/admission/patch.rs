//! The mutating webhook's JSONPatch: the difference defaulting makes, as small as it can be, and
//! checked to apply to the object exactly as the apiserver sent it.
//!
//! The diff is taken between two typed round-trips of the object (as parsed, and as defaulted), never
//! between the raw JSON and a typed one: a round-trip normalizes things (`cpu: 1` becomes `"1"`,
//! `env: []` disappears) and a raw diff would turn every such normalization into a spurious edit.

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::Value;

use super::defaults::{DefaultsConfig, apply_defaults};
use crate::api::tenant::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("cannot serialize the tenant: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("the object is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("the defaulting patch does not apply to the object as received: {0}")]
    DoesNotApply(String),
}

/// The patch that defaults `original` (whose typed form is `tenant`), and the defaulted Tenant.
pub fn defaulting_patch(
    original: &Value,
    tenant: &Tenant,
    config: &DefaultsConfig,
) -> Result<(Patch, Tenant), PatchError> {
    let (patch, after) = unchecked_patch(tenant.clone(), config)?;
    Ok((fit_to(original, patch)?, after))
}

/// Like [`defaulting_patch`], for a caller that owns the Tenant and has the object only as JSON
/// text: the text is parsed into a tree only when defaulting changes something.
pub fn defaulting_patch_of_json(
    original: &str,
    tenant: Tenant,
    config: &DefaultsConfig,
) -> Result<(Patch, Tenant), PatchError> {
    let (patch, after) = unchecked_patch(tenant, config)?;
    if patch.0.is_empty() {
        return Ok((patch, after));
    }
    let original: Value = serde_json::from_str(original).map_err(PatchError::NotJson)?;
    Ok((fit_to(&original, patch)?, after))
}

/// The difference defaulting makes, not yet fitted to the object as received. Pools are most of a
/// large Tenant and defaulting rarely touches them (only a missing name), so they are set aside,
/// the rest is diffed, and only the pools defaulting changed are serialized and diffed on their own.
fn unchecked_patch(before: Tenant, config: &DefaultsConfig) -> Result<(Patch, Tenant), PatchError> {
    let mut before = before;
    let mut after = before.clone();
    apply_defaults(&mut after, config);
    if after == before {
        return Ok((Patch(Vec::new()), after));
    }
    let pools_before = std::mem::take(&mut before.spec.pools);
    let pools_after = std::mem::take(&mut after.spec.pools);
    let mut ops = json_patch::diff(
        &serde_json::to_value(&before)?,
        &serde_json::to_value(&after)?,
    )
    .0;
    // Where a whole-object diff would have put them: object members come out in key order.
    let mut at = ops
        .iter()
        .position(|op| op.path().to_string().as_str() > "/spec/pools")
        .unwrap_or(ops.len());
    for (index, (b, a)) in pools_before.iter().zip(&pools_after).enumerate() {
        if b == a {
            continue;
        }
        let prefix =
            PointerBuf::from_tokens(["spec".to_owned(), "pools".to_owned(), index.to_string()]);
        for op in json_patch::diff(&serde_json::to_value(b)?, &serde_json::to_value(a)?).0 {
            ops.insert(at, prefixed(&prefix, op));
            at += 1;
        }
    }
    after.spec.pools = pools_after;
    Ok((Patch(ops), after))
}

/// `op` with its path (and `from`, for moves and copies) under `prefix`.
fn prefixed(prefix: &Pointer, op: PatchOperation) -> PatchOperation {
    let under = |path: &Pointer| prefix.concat(path);
    match op {
        PatchOperation::Add(mut o) => {
            o.path = under(&o.path);
            PatchOperation::Add(o)
        }
        PatchOperation::Remove(mut o) => {
            o.path = under(&o.path);
            PatchOperation::Remove(o)
        }
        PatchOperation::Replace(mut o) => {
            o.path = under(&o.path);
            PatchOperation::Replace(o)
        }
        PatchOperation::Move(mut o) => {
            o.path = under(&o.path);
            o.from = under(&o.from);
            PatchOperation::Move(o)
        }
        PatchOperation::Copy(mut o) => {
            o.path = under(&o.path);
            o.from = under(&o.from);
            PatchOperation::Copy(o)
        }
        PatchOperation::Test(mut o) => {
            o.path = under(&o.path);
            PatchOperation::Test(o)
        }
    }
}

/// Adds, as empty objects, the ancestors of `parent` the original lacks or holds as null (a Tenant
/// sent without `spec` still parses, and defaulting fills it in; found by fuzzing). Only object
/// members are created: a missing list entry is left for the check that follows to refuse.
fn add_missing_objects(
    original: &Value,
    parent: &str,
    added: &mut Vec<String>,
    ops: &mut Vec<PatchOperation>,
) {
    let mut at = String::new();
    for token in parent.split('/').skip(1) {
        let container = original.pointer(&at);
        at.push('/');
        at.push_str(token);
        if added.iter().any(|a| at.starts_with(a.as_str())) {
            continue;
        }
        match original.pointer(&at) {
            Some(v) if !v.is_null() => continue,
            // Under an object (or one we just added) only; the null itself is replaced by `add`.
            _ if container.is_none_or(Value::is_object) => {}
            _ => return,
        }
        let Ok(path) = PointerBuf::parse(at.clone()) else {
            return;
        };
        ops.push(PatchOperation::Add(AddOperation {
            path,
            value: Value::Object(Default::default()),
        }));
        added.push(at.clone());
    }
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
        if matches!(op, PatchOperation::Add(_)) {
            add_missing_objects(original, parent, &mut added, &mut ops);
        }
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
