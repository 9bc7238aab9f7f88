//! Defaulting: fills what a Tenant leaves out, the way the Go operators' `EnsureDefaults` does, and
//! never rewrites a value the user wrote (a wrong value is the validator's to reject, not ours to
//! coerce: Go silently turns an unknown podManagementPolicy into `Parallel`, we refuse it).
//!
//! Idempotent: defaulting a defaulted Tenant changes nothing.

use crate::api::defaults_schema::{
    DEFAULT_IMAGE_PULL_POLICY, DEFAULT_KES_KEY_NAME, DEFAULT_KES_REPLICAS, DEFAULT_MOUNT_PATH,
    DEFAULT_POD_MANAGEMENT_POLICY, DEFAULT_REQUEST_AUTO_CERT,
};
use crate::api::names::{
    DEFAULT_CERT_ORGANIZATION, DEFAULT_CLUSTER_DOMAIN, default_pool_name,
    default_service_account_name, wildcard_common_name,
};
use crate::api::tenant::{CertificateConfig, Tenant};

/// Pinned Hanzo S3 server image, used when `TENANT_S3_IMAGE` is not set.
pub const DEFAULT_S3_IMAGE: &str = "ghcr.io/hanzos3/s3:RELEASE.2025-04-08T15-41-24Z";
/// Pinned KES image, used when `TENANT_KES_IMAGE` is not set.
pub const DEFAULT_KES_IMAGE: &str = "ghcr.io/hanzos3/kes:2025-03-12T09-35-18Z";

pub const ENV_S3_IMAGE: &str = "TENANT_S3_IMAGE";
pub const ENV_KES_IMAGE: &str = "TENANT_KES_IMAGE";
pub const ENV_CLUSTER_DOMAIN: &str = "CLUSTER_DOMAIN";

/// The operator-wide values defaults depend on. Read from the environment once, at the edge, so
/// that defaulting itself stays a pure function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultsConfig {
    pub s3_image: String,
    pub kes_image: String,
    pub cluster_domain: String,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        DefaultsConfig {
            s3_image: DEFAULT_S3_IMAGE.to_owned(),
            kes_image: DEFAULT_KES_IMAGE.to_owned(),
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_owned(),
        }
    }
}

impl DefaultsConfig {
    /// `TENANT_S3_IMAGE`, `TENANT_KES_IMAGE` and `CLUSTER_DOMAIN`, each falling back to the pinned
    /// value when unset or empty.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let base = DefaultsConfig::default();
        let pick = |key: &str, fallback: String| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or(fallback)
        };
        DefaultsConfig {
            s3_image: pick(ENV_S3_IMAGE, base.s3_image),
            kes_image: pick(ENV_KES_IMAGE, base.kes_image),
            cluster_domain: pick(ENV_CLUSTER_DOMAIN, base.cluster_domain),
        }
    }
}

/// Treats `None` and `Some("")` alike, as Go's zero-value checks do.
fn fill(slot: &mut Option<String>, value: impl FnOnce() -> String) {
    if slot.as_deref().is_none_or(str::is_empty) {
        *slot = Some(value());
    }
}

/// Applies every default to `tenant` in place.
pub fn apply_defaults(tenant: &mut Tenant, config: &DefaultsConfig) {
    let name = tenant.name().to_owned();
    let spec = &mut tenant.spec;

    fill(&mut spec.pod_management_policy, || {
        DEFAULT_POD_MANAGEMENT_POLICY.to_owned()
    });
    fill(&mut spec.image, || config.s3_image.clone());
    fill(&mut spec.image_pull_policy, || {
        DEFAULT_IMAGE_PULL_POLICY.to_owned()
    });
    fill(&mut spec.mount_path, || DEFAULT_MOUNT_PATH.to_owned());
    // The Go operators join the sub-path with path.Join, so the `/data` of their tenant chart's
    // values and `data` name the same directory; it is stored as the relative path it is.
    if let Some(sub) = spec.sub_path.as_mut() {
        let relative = sub.trim_matches('/');
        if relative.len() != sub.len() {
            *sub = relative.to_owned();
        }
    }
    spec.request_auto_cert
        .get_or_insert(DEFAULT_REQUEST_AUTO_CERT);
    for (index, pool) in spec.pools.iter_mut().enumerate() {
        if pool.name.is_empty() {
            pool.name = default_pool_name(index);
        }
    }
    if !name.is_empty() {
        fill(&mut spec.service_account_name, || {
            default_service_account_name(&name)
        });
    }

    if let Some(kes) = spec.kes.as_mut() {
        fill(&mut kes.image, || config.kes_image.clone());
        if kes.replicas.unwrap_or(0) == 0 {
            kes.replicas = Some(DEFAULT_KES_REPLICAS);
        }
        fill(&mut kes.image_pull_policy, || {
            DEFAULT_IMAGE_PULL_POLICY.to_owned()
        });
        fill(&mut kes.key_name, || DEFAULT_KES_KEY_NAME.to_owned());
        if kes
            .gcp_credential_secret_name
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            fill(&mut kes.service_account_name, || "default".to_owned());
        }
    }

    // The certificate's DNS names are deliberately not written: the Go operators recompute them from
    // the pools on every reconcile, and storing them would freeze them to the pools at creation, so a
    // pool appended later would be missing from the certificate. Empty means "every pod host name".
    if !name.is_empty() && !tenant.namespace().is_empty() {
        let common_name = wildcard_common_name(tenant, &config.cluster_domain);
        let cert = tenant
            .spec
            .cert_config
            .get_or_insert_with(CertificateConfig::default);
        fill(&mut cert.common_name, || common_name);
        if cert.organization_name.is_empty() {
            cert.organization_name = vec![DEFAULT_CERT_ORGANIZATION.to_owned()];
        }
    }
}

/// A defaulted copy.
pub fn defaulted(tenant: &Tenant, config: &DefaultsConfig) -> Tenant {
    let mut copy = tenant.clone();
    apply_defaults(&mut copy, config);
    copy
}
