//! Validation: every reason a Tenant, as defaulting leaves it, could not work, all at once.
//!
//! Covers the checks the Go operators make late (at reconcile time, first error only) and those
//! nothing makes before pods fail: erasure-set sizing, unique names, name lengths of generated
//! objects, quantities, enums, secret references, and names the operator owns.

pub mod erasure;
mod labels;
mod pools;
mod update;

use std::collections::HashSet;

use k8s_openapi::api::core::v1::EnvVar;

use super::syntax::{
    bucket_name, dns_host, dns1035_label, dns1123_label, dns1123_subdomain, env_var_name,
};
use super::violation::{Reason, Violation, Violations};
use crate::api::names::default_service_account_name;
use crate::api::names::{
    MAX_COMMON_NAME, RESERVED_VOLUME_NAMES, SERVER_CONTAINER_NAME, volume_claim_name,
};
use crate::api::tenant::{KesConfig, LocalCertificateReference, Tenant, TenantSpec};

pub use pools::{ACCESS_MODES, erasure_sets_possible};

pub const POD_MANAGEMENT_POLICIES: &[&str] = &["OrderedReady", "Parallel"];
pub const IMAGE_PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];

/// Environment variables the operator computes and that break the tenant when set by hand.
pub const OPERATOR_OWNED_ENV: &[(&str, &str)] = &[
    (
        "S3_ARGS",
        "it lists every pool's endpoints, which the operator derives from spec.pools",
    ),
    (
        "S3_CONFIG_ENV_FILE",
        "it points the server at the configuration the operator mounts",
    ),
];

/// The longest tenant name: `<name>-console` names a Service, and Service names are DNS labels.
pub(crate) const MAX_TENANT_NAME: usize = 63 - "-console".len();
/// With KES, `<name>-kes-hl-svc` names a Service too.
pub(crate) const MAX_TENANT_NAME_WITH_KES: usize = 63 - "-kes-hl-svc".len();

/// Judges `new` (and, on UPDATE, the change from `old`). Both must already be defaulted.
pub fn validate(old: Option<&Tenant>, new: &Tenant) -> Result<(), Vec<Violation>> {
    let mut out = Violations::default();
    validate_metadata(new, &mut out);
    let spec = &new.spec;
    if spec.pools.is_empty() {
        out.required(
            "spec.pools",
            "pools must be configured: a tenant needs at least one pool of servers",
        );
    }
    pools::validate_pools(new, &mut out);
    let settings = erasure::ServerSettings::of_env(&spec.env);
    erasure::validate_layout(new, &settings, &mut out);
    validate_policies(spec, &mut out);
    validate_paths(spec, &mut out);
    validate_references(new.name(), spec, &mut out);
    validate_kes(new, &mut out);
    validate_domains(new, &mut out);
    validate_certificate(spec, &mut out);
    validate_env("spec.env", &spec.env, &mut out);
    validate_buckets(spec, &mut out);
    validate_pod_parts(spec, &mut out);
    validate_metadata_maps(spec, &mut out);
    if let Some(threshold) = spec.cert_expiry_alert_threshold
        && threshold <= 0
    {
        out.invalid(
            "spec.certExpiryAlertThreshold",
            threshold,
            "must be a positive number of days",
        );
    }
    update::validate_decommission_request(new, &mut out);
    if let Some(old) = old {
        update::validate_update(old, new, &mut out);
        let before = erasure::ServerSettings::of_env(&old.spec.env);
        erasure::validate_set_sizes_kept(old, new, &before, &settings, &mut out);
    }
    out.into_result()
}

fn validate_metadata(tenant: &Tenant, out: &mut Violations) {
    let name = tenant.name();
    if name.is_empty() {
        out.required(
            "metadata.name",
            "a tenant needs a fixed name (generateName is not supported): it is part of every object and host name the tenant gets",
        );
        return;
    }
    if let Err(e) = dns1035_label(name) {
        out.invalid(
            "metadata.name",
            name,
            format!("the tenant name names its Services, so it {e}"),
        );
    }
    // The apiserver refuses such a namespace itself; offline (`validate`) it is the root of every
    // host name derived from it, so it is named where it is written.
    if let Some(namespace) = tenant
        .metadata
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        && let Err(e) = dns1123_label(namespace)
    {
        out.invalid(
            "metadata.namespace",
            namespace,
            format!("a namespace name {e}"),
        );
    }
    let (limit, why) = if tenant.spec.kes.is_some() {
        (
            MAX_TENANT_NAME_WITH_KES,
            "its KES Service `<name>-kes-hl-svc`",
        )
    } else {
        (MAX_TENANT_NAME, "its console Service `<name>-console`")
    };
    if name.len() > limit {
        out.push(
            Violation::new(
                "metadata.name",
                Reason::TooLong,
                format!(
                    "must be at most {limit} characters so that {why} fits in 63 (has {})",
                    name.len()
                ),
            )
            .with_value(name),
        );
    }
}

