//! Workloads: the ServiceAccount, the three Services and one StatefulSet per pool, from the pure
//! builders in `desired`, by server-side apply.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::Api;

use super::apply::apply;
use super::controller::Context;
use super::desired::{self, DesiredObjects};
use super::status::{AtStep, Blocked, STATE_NOT_OWNED, Step, Stop, StopKind};
use crate::api::tenant::Tenant;

/// Applies every workload object; returns how many were created or changed.
pub async fn apply_workloads(
    ctx: &Context,
    tenant: &Tenant,
    config_hash: &str,
) -> Result<usize, Stop> {
    let ns = tenant.namespace();
    let DesiredObjects {
        services,
        service_account,
        statefulsets,
    } = desired::desired(tenant, &ctx.settings.defaults.cluster_domain, config_hash);
    let mut writes = usize::from(
        apply(
            &ctx.applied,
            &Api::<ServiceAccount>::namespaced(ctx.client.clone(), ns),
            service_account,
        )
        .await
        .at(Step::ServiceAccount)?,
    );
    let service_api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    for service in services {
        writes += usize::from(
            apply(&ctx.applied, &service_api, service)
                .await
                .at(Step::Services)?,
        );
    }
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let owner = desired::owner_reference(tenant);
    for sts in statefulsets {
        let sts_name = sts.metadata.name.clone().unwrap_or_default();
        // Never take over a StatefulSet someone else made under our name.
        if let Some(live) = sts_api
            .get_metadata_opt(&sts_name)
            .await
            .at(Step::StatefulSets)?
        {
            let ours = live
                .metadata
                .owner_references
                .unwrap_or_default()
                .iter()
                .any(|o| o.uid == owner.uid);
            if !ours {
                return Err(Blocked {
                    state: STATE_NOT_OWNED,
                    reason: "NotOwned",
                    message: format!(
                        "StatefulSet {sts_name:?} exists and is not owned by this Tenant; refusing to adopt it"
                    ),
                    kind: StopKind::Stalled,
                    event: true,
                    requeue: Some(Duration::from_secs(60)),
                }
                .into());
            }
        }
        writes += usize::from(
            apply(&ctx.applied, &sts_api, sts)
                .await
                .at(Step::StatefulSets)?,
        );
    }
    Ok(writes)
}
