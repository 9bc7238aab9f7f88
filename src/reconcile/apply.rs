//! Server-side apply of owned objects, with one field manager, skipped while the live object is
//! still exactly what the last apply wrote.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

pub const FIELD_MANAGER: &str = "hanzo-s3-operator";

/// API writes made by the reconciler (applies, status patches, events), for benchmarks and metrics.
static API_WRITES: AtomicU64 = AtomicU64::new(0);

pub fn api_writes() -> u64 {
    API_WRITES.load(Ordering::Relaxed)
}

pub(super) fn count_write() {
    API_WRITES.fetch_add(1, Ordering::Relaxed);
}

/// For each object applied: the hash of what was applied and the resourceVersion it then had.
/// While the live object still has that resourceVersion nothing touched it, so an unchanged Tenant
/// causes no write at all; anyone's edit bumps it, and the next apply restores our fields.
#[derive(Default)]
pub struct AppliedObjects(Mutex<HashMap<String, (String, String)>>);

pub(super) fn hash_of(value: &impl Serialize) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(value)
        .unwrap_or_default()
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Applies `object` unless the live object is exactly what we applied last (same desired hash,
/// untouched resourceVersion). `cached` is the live resourceVersion from the watch cache; only
/// when the cache does not hold the object (not created yet) is it asked for. Returns whether it
/// wrote.
pub async fn apply<K>(
    applied: &AppliedObjects,
    api: &Api<K>,
    object: K,
    cached: Option<String>,
) -> Result<bool, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let key = format!(
        "{}/{}/{name}",
        K::kind(&Default::default()),
        object.meta().namespace.clone().unwrap_or_default()
    );
    let hash = hash_of(&object);
    let live_version = match cached {
        Some(version) => Some(version),
        None => api
            .get_metadata_opt(&name)
            .await?
            .and_then(|m| m.metadata.resource_version),
    };
    let remembered = applied.0.lock().ok().and_then(|m| m.get(&key).cloned());
    if let (Some(live), Some((applied_hash, applied_version))) = (&live_version, &remembered)
        && *applied_hash == hash
        && applied_version == live
    {
        return Ok(false);
    }
    let mut value = serde_json::to_value(&object).map_err(kube::Error::SerdeError)?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            json!(K::api_version(&Default::default())),
        );
        map.insert("kind".into(), json!(K::kind(&Default::default())));
    }
    let written = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await?;
    let new_version = written.meta().resource_version.clone().unwrap_or_default();
    // An apply that changed nothing leaves the resourceVersion alone: no write happened. (The
    // cache may still hold the version before our last write: that one is no change either.)
    let wrote = live_version.as_deref() != Some(new_version.as_str())
        && remembered.as_ref().map(|(_, v)| v) != Some(&new_version);
    if wrote {
        count_write();
    }
    if let Ok(mut m) = applied.0.lock() {
        m.insert(key, (hash, new_version));
    }
    Ok(wrote)
}