fn validate_policies(spec: &TenantSpec, out: &mut Violations) {
    if let Some(p) = spec.pod_management_policy.as_deref()
        && !POD_MANAGEMENT_POLICIES.contains(&p)
    {
        out.not_supported("spec.podManagementPolicy", p, POD_MANAGEMENT_POLICIES);
    }
    if let Some(p) = spec.image_pull_policy.as_deref()
        && !IMAGE_PULL_POLICIES.contains(&p)
    {
        out.not_supported("spec.imagePullPolicy", p, IMAGE_PULL_POLICIES);
    }
    validate_image("spec.image", spec.image.as_deref(), out);
}

fn validate_image(at: &str, image: Option<&str>, out: &mut Violations) {
    match image {
        None | Some("") => out.required(
            at,
            "an image is needed, e.g. ghcr.io/hanzos3/s3:RELEASE.2025-04-08T15-41-24Z",
        ),
        Some(i) if i.chars().any(char::is_whitespace) || i.starts_with(['/', ':', '@']) => out
            .invalid(
                at,
                i,
                "must be an image reference like registry/repository:tag, without spaces",
            ),
        Some(_) => {}
    }
}

fn validate_paths(spec: &TenantSpec, out: &mut Violations) {
    // Each becomes a ServiceMonitor endpoint's path, scraped as it is written.
    let mut seen = HashSet::new();
    for (i, path) in spec
        .prometheus_operator_scrape_metrics_paths
        .iter()
        .enumerate()
    {
        let at = format!("spec.prometheusOperatorScrapeMetricsPaths[{i}]");
        if !path.starts_with('/')
            || path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#')
        {
            out.invalid(
                at,
                path,
                "must be an absolute URL path without query or spaces, like /minio/v2/metrics/node",
            );
        } else if !seen.insert(path.as_str()) {
            out.duplicate(at, path, "each path is scraped once");
        }
    }
    if let Some(mount) = spec.mount_path.as_deref()
        && (!mount.starts_with('/') || mount.split('/').any(|s| s == ".."))
    {
        out.invalid(
            "spec.mountPath",
            mount,
            "must be an absolute path without '..', like /export",
        );
    }
    if let Some(sub) = spec.sub_path.as_deref()
        && (sub.starts_with('/') || sub.split('/').any(|s| s == ".."))
    {
        out.invalid(
            "spec.subPath",
            sub,
            "must be a relative path without '..', like data",
        );
    }
}

fn check_name(out: &mut Violations, at: String, name: &str, what: &str) {
    if name.is_empty() {
        out.required(at, format!("the name of the {what} must not be empty"));
    } else if let Err(e) = dns1123_subdomain(name) {
        out.invalid(at, name, format!("the name of a {what} {e}"));
    }
}

fn check_cert_refs(out: &mut Violations, at: &str, refs: &[LocalCertificateReference]) {
    let mut seen = HashSet::new();
    for (i, r) in refs.iter().enumerate() {
        check_name(
            out,
            format!("{at}[{i}].name"),
            &r.name,
            "certificate Secret",
        );
        if !r.name.is_empty() && !seen.insert(r.name.as_str()) {
            out.duplicate(
                format!("{at}[{i}].name"),
                &r.name,
                "each certificate Secret may be listed once",
            );
        }
    }
}

