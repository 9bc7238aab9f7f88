//! The controller: watches Tenants and what they own, and reconciles each Tenant in named phases
//!
//!   guard → configuration → workloads → health → provisioning → status
//!
//! Each phase lives in a file of its own; `reconcile` only sequences them and turns how they end
//! into status, events and the next look. A phase ends in one of three ways: it succeeds, it is
//! blocked by something the user must change (a condition and maybe an event, no retry storm), or
//! a step fails against the API (a condition naming the step with the API's message, one event
//! with a count, and a retry with backoff).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::apply::{AppliedObjects, FIELD_MANAGER};
use super::caches::{CachedService, CachedStatefulSet, Caches, slim};
use super::configuration::apply_configuration;
use super::events::{EventType, Events};
use super::guard;
use super::health::{self, ReadyWhen};
use super::memory::TenantMemory;
use super::status::{self, StepError, Stop};
use super::workloads::apply_workloads;
use super::{decommission, provisioning};
use crate::admission::{self, DefaultsConfig};
use crate::api::names::TENANT_LABEL;
use crate::api::tenant::Tenant;
use crate::certs::Ca;

/// How the reconciler is set up.
#[derive(Clone)]
pub struct Settings {
    pub defaults: DefaultsConfig,
    /// Signs tenants' TLS certificates (requestAutoCert) and is trusted by the health probe.
    pub ca: Arc<Ca>,
    pub ready_when: ReadyWhen,
    /// Reconcile Tenants in these namespaces only (all when empty).
    pub namespaces: Vec<String>,
    /// Reconciles in flight at once. Unbounded, a thousand Tenants created together are a thousand
    /// passes each holding its desired objects and answers: that burst, not the caches, set the
    /// operator's peak memory.
    pub concurrency: u16,
}

/// Reconciles in flight at once by default: enough to keep the apiserver busy, few enough that a
/// burst of new Tenants does not multiply the operator's memory.
pub const DEFAULT_CONCURRENCY: u16 = 16;

