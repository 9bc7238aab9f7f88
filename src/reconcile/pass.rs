//! One reconcile pass over one Tenant: the phases in order,
//!
//!   guard → configuration → workloads → health → provisioning → status
//!
//! and how the pass ends. A phase ends in one of three ways: it succeeds, it is blocked by something
//! the user must change (a condition and maybe an event, no retry storm), or a step fails against
//! the API (a condition naming the step with the API's message, one event with a count, and a
//! retry with backoff). Each ending is a function of its own below.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::configuration::apply_configuration;
use super::context::{Context, ReadyWhen};
use super::events::EventType;
use super::observed::{Observed, Provisioned, Rollout};
use super::outcome::{Blocked, StepError, Stop, StopKind};
use super::report;
use super::status;
use super::workloads::apply_workloads;
use super::{decommission, guard, health, monitoring, provisioning, rollout};
use crate::admission;
use crate::api::status::CONDITION_READY;
use crate::api::tenant::Tenant;

/// Retries of a failing Tenant: 5 s, 10 s, 20 s, ... up to 5 minutes.
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(300);
/// How often a Ready Tenant's S3 health is checked again (nothing else announces a server that
/// stops answering).
const HEALTH_PERIOD: Duration = Duration::from_secs(30);
const WAITING_PERIOD: Duration = Duration::from_secs(10);
/// How often a cluster whose servers are all up but which is not healthy yet is asked again, and
/// for how long before it falls back to [`WAITING_PERIOD`].
const FORMING_PERIOD: Duration = Duration::from_secs(1);
const FORMING_FOR: Duration = Duration::from_secs(30);
/// How often a rollout in progress looks again.
const ROLLOUT_PERIOD: Duration = Duration::from_secs(2);

/// When to look again at a Tenant that is not Ready. Servers still starting wake the controller
/// through their StatefulSet's status, so [`WAITING_PERIOD`] is only a fallback for them. A cluster
/// whose servers are all up but which does not answer healthy yet (forming its quorum: 2 to 5 s on
/// the real node) announces nothing when it gets there, so it is asked every second for its first
/// 30 s, then every 10 s. A look costs one health request to the S3 Service and no API write (an
/// unchanged status is not written). Backing off 1, 2, 4, 8 s said Ready up to twice as late as
/// the cluster formed. By time, not by passes: our own status writes wake extra passes.
fn not_ready_period(forming_for: Option<Duration>) -> Duration {
    match forming_for {
        Some(d) if d < FORMING_FOR => FORMING_PERIOD,
        _ => WAITING_PERIOD,
    }
}

/// Why a reconcile returned an error: a step failed (already reported on the Tenant), or the status
/// that reports it could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("cannot write the Tenant's status: {0}")]
    Status(kube::Error),
}

pub fn error_policy(tenant: Arc<Tenant>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.memory.failed(&uid_of(&tenant));
    let retry = FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(10))
        .min(MAX_RETRY);
    tracing::warn!(
        namespace = tenant.namespace(),
        name = tenant.name(),
        %error,
        failures,
        retry_in_s = retry.as_secs(),
        "reconcile failed; retrying"
    );
    Action::requeue(retry)
}

pub async fn reconcile(stored: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    if stored.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the Tenant (ownerReferences); claims stay, by retention policy.
        return Ok(Action::await_change());
    }
    crate::metrics::count_pass();
    let tenant = admission::defaulted(&stored, &ctx.settings.defaults);
    match phases(&ctx, &stored, &tenant).await {
        Ok(done) => completed(&ctx, &stored, done).await,
        Err(Stop::Blocked(blocked)) => blocked_on(&ctx, &stored, blocked).await,
        Err(Stop::Failed(failed)) => failed_step(&ctx, &stored, failed).await,
    }
}

/// What a pass that ran every phase saw and did.
struct Done {
    observed: Observed,
    provisioned: Option<Provisioned>,
    rollout: Rollout,
    /// When the tenant's certificate, or its metrics token, is due to be made again.
    due_in: Option<Duration>,
}

/// The phases, in order; `tenant` is `stored` with defaults applied.
async fn phases(ctx: &Context, stored: &Tenant, tenant: &Tenant) -> Result<Done, Stop> {
    ctx.caches.synced().await?;
    guard::check(ctx, stored, tenant).await?;
    let configured = apply_configuration(ctx, tenant).await?;
    let writes = configured.writes
        + apply_workloads(ctx, tenant, &configured.rendered).await?
        + decommission::prune_retired(ctx, stored).await?;
    if writes > 0 {
        tracing::info!(
            namespace = tenant.namespace(),
            name = tenant.name(),
            writes,
            "applied tenant objects"
        );
        let note = format!("{writes} object(s) created or updated");
        report::publish(&ctx.events, stored, EventType::Normal, "Applied", note).await;
    }
    let rollout = rollout::advance(ctx, tenant, &configured).await?;
    let (mut observed, admin) = health::observe(ctx, tenant, configured.admin.as_ref()).await?;
    let Some(admin) = admin else {
        return Ok(Done {
            observed,
            provisioned: None,
            rollout,
            due_in: configured.certificate_due_in,
        });
    };
    let provisioned = provisioning::provision(ctx, tenant, &admin, configured.ldap).await?;
    let token_due_in = monitoring::ensure(ctx, tenant, &admin, configured.metrics_public).await?;
    if let Some(progress) = decommission::drive(ctx, tenant, &admin).await {
        for pool in observed.pools.iter_mut() {
            if pool.ss_name == progress.statefulset {
                pool.state = progress.state.to_owned();
            }
        }
    }
    let due_in = [configured.certificate_due_in, token_due_in]
        .into_iter()
        .flatten()
        .min();
    Ok(Done {
        observed,
        provisioned: Some(provisioned),
        rollout,
        due_in,
    })
}

