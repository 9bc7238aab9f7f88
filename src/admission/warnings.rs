//! Soft issues: a Tenant that works, but probably not as its author meant. Returned to `kubectl` as
//! admission warnings and printed by `validate`; they never deny. Secret values are never quoted.

use std::collections::HashSet;

use crate::api::names::DECOMMISSION_ANNOTATION;
use crate::api::tenant::Tenant;

/// Variables the operator computes; setting them in `spec.env` wins, which is allowed but rarely meant.
const COMPUTED_ENV: &[&str] = &[
    "S3_SERVER_URL",
    "S3_DOMAIN",
    "S3_BROWSER_REDIRECT_URL",
    "S3_PROMETHEUS_JOB_ID",
    "S3_UPDATE",
];
const CREDENTIAL_ENV: &[&str] = &[
    "S3_ROOT_USER",
    "S3_ROOT_PASSWORD",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
];

pub fn warnings(tenant: &Tenant) -> Vec<String> {
    let spec = &tenant.spec;
    let mut out = Vec::new();
    if !tenant.tls() {
        out.push("spec.requestAutoCert: TLS is off and no externalCertSecret is set: S3 traffic and credentials will travel unencrypted".to_owned());
    }
    // A request left in place after its pool was removed (or a typo): nothing is decommissioned.
    if let Some(pool) = tenant
        .decommission_request()
        .filter(|p| !spec.pools.iter().any(|q| q.name == *p))
    {
        out.push(format!(
            "metadata.annotations[{DECOMMISSION_ANNOTATION}]: names no pool of this Tenant ({pool:?}), so nothing is decommissioned; remove the annotation once its pool is gone"
        ));
    }
    let mut seen = HashSet::new();
    for (i, var) in spec.env.iter().enumerate() {
        let name = var.name.as_str();
        if !seen.insert(name) {
            out.push(format!(
                "spec.env[{i}].name: {name} is set more than once; the last one wins"
            ));
        }
        if COMPUTED_ENV.contains(&name) || name.starts_with("S3_KMS_KES_") {
            out.push(format!("spec.env[{i}].name: {name} overrides the value the operator computes for this tenant"));
        }
        if CREDENTIAL_ENV.contains(&name) && var.value.is_some() {
            out.push(format!("spec.env[{i}].value: {name} is a credential written in plain text in the Tenant; keep it in the configuration Secret or use valueFrom.secretKeyRef"));
        }
    }
    for (i, pool) in spec.pools.iter().enumerate() {
        if pool.servers == 1 && pool.volumes_per_server == 1 {
            out.push(format!("spec.pools[{i}]: pool {:?} has a single drive: no erasure coding, so losing that volume loses its data", pool.name));
        }
    }
    if let Some(image) = spec.image.as_deref() {
        let last = image.rsplit('/').next().unwrap_or(image);
        if !image.contains('@') && (!last.contains(':') || last.ends_with(":latest")) {
            out.push(format!("spec.image: {image:?} has no pinned tag: pods may run different server versions after a restart; pin a release tag"));
        }
    }
    out
}
