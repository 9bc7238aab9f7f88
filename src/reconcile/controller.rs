//! The controller: watches Tenants and what they own, applies the desired objects by server-side
//! apply, and reports status, conditions and events. It trusts the admission core, but re-checks
//! every stored Tenant with it (one may have been written while the webhook was off).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::desired::{self, DesiredObjects};
use crate::admission::{self, DefaultsConfig};
use crate::api::names::{configuration_secret_name, tls_secret_name};
use crate::api::status::{PoolStatus, TenantStatus};
use crate::api::tenant::Tenant;
use crate::certs::Ca;

pub const FIELD_MANAGER: &str = "hanzo-s3-operator";

/// API writes made by the reconciler (applies and status patches), for benchmarks and metrics.
static API_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn api_writes() -> u64 {
    API_WRITES.load(std::sync::atomic::Ordering::Relaxed)
}

fn count_write() {
    API_WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

pub const STATE_INITIALIZED: &str = "Initialized";
pub const STATE_WAITING: &str = "Waiting for Tenant to be healthy";
pub const STATE_PROVISIONING: &str = "Provisioning Hanzo S3 Statefulset";
pub const STATE_ANOTHER_TENANT: &str = "Another Hanzo S3 Tenant already exists in the namespace";
pub const STATE_INVALID: &str = "Invalid Tenant";
pub const STATE_NO_CONFIGURATION: &str = "Waiting for the configuration Secret";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot serialize {0}: {1}")]
    Serialize(&'static str, serde_json::Error),
    #[error("certificate: {0}")]
    Cert(#[from] crate::certs::CertError),
}

pub struct Context {
    pub client: kube::Client,
    /// For each object applied: the hash of what was applied and the resourceVersion it then had.
    /// While the live object still has that resourceVersion nothing touched it, so an unchanged
    /// Tenant causes no request at all; anyone's edit bumps it, and the next apply restores it.
    applied: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    pub defaults: DefaultsConfig,
    pub recorder: Recorder,
    /// Signs tenants' TLS certificates (requestAutoCert).
    pub ca: Arc<Ca>,
}

/// Runs the controller until `shutdown` resolves. One Tenant's errors requeue that Tenant only.
pub async fn run(
    client: kube::Client,
    defaults: DefaultsConfig,
    ca: Arc<Ca>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    run_in(client, defaults, ca, Vec::new(), shutdown).await;
}

/// Like [`run`], limited to `namespaces` (all when empty): with a list, the operator needs no
/// cluster-wide read access to Secrets, only Roles in those namespaces.
pub async fn run_in(
    client: kube::Client,
    defaults: DefaultsConfig,
    ca: Arc<Ca>,
    namespaces: Vec<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let reporter = Reporter {
        controller: FIELD_MANAGER.to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        applied: Default::default(),
        defaults,
        ca,
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let controllers = scopes.into_iter().map(|scope| {
        let mut stopped = stopped.clone();
        let until_stopped = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        controller(client.clone(), scope, context.clone(), until_stopped)
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

/// The controller for one namespace, or for all (`None`).
async fn controller(
    client: kube::Client,
    namespace: Option<String>,
    context: Arc<Context>,
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
    Controller::new(api::<Tenant>(client, namespace), watcher::Config::default())
        .owns(
            api::<StatefulSet>(client, namespace),
            watcher::Config::default(),
        )
        .owns(
            api::<Service>(client, namespace),
            watcher::Config::default(),
        )
        .owns(
            api::<Secret>(client, namespace),
            watcher::Config::default().labels(crate::api::names::TENANT_LABEL),
        )
        .owns(
            api::<ServiceAccount>(client, namespace),
            watcher::Config::default(),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile round ended with an error");
            }
        })
        .await;
}

fn error_policy(tenant: Arc<Tenant>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(namespace = tenant.namespace(), name = tenant.name(), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(15))
}

fn hash_of(value: &impl Serialize) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(value)
        .unwrap_or_default()
        .hash(&mut h);
    format!("{:016x}", h.finish())
}

async fn publish(ctx: &Context, tenant: &Tenant, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &tenant.object_ref(&())).await {
        tracing::debug!(%error, "cannot publish an event");
    }
}

/// Applies `object` unless the live object is exactly what we applied last (same desired hash,
/// untouched resourceVersion). Returns whether it wrote.
async fn apply<K>(ctx: &Context, api: &Api<K>, object: K) -> Result<bool, Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let key = format!(
        "{}/{}/{name}",
        K::kind(&Default::default()),
        object.meta().namespace.clone().unwrap_or_default()
    );
    let hash = hash_of(&object);
    let live_version = api
        .get_metadata_opt(&name)
        .await?
        .and_then(|m| m.metadata.resource_version);
    let remembered = ctx.applied.lock().ok().and_then(|m| m.get(&key).cloned());
    if let (Some(live), Some((applied_hash, applied_version))) = (&live_version, &remembered)
        && *applied_hash == hash
        && applied_version == live
    {
        return Ok(false);
    }
    let mut value = serde_json::to_value(&object).map_err(|e| Error::Serialize("an object", e))?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            json!(K::api_version(&Default::default())),
        );
        map.insert("kind".into(), json!(K::kind(&Default::default())));
    }
    let written = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await?;
    let new_version = written.meta().resource_version.clone().unwrap_or_default();
    // An apply that changed nothing leaves the resourceVersion alone: no write happened.
    let wrote = live_version.as_deref() != Some(new_version.as_str());
    if wrote {
        count_write();
    }
    if let Ok(mut m) = ctx.applied.lock() {
        m.insert(key, (hash, new_version));
    }
    Ok(wrote)
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let status = if ok { "True" } else { "False" };
    // The transition time moves only when the status does.
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