/// Every phase ran: the status says how the Tenant is, and the next look comes as soon as its
/// readiness can change.
async fn completed(ctx: &Context, stored: &Tenant, done: Done) -> Result<Action, Error> {
    clear_failures(ctx, stored);
    let Done {
        observed,
        provisioned,
        rollout,
        due_in,
    } = done;
    report_provisioning(ctx, stored, provisioned.as_ref()).await;
    let servers_up = observed.servers_up();
    let (status, stopped_answering) =
        status::status_of(stored, &observed, provisioned.as_ref(), &rollout);
    if let Some(why) = stopped_answering {
        report::publish(&ctx.events, stored, EventType::Warning, "S3Unhealthy", why).await;
    }
    let ready_condition = status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY);
    let ready = ready_condition.is_some_and(|c| c.status == "True");
    let why = ready_condition
        .map(|c| c.message.clone())
        .unwrap_or_default();
    report::write(&ctx.client, &ctx.memory, stored, status)
        .await
        .map_err(Error::Status)?;
    // Owned StatefulSets wake us when replicas become ready; the S3 cluster's health announces
    // nothing, so it is looked at again on a period.
    let forming_for = ctx
        .memory
        .forming_for(&uid_of(stored), !ready && servers_up);
    let next = match (ready, ctx.settings.ready_when) {
        // A rollout waits on servers that announce nothing when they get there (joining peers,
        // a cluster that can spare the next one again).
        _ if matches!(rollout, Rollout::InProgress { .. }) => ROLLOUT_PERIOD,
        (false, _) => not_ready_period(forming_for),
        (true, ReadyWhen::S3Healthy) => HEALTH_PERIOD,
        (true, ReadyWhen::PodsReady) => MAX_RETRY,
    };
    // Back when the certificate or the token is due (a second late: due means less than a third
    // left).
    let next = due_in.map_or(next, |due| next.min(due + Duration::from_secs(1)));
    tracing::debug!(
        namespace = stored.namespace(),
        name = stored.name(),
        ready,
        why,
        servers_up,
        forming_for_ms = forming_for.map(|d| d.as_millis() as u64),
        next_look_in_ms = next.as_millis() as u64,
        "pass done"
    );
    Ok(Action::requeue(next))
}

/// One event for what was provisioned on this pass, one for what could not be.
async fn report_provisioning(ctx: &Context, stored: &Tenant, provisioned: Option<&Provisioned>) {
    let Some(p) = provisioned else { return };
    if !p.done_now.is_empty() {
        let note = format!("provisioned {}", p.done_now.join(", "));
        report::publish(&ctx.events, stored, EventType::Normal, "Provisioned", note).await;
    }
    if let Some((reason, message)) = p.problem.clone() {
        report::publish(&ctx.events, stored, EventType::Warning, reason, message).await;
    }
}

/// A phase is blocked on something only the user can change: said once, no retry storm.
async fn blocked_on(ctx: &Context, stored: &Tenant, blocked: Blocked) -> Result<Action, Error> {
    clear_failures(ctx, stored);
    if blocked.event {
        let note = blocked.message.clone();
        report::publish(
            &ctx.events,
            stored,
            EventType::Warning,
            blocked.reason,
            note,
        )
        .await;
    }
    let status = status::stopped_status(
        stored,
        blocked.state,
        blocked.reason,
        blocked.message,
        blocked.kind,
    );
    report::write(&ctx.client, &ctx.memory, stored, status)
        .await
        .map_err(Error::Status)?;
    Ok(blocked
        .requeue
        .map_or_else(Action::await_change, Action::requeue))
}

/// A step failed against the API: reported, then retried with backoff by [`error_policy`].
async fn failed_step(ctx: &Context, stored: &Tenant, failed: StepError) -> Result<Action, Error> {
    crate::metrics::count_failure();
    let reason = failed.step.reason();
    let message = failed.to_string();
    report::publish(
        &ctx.events,
        stored,
        EventType::Warning,
        reason,
        message.clone(),
    )
    .await;
    let state = format!("Failed {}", failed.step.doing());
    let status = status::stopped_status(stored, &state, reason, message, StopKind::Retrying);
    // Best effort: if the status cannot be written either, the retry will try again.
    if let Err(error) = report::write(&ctx.client, &ctx.memory, stored, status).await {
        tracing::warn!(namespace = stored.namespace(), name = stored.name(), %error, "cannot report the failure on the Tenant");
    }
    Err(Error::Step(failed))
}

fn uid_of(tenant: &Tenant) -> String {
    tenant.uid().unwrap_or_default()
}

fn clear_failures(ctx: &Context, tenant: &Tenant) {
    ctx.memory.succeeded(&uid_of(tenant));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forming_cluster_is_asked_every_second_for_its_first_30_s() {
        let secs = |d: Option<u64>| not_ready_period(d.map(Duration::from_secs)).as_secs();
        assert_eq!(secs(None), 10, "servers still starting: the fallback");
        assert_eq!(secs(Some(0)), 1, "just formed: soon");
        assert_eq!(secs(Some(29)), 1);
        assert_eq!(
            secs(Some(30)),
            10,
            "a cluster that does not form: the waiting period"
        );
    }
}
