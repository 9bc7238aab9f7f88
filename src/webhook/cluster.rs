//! The cluster facts the validating webhook needs: which Tenants a namespace holds and which
//! Secrets exist. Every replica serves reviews, so every replica keeps watch caches of Tenant and
//! Secret metadata (names only, never a Secret's data) and answers from memory: the apiserver,
//! which waits on the review, is not asked anything while it waits, but for the rare answer that
//! changes the outcome. A refusal (another Tenant in the namespace) and a warning (a Secret not
//! found) are confirmed by one live read first, so a Tenant deleted or a Secret created a moment
//! ago, which the cache may not show yet, never causes either.
//!
//! A cache lags the apiserver by the time a watch event takes to arrive. So that two Tenants
//! applied one after the other (one `kubectl apply` of a file holding both) are still told apart,
//! a replica also counts the Tenants it admitted for creation until the watch brings their first
//! event (or, for a create that another admission step refused, for a few seconds). Two creates
//! judged at once, or by two replicas, can still both be admitted, as they could with a live LIST
//! (both reviews run before either object is stored); the reconciler's guard, which refuses the
//! second Tenant from its own cache, stays the last word. Until the caches have listed once,
//! reviews are judged from live reads and `/readyz` reports the webhook not ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};

use super::review::ClusterView;
use crate::api::tenant::Tenant;
use crate::reconcile::caches::slim;
use crate::reconcile::controller::{api, cached, watch_config};

/// The watch caches of one scope: every namespace (`None`), or one watched namespace.
struct Scope {
    namespace: Option<String>,
    tenants: Store<PartialObjectMeta<Tenant>>,
    secrets: Store<PartialObjectMeta<Secret>>,
}

/// How long a Tenant admitted for creation counts if no watch event about it arrives: far longer
/// than a watch event takes, short enough that a create refused after our answer (by another
/// admission step) blocks another name in its namespace only briefly.
const ADMITTED_COUNTS_FOR: Duration = Duration::from_secs(10);

/// (namespace, name, when) of the Tenants this replica admitted for creation and the cache has not
/// had an event about yet.
type Admitted = Arc<Mutex<Vec<(String, String, Instant)>>>;

pub struct ApiCluster {
    client: kube::Client,
    scopes: Vec<Scope>,
    synced: Arc<AtomicBool>,
    admitted: Admitted,
}

impl ApiCluster {
    /// Starts the watches of `namespaces` (every namespace when empty, as the reconciler does and
    /// as the RBAC allows) on the current runtime; they stop when `stop` resolves.
    pub fn cached(
        client: kube::Client,
        namespaces: &[String],
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Self {
        let scopes: Vec<Option<String>> = if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.iter().cloned().map(Some).collect()
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            stop.await;
            let _ = stop_tx.send(true);
        });
        let synced = Arc::new(AtomicBool::new(false));
        let admitted = Admitted::default();
        let mut built = Vec::new();
        for namespace in scopes {
            let seen = admitted.clone();
            let tenants = spawn_watch::<Tenant>(
                &client,
                namespace.as_deref(),
                stop_rx.clone(),
                move |tenant| {
                    // The cache knows this Tenant now, and will know when it is deleted.
                    let (ns, name) = (&tenant.metadata.namespace, &tenant.metadata.name);
                    if let Ok(mut admitted) = seen.lock() {
                        admitted
                            .retain(|(n, t, _)| Some(n) != ns.as_ref() || Some(t) != name.as_ref());
                    }
                },
            );
            let secrets =
                spawn_watch::<Secret>(&client, namespace.as_deref(), stop_rx.clone(), |_| {});
            built.push(Scope {
                namespace,
                tenants,
                secrets,
            });
        }
        let stores: Vec<_> = built
            .iter()
            .map(|s| (s.tenants.clone(), s.secrets.clone()))
            .collect();
        let flag = synced.clone();
        tokio::spawn(async move {
            for (tenants, secrets) in stores {
                if tenants.wait_until_ready().await.is_err()
                    || secrets.wait_until_ready().await.is_err()
                {
                    return;
                }
            }
            tracing::info!("admission caches synced: Tenant and Secret metadata");
            flag.store(true, Ordering::Release);
        });
        ApiCluster {
            client,
            scopes: built,
            synced,
            admitted,
        }
    }

    /// Whether every cache has listed once (until then reviews read the API live).
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Whether the Tenant cache holds `namespace`/`name` now (no live read): how far the cache lags
    /// is measured with it (`cargo bench --bench admission_cache_lag`).
    pub fn cache_has_tenant(&self, namespace: &str, name: &str) -> bool {
        self.scope(namespace).is_some_and(|scope| {
            let key = ObjectRef::<PartialObjectMeta<Tenant>>::new(name).within(namespace);
            scope.tenants.get(&key).is_some()
        })
    }

    /// The synced scope that holds `namespace`, if any.
    fn scope(&self, namespace: &str) -> Option<&Scope> {
        if !self.synced() {
            return None;
        }
        self.scopes
            .iter()
            .find(|s| s.namespace.as_deref().is_none_or(|ns| ns == namespace))
    }

    async fn live_other_tenants(&self, namespace: &str, name: &str) -> Option<Vec<String>> {
        let tenants: Api<Tenant> = Api::namespaced(self.client.clone(), namespace);
        match tenants.list_metadata(&ListParams::default()).await {
            Ok(list) => Some(
                list.items
                    .into_iter()
                    .filter_map(|t| t.metadata.name)
                    .filter(|n| n != name)
                    .collect(),
            ),
            Err(error) => {
                tracing::warn!(%error, namespace, "cannot list Tenants for the one-per-namespace check");
                None
            }
        }
    }

    async fn live_secret_exists(&self, namespace: &str, name: &str) -> Option<bool> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match secrets.get_metadata_opt(name).await {
            Ok(found) => Some(found.is_some()),
            Err(error) => {
                tracing::warn!(%error, namespace, secret = name, "cannot check the configuration Secret");
                None
            }
        }
    }
}

