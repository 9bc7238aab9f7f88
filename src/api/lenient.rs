//! Embedded PersistentVolumeClaim templates, read the way the Go CRD accepts them: their
//! `apiVersion` and `kind` are free strings there (the Go operator's own examples write
//! `kind: persistentvolumeclaims`), while k8s-openapi refuses any kind but `PersistentVolumeClaim`.
//! Both are ignored, as the apiserver ignores them in StatefulSet claim templates; the object as
//! the user wrote it is what gets stored, since the webhook only patches it.
//!
//! Read straight into the claim's parts (no JSON tree first): every pool has a claim template, and
//! going through a tree was a seventh of the webhook's time on a Tenant of eleven pools.

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};

/// A claim whose `apiVersion` and `kind` are skipped like any field the claim does not have.
#[derive(Deserialize)]
#[serde(rename = "PersistentVolumeClaim")]
struct Claim {
    #[serde(default)]
    metadata: Option<ObjectMeta>,
    #[serde(default)]
    spec: Option<PersistentVolumeClaimSpec>,
    #[serde(default)]
    status: Option<PersistentVolumeClaimStatus>,
}

impl From<Claim> for PersistentVolumeClaim {
    fn from(claim: Claim) -> Self {
        PersistentVolumeClaim {
            metadata: claim.metadata.unwrap_or_default(),
            spec: claim.spec,
            status: claim.status,
        }
    }
}

pub fn option_claim<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<PersistentVolumeClaim>, D::Error> {
    Ok(Option::<Claim>::deserialize(d)?.map(Into::into))
}

pub fn claims<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PersistentVolumeClaim>, D::Error> {
    Ok(Option::<Vec<Claim>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect())
}
