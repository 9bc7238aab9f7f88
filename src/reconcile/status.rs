//! What a Tenant's status says, decided in one place: the `currentState` words, every condition
//! and its reason, for a pass that got to the end (`status_of`) and for one that stopped
//! (`stopped_status`). Pure: `report` writes what is decided here. Every way a pass can end has a
//! condition and a `currentState` here, so `kubectl describe tenant` always says why a Tenant is
//! not Ready.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::observed::{Observed, Provisioned, Rollout, S3Health, Storage};
use super::outcome::StopKind;
use crate::api::status::{
    CONDITION_DEGRADED, CONDITION_INVALID, CONDITION_PROVISIONED, CONDITION_READY,
    CONDITION_RECONCILING, CONDITION_STALLED, TenantStatus,
};
use crate::api::tenant::Tenant;

pub const STATE_INITIALIZED: &str = "Initialized";
pub const STATE_WAITING: &str = "Waiting for Tenant to be healthy";
/// MinIO's words, kept because Argo CD's built-in Tenant health check knows them (as Degraded).
pub const STATE_ANOTHER_TENANT: &str = "Another MinIO Tenant already exists in the namespace";
pub const STATE_INVALID: &str = "Invalid Tenant";
pub const STATE_NO_CONFIGURATION: &str = "Waiting for the configuration Secret";
pub const STATE_NO_CERTIFICATE: &str = "Waiting for the certificate Secret";
/// While servers are replaced by a new template, and when a replaced one fails.
pub const STATE_UPDATING: &str = "Updating servers";
pub const STATE_ROLLOUT_STOPPED: &str = "Rollout stopped: a server fails on the new template";
pub const REASON_ROLLING_OUT: &str = "RollingOut";
pub const REASON_ROLLOUT_STOPPED: &str = "RolloutStopped";
/// The Go operators' words for a StatefulSet of our name that something else made.
pub const STATE_NOT_OWNED: &str = "Statefulset not controlled by operator";

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// A condition whose transition time moves only when its status does.
pub fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(now);
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

fn previous_conditions(tenant: &Tenant) -> Vec<Condition> {
    tenant
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default()
}

/// Whether the stored status had condition `type_` True.
pub fn was(tenant: &Tenant, type_: &str) -> bool {
    tenant.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    })
}

/// One condition's status, reason and message.
pub type Cond<'a> = (bool, &'a str, String);

/// The conditions every status carries: `Ready`, `Degraded` and `Invalid` (ours), `Reconciling`
/// and `Stalled` (kstatus's, which Flux reads).
pub struct Conditions<'a> {
    pub ready: Cond<'a>,
    pub degraded: Cond<'a>,
    pub invalid: Cond<'a>,
    pub reconciling: Cond<'a>,
    pub stalled: Cond<'a>,
    /// `Provisioned` (users and buckets), once provisioning has run; `None` keeps what it said last.
    pub provisioned: Option<Cond<'a>>,
}

pub fn conditions(tenant: &Tenant, c: Conditions) -> Vec<Condition> {
    let previous = previous_conditions(tenant);
    let generation = tenant.metadata.generation;
    [
        (CONDITION_READY, c.ready),
        (CONDITION_DEGRADED, c.degraded),
        (CONDITION_INVALID, c.invalid),
        (CONDITION_RECONCILING, c.reconciling),
        (CONDITION_STALLED, c.stalled),
    ]
    .into_iter()
    .map(|(type_, (ok, reason, message))| {
        condition(type_, ok, reason, message, generation, &previous)
    })
    .chain(match c.provisioned {
        Some((ok, reason, message)) => Some(condition(
            CONDITION_PROVISIONED,
            ok,
            reason,
            message,
            generation,
            &previous,
        )),
        None => previous
            .iter()
            .find(|p| p.type_ == CONDITION_PROVISIONED)
            .cloned(),
    })
    .collect()
}

/// A False condition with nothing to say.
pub fn quiet(reason: &str) -> Cond<'_> {
    (false, reason, String::new())
}

