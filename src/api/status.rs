//! `Tenant.status`: every field of the Go API, plus `observedGeneration` and `conditions`, which are
//! additive (clients that do not know them ignore them).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The conditions a Tenant's status carries: `Ready`, `Degraded`, `Invalid` and `Provisioned` (ours),
/// `Reconciling` and `Stalled` (kstatus's, which Flux reads).
pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_DEGRADED: &str = "Degraded";
pub const CONDITION_INVALID: &str = "Invalid";
pub const CONDITION_RECONCILING: &str = "Reconciling";
pub const CONDITION_STALLED: &str = "Stalled";
pub const CONDITION_PROVISIONED: &str = "Provisioned";

/// `status.pools[].state`: the Go operators' words for a pool's StatefulSet not made yet, made but
/// short of ready servers, and with every server ready.
pub const POOL_NOT_CREATED: &str = "PoolNotCreated";
pub const POOL_CREATED: &str = "PoolCreated";
pub const POOL_INITIALIZED: &str = "PoolInitialized";
/// While the server drains a pool, once it has, and when it gave up.
pub const POOL_DECOMMISSIONING: &str = "PoolDecommissioning";
pub const POOL_DECOMMISSIONED: &str = "PoolDecommissioned";
pub const POOL_DECOMMISSION_FAILED: &str = "PoolDecommissionFailed";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<CertificateStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pools: Option<Vec<PoolStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_quorum: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drives_online: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drives_offline: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drives_healing: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_on_ready: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TenantUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_users: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_buckets: Option<bool>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Degraded` and `Invalid`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_cert_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_certificates: Option<CustomCertificates>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomCertificates {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client: Vec<CustomCertificateConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minio: Vec<CustomCertificateConfig>,
    #[serde(default, rename = "minioCAs", skip_serializing_if = "Vec::is_empty")]
    pub minio_cas: Vec<CustomCertificateConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomCertificateConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_no: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    #[serde(default)]
    pub ss_name: String,
    /// `PoolNotCreated`, `PoolCreated` or `PoolInitialized`.
    #[serde(default)]
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_security_context: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_usage: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierUsage>,
}

/// Go names these fields `Name`, `Type` and `totalSize`: kept for wire compatibility.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TierUsage {
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(rename = "totalSize", default)]
    pub total_size: i64,
}
