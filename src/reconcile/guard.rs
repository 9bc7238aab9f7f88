//! Guard: what must hold before anything is applied. The stored Tenant passes the admission core
//! (one may have been stored while the webhook was off), and it is the oldest Tenant of its
//! namespace (its S3 Service is named `minio`, one per namespace).

use kube::ResourceExt;
use kube::api::ObjectMeta;

use super::context::Context;
use super::outcome::{Blocked, Stop, StopKind};
use super::status::{STATE_ANOTHER_TENANT, STATE_INVALID};
use crate::admission;
use crate::api::tenant::Tenant;

/// `tenant` is `stored` with defaults applied.
pub async fn check(ctx: &Context, stored: &Tenant, tenant: &Tenant) -> Result<(), Stop> {
    // Stored while the webhook was off: the size limits too, or one Tenant could ask for 10,000
    // StatefulSets.
    let over = serde_json::to_value(stored)
        .map(|v| admission::limits::check_value(&v))
        .unwrap_or_default();
    let message = if over.is_empty() {
        admission::review(None, tenant, &ctx.settings.defaults).message(tenant.name())
    } else {
        Some(admission::denial_message(tenant.name(), &over))
    };
    if let Some(message) = message {
        return Err(Blocked {
            state: STATE_INVALID,
            reason: "Invalid",
            message,
            kind: StopKind::Invalid,
            event: true,
            requeue: None,
        }
        .into());
    }
    let others = ctx.caches.tenants_in(tenant.namespace());
    let created = |m: &ObjectMeta| m.creation_timestamp.clone().map(|t| t.0);
    if let Some(older) = others.iter().find(|o| {
        o.metadata.name.as_deref() != Some(tenant.name())
            && created(&o.metadata) < created(&stored.metadata)
    }) {
        return Err(Blocked {
            state: STATE_ANOTHER_TENANT,
            reason: "AnotherTenant",
            message: format!(
                "Tenant {:?} already owns this namespace's S3 Service `minio`",
                older.name_any()
            ),
            kind: StopKind::Stalled,
            event: false,
            requeue: None,
        }
        .into());
    }
    Ok(())
}
