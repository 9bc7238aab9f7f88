//! What every phase of a pass is given: the settings the operator was started with, the API client,
//! the caches, what is remembered between passes, and where events go. Built by the controller;
//! nothing here knows the phases.

use std::sync::Arc;
use std::time::Duration;

use super::apply::AppliedObjects;
use super::caches::Caches;
use super::events::Events;
use super::memory::TenantMemory;
use crate::admission::DefaultsConfig;
use crate::certs::Ca;
use crate::certs::store::{SharedCa, StoredCa};

/// What `Ready` requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadyWhen {
    /// Every server's pod is ready and the S3 cluster answers healthy on its health endpoint
    /// (before a Tenant is called Ready: every server, each asked by pod IP).
    #[default]
    S3Healthy,
    /// Every server's pod is ready; the S3 cluster is not asked. For clusters whose nodes run no
    /// containers (KWOK fake nodes), where no server could answer.
    PodsReady,
}

/// How the reconciler is set up.
#[derive(Clone)]
pub struct Settings {
    pub defaults: DefaultsConfig,
    /// Signs tenants' TLS certificates (requestAutoCert) and is trusted by the health probe; the
    /// CA as the store last held it (rotations included).
    pub ca: SharedCa,
    pub ready_when: ReadyWhen,
    /// Reconcile Tenants in these namespaces only (all when empty).
    pub namespaces: Vec<String>,
    /// Reconciles in flight at once. Unbounded, a thousand Tenants created together are a thousand
    /// passes each holding its desired objects and answers: that burst, not the caches, set the
    /// operator's peak memory.
    pub concurrency: u16,
    /// How long the tenants' certificates the operator CA signs are valid; renewed when a third
    /// of it is left.
    pub tenant_certificate_lifetime: Duration,
    /// How long the metrics tokens of Tenants with `prometheusOperator` are valid; made again
    /// when a third of it is left.
    pub metrics_token_lifetime: Duration,
    /// Restart servers in place (the S3 server's own service restart) for a change of their
    /// configuration file alone, instead of replacing their pods. Off by default: on the real
    /// node, 2 of 7 runs under load lost acknowledged objects after such a restart (5 read back
    /// as NoSuchKey after a variable, 62 not read back after a root-password rotation), which
    /// replacing the pods never did (docs/operations.md).
    pub restart_in_place: bool,
}

/// Reconciles in flight at once by default: enough to keep the apiserver busy, few enough that a
/// burst of new Tenants does not multiply the operator's memory.
pub const DEFAULT_CONCURRENCY: u16 = 16;

impl Settings {
    /// Settings with a CA that is never rotated.
    pub fn new(defaults: DefaultsConfig, ca: Arc<Ca>, ready_when: ReadyWhen) -> Settings {
        Settings::following(defaults, SharedCa::fixed(StoredCa::single(ca)), ready_when)
    }

    /// Settings that follow the CA as `ca` changes.
    pub fn following(defaults: DefaultsConfig, ca: SharedCa, ready_when: ReadyWhen) -> Settings {
        Settings {
            defaults,
            ca,
            ready_when,
            namespaces: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            tenant_certificate_lifetime: crate::certs::SERVING_VALIDITY,
            metrics_token_lifetime: super::scrape::DEFAULT_TOKEN_LIFETIME,
            restart_in_place: false,
        }
    }
}

pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    pub events: Events,
    pub(super) applied: AppliedObjects,
    /// Failures in a row, since when forming, the last status written, the users and buckets
    /// provisioned: per Tenant, forgotten when it is deleted.
    pub(super) memory: Arc<TenantMemory>,
    /// What the watches hold; the phases read here rather than from the apiserver.
    pub(super) caches: Caches,
}