fn validate_references(tenant_name: &str, spec: &TenantSpec, out: &mut Violations) {
    match spec.configuration.as_ref().map_or("", |c| c.name.as_str()) {
        "" => out.required(
            "spec.configuration.name",
            "please set 'configuration' to the Secret with the tenant's credentials: a Secret whose config.env holds `export S3_ROOT_USER=...` and `export S3_ROOT_PASSWORD=...`",
        ),
        name => check_name(out, "spec.configuration.name".into(), name, "configuration Secret"),
    }
    if let Some(name) = spec.image_pull_secret.as_ref().map(|s| s.name.as_str())
        && !name.is_empty()
    {
        check_name(
            out,
            "spec.imagePullSecret.name".into(),
            name,
            "image pull Secret",
        );
    }
    let mut users = HashSet::new();
    for (i, user) in spec.users.iter().enumerate() {
        let name = user.name.as_str();
        check_name(
            out,
            format!("spec.users[{i}].name"),
            name,
            "user credentials Secret",
        );
        if !name.is_empty() && !users.insert(name) {
            out.duplicate(
                format!("spec.users[{i}].name"),
                name,
                "each user Secret may be listed once",
            );
        }
    }
    check_cert_refs(out, "spec.externalCertSecret", &spec.external_cert_secret);
    check_cert_refs(
        out,
        "spec.externalCaCertSecret",
        &spec.external_ca_cert_secret,
    );
    check_cert_refs(
        out,
        "spec.externalClientCertSecrets",
        &spec.external_client_cert_secrets,
    );
    if let Some(r) = &spec.external_client_cert_secret {
        check_name(
            out,
            "spec.externalClientCertSecret.name".into(),
            &r.name,
            "client certificate Secret",
        );
    }
    // The defaulted `<tenant>-sa` is valid whenever the tenant name is; checking it again would only
    // repeat a bad name's violation.
    let default_sa = default_service_account_name(tenant_name);
    let user_sa = spec
        .service_account_name
        .as_deref()
        .filter(|sa| *sa != default_sa);
    for (at, name) in [
        ("spec.serviceAccountName", user_sa),
        (
            "spec.priorityClassName",
            spec.priority_class_name.as_deref(),
        ),
    ] {
        if let Some(name) = name.filter(|n| !n.is_empty())
            && let Err(e) = dns1123_subdomain(name)
        {
            out.invalid(at, name, e);
        }
    }
}

/// Fleet workload identity needs both the credential Secret and the identity pool.
fn validate_kes_gcp(kes: &KesConfig, out: &mut Violations) {
    let credential = kes.gcp_credential_secret_name.as_deref().unwrap_or("");
    let pool = kes.gcp_workload_identity_pool.as_deref().unwrap_or("");
    if !credential.is_empty() && pool.is_empty() {
        out.required(
            "spec.kes.gcpWorkloadIdentityPool",
            "please set 'gcpWorkloadIdentityPool' to enable fleet workload identity: gcpCredentialSecretName is set without it",
        );
    }
    if credential.is_empty() && !pool.is_empty() {
        out.required(
            "spec.kes.gcpCredentialSecretName",
            "please set 'gcpCredentialSecretName' to enable fleet workload identity: gcpWorkloadIdentityPool is set without it",
        );
    }
    if !credential.is_empty() {
        check_name(
            out,
            "spec.kes.gcpCredentialSecretName".into(),
            credential,
            "GCP credential Secret",
        );
    }
}

fn validate_kes(tenant: &Tenant, out: &mut Violations) {
    let Some(kes) = &tenant.spec.kes else { return };
    validate_kes_gcp(kes, out);
    match kes.kes_secret.name.as_str() {
        "" => out.required(
            "spec.kes.kesSecret.name",
            "KES needs the Secret holding its configuration (server-config.yaml)",
        ),
        name => check_name(
            out,
            "spec.kes.kesSecret.name".into(),
            name,
            "KES configuration Secret",
        ),
    }
    for (at, r) in [
        (
            "spec.kes.externalCertSecret.name",
            &kes.external_cert_secret,
        ),
        ("spec.kes.clientCertSecret.name", &kes.client_cert_secret),
    ] {
        if let Some(r) = r {
            check_name(out, at.into(), &r.name, "certificate Secret");
        }
    }
    if let Some(replicas) = kes.replicas
        && replicas < 1
    {
        out.invalid(
            "spec.kes.replicas",
            replicas,
            "KES needs at least 1 replica",
        );
    }
    if let Some(p) = kes.image_pull_policy.as_deref()
        && !IMAGE_PULL_POLICIES.contains(&p)
    {
        out.not_supported("spec.kes.imagePullPolicy", p, IMAGE_PULL_POLICIES);
    }
    validate_image("spec.kes.image", kes.image.as_deref(), out);
    if kes.key_name.as_deref().unwrap_or("").is_empty() {
        out.required(
            "spec.kes.keyName",
            "KES needs the name of the key the server encrypts with",
        );
    }
    if let Some(sa) = kes
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
        && let Err(e) = dns1123_subdomain(sa)
    {
        out.invalid("spec.kes.serviceAccountName", sa, e);
    }
    if let Some(resources) = &kes.resources {
        pools::validate_resources("spec.kes.resources", resources, out);
    }
    validate_env("spec.kes.env", &kes.env, out);
    labels::validate_labels("spec.kes.labels", &kes.labels, out);
    labels::validate_annotations("spec.kes.annotations", &kes.annotations, out);
}