async fn write_status(ctx: &Context, tenant: &Tenant, status: TenantStatus) -> Result<(), Error> {
    let current = tenant.status.clone().unwrap_or_default();
    let comparable = |s: &TenantStatus| {
        let mut s = s.clone();
        s.conditions
            .iter_mut()
            .for_each(|c| c.last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        s
    };
    if comparable(&current) == comparable(&status) {
        return Ok(());
    }
    let api: Api<Tenant> = Api::namespaced(ctx.client.clone(), tenant.namespace());
    let patch = json!({"apiVersion": "minio.min.io/v2", "kind": "Tenant", "status": status});
    api.patch_status(
        tenant.name(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    count_write();
    Ok(())
}

fn blocked_status(
    tenant: &Tenant,
    state: &str,
    reason: &str,
    message: String,
    invalid: bool,
) -> TenantStatus {
    let previous = tenant
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = tenant.metadata.generation;
    let mut status = tenant.status.clone().unwrap_or_default();
    status.current_state = Some(state.to_owned());
    status.observed_generation = generation;
    status.conditions = vec![
        condition(
            "Ready",
            false,
            reason,
            message.clone(),
            generation,
            &previous,
        ),
        condition(
            "Degraded",
            true,
            reason,
            message.clone(),
            generation,
            &previous,
        ),
        condition(
            "Invalid",
            invalid,
            if invalid { reason } else { "Valid" },
            if invalid { message } else { String::new() },
            generation,
            &previous,
        ),
    ];
    status
}

pub async fn reconcile(stored: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (ns, name) = (stored.namespace().to_owned(), stored.name().to_owned());
    if stored.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the Tenant (ownerReferences); claims stay, by retention policy.
        return Ok(Action::await_change());
    }
    let tenant = admission::defaulted(&stored, &ctx.defaults);
    let verdict = admission::review(None, &tenant, &ctx.defaults);
    if let Some(message) = verdict.message(&name) {
        publish(
            &ctx,
            &stored,
            EventType::Warning,
            "Invalid",
            message.clone(),
        )
        .await;
        write_status(
            &ctx,
            &stored,
            blocked_status(&stored, STATE_INVALID, "Invalid", message, true),
        )
        .await?;
        return Ok(Action::await_change());
    }

    // One Tenant per namespace (its S3 Service is named `minio`): the oldest one wins.
    let others = Api::<Tenant>::namespaced(ctx.client.clone(), &ns)
        .list_metadata(&ListParams::default())
        .await?;
    let created = |m: &ObjectMeta| m.creation_timestamp.clone().map(|t| t.0);
    if let Some(older) = others.items.iter().find(|o| {
        o.metadata.name.as_deref() != Some(&name)
            && created(&o.metadata) < created(&stored.metadata)
    }) {
        let message = format!(
            "Tenant {:?} already owns this namespace's S3 Service `minio`",
            older.name_any()
        );
        write_status(
            &ctx,
            &stored,
            blocked_status(
                &stored,
                STATE_ANOTHER_TENANT,
                "AnotherTenant",
                message,
                false,
            ),
        )
        .await?;
        return Ok(Action::await_change());
    }

    // The user's credentials, rendered into the Secret the pods mount.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let source = tenant
        .spec
        .configuration
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let Some(user_secret) = secrets.get_opt(&source).await? else {
        let message = format!("configuration Secret {source:?} does not exist yet");
        write_status(
            &ctx,
            &stored,
            blocked_status(
                &stored,
                STATE_NO_CONFIGURATION,
                "ConfigurationMissing",
                message,
                false,
            ),
        )
        .await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let config_env = user_secret
        .data
        .as_ref()
        .and_then(|d| d.get("config.env"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default();
    let rendered = desired::render_config_env(&desired::parse_config_env(&config_env));
    let config_hash = hash_of(&rendered);
    let owner = desired::owner_reference(&tenant);
    let labels = desired::tenant_pod_labels(&tenant);
    let config_secret = Secret {
        metadata: ObjectMeta {
            name: Some(configuration_secret_name(&tenant)),
            namespace: Some(ns.clone()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            "config.env".to_owned(),
            ByteString(rendered.into_bytes()),
        )])),
        ..Secret::default()
    };

    let mut writes = 0usize;
    let DesiredObjects {
        services,
        service_account,
        statefulsets,
    } = desired::desired(&tenant, &ctx.defaults.cluster_domain, &config_hash);
    writes += usize::from(
        apply(
            &ctx,
            &Api::<ServiceAccount>::namespaced(ctx.client.clone(), &ns),
            service_account,
        )
        .await?,
    );
    writes += usize::from(apply(&ctx, &secrets, config_secret).await?);
    if tenant.spec.request_auto_cert.unwrap_or(true)
        && secrets
            .get_metadata_opt(&tls_secret_name(&tenant))
            .await?
            .is_none()
    {
        writes += usize::from(apply(&ctx, &secrets, tls_secret(&tenant, &ctx)?).await?);
    }
    let service_api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    for service in services {
        writes += usize::from(apply(&ctx, &service_api, service).await?);
    }
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    for sts in statefulsets {
        let sts_name = sts.metadata.name.clone().unwrap_or_default();
        // Never take over a StatefulSet someone else made under our name.
        if let Some(live) = sts_api.get_metadata_opt(&sts_name).await? {
            let ours = live
                .metadata
                .owner_references
                .unwrap_or_default()
                .iter()
                .any(|o| o.uid == owner.uid);
            if !ours {
                let message = format!(
                    "StatefulSet {sts_name:?} exists and is not owned by this Tenant; refusing to adopt it"
                );
                publish(
                    &ctx,
                    &stored,
                    EventType::Warning,
                    "NotOwned",
                    message.clone(),
                )
                .await;
                write_status(
                    &ctx,
                    &stored,
                    blocked_status(&stored, STATE_PROVISIONING, "NotOwned", message, false),
                )
                .await?;
                return Ok(Action::requeue(Duration::from_secs(60)));
            }
        }
        writes += usize::from(apply(&ctx, &sts_api, sts).await?);
    }
    if writes > 0 {
        tracing::info!(namespace = %ns, name = %name, writes, "applied tenant objects");
        publish(
            &ctx,
            &stored,
            EventType::Normal,
            "Applied",
            format!("{writes} object(s) created or updated"),
        )
        .await;
    }

    // Status from the StatefulSets.
    let previous = stored
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = stored.metadata.generation;
    let mut pools = Vec::new();
    let (mut ready, mut wanted) = (0, 0);
    for pool in &tenant.spec.pools {
        let sts_name = crate::api::names::pool_statefulset_name(&tenant, pool);
        let live = sts_api.get_opt(&sts_name).await?;
        let pool_ready = live
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        ready += pool_ready;
        wanted += pool.servers;
        let state = match (&live, pool_ready >= pool.servers) {
            (None, _) => "PoolNotCreated",
            (Some(_), true) => "PoolInitialized",
            (Some(_), false) => "PoolCreated",
        };
        pools.push(PoolStatus {
            ss_name: sts_name,
            state: state.to_owned(),
            legacy_security_context: Some(false),
        });
    }
    let healthy = ready >= wanted;
    let message = format!("{ready} of {wanted} servers ready");
    let mut status = stored.status.clone().unwrap_or_default();
    status.current_state = Some(
        if healthy {
            STATE_INITIALIZED
        } else {
            STATE_WAITING
        }
        .to_owned(),
    );
    status.available_replicas = Some(ready);
    status.pools = Some(pools);
    status.observed_generation = generation;
    status.health_status = Some(if healthy { "green" } else { "yellow" }.to_owned());
    status.conditions = vec![
        condition(
            "Ready",
            healthy,
            if healthy {
                "ServersReady"
            } else {
                "ServersStarting"
            },
            message.clone(),
            generation,
            &previous,
        ),
        condition(
            "Degraded",
            false,
            "Reconciled",
            String::new(),
            generation,
            &previous,
        ),
        condition(
            "Invalid",
            false,
            "Valid",
            String::new(),
            generation,
            &previous,
        ),
    ];
    write_status(&ctx, &stored, status).await?;
    // Owned StatefulSets wake us when replicas become ready; the requeue is a safety net only.
    Ok(Action::requeue(Duration::from_secs(if healthy {
        300
    } else {
        30
    })))
}

/// The tenant's TLS Secret, signed by the operator CA, for every name clients and peers use.
fn tls_secret(tenant: &Tenant, ctx: &Context) -> Result<Secret, Error> {
    let domain = &ctx.defaults.cluster_domain;
    let ns = tenant.namespace();
    let mut names: Vec<String> = Vec::new();
    if let Some(cn) = tenant
        .spec
        .cert_config
        .as_ref()
        .and_then(|c| c.common_name.clone())
    {
        names.push(cn);
    }
    names.push(crate::api::names::wildcard_common_name(tenant, domain));
    for pool in &tenant.spec.pools {
        for i in 0..pool.servers.max(0) {
            names.push(format!(
                "{}-{i}.{}.{ns}.svc.{domain}",
                crate::api::names::pool_statefulset_name(tenant, pool),
                crate::api::names::headless_service_name(tenant)
            ));
        }
    }
    for n in [
        "minio",
        &format!("minio.{ns}"),
        &format!("minio.{ns}.svc"),
        &format!("minio.{ns}.svc.{domain}"),
    ] {
        names.push(n.to_owned());
    }
    if let Some(extra) = tenant.spec.cert_config.as_ref() {
        names.extend(extra.dns_names.iter().cloned());
    }
    names.dedup();
    let pair = ctx.ca.sign_serving(&names)?;
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(tls_secret_name(tenant)),
            namespace: Some(ns.to_owned()),
            labels: Some(desired::tenant_pod_labels(tenant)),
            owner_references: Some(vec![desired::owner_reference(tenant)]),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(pair.cert_pem.into_bytes())),
            ("tls.key".to_owned(), ByteString(pair.key_pem.into_bytes())),
            (
                "ca.crt".to_owned(),
                ByteString(ctx.ca.cert_pem().as_bytes().to_vec()),
            ),
        ])),
        ..Secret::default()
    })
}