/// The status of a Tenant that cannot progress (blocked or a step failed): not Ready; Invalid and
/// Stalled as `kind` says, else Reconciling; Degraded when stalled or when it had been up.
/// Everything else in the status is kept.
pub fn stopped_status(
    tenant: &Tenant,
    state: &str,
    reason: &str,
    message: String,
    kind: StopKind,
) -> TenantStatus {
    let mut status = tenant.status.clone().unwrap_or_default();
    status.current_state = Some(state.to_owned());
    status.observed_generation = tenant.metadata.generation;
    let stalled = kind != StopKind::Retrying;
    let degraded = stalled || was(tenant, CONDITION_READY) || was(tenant, CONDITION_DEGRADED);
    let on = |yes: bool| -> Cond {
        if yes {
            (true, reason, message.clone())
        } else {
            quiet(if stalled { "Stalled" } else { "Reconciling" })
        }
    };
    status.conditions = conditions(
        tenant,
        Conditions {
            ready: (false, reason, message.clone()),
            degraded: on(degraded),
            invalid: if kind == StopKind::Invalid {
                (true, reason, message.clone())
            } else {
                quiet("Valid")
            },
            reconciling: on(!stalled),
            stalled: on(stalled),
            provisioned: None,
        },
    );
    status
}

/// The status a reconcile that got this far reports, and whether the S3 cluster just stopped
/// answering (worth a Warning event).
pub fn status_of(
    tenant: &Tenant,
    observed: &Observed,
    provisioned: Option<&Provisioned>,
    rollout: &Rollout,
) -> (TenantStatus, Option<String>) {
    let (ready, ready_reason, ready_message) = match rollout_stopped(rollout) {
        Some(stopped) => (false, REASON_ROLLOUT_STOPPED, stopped),
        None => readiness(observed),
    };
    let servers_ok = observed.servers_up();
    let converged = ready && servers_ok && *rollout == Rollout::Done;
    let (degraded, degraded_reason, degraded_message) = match rollout {
        // A planned restart is not a degradation; a server that fails on the new template is.
        Rollout::InProgress { .. } => (false, REASON_ROLLING_OUT, String::new()),
        _ => degradation(tenant, observed, (ready, ready_reason, &ready_message)),
    };
    let stopped_answering = was(tenant, CONDITION_READY) && !ready && observed.s3.is_some();
    let mut status = tenant.status.clone().unwrap_or_default();
    status.current_state = Some(match rollout {
        Rollout::InProgress {
            updated, servers, ..
        } => format!("{STATE_UPDATING}: {updated} of {servers} on the new template"),
        Rollout::Stopped { .. } => STATE_ROLLOUT_STOPPED.to_owned(),
        Rollout::Done if ready => STATE_INITIALIZED.to_owned(),
        Rollout::Done => STATE_WAITING.to_owned(),
    });
    status.available_replicas = Some(observed.servers_ready);
    status.pools = Some(observed.pools.clone());
    status.observed_generation = tenant.metadata.generation;
    set_health(
        &mut status,
        tenant,
        observed,
        (converged, ready),
        &degraded_message,
    );
    let provisioned_condition = set_provisioned(&mut status, tenant, provisioned);
    status.conditions = conditions(
        tenant,
        Conditions {
            ready: (ready, ready_reason, ready_message.clone()),
            degraded: (degraded, degraded_reason, degraded_message),
            invalid: quiet("Valid"),
            // Until every server runs the current template and the cluster answers, the Tenant
            // is still converging; a rollout stopped on a failing server waits for the user.
            reconciling: match rollout {
                Rollout::InProgress {
                    updated,
                    servers,
                    step,
                } => (
                    true,
                    REASON_ROLLING_OUT,
                    format!("{updated} of {servers} servers on the new template; {step}"),
                ),
                _ if converged => quiet("Reconciled"),
                Rollout::Stopped { .. } => quiet(REASON_ROLLOUT_STOPPED),
                Rollout::Done => (
                    true,
                    if servers_ok {
                        ready_reason
                    } else {
                        "ServersNotReady"
                    },
                    ready_message.clone(),
                ),
            },
            stalled: match rollout {
                Rollout::Stopped { .. } => (true, REASON_ROLLOUT_STOPPED, ready_message.clone()),
                _ => quiet("Reconciled"),
            },
            provisioned: provisioned_condition,
        },
    );
    (status, stopped_answering.then_some(ready_message))
}