impl Settings {
    pub fn new(defaults: DefaultsConfig, ca: Arc<Ca>, ready_when: ReadyWhen) -> Settings {
        Settings {
            defaults,
            ca,
            ready_when,
            namespaces: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    pub events: Events,
    pub(super) applied: AppliedObjects,
    /// Users and buckets already provisioned, per Tenant.
    pub(super) provisioned: Arc<provisioning::Memory>,
    /// Failures in a row, since when forming, the last status written: per Tenant, forgotten when
    /// it is deleted.
    pub(super) memory: Arc<TenantMemory>,
    /// What the watches hold; the phases read here rather than from the apiserver.
    pub(super) caches: Caches,
}

/// Reconcile passes started (Tenants being deleted apart), for benchmarks and tests.
static PASSES: AtomicU64 = AtomicU64::new(0);

pub fn passes() -> u64 {
    PASSES.load(Ordering::Relaxed)
}

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

/// Runs the controller until `shutdown` resolves. One Tenant's errors requeue that Tenant only.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Events name the pod that published them.
    let instance = std::env::var("POD_NAME").ok();
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let controllers = scopes.into_iter().map(|scope| {
        let mut stopped = stopped.clone();
        let until_stopped = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        controller(
            client.clone(),
            scope,
            settings.clone(),
            instance.clone(),
            until_stopped,
        )
    });
    let all = futures::future::join_all(controllers);
    tokio::pin!(all);
    tokio::select! {
        _ = &mut all => {}
        () = shutdown => {
            let _ = stop.send(true);
            all.await;
        }
    }
}

/// The controller for one namespace, or for all (`None`), with its own watches and their caches.
async fn controller(
    client: kube::Client,
    namespace: Option<String>,
    settings: Settings,
    instance: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let (client, namespace) = (&client, namespace.as_deref());
    let (tenants, tenants_writer) = reflector::store::<Tenant>();
    let memory = Arc::new(TenantMemory::default());
    let provisioned = Arc::new(provisioning::Memory::default());
    let forget = {
        let (memory, provisioned, tenants) = (memory.clone(), provisioned.clone(), tenants.clone());
        move |event: &watcher::Event<Tenant>| match event {
            watcher::Event::Delete(tenant) => {
                let uid = tenant.uid().unwrap_or_default();
                memory.forget(&uid);
                provisioned.forget(&uid);
            }
            // A relist reports no deletions one by one: keep only the Tenants it found.
            watcher::Event::InitDone => {
                let alive: HashSet<String> =
                    tenants.state().iter().filter_map(|t| t.uid()).collect();
                memory.keep_only(&alive);
                provisioned.keep_only(&alive);
            }
            _ => {}
        }
    };
    let controller = Controller::for_stream(
        watcher(api::<Tenant>(client, namespace), watcher::Config::default())
            .default_backoff()
            .modify(|t: &mut Tenant| t.metadata.managed_fields = None)
            .reflect(tenants_writer)
            .inspect_ok(forget)
            .applied_objects(),
        tenants.clone(),
    )
    .with_config(controller::Config::default().concurrency(settings.concurrency));
    // Only objects carrying the tenant label are ours: the rest of the cluster is never cached.
    let ours = || watcher::Config::default().labels(TENANT_LABEL);
    let (statefulsets, statefulsets_writer) = reflector::store();
    let (services, services_writer) = reflector::store();
    let (own_secrets, own_secrets_writer) = reflector::store();
    let (secret_metadata, secret_metadata_writer) = reflector::store();
    let (service_accounts, service_accounts_writer) = reflector::store();
    let context = Arc::new(Context {
        events: Events::new(client.clone(), FIELD_MANAGER, instance),
        client: client.clone(),
        settings,
        applied: AppliedObjects::default(),
        provisioned,
        memory,
        caches: Caches::new(
            tenants.clone(),
            statefulsets,
            services,
            own_secrets,
            secret_metadata,
            service_accounts,
        ),
    });
    controller
        // The users' configuration and user Secrets are not ours (no ownerReference): watch every
        // Secret's metadata (never its data) and wake the Tenants of its namespace that name it,
        // so a Secret created, rotated or deleted is noticed at once.
        .watches_stream(
            cached(
                api::<PartialObjectMeta<Secret>>(client, namespace),
                watcher::Config::default(),
                slim::partial,
                secret_metadata_writer,
            ),
            move |secret| {
                let (ns, name) = (secret.namespace(), secret.name_any());
                tenants
                    .state()
                    .into_iter()
                    .filter(|t| {
                        t.metadata.namespace == ns
                            && (t
                                .spec
                                .configuration
                                .as_ref()
                                .is_some_and(|c| c.name == name)
                                || t.spec.users.iter().any(|u| u.name == name))
                    })
                    .map(|t| ObjectRef::from_obj(&*t))
                    .collect::<Vec<_>>()
            },
        )
        .owns_stream(cached(
            api::<CachedStatefulSet>(client, namespace),
            ours(),
            slim::cached,
            statefulsets_writer,
        ))
        .owns_stream(cached(
            api::<CachedService>(client, namespace),
            ours(),
            slim::cached,
            services_writer,
        ))
        .owns_stream(cached(
            api::<Secret>(client, namespace),
            ours(),
            slim::own_secret,
            own_secrets_writer,
        ))
        .owns_stream(cached(
            api::<PartialObjectMeta<ServiceAccount>>(client, namespace),
            ours(),
            slim::partial,
            service_accounts_writer,
        ))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile round ended with an error");
            }
        })
        .await;
}

