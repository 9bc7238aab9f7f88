//! Rules for one pool: sizing the server can actually run, a volume claim template that binds, and
//! names that fit every object the pool becomes.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::ResourceRequirements;

use super::super::syntax::{dns1123_label, dns1123_subdomain};
use super::super::violation::{Reason, Violation, Violations, map_key};
use super::labels;
use crate::api::names::{
    MAX_DNS_LABEL, MAX_STATEFULSET_NAME, POOL_LABEL, TENANT_LABEL, last_pod_hostname,
    pool_statefulset_name,
};
use crate::api::quantity::Quantity;
use crate::api::tenant::{Pool, Tenant};

pub const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

pub fn validate_pools(tenant: &Tenant, out: &mut Violations) {
    let mut seen = HashSet::new();
    for (i, pool) in tenant.spec.pools.iter().enumerate() {
        let at = format!("spec.pools[{i}]");
        if let Err(e) = dns1123_label(&pool.name) {
            out.invalid(
                format!("{at}.name"),
                &pool.name,
                format!("pool names become part of StatefulSet and pod names, so they {e}"),
            );
        } else if !seen.insert(pool.name.as_str()) {
            out.duplicate(
                format!("{at}.name"),
                &pool.name,
                "each pool needs a name of its own: it names the pool's StatefulSet",
            );
        }
        validate_sizing(&at, pool, out);
        validate_name_lengths(&at, tenant, pool, out);
        validate_claim_template(&at, pool, out);
        if let Some(resources) = &pool.resources {
            validate_resources(&format!("{at}.resources"), resources, out);
        }
        validate_pool_labels(&at, pool, out);
        if let Some(rc) = pool.runtime_class_name.as_deref()
            && let Err(e) = dns1123_subdomain(rc)
        {
            out.invalid(format!("{at}.runtimeClassName"), rc, e);
        }
        if let Some(grace) = pool.termination_grace_period_seconds
            && grace < 0
        {
            out.invalid(
                format!("{at}.terminationGracePeriodSeconds"),
                grace,
                "must be 0 or more seconds",
            );
        }
    }
}

fn validate_sizing(at: &str, pool: &Pool, out: &mut Violations) {
    let (servers, volumes) = (pool.servers, pool.volumes_per_server);
    if servers < 1 {
        out.invalid(
            format!("{at}.servers"),
            servers,
            format!("pool {:?} needs at least 1 server", pool.name),
        );
    }
    if volumes < 1 {
        out.invalid(
            format!("{at}.volumesPerServer"),
            volumes,
            format!("pool {:?} needs at least 1 volume per server", pool.name),
        );
    }
    if servers < 1 || volumes < 1 {
        return;
    }
    let total = i64::from(servers) * i64::from(volumes);
    let minimum = match servers {
        2 => 4,
        3 => 6,
        _ => 0,
    };
    if super::erasure::below_go_floor(servers, volumes) {
        out.invalid(
            format!("{at}.volumesPerServer"),
            volumes,
            format!(
                "a pool with {servers} servers needs at least {minimum} volumes in total for erasure coding, it has {total}; set volumesPerServer to {} or more",
                minimum / i64::from(servers)
            ),
        );
        return;
    }
    if !erasure_sets_possible(servers, volumes) {
        let near = nearest_valid_servers(servers, volumes);
        out.invalid(
            at.to_owned(),
            format!("servers: {servers}, volumesPerServer: {volumes}"),
            format!(
                "the server cannot split {total} drives into erasure sets of 2 to 16 drives spread evenly over {servers} servers, and would not start; with volumesPerServer {volumes}, {near} servers would work"
            ),
        );
    }
}

/// Whether the server can lay `servers x volumes` drives out in erasure sets (see
/// [`super::erasure::set_size`]). A single drive runs without erasure coding.
pub fn erasure_sets_possible(servers: i32, volumes: i32) -> bool {
    i64::from(servers) * i64::from(volumes) == 1
        || super::erasure::set_size(servers, volumes, None).is_some()
}

fn nearest_valid_servers(servers: i32, volumes: i32) -> String {
    let below = (1..servers)
        .rev()
        .find(|s| erasure_sets_possible(*s, volumes));
    let above = (servers + 1..servers + 64).find(|s| erasure_sets_possible(*s, volumes));
    match (below, above) {
        (Some(b), Some(a)) => format!("{b} or {a}"),
        (Some(b), None) => b.to_string(),
        (None, Some(a)) => a.to_string(),
        (None, None) => "no nearby number of".to_owned(),
    }
}

fn validate_name_lengths(at: &str, tenant: &Tenant, pool: &Pool, out: &mut Violations) {
    if tenant.name().is_empty() || pool.name.is_empty() {
        return;
    }
    let sts = pool_statefulset_name(tenant, pool);
    if sts.len() > MAX_STATEFULSET_NAME {
        out.push(
            Violation::new(
                format!("{at}.name"),
                Reason::TooLong,
                format!(
                    "the pool's StatefulSet would be named {sts:?} ({} characters); Kubernetes labels its pods with that name plus an 11-character revision hash, which must fit in 63, so tenant and pool names together may have at most {} characters: shorten the tenant or the pool name",
                    sts.len(),
                    MAX_STATEFULSET_NAME - 1
                ),
            )
            .with_value(&pool.name),
        );
        return;
    }
    let host = last_pod_hostname(tenant, pool);
    if host.len() > MAX_DNS_LABEL {
        out.push(
            Violation::new(
                format!("{at}.name"),
                Reason::TooLong,
                format!(
                    "pod host name {host:?} would have {} characters, more than a DNS label's 63",
                    host.len()
                ),
            )
            .with_value(&pool.name),
        );
    }
}

