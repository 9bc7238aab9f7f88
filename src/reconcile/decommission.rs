//! Decommission: the pool a user asked to retire (annotation `s3.hanzo.ai/decommission: <pool>`) is
//! drained by the server, its progress shows in `status.pools[].state` and in events, and the
//! validating webhook lets it leave `spec.pools` only once the server reported it complete. Then its
//! StatefulSet goes (`prune_retired`); its claims stay, as every claim does.

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, DeleteParams};

use super::context::Context;
use super::desired;
use super::events::EventType;
use super::outcome::{AtStep, Step, StepError, log_admin_error};
use super::report;
use crate::api::names::{DECOMMISSION_ANNOTATION, pool_statefulset_name};
use crate::api::status::{POOL_DECOMMISSION_FAILED, POOL_DECOMMISSIONED, POOL_DECOMMISSIONING};
use crate::api::tenant::Tenant;
use crate::s3admin::{AdminClient, DecommissionInfo};

/// The state to report for the retiring pool's StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub statefulset: String,
    pub state: &'static str,
}

/// Starts or follows the decommission the Tenant asks for; `None` when it asks for none, or when the
/// server could not be asked (logged; the next pass asks again).
pub async fn drive(ctx: &Context, tenant: &Tenant, admin: &AdminClient) -> Option<Progress> {
    let name = tenant.decommission_request()?;
    let pool = tenant.spec.pools.iter().find(|p| p.name == name)?;
    let statefulset = pool_statefulset_name(tenant, pool);
    let endpoints = desired::pool_endpoints(tenant, pool, &ctx.settings.defaults.cluster_domain);
    let was = tenant.reported_pool_state(&statefulset);
    // When the server cannot be asked, what it said last stands (a drained pool stays drained).
    let unchanged = || {
        was.and_then(|w| {
            [POOL_DECOMMISSIONING, POOL_DECOMMISSIONED]
                .into_iter()
                .find(|s| *s == w)
        })
        .map(|state| Progress {
            statefulset: statefulset.clone(),
            state,
        })
    };
    let pools = match admin.pools().await {
        Ok(p) => p,
        Err(e) => {
            log_admin_error(tenant, "list pools", &e);
            return unchanged();
        }
    };
    let Some(server_pool) = pools.iter().find(|p| p.cmd_line == endpoints) else {
        tracing::warn!(
            namespace = tenant.namespace(),
            name = tenant.name(),
            pool = name,
            endpoints,
            "the server does not list this pool; decommission waits"
        );
        return unchanged();
    };
    let info = server_pool.decommission.clone().filter(|d| d.started());
    let (state, event) = step(tenant, admin, name, &endpoints, info).await;
    // One event per change of state, not one per pass.
    if let Some((kind, reason, message)) = event.filter(|_| was != Some(state)) {
        report::publish(&ctx.events, tenant, kind, reason, message).await;
    }
    Some(Progress { statefulset, state })
}

/// An event: its type, reason and note.
type Event = (EventType, &'static str, String);

/// Where the decommission of pool `name` stands, starting it when the server has not; the event
/// to publish if this is a change.
async fn step(
    tenant: &Tenant,
    admin: &AdminClient,
    name: &str,
    endpoints: &str,
    info: Option<DecommissionInfo>,
) -> (&'static str, Option<Event>) {
    match info {
        None => match admin.start_decommission(endpoints).await {
            Ok(()) => (
                POOL_DECOMMISSIONING,
                Some((
                    EventType::Normal,
                    "DecommissionStarted",
                    format!("the server drains pool {name:?}; its objects move to the other pools"),
                )),
            ),
            Err(error) => {
                log_admin_error(tenant, "start decommission", &error);
                (
                    POOL_DECOMMISSION_FAILED,
                    Some((
                        EventType::Warning,
                        "DecommissionFailed",
                        format!("the server refused to drain pool {name:?}: {error}"),
                    )),
                )
            }
        },
        Some(d) if d.complete => (
            POOL_DECOMMISSIONED,
            Some((
                EventType::Normal,
                "DecommissionComplete",
                format!(
                    "pool {name:?} is drained ({} objects moved); remove it from spec.pools to retire its servers",
                    d.objects_decommissioned
                ),
            )),
        ),
        Some(d) if d.failed || d.canceled => (
            POOL_DECOMMISSION_FAILED,
            Some((
                EventType::Warning,
                "DecommissionFailed",
                format!(
                    "draining pool {name:?} {} after {} objects ({} failed); remove the annotation {DECOMMISSION_ANNOTATION} and set it again to retry",
                    if d.failed { "failed" } else { "was canceled" },
                    d.objects_decommissioned,
                    d.objects_failed
                ),
            )),
        ),
        Some(_) => (POOL_DECOMMISSIONING, None),
    }
}

/// Deletes the StatefulSets of this Tenant whose pool left `spec.pools` after the stored status
/// reported it drained. Any other StatefulSet of ours without a pool is left alone, with a warning:
/// it may hold the only copy of data. Returns how many were deleted.
pub async fn prune_retired(ctx: &Context, tenant: &Tenant) -> Result<usize, StepError> {
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), tenant.namespace());
    let uid = tenant.metadata.uid.as_deref();
    let mut deleted = 0;
    for sts in ctx.caches.statefulsets_of(tenant) {
        let name = sts.metadata.name.clone().unwrap_or_default();
        let owned = sts
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| Some(o.uid.as_str()) == uid);
        let in_spec = tenant
            .spec
            .pools
            .iter()
            .any(|p| pool_statefulset_name(tenant, p) == name);
        if !owned || in_spec {
            continue;
        }
        if tenant.reported_pool_state(&name) != Some(POOL_DECOMMISSIONED) {
            tracing::warn!(
                namespace = tenant.namespace(),
                name = tenant.name(),
                statefulset = name,
                "a StatefulSet of this Tenant has no pool in spec.pools and was not reported drained; left in place"
            );
            continue;
        }
        api.delete(&name, &DeleteParams::default())
            .await
            .at(Step::StatefulSets)?;
        tracing::info!(
            namespace = tenant.namespace(),
            name = tenant.name(),
            statefulset = name,
            "deleted the StatefulSet of a retired pool"
        );
        deleted += 1;
    }
    Ok(deleted)
}