/// What a stopped rollout says in `Ready`: which server, why, and what to do.
fn rollout_stopped(rollout: &Rollout) -> Option<String> {
    let Rollout::Stopped {
        updated,
        servers,
        server,
        why,
    } = rollout
    else {
        return None;
    };
    Some(format!(
        "server {server} on the new template fails: {why}; the rollout stopped there ({updated} of {servers} servers updated) and the others keep serving on the previous template: fix the change or undo it"
    ))
}

/// `Ready`: every server's pod, and the S3 cluster's own answer where it is asked.
fn readiness(observed: &Observed) -> (bool, &'static str, String) {
    let servers = format!(
        "{} of {} servers ready",
        observed.servers_ready, observed.servers
    );
    match &observed.s3 {
        None if observed.servers_up() => (true, "ServersReady", servers),
        None => (false, "ServersStarting", servers),
        Some(S3Health::Healthy) => (
            true,
            "S3Healthy",
            format!("the S3 cluster answers healthy; {servers}"),
        ),
        Some(S3Health::Unhealthy(why)) => (false, "S3Unhealthy", format!("{why}; {servers}")),
    }
}

/// `Degraded`: once it had been up, a Tenant not fully up again (a Tenant still starting is
/// progressing, not degraded); offline drives degrade it at once, naming their pods.
fn degradation<'a>(
    tenant: &Tenant,
    observed: &Observed,
    (ready, ready_reason, ready_message): (bool, &'a str, &str),
) -> (bool, &'a str, String) {
    let servers_ok = observed.servers_up();
    let drives_offline = observed.storage.as_ref().filter(|s| s.offline > 0);
    let fully = ready && servers_ok && drives_offline.is_none();
    let degraded = (!fully && (was(tenant, CONDITION_READY) || was(tenant, CONDITION_DEGRADED)))
        || drives_offline.is_some();
    let offline_message = |s: &Storage| {
        format!(
            "{} of {} drives offline, on pod(s) {}",
            s.offline,
            s.offline + s.online,
            s.offline_pods.join(", ")
        )
    };
    let (reason, message) = match (degraded, servers_ok, drives_offline) {
        (false, _, _) => ("Reconciled", String::new()),
        // A server that is gone takes its drives with it: which pods, the cluster says.
        (true, false, Some(s)) => (
            "ServersNotReady",
            format!("{ready_message}; {}", offline_message(s)),
        ),
        (true, false, None) => ("ServersNotReady", ready_message.to_owned()),
        (true, true, Some(s)) if ready => ("DrivesOffline", offline_message(s)),
        (true, true, _) => (ready_reason, ready_message.to_owned()),
    };
    (degraded, reason, message)
}

/// `healthStatus` and `healthMessage` in the Go operator's meanings (drives offline or healing is
/// yellow, fewer online than the write quorum is red), and the drive counts and usage.
fn set_health(
    status: &mut TenantStatus,
    tenant: &Tenant,
    observed: &Observed,
    (converged, ready): (bool, bool),
    degraded_message: &str,
) {
    status.health_status = Some(
        match (converged, ready) {
            (true, _) => "green",
            (false, true) => "yellow",
            (false, false) if observed.s3.is_some() && was(tenant, CONDITION_READY) => "red",
            (false, false) => "yellow",
        }
        .to_owned(),
    );
    status.health_message = match &observed.s3 {
        Some(S3Health::Unhealthy(why)) => Some(why.clone()),
        _ => None,
    };
    let Some(storage) = observed.storage.as_ref().filter(|_| ready) else {
        return;
    };
    if storage.offline > 0 || storage.healing > 0 {
        status.health_status = Some("yellow".to_owned());
        status.health_message = Some(if storage.healing > 0 {
            format!("{} drive(s) healing", storage.healing)
        } else {
            degraded_message.to_owned()
        });
    }
    if storage.write_quorum.is_some_and(|q| storage.online < q) {
        status.health_status = Some("red".to_owned());
    }
    status.drives_online = Some(storage.online);
    status.drives_offline = Some(storage.offline);
    status.drives_healing = Some(storage.healing);
    status.write_quorum = storage.write_quorum;
    status.usage = Some(storage.usage.clone());
}