/// The host of a domain entry, without scheme, port or path.
fn domain_host(entry: &str) -> &str {
    let rest = entry.split_once("://").map_or(entry, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

fn validate_domains(tenant: &Tenant, out: &mut Violations) {
    let Some(domains) = tenant
        .spec
        .features
        .as_ref()
        .and_then(|f| f.domains.as_ref())
    else {
        return;
    };
    let mut hosts: Vec<(usize, &str)> = Vec::new();
    for (i, entry) in domains.minio.iter().enumerate() {
        let host = domain_host(entry);
        if let Some(scheme) = entry.split_once("://").map(|(s, _)| s)
            && scheme != "http"
            && scheme != "https"
        {
            out.invalid(
                format!("spec.features.domains.minio[{i}]"),
                entry,
                "invalid domain: the scheme must be http or https",
            );
        } else if let Err(e) = dns_host(host) {
            out.invalid(
                format!("spec.features.domains.minio[{i}]"),
                entry,
                format!("invalid domain: {e}"),
            );
        } else {
            hosts.push((i, host));
        }
    }
    // One domain being a suffix of another makes bucket-DNS routing ambiguous (Go: "overlapping
    // domains not allowed").
    for &(i, a) in &hosts {
        for &(j, b) in &hosts {
            if i != j && (a == b || a.ends_with(&format!(".{b}"))) && (a != b || i > j) {
                out.invalid(
                    format!("spec.features.domains.minio[{i}]"),
                    &domains.minio[i],
                    format!("overlapping domains not allowed: {a:?} lies within {b:?} (spec.features.domains.minio[{j}]), so bucket names could not be told apart"),
                );
            }
        }
    }
    if let Some(console) = domains.console.as_deref().filter(|c| !c.is_empty())
        && let Err(e) = dns_host(domain_host(console))
    {
        out.invalid(
            "spec.features.domains.console",
            console,
            format!("invalid domain: {e}"),
        );
    }
}

fn validate_certificate(spec: &TenantSpec, out: &mut Violations) {
    let Some(cert) = &spec.cert_config else {
        return;
    };
    if let Some(cn) = cert.common_name.as_deref().filter(|c| !c.is_empty()) {
        if cn.len() > MAX_COMMON_NAME {
            out.push(
                Violation::new(
                    "spec.certConfig.commonName",
                    Reason::TooLong,
                    format!(
                        "a certificate common name may have at most {MAX_COMMON_NAME} characters (has {}); the default is `*.<tenant>-hl.<namespace>.svc.<cluster domain>`, so shorten the tenant or namespace name, or set a shorter commonName",
                        cn.len()
                    ),
                )
                .with_value(cn),
            );
        } else if let Err(e) = dns_host(cn) {
            out.invalid("spec.certConfig.commonName", cn, e);
        }
    }
    for (i, name) in cert.dns_names.iter().enumerate() {
        if let Err(e) = dns_host(name) {
            out.invalid(format!("spec.certConfig.dnsNames[{i}]"), name, e);
        }
    }
}

fn validate_env(at: &str, env: &[EnvVar], out: &mut Violations) {
    for (i, var) in env.iter().enumerate() {
        if let Err(e) = env_var_name(&var.name) {
            out.invalid(format!("{at}[{i}].name"), &var.name, e);
        }
        if let Some((_, why)) = OPERATOR_OWNED_ENV.iter().find(|(n, _)| *n == var.name) {
            out.forbidden(
                format!("{at}[{i}].name"),
                format!(
                    "{} is set by the operator and cannot be overridden: {why}",
                    var.name
                ),
            );
        }
    }
}

fn validate_buckets(spec: &TenantSpec, out: &mut Violations) {
    let mut seen = HashSet::new();
    for (i, bucket) in spec.buckets.iter().enumerate() {
        let name = bucket.name.as_deref().unwrap_or("");
        if name.is_empty() {
            out.required(format!("spec.buckets[{i}].name"), "a bucket needs a name");
        } else if let Err(e) = bucket_name(name) {
            out.invalid(
                format!("spec.buckets[{i}].name"),
                name,
                format!("bucket names {e}"),
            );
        } else if !seen.insert(name) {
            out.duplicate(
                format!("spec.buckets[{i}].name"),
                name,
                "each bucket may be listed once",
            );
        }
    }
}

/// Containers and volumes users add share the pod with the server: their names must be valid and
/// must not collide with each other or with what the operator puts there.
fn validate_pod_parts(spec: &TenantSpec, out: &mut Violations) {
    let mut containers: HashSet<&str> = HashSet::from([SERVER_CONTAINER_NAME]);
    let sidecars = spec.side_cars.as_ref();
    let container_lists = [
        ("spec.initContainers", &spec.init_containers[..]),
        (
            "spec.sideCars.containers",
            sidecars.map_or(&[][..], |s| &s.containers[..]),
        ),
    ];
    for (at, list) in container_lists {
        let names = list.iter().map(|c| c.name.as_str());
        unique_labels(out, at, names, &mut containers, "container", |name| {
            format!(
                "the pod already has a container named {name:?}; the server's own container is `minio`"
            )
        });
    }
    let claims: Vec<String> = spec
        .pools
        .iter()
        .flat_map(|p| (0..p.volumes_per_server.max(0)).map(|i| volume_claim_name(p, i)))
        .collect();
    let mut volumes: HashSet<&str> = RESERVED_VOLUME_NAMES
        .iter()
        .copied()
        .chain(claims.iter().map(String::as_str))
        .collect();
    let volume_lists = [
        ("spec.additionalVolumes", &spec.additional_volumes[..]),
        (
            "spec.sideCars.volumes",
            sidecars.map_or(&[][..], |s| &s.volumes[..]),
        ),
    ];
    for (at, list) in volume_lists {
        let names = list.iter().map(|v| v.name.as_str());
        unique_labels(out, at, names, &mut volumes, "volume", |name| {
            format!(
                "the pod already has a volume {name:?}; the operator uses `configuration`, `tls` and one per volume, named after the volume claim template"
            )
        });
    }
    for (i, mount) in spec.additional_volume_mounts.iter().enumerate() {
        if !spec.additional_volumes.iter().any(|v| v.name == mount.name) {
            out.invalid(
                format!("spec.additionalVolumeMounts[{i}].name"),
                &mount.name,
                "no volume of that name in spec.additionalVolumes: the pod would be refused",
            );
        }
        if !mount.mount_path.starts_with('/') {
            out.invalid(
                format!("spec.additionalVolumeMounts[{i}].mountPath"),
                &mount.mount_path,
                "must be an absolute path",
            );
        }
    }
    if let Some(resources) = sidecars.and_then(|s| s.resources.as_ref()) {
        pools::validate_resources("spec.sideCars.resources", resources, out);
    }
}

/// Each name must be a DNS label not yet in `taken` (names of one pod's containers or volumes).
fn unique_labels<'a>(
    out: &mut Violations,
    at: &str,
    names: impl Iterator<Item = &'a str>,
    taken: &mut HashSet<&'a str>,
    what: &str,
    clash: impl Fn(&str) -> String,
) {
    for (i, name) in names.enumerate() {
        if let Err(e) = dns1123_label(name) {
            out.invalid(format!("{at}[{i}].name"), name, format!("{what} names {e}"));
        } else if !taken.insert(name) {
            out.duplicate(format!("{at}[{i}].name"), name, clash(name));
        }
    }
}

fn validate_metadata_maps(spec: &TenantSpec, out: &mut Violations) {
    if let Some(m) = &spec.pools_metadata {
        labels::validate_labels("spec.poolsMetadata.labels", &m.labels, out);
        labels::validate_annotations("spec.poolsMetadata.annotations", &m.annotations, out);
    }
    if let Some(m) = &spec.service_metadata {
        labels::validate_labels(
            "spec.serviceMetadata.minioServiceLabels",
            &m.minio_service_labels,
            out,
        );
        labels::validate_labels(
            "spec.serviceMetadata.consoleServiceLabels",
            &m.console_service_labels,
            out,
        );
        labels::validate_labels(
            "spec.serviceMetadata.kesServiceLabels",
            &m.kes_service_labels,
            out,
        );
        labels::validate_annotations(
            "spec.serviceMetadata.minioServiceAnnotations",
            &m.minio_service_annotations,
            out,
        );
        labels::validate_annotations(
            "spec.serviceMetadata.consoleServiceAnnotations",
            &m.console_service_annotations,
            out,
        );
        labels::validate_annotations(
            "spec.serviceMetadata.kesServiceAnnotations",
            &m.kes_service_annotations,
            out,
        );
    }
}
