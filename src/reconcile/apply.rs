//! Server-side apply of owned objects, with one field manager, skipped while the live object is
//! still exactly what the last apply wrote.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

pub const FIELD_MANAGER: &str = "hanzo-s3-operator";

/// For each object applied (by a hash of its kind, namespace and name): the hash of what was
/// applied and a hash of the object's [`Version`] then. While the live object still has that
/// version nothing touched it, so an unchanged Tenant causes no write at all; anyone's edit
/// changes it, and the next apply restores our fields. Hashes, not the strings: 24 bytes an
/// object instead of about 150, at 7 objects a Tenant.
#[derive(Default)]
pub struct AppliedObjects(Mutex<HashMap<u64, (u64, u64)>>);

/// What tells that a live object changed since we applied it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Its resourceVersion: any change at all.
    Resource,
    /// Its metadata.generation and labels. A StatefulSet's resourceVersion moves with every
    /// status update its controller makes (each pod that starts), and re-applying after each was a
    /// third of a new Tenant's writes; a change to its spec bumps the generation, one to our labels
    /// shows in the labels. (Its top-level annotations are not ours to keep: we set none.)
    GenerationAndLabels,
}

impl Version {
    pub fn of(
        self,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> Option<String> {
        match self {
            Version::Resource => meta.resource_version.clone(),
            Version::GenerationAndLabels => meta
                .generation
                .map(|g| format!("{g}/{}", hash_of(&meta.labels))),
        }
    }
}

pub(super) fn hash_of(value: &impl Serialize) -> String {
    format!("{:016x}", hash64(value))
}

/// A hash of `value`'s JSON, stable within the process (what is compared is what we sent).
pub(super) fn hash64(value: &impl Serialize) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(value)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

/// Applies `object` unless the live object is exactly what we applied last (same desired hash,
/// unchanged [`Version`]). `cached` is the live object's version from the watch cache; only when
/// the cache does not hold the object (not created yet) is it asked for. Returns whether the
/// object changed.
pub async fn apply<K>(
    applied: &AppliedObjects,
    api: &Api<K>,
    object: K,
    cached: Option<String>,
    version: Version,
) -> Result<bool, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let key = hash64(&(
        K::kind(&Default::default()),
        object.meta().namespace.as_deref(),
        &name,
    ));
    let hash = hash64(&object);
    let live_version = match cached {
        Some(version) => Some(version),
        None => api
            .get_metadata_opt(&name)
            .await?
            .and_then(|m| version.of(&m.metadata)),
    };
    let remembered = applied.0.lock().ok().and_then(|m| m.get(&key).copied());
    if let (Some(live), Some((applied_hash, applied_version))) = (&live_version, remembered)
        && applied_hash == hash
        && applied_version == hash64(live)
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
    crate::metrics::count_api_write();
    let new_version = version.of(written.meta()).unwrap_or_default();
    // An apply that changed nothing leaves the version alone. (The cache may still hold the
    // version before our last write: that one is no change either.)
    let new_version_hash = hash64(&new_version);
    let wrote = live_version.as_deref() != Some(new_version.as_str())
        && remembered.map(|(_, v)| v) != Some(new_version_hash);
    if let Ok(mut m) = applied.0.lock() {
        m.insert(key, (hash, new_version_hash));
    }
    Ok(wrote)
}

/// Deletes `name` (with `params`' preconditions and propagation policy) and counts the write. One
/// gone already, or replaced since a precondition was taken (409), is no error: the next pass sees
/// what is there. Returns whether this call deleted it.
pub async fn delete<K>(api: &Api<K>, name: &str, params: &DeleteParams) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, params).await {
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
        Err(e) => Err(e),
        Ok(_) => {
            crate::metrics::count_api_write();
            Ok(true)
        }
    }
}

/// The field manager, other than ours, that wrote a StatefulSet's pod containers, if any: such a
/// StatefulSet was made by another operator (or by hand), and applying ours over it would leave
/// its fields in place. Managers that only touch annotations (`kubectl rollout restart`) or the
/// status do not count.
pub fn template_writer(managed: &[ManagedFieldsEntry]) -> Option<String> {
    managed
        .iter()
        .filter(|entry| entry.subresource.as_deref().is_none_or(str::is_empty))
        .filter(|entry| entry.manager.as_deref() != Some(FIELD_MANAGER))
        .find(|entry| {
            entry.fields_v1.as_ref().is_some_and(|fields| {
                fields.0["f:spec"]["f:template"]["f:spec"]
                    .get("f:containers")
                    .is_some()
            })
        })
        .map(|entry| {
            entry
                .manager
                .clone()
                .unwrap_or_else(|| "unknown".to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;

    fn entry(
        manager: &str,
        subresource: Option<&str>,
        fields: serde_json::Value,
    ) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_owned()),
            operation: Some("Update".to_owned()),
            subresource: subresource.map(str::to_owned),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        }
    }

    #[test]
    fn another_manager_that_wrote_the_containers_is_a_template_writer() {
        let containers = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}});
        let restarted = json!({"f:spec": {"f:template": {"f:metadata": {"f:annotations": {}}}}});
        let status = json!({"f:status": {"f:replicas": {}}});
        assert_eq!(
            template_writer(&[
                entry(FIELD_MANAGER, None, containers.clone()),
                entry("kubectl-rollout", None, restarted),
                entry("kube-controller-manager", Some("status"), status),
            ]),
            None,
            "ours, a restart annotation and the status are not another operator's template"
        );
        assert_eq!(
            template_writer(&[entry("minio-operator", None, containers)]).as_deref(),
            Some("minio-operator")
        );
    }
}
