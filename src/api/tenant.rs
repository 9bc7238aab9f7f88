//! `minio.min.io/v2` `Tenant`: the same JSON names, types and nesting as the Go operators' CRD, so an
//! existing manifest round-trips through these types and applies unchanged.
//!
//! Optional fields are `Option` (or empty collections) so that "absent" stays distinguishable from
//! "set to the zero value": defaulting fills what is absent and never rewrites what a user wrote,
//! which is what keeps GitOps tools from seeing drift.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{
    Affinity, Container, EnvVar, Lifecycle, LocalObjectReference, PersistentVolumeClaim,
    PodSecurityContext, Probe, ResourceRequirements, SecurityContext, Toleration,
    TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::TenantStatus;

/// Names the pool the user asks to retire (see docs/operations.md, "Decommissioning a pool").
pub const DECOMMISSION_ANNOTATION: &str = "s3.hanzo.ai/decommission";
/// `none` opts a Tenant out of the PodDisruptionBudgets the operator sizes from its erasure layout
/// (docs/operations.md, "Voluntary disruptions").
pub const DISRUPTION_BUDGET_ANNOTATION: &str = "s3.hanzo.ai/disruption-budget";

pub const GROUP: &str = "minio.min.io";
pub const VERSION: &str = "v2";
pub const API_VERSION: &str = "minio.min.io/v2";
pub const KIND: &str = "Tenant";
pub const PLURAL: &str = "tenants";

/// A Hanzo S3 tenant. Written by hand rather than with `#[derive(CustomResource)]` because the Go
/// API has a top-level `scheduler` beside `spec`, which the derive cannot place at the root.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<TenantScheduler>,
    #[serde(default)]
    pub spec: TenantSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TenantStatus>,
}

impl Serialize for Tenant {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // apiVersion and kind are constants of the type, so they live in the wire form only.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            api_version: &'static str,
            kind: &'static str,
            metadata: &'a ObjectMeta,
            #[serde(skip_serializing_if = "Option::is_none")]
            scheduler: &'a Option<TenantScheduler>,
            spec: &'a TenantSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<TenantStatus>,
        }
        Wire {
            api_version: API_VERSION,
            kind: KIND,
            metadata: &self.metadata,
            scheduler: &self.scheduler,
            spec: &self.spec,
            status: &self.status,
        }
        .serialize(serializer)
    }
}

impl kube::Resource for Tenant {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Tenant {
    /// The pool the user asked to retire (the `s3.hanzo.ai/decommission` annotation), if any.
    pub fn decommission_request(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(DECOMMISSION_ANNOTATION)
            .map(String::as_str)
    }

    /// Whether the user opted out of the operator's PodDisruptionBudgets.
    pub fn disruption_budget_opted_out(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DISRUPTION_BUDGET_ANNOTATION))
            .is_some_and(|v| v == "none")
    }

    /// The state the stored status reports for the StatefulSet `statefulset` (`status.pools`).
    pub fn reported_pool_state(&self, statefulset: &str) -> Option<&str> {
        self.status
            .as_ref()?
            .pools
            .as_ref()?
            .iter()
            .find(|p| p.ss_name == statefulset)
            .map(|p| p.state.as_str())
    }

    /// A Tenant with the given name, namespace and spec, as a client would create it.
    pub fn new(name: &str, namespace: &str, spec: TenantSpec) -> Self {
        Tenant {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            ..Tenant::default()
        }
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    /// TLS is on unless `requestAutoCert: false` and no external certificate is given (Go: `TLS()`).
    pub fn tls(&self) -> bool {
        self.spec.request_auto_cert.unwrap_or(true) || !self.spec.external_cert_secret.is_empty()
    }

    /// The servers its pools ask for, all pools together.
    pub fn servers(&self) -> usize {
        self.spec
            .pools
            .iter()
            .map(|p| usize::try_from(p.servers).unwrap_or(0))
            .sum()
    }
}

/// `scheduler` at the root of the object (beside `spec`), as in the Go API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TenantScheduler {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    #[serde(default)]
    pub pools: Vec<Pool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub image_pull_secret: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_management_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_cert_secret: Vec<LocalCertificateReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_ca_cert_secret: Vec<LocalCertificateReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_client_cert_secret: Option<LocalCertificateReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_client_cert_secrets: Vec<LocalCertificateReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_auto_cert: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expiry_alert_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_config: Option<CertificateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kes: Option<KesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_operator: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus_operator_scrape_metrics_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side_cars: Option<SideCars>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_services: Option<ExposeServices>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_metadata: Option<ServiceMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pools_metadata: Option<PoolsMetadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<Bucket>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub configuration: Option<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_volume_mounts: Vec<VolumeMount>,
}

/// One server pool: `servers` pods with `volumesPerServer` claims each, run by one StatefulSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Empty names are defaulted to `ss-<index>`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub servers: i32,
    #[serde(default)]
    pub volumes_per_server: i32,
    #[serde(
        default,
        deserialize_with = "super::lenient::option_claim",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume_claim_template: Option<PersistentVolumeClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(
        default,
        rename = "objectLock",
        skip_serializing_if = "Option::is_none"
    )]
    pub object_lock: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantDomains {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minio: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    #[serde(default, rename = "bucketDNS", skip_serializing_if = "Option::is_none")]
    pub bucket_dns: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<TenantDomains>,
    #[serde(
        default,
        rename = "enableSFTP",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_sftp: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub minio_service_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub minio_service_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub console_service_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub console_service_annotations: BTreeMap<String, String>,
    #[serde(
        default,
        rename = "kesServiceLabels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub kes_service_labels: BTreeMap<String, String>,
    #[serde(
        default,
        rename = "kesServiceAnnotations",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub kes_service_annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolsMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A Secret holding a certificate, and how to read it (`kubernetes.io/tls`, cert-manager, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocalCertificateReference {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExposeServices {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minio: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organization_name: Vec<String>,
    #[serde(default, rename = "dnsNames", skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}

/// KES, the key-encryption service the server uses for SSE-KMS.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KesConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, rename = "kesSecret")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub kes_secret: LocalObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_cert_secret: Option<LocalCertificateReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret: Option<LocalCertificateReference>,
    #[serde(
        default,
        rename = "gcpCredentialSecretName",
        skip_serializing_if = "Option::is_none"
    )]
    pub gcp_credential_secret_name: Option<String>,
    #[serde(
        default,
        rename = "gcpWorkloadIdentityPool",
        skip_serializing_if = "Option::is_none"
    )]
    pub gcp_workload_identity_pool: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideCars {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<Container>,
    #[serde(
        default,
        deserialize_with = "super::lenient::claims",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}
