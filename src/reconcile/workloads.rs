//! Workloads: the ServiceAccount, the three Services and one StatefulSet per pool, from the pure
//! builders in `desired`, by server-side apply.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};

use super::apply::{Version, apply};
use super::caches::Owned;
use super::context::Context;
use super::desired::{self, DesiredObjects};
use super::outcome::{AtStep, Blocked, Step, Stop, StopKind};
use super::status::STATE_NOT_OWNED;
use super::takeover;
use crate::api::tenant::Tenant;

/// Applies every workload object; returns how many were created or changed.
pub async fn apply_workloads(
    ctx: &Context,
    tenant: &Tenant,
    rendered: &desired::Rendered,
) -> Result<usize, Stop> {
    let ns = tenant.namespace();
    let DesiredObjects {
        services,
        service_account,
        statefulsets,
        disruption_budgets,
    } = desired::desired(tenant, rendered);
    let cached = ctx
        .caches
        .version(Owned::ServiceAccount, ns, &service_account.name_any());
    let mut writes = usize::from(
        apply(
            &ctx.applied,
            &Api::<ServiceAccount>::namespaced(ctx.client.clone(), ns),
            service_account,
            cached,
            Version::Resource,
        )
        .await
        .at(Step::ServiceAccount)?,
    );
    let service_api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    for service in services {
        let cached = ctx.caches.version(Owned::Service, ns, &service.name_any());
        writes += usize::from(
            apply(
                &ctx.applied,
                &service_api,
                service,
                cached,
                Version::Resource,
            )
            .await
            .at(Step::Services)?,
        );
    }
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    for sts in statefulsets {
        writes += usize::from(apply_statefulset(ctx, tenant, &sts_api, sts).await?);
    }
    Ok(writes + apply_disruption_budgets(ctx, tenant, disruption_budgets).await?)
}

/// The pools' PodDisruptionBudgets; those of the Tenant no longer wanted (it opted out, or the
/// pool left) are deleted.
async fn apply_disruption_budgets(
    ctx: &Context,
    tenant: &Tenant,
    budgets: Vec<PodDisruptionBudget>,
) -> Result<usize, Stop> {
    let ns = tenant.namespace();
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), ns);
    let wanted: Vec<String> = budgets.iter().map(|b| b.name_any()).collect();
    let mut writes = 0;
    for budget in budgets {
        let cached = ctx
            .caches
            .version(Owned::DisruptionBudget, ns, &budget.name_any());
        writes += usize::from(
            apply(&ctx.applied, &api, budget, cached, Version::Resource)
                .await
                .at(Step::DisruptionBudgets)?,
        );
    }
    for name in ctx.caches.disruption_budgets_of(tenant) {
        if !wanted.contains(&name) {
            let deleted = super::apply::delete(&api, &name, &DeleteParams::default())
                .await
                .at(Step::DisruptionBudgets)?;
            writes += usize::from(deleted);
        }
    }
    Ok(writes)
}

/// One pool's StatefulSet, unless one of that name exists that is not this Tenant's. One this
/// Tenant owns whose pod template another manager wrote (the Go operator's) is replaced first,
/// its pods kept (`takeover`).
async fn apply_statefulset(
    ctx: &Context,
    tenant: &Tenant,
    sts_api: &Api<StatefulSet>,
    sts: StatefulSet,
) -> Result<bool, Stop> {
    let sts_name = sts.metadata.name.clone().unwrap_or_default();
    // Never take over a StatefulSet someone else made under our name. The cache holds only
    // labelled ones: one it does not hold is asked for.
    let (live, writer) = match ctx.caches.statefulset(tenant.namespace(), &sts_name) {
        Some(sts) => (Some(sts.metadata.clone()), sts.template_writer.clone()),
        None => match sts_api
            .get_metadata_opt(&sts_name)
            .await
            .at(Step::StatefulSets)?
        {
            Some(found) => {
                let writer = found
                    .metadata
                    .managed_fields
                    .as_deref()
                    .and_then(super::apply::template_writer);
                (Some(found.metadata), writer)
            }
            None => (None, None),
        },
    };
    let owner = desired::owner_reference(tenant);
    let mut live_version = None;
    if let Some(live) = live {
        let ours = live
            .owner_references
            .as_deref()
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
        match writer {
            Some(writer) => {
                takeover::replace_statefulset(ctx, tenant, sts_api, &sts_name, live.uid, &writer)
                    .await?;
            }
            // What was just read (cached or asked for) is what apply compares: no second look.
            None => live_version = Version::GenerationAndLabels.of(&live),
        }
    }
    Ok(apply(
        &ctx.applied,
        sts_api,
        sts,
        live_version,
        Version::GenerationAndLabels,
    )
    .await
    .at(Step::StatefulSets)?)
}