/// `provisionedUsers`/`provisionedBuckets`, and the `Provisioned` condition once provisioning ran.
fn set_provisioned<'a>(
    status: &mut TenantStatus,
    tenant: &Tenant,
    provisioned: Option<&'a Provisioned>,
) -> Option<Cond<'a>> {
    let p = provisioned?;
    status.provisioned_users = (!tenant.spec.users.is_empty()).then_some(p.users);
    status.provisioned_buckets = (!tenant.spec.buckets.is_empty()).then_some(p.buckets);
    Some(match &p.problem {
        None => (
            true,
            CONDITION_PROVISIONED,
            format!(
                "{} user(s) and {} bucket(s) in place",
                tenant.spec.users.len(),
                tenant.spec.buckets.len()
            ),
        ),
        Some((reason, message)) => (false, *reason, message.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::observed::storage_of;
    use crate::s3admin::{Backend, Drive, StorageInfo};

    fn drive(pod: &str, pool: usize, state: &str) -> Drive {
        Drive {
            endpoint: format!("https://{pod}.t-hl.ns.svc.cluster.local:9000/export0"),
            state: state.to_owned(),
            pool_index: pool,
            available_space: 1000,
            used_space: 100,
            ..Drive::default()
        }
    }

    #[test]
    fn usage_is_net_of_parity_and_offline_drives_name_their_pods() {
        let info = StorageInfo {
            drives: vec![
                drive("t-p0-0", 0, "ok"),
                drive("t-p0-1", 0, "offline"),
                drive("t-p0-1", 0, "offline"),
                drive("t-p0-2", 0, "ok"),
            ],
            backend: Backend {
                standard_sc_data: vec![2],
                standard_sc_parities: vec![2],
                standard_sc_parity: 2,
            },
        };
        let s = storage_of(&info, Some(3));
        assert_eq!((s.online, s.offline, s.healing), (2, 2, 0));
        assert_eq!(s.offline_pods, ["t-p0-1"]);
        assert_eq!(s.usage.raw_capacity, Some(4000));
        assert_eq!(s.usage.capacity, Some(2000), "half the drives hold parity");
        assert_eq!(s.usage.usage, Some(200));

        let tenant: Tenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "minio.min.io/v2", "kind": "Tenant",
            "metadata": {"name": "t", "namespace": "ns"},
            "spec": {"pools": [{"name": "p0", "servers": 4, "volumesPerServer": 1}]}
        }))
        .unwrap();
        let observed = Observed {
            pools: Vec::new(),
            servers_ready: 4,
            servers: 4,
            s3: Some(S3Health::Healthy),
            storage: Some(s),
        };
        let (status, _) = status_of(&tenant, &observed, None, &Rollout::Done);
        assert_eq!(
            status.health_status.as_deref(),
            Some("red"),
            "2 online < quorum 3"
        );
        let degraded = |status: &TenantStatus| {
            let c = status
                .conditions
                .iter()
                .find(|c| c.type_ == CONDITION_DEGRADED);
            c.map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
                .unwrap()
        };
        assert_eq!(
            degraded(&status),
            (
                "True".to_owned(),
                "DrivesOffline".to_owned(),
                "2 of 4 drives offline, on pod(s) t-p0-1".to_owned()
            )
        );
        assert_eq!(
            (status.drives_online, status.drives_offline),
            (Some(2), Some(2))
        );

        // The server of those drives gone (its pod not ready): both said, in one message.
        let observed = Observed {
            servers_ready: 3,
            ..observed
        };
        let (status, _) = status_of(&tenant, &observed, None, &Rollout::Done);
        assert_eq!(
            degraded(&status),
            (
                "True".to_owned(),
                "ServersNotReady".to_owned(),
                "the S3 cluster answers healthy; 3 of 4 servers ready; 2 of 4 drives offline, on pod(s) t-p0-1".to_owned()
            )
        );
    }
}
