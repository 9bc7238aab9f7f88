//! The controller: the watches of Tenants and of what they own, whose caches the phases read, and
//! the loop that runs a pass ([`super::pass`]) for each Tenant they wake.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::apply::{AppliedObjects, FIELD_MANAGER};
use super::caches::{CachedPod, CachedService, CachedStatefulSet, Caches, Stores, slim};
use super::context::{Context, Settings};
use super::events::Events;
use super::memory::TenantMemory;
use super::pass::{error_policy, reconcile};
use crate::api::names::TENANT_LABEL;
use crate::api::tenant::Tenant;

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
    crate::metrics::set_leading(true);
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
    crate::metrics::set_leading(false);
}

/// The controller for one namespace, or for all (`None`), with its own watches and their caches.
async fn controller(
    client: kube::Client,
    namespace: Option<String>,
    settings: Settings,
    instance: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (client, namespace) = (&client, namespace.as_deref());
    let (tenants, tenants_writer) = reflector::store::<Tenant>();
    let memory = Arc::new(TenantMemory::default());
    let forget = forget_deleted(
        memory.clone(),
        tenants.clone(),
        namespace.map(str::to_owned),
    );
    let controller = Controller::for_stream(
        watcher(api::<Tenant>(client, namespace), watch_config())
            .default_backoff()
            .modify(|t: &mut Tenant| t.metadata.managed_fields = None)
            .reflect(tenants_writer)
            .inspect_ok(forget)
            .applied_objects(),
        tenants.clone(),
    )
    .with_config(controller::Config::default().concurrency(settings.concurrency))
    .trigger_backoff(NoPause)
    // A rotation step of the operator CA changes what every TLS tenant's Secret and pods hold.
    .reconcile_all_on(settings.ca.changes());
    let (controller, caches) = watch_owned(controller, client, namespace, tenants);
    let context = Arc::new(Context {
        events: Events::new(client.clone(), FIELD_MANAGER, instance),
        client: client.clone(),
        settings,
        applied: AppliedObjects::default(),
        memory,
        caches,
    });
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile round ended with an error");
            }
        })
        .await;
}

/// Adds the watches of what Tenants own (and of the Secrets they name) to `controller`; each keeps
/// a store of what it saw, for the phases to read.
fn watch_owned(
    controller: Controller<Tenant>,
    client: &kube::Client,
    namespace: Option<&str>,
    tenants: Store<Tenant>,
) -> (Controller<Tenant>, Caches) {
    // Only objects carrying the tenant label are ours: the rest of the cluster is never cached.
    let ours = || watch_config().labels(TENANT_LABEL);
    let (statefulsets, statefulsets_writer) = reflector::store();
    let (services, services_writer) = reflector::store();
    let (own_secrets, own_secrets_writer) = reflector::store();
    let (secret_metadata, secret_metadata_writer) = reflector::store();
    let (service_accounts, service_accounts_writer) = reflector::store();
    let (pods, pods_writer) = reflector::store();
    let (budgets, budgets_writer) = reflector::store();
    let caches = Caches::new(
        tenants.clone(),
        Stores {
            statefulsets,
            services,
            own_secrets,
            secret_metadata,
            service_accounts,
            pods,
            disruption_budgets: budgets,
        },
    );
    let controller = controller
        // The users' configuration, user and certificate Secrets are not ours (no ownerReference): watch every
        // Secret's metadata (never its data) and wake the Tenants of its namespace that name it,
        // so a Secret created, rotated or deleted is noticed at once.
        .watches_stream(
            cached(
                api::<PartialObjectMeta<Secret>>(client, namespace),
                watch_config(),
                slim::partial,
                secret_metadata_writer,
            ),
            move |secret| tenants_naming(&tenants, &secret),
        )
        .owns_stream(cached(
            api::<CachedStatefulSet>(client, namespace),
            ours(),
            slim::statefulset,
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
        .owns_stream(cached(
            api::<PartialObjectMeta<PodDisruptionBudget>>(client, namespace),
            ours(),
            slim::partial,
            budgets_writer,
        ))
        // The servers' pods belong to the StatefulSets, not to the Tenant: each wakes the Tenant
        // its label names (a rollout moves on when a restarted server is back, or stops when it
        // crashes).
        .watches_stream(
            cached(
                api::<CachedPod>(client, namespace),
                ours(),
                slim::pod,
                pods_writer,
            ),
            |pod| tenant_of_pod(&pod),
        );
    (controller, caches)
}

/// The Tenant whose server `pod` is (its tenant label), if any.
fn tenant_of_pod(pod: &CachedPod) -> Option<ObjectRef<Tenant>> {
    let tenant = pod.metadata.labels.as_ref()?.get(TENANT_LABEL)?;
    Some(ObjectRef::new(tenant).within(pod.metadata.namespace.as_deref()?))
}

/// The Tenants that name `secret` as their configuration or as a user's.
fn tenants_naming(
    tenants: &Store<Tenant>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<Tenant>> {
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
                    || t.spec.users.iter().any(|u| u.name == name)
                    || super::certs_dir::referenced(t)
                        .iter()
                        .any(|(_, secret)| *secret == name))
        })
        .map(|t| ObjectRef::from_obj(&*t))
        .collect()
}

/// Forgets what `memory` holds of a Tenant once its watch reports it deleted.
fn forget_deleted(
    memory: Arc<TenantMemory>,
    tenants: Store<Tenant>,
    scope: Option<String>,
) -> impl FnMut(&watcher::Event<Tenant>) {
    move |event| match event {
        watcher::Event::Delete(tenant) => {
            memory.forget(&tenant.uid().unwrap_or_default());
            crate::metrics::forget_tenant(tenant.namespace(), tenant.name());
        }
        // A relist reports no deletions one by one: keep only the Tenants it found.
        watcher::Event::InitDone => {
            let state = tenants.state();
            let alive: HashSet<String> = state.iter().filter_map(|t| t.uid()).collect();
            memory.keep_only(&alive);
            let named: HashSet<(String, String)> = state
                .iter()
                .map(|t| (t.namespace().to_owned(), t.name().to_owned()))
                .collect();
            // Another namespace's controller keeps its own.
            crate::metrics::keep_tenants(|namespace, name| {
                scope.as_deref().is_some_and(|s| s != namespace)
                    || named.contains(&(namespace.to_owned(), name.to_owned()))
            });
        }
        _ => {}
    }
}

/// How long the apiserver keeps one watch open before the watcher opens the next: below the
/// client's read timeout (`cli::run`), so a quiet watch is renewed, never timed out, and a watch
/// nobody answers is given up within a minute and a half, at the cost of one request a minute
/// per watch.
pub const WATCH_TIMEOUT_SECS: u32 = 55;

pub fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}

/// The controller's backoff over all its watches together: none. Each watch backs off on its own
/// (`default_backoff`); kube's default here pauses every watch whenever any one fails, longer each
/// time. After an apiserver restart each of the nine watches fails once (its resourceVersion is
/// older than the new watch cache), and the pauses added up to minutes in which no Tenant event
/// reached the reconciler (faults test: 7 of 24 Tenants Ready after 240 s).
struct NoPause;

impl Iterator for NoPause {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        Some(std::time::Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoPause {
    fn reset(&mut self) {}
}

/// The API of kind `K` in `namespace`, or in every namespace.
pub(crate) fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A watch whose objects are slimmed and kept in `writer`'s store on their way to the controller,
/// which every one of them (deleted ones too) wakes.
pub(crate) fn cached<K>(
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
