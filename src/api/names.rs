//! Names, labels and host names of everything made for a Tenant, in one place: the validator checks
//! their lengths with the same functions the reconciler uses to create them.

use super::tenant::{Pool, Tenant};

pub use super::status::{POOL_DECOMMISSIONED, POOL_DECOMMISSIONING};
pub use super::tenant::DECOMMISSION_ANNOTATION;

pub const TENANT_LABEL: &str = "v1.min.io/tenant";
pub const POOL_LABEL: &str = "v1.min.io/pool";
pub const CONSOLE_LABEL: &str = "v1.min.io/console";
pub const STATEFULSET_PREFIX: &str = "ss";
/// The S3 Service: the Go operators name it literally `minio`, hence one Tenant per namespace.
pub const S3_SERVICE_NAME: &str = "minio";
pub const SERVER_CONTAINER_NAME: &str = "minio";
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// Organization of the default TLS certificate, as in the Go operators.
pub const DEFAULT_CERT_ORGANIZATION: &str = "system:nodes";
/// The StatefulSet controller labels every pod `controller-revision-hash: <sts>-<10 chars>`; label
/// values stop at 63, so a StatefulSet name longer than this creates no pods at all.
pub const MAX_STATEFULSET_NAME: usize = 63 - 11;
pub const MAX_DNS_LABEL: usize = 63;
/// X.509 `ub-common-name`.
pub const MAX_COMMON_NAME: usize = 64;

/// Volume names the server StatefulSet uses itself; user volumes must not take them.
pub const RESERVED_VOLUME_NAMES: &[&str] = &["configuration", "tls"];

pub fn headless_service_name(tenant: &Tenant) -> String {
    format!("{}-hl", tenant.name())
}

pub fn console_service_name(tenant: &Tenant) -> String {
    format!("{}-console", tenant.name())
}

pub fn tls_secret_name(tenant: &Tenant) -> String {
    format!("{}-tls", tenant.name())
}

/// The Secret the operator renders `config.env` into (the Go operators assemble it in a sidecar).
pub fn configuration_secret_name(tenant: &Tenant) -> String {
    format!("{}-configuration", tenant.name())
}

pub fn default_service_account_name(tenant_name: &str) -> String {
    format!("{tenant_name}-sa")
}

pub fn default_pool_name(index: usize) -> String {
    format!("{STATEFULSET_PREFIX}-{index}")
}

pub fn pool_statefulset_name(tenant: &Tenant, pool: &Pool) -> String {
    format!("{}-{}", tenant.name(), pool.name)
}

/// Claim template `index` of a pool: the template's own `metadata.name` followed by the index, as the
/// Go operators name them (`data0`, `data1`, ... for a template named `data`; `0`, `1`, ... for an
/// unnamed one). Kept exactly so the PersistentVolumeClaims of a tenant moved from the Go operator,
/// `<claim>-<pod>`, are the same claims.
pub fn volume_claim_name(pool: &Pool, index: i32) -> String {
    let prefix = pool
        .volume_claim_template
        .as_ref()
        .and_then(|t| t.metadata.name.as_deref())
        .unwrap_or("");
    format!("{prefix}{index}")
}

/// Host name of the last (longest) pod of a pool: `<tenant>-<pool>-<servers-1>`.
pub fn last_pod_hostname(tenant: &Tenant, pool: &Pool) -> String {
    format!(
        "{}-{}",
        pool_statefulset_name(tenant, pool),
        (pool.servers - 1).max(0)
    )
}

/// `*.<tenant>-hl.<ns>.svc.<domain>`: the default certificate common name.
pub fn wildcard_common_name(tenant: &Tenant, cluster_domain: &str) -> String {
    format!(
        "*.{}.{}.svc.{}",
        headless_service_name(tenant),
        tenant.namespace(),
        cluster_domain
    )
}

/// The ellipsis host pattern of one pool: `<sts>-{0...s-1}.<tenant>-hl.<ns>.svc.<domain>`.
pub fn pool_hosts_pattern(tenant: &Tenant, pool: &Pool, cluster_domain: &str) -> String {
    let ordinals = if pool.servers <= 1 {
        "0".to_owned()
    } else {
        format!("{{0...{}}}", pool.servers - 1)
    };
    format!(
        "{}-{}.{}.{}.svc.{}",
        pool_statefulset_name(tenant, pool),
        ordinals,
        headless_service_name(tenant),
        tenant.namespace(),
        cluster_domain
    )
}
