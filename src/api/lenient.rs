//! Embedded PersistentVolumeClaim templates, read the way the Go CRD accepts them: their
//! `apiVersion` and `kind` are free strings there (the Go operator's own examples write
//! `kind: persistentvolumeclaims`), while k8s-openapi refuses any kind but `PersistentVolumeClaim`.
//! Both are ignored, as the apiserver ignores them in StatefulSet claim templates; the object as
//! the user wrote it is what gets stored, since the webhook only patches it.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn claim<E: serde::de::Error>(mut value: Value) -> Result<PersistentVolumeClaim, E> {
    if let Value::Object(map) = &mut value {
        map.remove("apiVersion");
        map.remove("kind");
    }
    serde_json::from_value(value).map_err(E::custom)
}

pub fn option_claim<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<PersistentVolumeClaim>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => claim(v).map(Some),
    }
}

pub fn claims<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PersistentVolumeClaim>, D::Error> {
    Option::<Vec<Value>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(claim)
        .collect()
}