/// A watch whose objects are slimmed and kept in `writer`'s store on their way to the controller,
/// which every one of them (deleted ones too) wakes.
fn cached<K>(
    api: Api<K>,
    config: watcher::Config,
    slim: fn(&mut K),
    writer: reflector::store::Writer<K>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default + Send + Sync,
{
    watcher(api, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .touched_objects()
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

fn error_policy(tenant: Arc<Tenant>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.memory.failed(&tenant.uid().unwrap_or_default());
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
    PASSES.fetch_add(1, Ordering::Relaxed);
    let tenant = admission::defaulted(&stored, &ctx.settings.defaults);
    let outcome = async {
        ctx.caches.synced().await?;
        guard::check(&ctx, &stored, &tenant).await?;
        let configured = apply_configuration(&ctx, &tenant).await?;
        let writes = configured.writes
            + apply_workloads(&ctx, &tenant, &configured.config_hash).await?
            + decommission::prune_retired(&ctx, &stored).await?;
        if writes > 0 {
            tracing::info!(
                namespace = tenant.namespace(),
                name = tenant.name(),
                writes,
                "applied tenant objects"
            );
            status::publish(
                &ctx.events,
                &stored,
                EventType::Normal,
                "Applied",
                format!("{writes} object(s) created or updated"),
            )
            .await;
        }
        let (mut observed, admin) =
            health::observe(&ctx, &tenant, configured.admin.as_ref()).await?;
        let mut provisioned = None;
        if let Some(admin) = admin {
            provisioned =
                Some(provisioning::provision(&ctx, &tenant, &admin, configured.ldap).await?);
            if let Some(progress) = decommission::drive(&ctx, &tenant, &admin).await {
                for pool in observed.pools.iter_mut() {
                    if pool.ss_name == progress.statefulset {
                        pool.state = progress.state.to_owned();
                    }
                }
            }
        }
        Ok::<_, Stop>((observed, provisioned))
    }
    .await;
    match outcome {
        Ok((observed, provisioned)) => {
            clear_failures(&ctx, &stored);
            if let Some(p) = provisioned.as_ref().filter(|p| !p.done_now.is_empty()) {
                status::publish(
                    &ctx.events,
                    &stored,
                    EventType::Normal,
                    "Provisioned",
                    format!("provisioned {}", p.done_now.join(", ")),
                )
                .await;
            }
            if let Some((reason, message)) = provisioned.as_ref().and_then(|p| p.problem.clone()) {
                status::publish(&ctx.events, &stored, EventType::Warning, reason, message).await;
            }
            let servers_up = observed.servers_up();
            let (status, stopped_answering) =
                health::status_of(&stored, &observed, provisioned.as_ref());
            if let Some(why) = stopped_answering {
                status::publish(&ctx.events, &stored, EventType::Warning, "S3Unhealthy", why).await;
            }
            let ready_condition = status.conditions.iter().find(|c| c.type_ == "Ready");
            let ready = ready_condition.is_some_and(|c| c.status == "True");
            let why = ready_condition
                .map(|c| c.message.clone())
                .unwrap_or_default();
            status::write(&ctx.client, &ctx.memory, &stored, status)
                .await
                .map_err(Error::Status)?;
            // Owned StatefulSets wake us when replicas become ready; the S3 cluster's health
            // announces nothing, so it is looked at again on a period.
            let forming_for = forming_for(&ctx, &stored, !ready && servers_up);
            let next = match (ready, ctx.settings.ready_when) {
                (false, _) => not_ready_period(forming_for),
                (true, ReadyWhen::S3Healthy) => HEALTH_PERIOD,
                (true, ReadyWhen::PodsReady) => MAX_RETRY,
            };
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
        Err(Stop::Blocked(blocked)) => {
            clear_failures(&ctx, &stored);
            if blocked.event {
                status::publish(
                    &ctx.events,
                    &stored,
                    EventType::Warning,
                    blocked.reason,
                    blocked.message.clone(),
                )
                .await;
            }
            status::write(
                &ctx.client,
                &ctx.memory,
                &stored,
                status::stopped_status(
                    &stored,
                    blocked.state,
                    blocked.reason,
                    blocked.message,
                    blocked.kind,
                ),
            )
            .await
            .map_err(Error::Status)?;
            Ok(blocked
                .requeue
                .map_or_else(Action::await_change, Action::requeue))
        }
        Err(Stop::Failed(failed)) => {
            let reason = failed.step.reason();
            let message = failed.to_string();
            status::publish(
                &ctx.events,
                &stored,
                EventType::Warning,
                reason,
                message.clone(),
            )
            .await;
            let state = format!("Failed {}", failed.step.doing());
            // Best effort: if the status cannot be written either, the retry will try again.
            if let Err(error) = status::write(
                &ctx.client,
                &ctx.memory,
                &stored,
                status::stopped_status(
                    &stored,
                    &state,
                    reason,
                    message,
                    status::StopKind::Retrying,
                ),
            )
            .await
            {
                tracing::warn!(namespace = stored.namespace(), name = stored.name(), %error, "cannot report the failure on the Tenant");
            }
            Err(Error::Step(failed))
        }
    }
}

/// How long `tenant` has been forming, when it is; a Tenant that is not is forgotten.
fn forming_for(ctx: &Context, tenant: &Tenant, forming: bool) -> Option<Duration> {
    ctx.memory
        .forming_for(&tenant.uid().unwrap_or_default(), forming)
}

fn clear_failures(ctx: &Context, tenant: &Tenant) {
    ctx.memory.succeeded(&tenant.uid().unwrap_or_default());
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
