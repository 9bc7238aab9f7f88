//! What a pass reports to the API: the Tenant's status (by server-side apply, only when it says
//! something new) and events.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::apply::{FIELD_MANAGER, hash64};
use super::events::{EventType, Events};
use super::memory::TenantMemory;
use crate::api::status::{CONDITION_READY, TenantStatus};
use crate::api::tenant::Tenant;
use crate::metrics::TenantState;

/// Writes `status` with server-side apply, unless it says what the stored one says, or what this
/// operator already wrote on top of the stored version: a pass woken before the watch brings a
/// write back (by the objects the previous pass created) sees the status from before it, and
/// writing the same again was a quarter of a new Tenant's API writes.
pub async fn write(
    client: &kube::Client,
    memory: &TenantMemory,
    tenant: &Tenant,
    status: TenantStatus,
) -> Result<(), kube::Error> {
    crate::metrics::record_tenant(
        tenant.namespace(),
        tenant.name(),
        gauges_of(tenant, &status),
    );
    let current = tenant.status.clone().unwrap_or_default();
    let comparable = |s: &TenantStatus| {
        let mut s = s.clone();
        s.conditions
            .iter_mut()
            .for_each(|c| c.last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        s
    };
    let wanted = comparable(&status);
    if comparable(&current) == wanted {
        return Ok(());
    }
    let (uid, version) = (
        tenant.metadata.uid.as_deref().unwrap_or_default(),
        tenant
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default(),
    );
    let hash = hash64(&wanted);
    if memory.status_already_written(uid, version, hash) {
        return Ok(());
    }
    let api: Api<Tenant> = Api::namespaced(client.clone(), tenant.namespace());
    let patch = json!({"apiVersion": "minio.min.io/v2", "kind": "Tenant", "status": status});
    api.patch_status(
        tenant.name(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    crate::metrics::count_api_write();
    memory.status_written(uid, version, hash);
    Ok(())
}

/// What the Tenant's gauges say of a status about to be written.
fn gauges_of(tenant: &Tenant, status: &TenantStatus) -> TenantState {
    let count = |n: Option<i32>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    TenantState {
        ready: status
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_READY && c.status == "True"),
        servers: u64::try_from(tenant.servers()).unwrap_or(u64::MAX),
        servers_ready: count(status.available_replicas),
        drives_offline: count(status.drives_offline),
        certificate_expiry: None,
    }
}

/// Publishes an event on the Tenant; a repeat of the same reason joins the last one's series. An
/// event that cannot be published is logged, not retried: the status says the same.
pub async fn publish(
    events: &Events,
    tenant: &Tenant,
    type_: EventType,
    reason: &str,
    note: String,
) {
    match events.publish(tenant, type_, reason, &note).await {
        Ok(()) => crate::metrics::count_api_write(),
        Err(error) => tracing::debug!(%error, "cannot publish an event"),
    }
}
