//! UPDATE rules: what cannot change once a pool exists. Pools are appended, never removed, renamed
//! or reordered (each is a StatefulSet holding data, and every server lists every pool in order),
//! and a pool's size is fixed: StatefulSet volume claim templates cannot change.

use super::super::violation::{Violations, map_key};
use crate::api::names::{DECOMMISSION_ANNOTATION, POOL_DECOMMISSIONED, pool_statefulset_name};
use crate::api::tenant::{Pool, Tenant};

/// The pool the old Tenant asked to retire and the server has drained: the one pool that may leave
/// `spec.pools`. Both halves are needed: the annotation (the user's request) and the state the
/// operator wrote in the status once the server reported the decommission complete.
pub fn retired_pool(old: &Tenant) -> Option<&str> {
    let name = old.decommission_request()?;
    let pool = old.spec.pools.iter().find(|p| p.name == name)?;
    (old.reported_pool_state(&pool_statefulset_name(old, pool)) == Some(POOL_DECOMMISSIONED))
        .then_some(name)
}

/// A decommission request must not name the only pool: its data would have nowhere to go. (One
/// that names no pool is only a warning: it is what a request looks like once its pool is gone.)
pub fn validate_decommission_request(new: &Tenant, out: &mut Violations) {
    let Some(pool) = new.decommission_request() else {
        return;
    };
    if new.spec.pools.len() == 1 && new.spec.pools[0].name == pool {
        out.invalid(
            map_key("metadata.annotations", DECOMMISSION_ANNOTATION),
            pool,
            "the only pool cannot be decommissioned: its data would have nowhere to go; append a new pool first",
        );
    }
}

pub fn validate_update(old: &Tenant, new: &Tenant, out: &mut Violations) {
    let new_pools = &new.spec.pools;
    // No pools at all is the new object's own error (Required, at spec.pools, which a Tenant
    // without a spec does not even have); comparing pool by pool would only repeat it.
    if new_pools.is_empty() {
        return;
    }
    // A drained pool that leaves is not compared: the pools after it move up one place.
    let retired = retired_pool(old).filter(|r| !new_pools.iter().any(|p| &p.name == r));
    let old_pools: Vec<&Pool> = old
        .spec
        .pools
        .iter()
        .filter(|p| Some(p.name.as_str()) != retired)
        .collect();
    for (i, before) in old_pools.iter().copied().enumerate() {
        let position = new_pools.iter().position(|p| p.name == before.name);
        match (position, new_pools.get(i)) {
            (Some(j), _) if j == i => unchanged_pool(i, before, &new_pools[i], out),
            (Some(j), _) => out.forbidden(
                format!("spec.pools[{j}].name"),
                format!(
                    "pool {:?} moved from position {i} to {j}: pools keep their order, because every server lists all pools in that order; append new pools at the end",
                    before.name
                ),
            ),
            (None, Some(now)) if !old_pools.iter().any(|p| p.name == now.name) => out.forbidden(
                format!("spec.pools[{i}].name"),
                format!(
                    "pool {:?} was renamed to {:?}: a pool's name is part of its StatefulSet and volume claim names and cannot change",
                    before.name, now.name
                ),
            ),
            (None, _) => out.forbidden(
                "spec.pools",
                format!(
                    "pool {:?} (spec.pools[{}]) was removed: removing a pool deletes its servers and the data on them; decommission it first: annotate the Tenant {DECOMMISSION_ANNOTATION}={:?}, wait for status.pools to say {POOL_DECOMMISSIONED}, then remove it",
                    before.name,
                    // Where it was in the old object, as the backstop policy says it.
                    old.spec.pools.iter().position(|p| p.name == before.name).unwrap_or(i),
                    before.name
                ),
            ),
        }
    }
}

fn unchanged_pool(i: usize, before: &Pool, after: &Pool, out: &mut Violations) {
    let at = format!("spec.pools[{i}]");
    if before.servers != after.servers {
        out.forbidden(
            format!("{at}.servers"),
            format!(
                "servers is immutable: changed from {} to {}; to grow the tenant, append a new pool",
                before.servers, after.servers
            ),
        );
    }
    if before.volumes_per_server != after.volumes_per_server {
        out.forbidden(
            format!("{at}.volumesPerServer"),
            format!(
                "volumesPerServer is immutable: changed from {} to {}; to add capacity, append a new pool",
                before.volumes_per_server, after.volumes_per_server
            ),
        );
    }
    let storage = |p: &Pool| {
        p.volume_claim_template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone())
    };
    let (size_before, size_after) = (storage(before), storage(after));
    // A size taken out altogether is the new object's own error (Required, at the field), found
    // without the old one; here only a size that changed.
    if size_after.is_some() && size_before != size_after {
        out.forbidden(
            format!("{at}.volumeClaimTemplate.spec.resources.requests.storage"),
            format!(
                "the volume size is immutable: changed from {} to {}; the pool's volumes already exist at their size",
                size_before.as_deref().unwrap_or("nothing"),
                size_after.as_deref().unwrap_or("nothing")
            ),
        );
        return;
    }
    if before.volume_claim_template != after.volume_claim_template {
        out.forbidden(
            format!("{at}.volumeClaimTemplate"),
            "the volume claim template cannot change after the pool is created: Kubernetes keeps StatefulSet volume claim templates immutable",
        );
    }
}
