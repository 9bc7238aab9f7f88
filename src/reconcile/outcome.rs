//! How a reconcile pass can end before its last phase, and how a failure is named: a step that
//! failed against the API (retried with backoff), or a stop the user must lift (reported, not
//! retried in a storm). Every phase returns these; nothing here knows the phases.

use std::time::Duration;

use crate::api::tenant::Tenant;
use crate::s3admin::AdminError;

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
    DisruptionBudgets,
    /// Replacing a server whose pod runs an older template.
    Rollout,
    /// Reading the StatefulSets and the S3 Service to judge health.
    Health,
    /// Reading the users' Secrets to provision them.
    Provisioning,
    /// The metrics token Secret and the ServiceMonitors.
    Monitoring,
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
            Step::DisruptionBudgets => "DisruptionBudgetsFailed",
            Step::Rollout => "RolloutFailed",
            Step::Health => "HealthCheckFailed",
            Step::Provisioning => "ProvisioningFailed",
            Step::Monitoring => "MonitoringFailed",
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
            Step::DisruptionBudgets => "provisioning the PodDisruptionBudgets",
            Step::Rollout => "restarting a server on the new template",
            Step::Health => "reading the Tenant's health",
            Step::Provisioning => "reading the users' Secrets",
            Step::Monitoring => "provisioning the metrics token and ServiceMonitors",
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
    #[error("metrics token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    #[error(transparent)]
    NotSynced(#[from] NotSynced),
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

/// The watches have not delivered their first listing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotSynced(pub String);

/// An admin call that failed on a pass that goes on without it (the next pass asks again).
pub fn log_admin_error(tenant: &Tenant, call: &str, error: &AdminError) {
    tracing::warn!(
        namespace = tenant.namespace(),
        name = tenant.name(),
        call,
        %error,
        "S3 admin call failed"
    );
}
