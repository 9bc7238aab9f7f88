//! Defaulting: fills what a Tenant leaves out, the way the Go operators' `EnsureDefaults` does, and
//! never rewrites a value the user wrote (a wrong value is the validator's to reject, not ours to
//! coerce: Go silently turns an unknown podManagementPolicy into `Parallel`, we refuse it).
//!
//! Idempotent: defaulting a defaulted Tenant changes nothing.

use serde_json::Value;

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

/// A field defaulting wrote: the mutating webhook's patch is made of these, recorded as the
/// defaults are applied (see [`super::patch`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Filled {
    /// JSON pointer tokens from the object's root.
    pub path: Vec<String>,
    pub value: Value,
    /// The field held a value before (an empty string, a zero), so a patch replaces it; otherwise
    /// the field was absent or null, and a patch adds it.
    pub replaced: bool,
}

/// Where the filled fields go: nowhere for the review and the reconciler (nothing is built for
/// them), into the patch for the mutating webhook.
struct Record<'a>(Option<&'a mut Vec<Filled>>);

impl Record<'_> {
    fn filled(&mut self, path: &[&str], value: impl FnOnce() -> Value, replaced: bool) {
        if let Some(out) = self.0.as_mut() {
            out.push(Filled {
                path: path.iter().map(|token| (*token).to_owned()).collect(),
                value: value(),
                replaced,
            });
        }
    }

    /// Treats `None` and `Some("")` alike, as Go's zero-value checks do.
    fn fill(&mut self, slot: &mut Option<String>, path: &[&str], value: impl FnOnce() -> String) {
        if slot.as_deref().is_none_or(str::is_empty) {
            let value = value();
            self.filled(path, || Value::from(value.as_str()), slot.is_some());
            *slot = Some(value);
        }
    }
}

/// Applies every default to `tenant` in place.
pub fn apply_defaults(tenant: &mut Tenant, config: &DefaultsConfig) {
    defaults_into(tenant, config, &mut Record(None));
}

/// [`apply_defaults`], returning each field it wrote, in the order written.
pub fn apply_defaults_recorded(tenant: &mut Tenant, config: &DefaultsConfig) -> Vec<Filled> {
    let mut filled = Vec::new();
    defaults_into(tenant, config, &mut Record(Some(&mut filled)));
    filled
}

fn defaults_into(tenant: &mut Tenant, config: &DefaultsConfig, record: &mut Record) {
    let name = tenant.name().to_owned();
    let spec = &mut tenant.spec;

    record.fill(
        &mut spec.pod_management_policy,
        &["spec", "podManagementPolicy"],
        || DEFAULT_POD_MANAGEMENT_POLICY.to_owned(),
    );
    record.fill(&mut spec.image, &["spec", "image"], || {
        config.s3_image.clone()
    });
    record.fill(
        &mut spec.image_pull_policy,
        &["spec", "imagePullPolicy"],
        || DEFAULT_IMAGE_PULL_POLICY.to_owned(),
    );
    record.fill(&mut spec.mount_path, &["spec", "mountPath"], || {
        DEFAULT_MOUNT_PATH.to_owned()
    });
    // The Go operators join the sub-path with path.Join, so the `/data` of their tenant chart's
    // values and `data` name the same directory; it is stored as the relative path it is.
    if let Some(sub) = spec.sub_path.as_mut() {
        let relative = sub.trim_matches('/');
        if relative.len() != sub.len() {
            *sub = relative.to_owned();
            record.filled(&["spec", "subPath"], || Value::from(sub.as_str()), true);
        }
    }
    if spec.request_auto_cert.is_none() {
        spec.request_auto_cert = Some(DEFAULT_REQUEST_AUTO_CERT);
        record.filled(
            &["spec", "requestAutoCert"],
            || Value::from(DEFAULT_REQUEST_AUTO_CERT),
            false,
        );
    }
    for (index, pool) in spec.pools.iter_mut().enumerate() {
        if pool.name.is_empty() {
            pool.name = default_pool_name(index);
            // A missing name and an empty one read alike; `add` sets a member either way.
            let at = index.to_string();
            record.filled(
                &["spec", "pools", &at, "name"],
                || Value::from(pool.name.as_str()),
                false,
            );
        }
    }
    if !name.is_empty() {
        record.fill(
            &mut spec.service_account_name,
            &["spec", "serviceAccountName"],
            || default_service_account_name(&name),
        );
    }

    if let Some(kes) = spec.kes.as_mut() {
        record.fill(&mut kes.image, &["spec", "kes", "image"], || {
            config.kes_image.clone()
        });
        if kes.replicas.unwrap_or(0) == 0 {
            let replaced = kes.replicas.is_some();
            kes.replicas = Some(DEFAULT_KES_REPLICAS);
            record.filled(
                &["spec", "kes", "replicas"],
                || Value::from(DEFAULT_KES_REPLICAS),
                replaced,
            );
        }
        record.fill(
            &mut kes.image_pull_policy,
            &["spec", "kes", "imagePullPolicy"],
            || DEFAULT_IMAGE_PULL_POLICY.to_owned(),
        );
        record.fill(&mut kes.key_name, &["spec", "kes", "keyName"], || {
            DEFAULT_KES_KEY_NAME.to_owned()
        });
        if kes
            .gcp_credential_secret_name
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            record.fill(
                &mut kes.service_account_name,
                &["spec", "kes", "serviceAccountName"],
                || "default".to_owned(),
            );
        }
    }

    // The certificate's DNS names are deliberately not written: the Go operators recompute them from
    // the pools on every reconcile, and storing them would freeze them to the pools at creation, so a
    // pool appended later would be missing from the certificate. Empty means "every pod host name".
    if !name.is_empty() && !tenant.namespace().is_empty() {
        let common_name = wildcard_common_name(tenant, &config.cluster_domain);
        match tenant.spec.cert_config.as_mut() {
            // Written whole, one field of the patch.
            None => {
                let cert = CertificateConfig {
                    common_name: Some(common_name),
                    organization_name: vec![DEFAULT_CERT_ORGANIZATION.to_owned()],
                    ..CertificateConfig::default()
                };
                record.filled(
                    &["spec", "certConfig"],
                    || serde_json::json!({"commonName": cert.common_name, "organizationName": cert.organization_name}),
                    false,
                );
                tenant.spec.cert_config = Some(cert);
            }
            Some(cert) => {
                record.fill(
                    &mut cert.common_name,
                    &["spec", "certConfig", "commonName"],
                    || common_name,
                );
                if cert.organization_name.is_empty() {
                    cert.organization_name = vec![DEFAULT_CERT_ORGANIZATION.to_owned()];
                    record.filled(
                        &["spec", "certConfig", "organizationName"],
                        || Value::from(vec![DEFAULT_CERT_ORGANIZATION]),
                        false,
                    );
                }
            }
        }
    }
}

/// A defaulted copy.
pub fn defaulted(tenant: &Tenant, config: &DefaultsConfig) -> Tenant {
    let mut copy = tenant.clone();
    apply_defaults(&mut copy, config);
    copy
}