impl ClusterView for ApiCluster {
    async fn other_tenants(&self, namespace: &str, name: &str) -> Option<Vec<String>> {
        let Some(scope) = self.scope(namespace) else {
            return self.live_other_tenants(namespace, name).await;
        };
        let mut names: Vec<String> = scope
            .tenants
            .state_filter(|t| {
                t.metadata.namespace.as_deref() == Some(namespace)
                    && t.metadata.name.as_deref() != Some(name)
            })
            .iter()
            .filter_map(|t| t.metadata.name.clone())
            .collect();
        if let Ok(admitted) = self.admitted.lock() {
            names.extend(
                admitted
                    .iter()
                    .filter(|(ns, n, when)| {
                        ns == namespace && n != name && when.elapsed() < ADMITTED_COUNTS_FOR
                    })
                    .map(|(_, n, _)| n.clone()),
            );
        }
        if names.is_empty() {
            return Some(names);
        }
        // A refusal is confirmed by one live read: the cache may still hold a Tenant deleted a
        // moment ago, and a create admitted here may have been refused after our answer.
        match self.live_other_tenants(namespace, name).await {
            Some(live) => Some(live),
            None => {
                names.sort();
                names.dedup();
                Some(names)
            }
        }
    }

    async fn secret_exists(&self, namespace: &str, name: &str) -> Option<bool> {
        let Some(scope) = self.scope(namespace) else {
            return self.live_secret_exists(namespace, name).await;
        };
        let key = ObjectRef::<PartialObjectMeta<Secret>>::new(name).within(namespace);
        if scope.secrets.get(&key).is_some() {
            return Some(true);
        }
        // A warning is confirmed by one live read: the Secret may have been created a moment ago
        // (the same `kubectl apply`, Secret first).
        Some(
            self.live_secret_exists(namespace, name)
                .await
                .unwrap_or(false),
        )
    }

    fn admitted(&self, namespace: &str, name: &str) {
        if let Ok(mut admitted) = self.admitted.lock() {
            admitted.retain(|(_, _, when)| when.elapsed() < ADMITTED_COUNTS_FOR);
            admitted.push((namespace.to_owned(), name.to_owned(), Instant::now()));
        }
    }
}

/// A metadata watch of kind `K` in `namespace` (or everywhere) feeding a store, until `stop`;
/// `touched` sees each object created, changed or deleted once the store has it.
fn spawn_watch<K>(
    client: &kube::Client,
    namespace: Option<&str>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    touched: impl Fn(&PartialObjectMeta<K>) + Send + Sync + 'static,
) -> Store<PartialObjectMeta<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let events = cached(
        api::<PartialObjectMeta<K>>(client, namespace),
        watch_config(),
        names_only::<K>,
        writer,
    );
    tokio::spawn(async move {
        let drained = events.for_each(|event| {
            match event {
                Ok(object) => touched(&object),
                Err(error) => {
                    tracing::debug!(%error, kind = %K::kind(&()), "admission cache watch failed; retrying");
                }
            }
            async {}
        });
        tokio::select! {
            () = drained => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    });
    store
}

/// Only the name and namespace are read: the rest is dropped before it is stored.
fn names_only<K>(object: &mut PartialObjectMeta<K>) {
    let meta = &mut object.metadata;
    slim::metadata(meta);
    meta.labels = None;
    meta.owner_references = None;
    meta.finalizers = None;
}