fn validate_claim_template(at: &str, pool: &Pool, out: &mut Violations) {
    let at = format!("{at}.volumeClaimTemplate");
    let Some(template) = &pool.volume_claim_template else {
        out.required(
            at,
            "a volume claim template is needed: it describes the volumes each server gets (storage request and access modes)",
        );
        return;
    };
    let spec = template.spec.as_ref();
    let storage = spec
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    let storage_at = format!("{at}.spec.resources.requests.storage");
    match storage {
        None => out.required(storage_at, "each volume needs a size, e.g. `storage: 1Ti`"),
        Some(q) => match Quantity::parse(&q.0) {
            Err(e) => out.invalid(storage_at, &q.0, format!("the volume size {e}")),
            Ok(size) if !size.is_positive() => {
                out.invalid(storage_at, &q.0, "the volume size must be greater than 0")
            }
            Ok(_) => {}
        },
    }
    let modes = spec
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default();
    if modes.is_empty() {
        out.required(
            format!("{at}.spec.accessModes"),
            "volumes need an access mode, usually `ReadWriteOnce`",
        );
    }
    for (j, mode) in modes.iter().enumerate() {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            out.not_supported(format!("{at}.spec.accessModes[{j}]"), mode, ACCESS_MODES);
        }
    }
    if let Some(class) = spec.and_then(|s| s.storage_class_name.as_deref())
        && !class.is_empty()
        && let Err(e) = dns1123_subdomain(class)
    {
        out.invalid(format!("{at}.spec.storageClassName"), class, e);
    }
}

/// Quantities must parse and be non-negative, and no request may exceed its limit: the apiserver
/// refuses such pods, which would leave the StatefulSet with no pods and no error on the Tenant.
/// Resource names are map keys and may hold dots (`example.com/gpu`): they are written `[name]`, as
/// the apiserver writes them, so a path never reads as fields that do not exist (found by fuzzing).
pub fn validate_resources(at: &str, resources: &ResourceRequirements, out: &mut Violations) {
    let parse_all = |kind: &str,
                     map: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
                     out: &mut Violations| {
        let mut parsed = BTreeMap::new();
        for (name, q) in map.into_iter().flatten() {
            match Quantity::parse(&q.0) {
                Ok(v) if v.is_negative() => out.invalid(
                    map_key(&format!("{at}.{kind}"), name),
                    &q.0,
                    "must not be negative",
                ),
                Ok(v) => {
                    parsed.insert(name.clone(), v);
                }
                Err(e) => out.invalid(
                    map_key(&format!("{at}.{kind}"), name),
                    &q.0,
                    format!("the {name} {} {e}", kind.trim_end_matches('s')),
                ),
            }
        }
        parsed
    };
    let requests = parse_all("requests", resources.requests.as_ref(), out);
    let limits = parse_all("limits", resources.limits.as_ref(), out);
    for (name, request) in &requests {
        if let Some(limit) = limits.get(name)
            && request > limit
        {
            let raw = |m: &Option<BTreeMap<String, _>>| {
                m.as_ref()
                    .and_then(
                        |m: &BTreeMap<
                            String,
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
                        >| m.get(name),
                    )
                    .map(|q| q.0.clone())
                    .unwrap_or_default()
            };
            out.invalid(
                map_key(&format!("{at}.requests"), name),
                raw(&resources.requests),
                format!(
                    "must be less than or equal to the {name} limit {:?}",
                    raw(&resources.limits)
                ),
            );
        }
    }
}

fn validate_pool_labels(at: &str, pool: &Pool, out: &mut Violations) {
    labels::validate_labels(&format!("{at}.labels"), &pool.labels, out);
    labels::validate_annotations(&format!("{at}.annotations"), &pool.annotations, out);
    labels::validate_labels(&format!("{at}.nodeSelector"), &pool.node_selector, out);
    for key in [TENANT_LABEL, POOL_LABEL] {
        if pool.labels.contains_key(key) {
            out.forbidden(
                map_key(&format!("{at}.labels"), key),
                "the operator sets this label itself and selects the pool's pods by it",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_layouts_the_server_accepts() {
        for (s, v) in [
            (1, 1),
            (1, 2),
            (1, 3),
            (1, 16),
            (2, 2),
            (4, 1),
            (4, 4),
            (5, 1),
            (16, 1),
            (11, 2),
            (13, 3),
            (5, 4),
            (32, 1),
        ] {
            assert!(erasure_sets_possible(s, v), "{s}x{v}");
        }
        for (s, v) in [(17, 1), (1, 17), (17, 2), (19, 1), (23, 3)] {
            assert!(!erasure_sets_possible(s, v), "{s}x{v}");
        }
        assert_eq!(nearest_valid_servers(17, 1), "16 or 18");
    }
}
