//! What a reconcile tells the user: `status` (state, conditions, pools), written only when it
//! changes, and events. Every way a reconcile can end has a condition and a `currentState` here, so
//! `kubectl describe tenant` always says why a Tenant is not Ready.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::apply::{FIELD_MANAGER, count_write, hash64};
use super::events::{EventType, Events};
use super::memory::TenantMemory;
use crate::api::status::TenantStatus;
use crate::api::tenant::Tenant;

pub const STATE_INITIALIZED: &str = "Initialized";
pub const STATE_WAITING: &str = "Waiting for Tenant to be healthy";
pub const STATE_PROVISIONING: &str = "Provisioning Hanzo S3 Statefulset";
/// MinIO's words, kept because Argo CD's built-in Tenant health check knows them (as Degraded).
pub const STATE_ANOTHER_TENANT: &str = "Another MinIO Tenant already exists in the namespace";
pub const STATE_INVALID: &str = "Invalid Tenant";
pub const STATE_NO_CONFIGURATION: &str = "Waiting for the configuration Secret";
/// The Go operators' words for a StatefulSet of our name that something else made.
pub const STATE_NOT_OWNED: &str = "Statefulset not controlled by operator";

/// The step of a reconcile that talks to the API; a failure is reported under its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Reading the namespace's Tenants (one per namespace).
    Guard,
    /// Reading the credentials and writing the rendered configuration Secret.
    Configuration,
    /// The TLS Secret signed by the operator CA.
    Certificate,
    ServiceAccount,
    Services,
    StatefulSets,
    /// Reading the StatefulSets and the S3 Service to judge health.
    Health,
    /// Reading the users' Secrets to provision them.
    Provisioning,
}

impl Step {
    /// The condition reason when this step fails.
    pub fn reason(self) -> &'static str {
        match self {
            Step::Guard => "ReadTenantsFailed",
            Step::Configuration => "ConfigurationFailed",
            Step::Certificate => "CertificateFailed",
            Step::ServiceAccount => "ServiceAccountFailed",
            Step::Services => "ServicesFailed",
            Step::StatefulSets => "StatefulSetsFailed",
            Step::Health => "HealthCheckFailed",
            Step::Provisioning => "ProvisioningFailed",
        }
    }

    /// What the step does, for `currentState` and messages.
    pub fn doing(self) -> &'static str {
        match self {
            Step::Guard => "reading the namespace's Tenants",
            Step::Configuration => "provisioning the configuration Secret",
            Step::Certificate => "provisioning the TLS certificate Secret",
            Step::ServiceAccount => "provisioning the ServiceAccount",
            Step::Services => "provisioning the Services",
            Step::StatefulSets => "provisioning the StatefulSets",
            Step::Health => "reading the Tenant's health",
            Step::Provisioning => "reading the users' Secrets",
        }
    }
}

/// A step that failed against the API (or could not build what it applies).
#[derive(Debug, thiserror::Error)]
#[error("{} failed: {source}", .step.doing())]
pub struct StepError {
    pub step: Step,
    #[source]
    pub source: StepFailure,
}

#[derive(Debug, thiserror::Error)]
pub enum StepFailure {
    #[error("{}", api_message(.0))]
    Kube(#[from] kube::Error),
    #[error("certificate: {0}")]
    Cert(#[from] crate::certs::CertError),
    #[error(transparent)]
    NotSynced(#[from] super::caches::NotSynced),
}

/// The API's own message for a refused request (e.g. a quota's), not the client's wrapping.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Extension to tag a fallible API call with the step it belongs to.
pub trait AtStep<T> {
    fn at(self, step: Step) -> Result<T, StepError>;
}

impl<T, E: Into<StepFailure>> AtStep<T> for Result<T, E> {
    fn at(self, step: Step) -> Result<T, StepError> {
        self.map_err(|e| StepError {
            step,
            source: e.into(),
        })
    }
}

/// How a Tenant that cannot progress shows in its conditions (and so to kstatus and Argo CD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// The spec itself is at fault: `Invalid` and `Stalled` are True.
    Invalid,
    /// Something outside the spec that only the user can change (another Tenant owns the
    /// namespace, a StatefulSet of our name is not ours): `Stalled` is True.
    Stalled,
    /// Waiting for something to appear, or a step retried after an error: `Reconciling` is True.
    Retrying,
}

/// A reconcile that cannot go on until something changes (the user's part), reported but not an
/// error: no retry storm, just a condition, an event when asked, and maybe a later look.
#[derive(Clone, Debug)]
pub struct Blocked {
    pub state: &'static str,
    pub reason: &'static str,
    pub message: String,
    pub kind: StopKind,
    /// Publish a Warning event with this reason.
    pub event: bool,
    /// Look again after this long (something outside the Tenant may change without a watch event).
    pub requeue: Option<Duration>,
}

/// Why a reconcile stopped before the end.
#[derive(Debug)]
pub enum Stop {
    Blocked(Blocked),
    Failed(StepError),
}

impl From<StepError> for Stop {
    fn from(e: StepError) -> Self {
        Stop::Failed(e)
    }
}

impl From<Blocked> for Stop {
    fn from(b: Blocked) -> Self {
        Stop::Blocked(b)
    }
}

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
        ("Ready", c.ready),
        ("Degraded", c.degraded),
        ("Invalid", c.invalid),
        ("Reconciling", c.reconciling),
        ("Stalled", c.stalled),
    ]
    .into_iter()
    .map(|(type_, (ok, reason, message))| {
        condition(type_, ok, reason, message, generation, &previous)
    })
    .chain(match c.provisioned {
        Some((ok, reason, message)) => Some(condition(
            "Provisioned",
            ok,
            reason,
            message,
            generation,
            &previous,
        )),
        None => previous.iter().find(|p| p.type_ == "Provisioned").cloned(),
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
    let degraded = stalled || was(tenant, "Ready") || was(tenant, "Degraded");
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
    count_write();
    memory.status_written(uid, version, hash);
    Ok(())
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
        Ok(()) => count_write(),
        Err(error) => tracing::debug!(%error, "cannot publish an event"),
    }
}
