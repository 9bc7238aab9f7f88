//! What the phases read, served from the controller's own watches instead of a GET or LIST on every
//! pass: a healthy Tenant is looked at every 30 s, and each look used to cost one request per pool
//! plus four more, for every Tenant, forever.
//!
//! - Tenants: the controller's own store (the guard's "oldest in its namespace").
//! - StatefulSets, Services and the operator's own Secrets: watched with their data, restricted to
//!   objects carrying the tenant label, so a cluster's other workloads are never cached; its
//!   ServiceAccounts, metadata only. Server-side apply compares their resourceVersions with what it
//!   last wrote, and asks the apiserver only for an object the cache does not hold.
//! - Every other Secret (configuration, `spec.users`, external certificates): metadata only, from
//!   the watch that wakes a Tenant when one changes. Their data is fetched when the watch reports a
//!   resourceVersion not fetched before, and kept only for Secrets a Tenant names (and only while they
//!   exist): caching every Secret's data of a namespace would hold credentials the operator never uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::outcome::{AtStep, NotSynced, Step, StepError};
use crate::api::names::TENANT_LABEL;
use crate::api::tenant::Tenant;

pub use cached::{CachedPod, CachedService, CachedStatefulSet, ContainerStatus, Terminated};

/// How long a pass waits for the watches' first listing after the operator starts (or after it
/// becomes the leader) before it fails and retries.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Caches {
    tenants: Store<Tenant>,
    statefulsets: Store<CachedStatefulSet>,
    services: Store<CachedService>,
    /// Secrets carrying the tenant label: the ones the operator writes.
    own_secrets: Store<Secret>,
    secret_metadata: Store<PartialObjectMeta<Secret>>,
    service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    /// The servers' pods (labelled with their tenant), slimmed to what the rollout reads.
    pods: Store<CachedPod>,
    disruption_budgets: Store<PartialObjectMeta<PodDisruptionBudget>>,
    /// Users' Secrets as last fetched, each at the resourceVersion it had then.
    fetched: Mutex<HashMap<ObjectRef<Secret>, Arc<Secret>>>,
}

/// The stores of the watches of what Tenants own (see [`Caches`] for what each holds).
pub struct Stores {
    pub statefulsets: Store<CachedStatefulSet>,
    pub services: Store<CachedService>,
    pub own_secrets: Store<Secret>,
    pub secret_metadata: Store<PartialObjectMeta<Secret>>,
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    pub pods: Store<CachedPod>,
    pub disruption_budgets: Store<PartialObjectMeta<PodDisruptionBudget>>,
}

impl Caches {
    pub fn new(tenants: Store<Tenant>, stores: Stores) -> Caches {
        let Stores {
            statefulsets,
            services,
            own_secrets,
            secret_metadata,
            service_accounts,
            pods,
            disruption_budgets,
        } = stores;
        Caches {
            tenants,
            statefulsets,
            services,
            own_secrets,
            secret_metadata,
            service_accounts,
            pods,
            disruption_budgets,
            fetched: Mutex::default(),
        }
    }

    /// Waits until every watch has listed once: an empty store before that means "not yet known",
    /// not "absent" (the guard would let a younger Tenant take the namespace's Service).
    pub async fn synced(&self) -> Result<(), StepError> {
        let all = async {
            self.tenants.wait_until_ready().await?;
            self.statefulsets.wait_until_ready().await?;
            self.services.wait_until_ready().await?;
            self.own_secrets.wait_until_ready().await?;
            self.service_accounts.wait_until_ready().await?;
            self.pods.wait_until_ready().await?;
            self.disruption_budgets.wait_until_ready().await?;
            self.secret_metadata.wait_until_ready().await
        };
        match tokio::time::timeout(SYNC_TIMEOUT, all).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(NotSynced("the controller's watches stopped".to_owned())).at(Step::Guard),
            Err(_) => Err(NotSynced(format!(
                "the controller's watches have not listed Tenants, StatefulSets, Services and Secrets within {} s (see the operator's log for the watch errors, e.g. missing RBAC)",
                SYNC_TIMEOUT.as_secs()
            )))
            .at(Step::Guard),
        }
    }

    /// The Tenants of a namespace.
    pub fn tenants_in(&self, namespace: &str) -> Vec<Arc<Tenant>> {
        self.tenants
            .state_filter(|t| t.metadata.namespace.as_deref() == Some(namespace))
    }

    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<Arc<CachedStatefulSet>> {
        self.statefulsets
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// The StatefulSets labelled as this Tenant's.
    pub fn statefulsets_of(&self, tenant: &Tenant) -> Vec<Arc<CachedStatefulSet>> {
        let ns = tenant.metadata.namespace.as_deref();
        self.statefulsets.state_filter(|s| {
            s.metadata.namespace.as_deref() == ns
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(TENANT_LABEL))
                    .map(String::as_str)
                    == tenant.metadata.name.as_deref()
        })
    }

    /// The names of the PodDisruptionBudgets labelled as this Tenant's.
    pub fn disruption_budgets_of(&self, tenant: &Tenant) -> Vec<String> {
        let ns = tenant.metadata.namespace.as_deref();
        self.disruption_budgets
            .state_filter(|b| {
                b.metadata.namespace.as_deref() == ns
                    && b.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(TENANT_LABEL))
                        .map(String::as_str)
                        == tenant.metadata.name.as_deref()
            })
            .iter()
            .filter_map(|b| b.metadata.name.clone())
            .collect()
    }

    /// The pods of a tenant's servers (all pools).
    pub fn pods_of(&self, tenant: &Tenant) -> Vec<Arc<CachedPod>> {
        let ns = tenant.metadata.namespace.as_deref();
        self.pods.state_filter(|p| {
            p.metadata.namespace.as_deref() == ns
                && p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(TENANT_LABEL))
                    .map(String::as_str)
                    == tenant.metadata.name.as_deref()
        })
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<CachedService>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    /// A user's Secret (configuration, `spec.users`, an external certificate) with all its data,
    /// fetched only when its resourceVersion changed since the last fetch. `None` when the watch
    /// does not know it (a Secret created later wakes the Tenants that name it).
    ///
    /// Never served from the operator's own Secrets, even under the same name: the examples, as
    /// many users do, name the configuration Secret `<tenant>-configuration`, the name the
    /// operator renders it under, and the cached copy of ours holds no more than `ca.crt`.
    pub async fn secret(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, kube::Error> {
        let key = ObjectRef::<Secret>::new(name).within(namespace);
        let Some(version) = self.secret_version(namespace, name) else {
            self.forget(&key);
            return Ok(None);
        };
        let known = self
            .fetched
            .lock()
            .ok()
            .and_then(|f| f.get(&key).cloned())
            .filter(|s| s.metadata.resource_version.as_ref() == Some(&version));
        if known.is_some() {
            return Ok(known);
        }
        let Some(mut secret) = Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
        else {
            self.forget(&key);
            return Ok(None);
        };
        // Its data is what the phases read; managedFields and annotations (kubectl's
        // last-applied-configuration holds the whole Secret, data included) are not kept.
        slim::metadata(&mut secret.metadata);
        let secret = Arc::new(secret);
        if let Ok(mut fetched) = self.fetched.lock() {
            // Secrets deleted since, or no longer named, go when the next one comes in.
            fetched.retain(|k, _| {
                let meta = ObjectRef::<PartialObjectMeta<Secret>>::new(&k.name)
                    .within(k.namespace.as_deref().unwrap_or_default());
                self.secret_metadata.get(&meta).is_some()
            });
            fetched.insert(key, secret.clone());
        }
        Ok(Some(secret))
    }

    /// The resourceVersion of one of the operator's objects as its watch last saw it; `None` when
    /// the watch does not hold it (not created yet, or not labelled as ours).
    pub fn version(&self, kind: Owned, namespace: &str, name: &str) -> Option<String> {
        fn of<K: kube::Resource<DynamicType = ()> + Clone>(
            store: &Store<K>,
            namespace: &str,
            name: &str,
        ) -> Option<String> {
            store
                .get(&ObjectRef::new(name).within(namespace))
                .and_then(|o| o.meta().resource_version.clone())
        }
        match kind {
            Owned::Service => of(&self.services, namespace, name),
            Owned::Secret => of(&self.own_secrets, namespace, name),
            Owned::ServiceAccount => of(&self.service_accounts, namespace, name),
            Owned::DisruptionBudget => of(&self.disruption_budgets, namespace, name),
        }
    }

    /// `ca.crt` of a Secret the operator wrote (the TLS Secret of requestAutoCert).
    pub fn own_ca(&self, namespace: &str, name: &str) -> Option<Vec<u8>> {
        self.own_secret_value(namespace, name, "ca.crt")
    }

    /// A public key of a Secret the operator wrote: `ca.crt` or `tls.crt` (the caches hold no
    /// private key).
    pub fn own_secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<Vec<u8>> {
        self.own_secrets
            .get(&ObjectRef::new(name).within(namespace))?
            .data
            .as_ref()?
            .get(key)
            .map(|v| v.0.clone())
    }

    /// An annotation of a Secret the operator wrote (those the caches keep).
    pub fn own_secret_annotation(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        self.own_secrets
            .get(&ObjectRef::new(name).within(namespace))?
            .metadata
            .annotations
            .as_ref()?
            .get(key)
            .cloned()
    }

    /// The resourceVersion the watch last saw of a Secret, without fetching it.
    pub fn secret_version(&self, namespace: &str, name: &str) -> Option<String> {
        let key = ObjectRef::<PartialObjectMeta<Secret>>::new(name).within(namespace);
        self.secret_metadata
            .get(&key)
            .and_then(|m| m.metadata.resource_version.clone())
    }

    fn forget(&self, key: &ObjectRef<Secret>) {
        if let Ok(mut fetched) = self.fetched.lock() {
            fetched.remove(key);
        }
    }
}

/// What the caches keep of each object: only what the phases read, so memory grows by a few hundred
/// bytes per object rather than by its whole spec (a StatefulSet's pod template, every object's
/// managedFields). At 1,000 Tenants the full objects held 176 MiB. Applied to every watch event
/// before it reaches a store.
pub mod slim {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMeta;

    /// Name, namespace, labels, owners and resourceVersion stay; managedFields and annotations
    /// (`last-applied-configuration` can be as big as the object) go.
    pub fn metadata(meta: &mut ObjectMeta) {
        meta.managed_fields = None;
        meta.annotations = None;
    }

    /// A StatefulSet: its metadata, and who wrote its pod template when that is not us.
    pub fn statefulset(sts: &mut super::CachedStatefulSet) {
        sts.template_writer = sts
            .metadata
            .managed_fields
            .as_deref()
            .and_then(crate::reconcile::apply::template_writer);
        metadata(&mut sts.metadata);
    }

    /// An object watched for its metadata only (Secrets of users, ServiceAccounts).
    pub fn partial<K>(object: &mut PartialObjectMeta<K>) {
        metadata(&mut object.metadata);
    }

    /// A StatefulSet or Service: metadata only (what is left of them is chosen by their types,
    /// [`CachedStatefulSet`](super::CachedStatefulSet) and [`CachedService`](super::CachedService)).
    pub fn cached<K: kube::Resource>(object: &mut K) {
        metadata(object.meta_mut());
    }

    /// A server's pod: its metadata without annotations but those the rollout reads: the hashes
    /// of its template and of the configuration and root credentials its server started with
    /// (what changed decides how the server restarts), the steps of a restart in place, and the
    /// CA it started trusting (a tenant's certificate moves to a new CA only once every server
    /// does).
    pub fn pod(pod: &mut super::CachedPod) {
        use crate::reconcile::desired::{
            CONFIG_HASH_ANNOTATION, CONFIGURED_AT_ANNOTATION, CREDENTIALS_HASH_ANNOTATION,
            RESTARTED_FOR_ANNOTATION, TEMPLATE_HASH_ANNOTATION, TRUSTED_CA_ANNOTATION,
        };
        keep_annotations(
            &mut pod.metadata,
            &[
                CONFIG_HASH_ANNOTATION,
                CREDENTIALS_HASH_ANNOTATION,
                TEMPLATE_HASH_ANNOTATION,
                TRUSTED_CA_ANNOTATION,
                CONFIGURED_AT_ANNOTATION,
                RESTARTED_FOR_ANNOTATION,
            ],
        );
    }

    /// `meta` without managed fields or annotations but `kept`.
    fn keep_annotations(meta: &mut ObjectMeta, kept: &[&str]) {
        let kept: std::collections::BTreeMap<String, String> = meta
            .annotations
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| kept.contains(&k.as_str()))
            .collect();
        metadata(meta);
        if !kept.is_empty() {
            meta.annotations = Some(kept);
        }
    }

    /// Metadata (with the CA that signed a TLS Secret), the CA certificate the health check
    /// trusts and the certificate whose expiry the renewal follows: never a private key or a
    /// credential, which the operator writes but does not need to hold.
    pub fn own_secret(secret: &mut Secret) {
        keep_annotations(
            &mut secret.metadata,
            &[
                crate::reconcile::desired::SIGNED_BY_ANNOTATION,
                crate::reconcile::scrape::EXPIRES_ANNOTATION,
                crate::reconcile::scrape::SIGNED_WITH_ANNOTATION,
            ],
        );
        secret.string_data = None;
        if let Some(data) = secret.data.as_mut() {
            data.retain(|key, _| key == "ca.crt" || key == "tls.crt");
        }
    }
}

/// The StatefulSets and Services of the caches, as their own types: deserialized straight from the
/// watch, they keep only what the phases read. A `k8s_openapi` StatefulSet is 2,608 bytes before
/// any of its contents (a Service 824) even with its spec emptied: at 1,000 Tenants, 3.5 MiB held
/// for nothing (heaptrack, benches/results/reconcile-scale.md).
mod cached {
    use std::borrow::Cow;

    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Pod, Service};
    use k8s_openapi::{NamespaceResourceScope, Resource as _};
    use kube::api::ObjectMeta;
    use serde::{Deserialize, Serialize};

    /// A StatefulSet's metadata and ready replicas; its spec is ours and known, unless another
    /// manager wrote its pod template (another operator's, to take over).
    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    pub struct CachedStatefulSet {
        #[serde(default)]
        pub metadata: ObjectMeta,
        /// The field manager other than ours that wrote its pods' containers (from the
        /// managedFields the cache drops: `apply::template_writer`).
        #[serde(skip)]
        pub template_writer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<Replicas>,
    }

    /// What the rollout and the health phase read of a StatefulSet's status.
    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Replicas {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_replicas: Option<i32>,
        /// The generation the StatefulSet controller has acted on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
        /// The revision of the current template: pods of another revision run an older one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub update_revision: Option<String>,
    }

    /// A server's pod: what the rollout decides on (its revision, readiness, whether it is
    /// starting, crashing or going away) and where the health checks reach it.
    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    pub struct CachedPod {
        #[serde(default)]
        pub metadata: ObjectMeta,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<PodState>,
    }

    impl CachedPod {
        pub fn name(&self) -> &str {
            self.metadata.name.as_deref().unwrap_or_default()
        }

        /// The Ready condition is True: the Service sends it requests.
        pub fn ready(&self) -> bool {
            self.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        }

        pub fn ip(&self) -> Option<std::net::IpAddr> {
            self.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
        }

        /// The StatefulSet revision of the template the pod was made from.
        pub fn revision(&self) -> Option<&str> {
            self.metadata
                .labels
                .as_ref()?
                .get("controller-revision-hash")
                .map(String::as_str)
        }

        pub fn annotation(&self, key: &str) -> Option<&str> {
            self.metadata
                .annotations
                .as_ref()?
                .get(key)
                .map(String::as_str)
        }

        pub fn terminating(&self) -> bool {
            self.metadata.deletion_timestamp.is_some()
        }

        /// The status of the container named `name`.
        pub fn container(&self, name: &str) -> Option<&ContainerStatus> {
            self.status
                .as_ref()?
                .container_statuses
                .iter()
                .find(|c| c.name == name)
        }
    }

    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PodState {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub phase: Option<String>,
        #[serde(rename = "podIP", default, skip_serializing_if = "Option::is_none")]
        pub pod_ip: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub conditions: Vec<PodConditionState>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub container_statuses: Vec<ContainerStatus>,
    }

    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    pub struct PodConditionState {
        #[serde(rename = "type")]
        pub type_: String,
        pub status: String,
    }

    /// k8s-openapi's ContainerStatus, minus what the operator never reads (image IDs, resources,
    /// volume mounts, allocated resources, users).
    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ContainerStatus {
        pub name: String,
        #[serde(default)]
        pub ready: bool,
        #[serde(default)]
        pub restart_count: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub started: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub state: Option<ContainerState>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_state: Option<ContainerState>,
    }

    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    pub struct ContainerState {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub waiting: Option<Waiting>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub running: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub terminated: Option<Terminated>,
    }

    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    pub struct Waiting {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<String>,
    }

    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Terminated {
        #[serde(default)]
        pub exit_code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
        /// The container's termination message: with `FallbackToLogsOnError`, the tail of its
        /// log when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message: Option<String>,
    }

    /// A Service's metadata and the ClusterIP the health check connects to.
    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    pub struct CachedService {
        #[serde(default)]
        pub metadata: ObjectMeta,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub spec: Option<ClusterIp>,
    }

    #[derive(Clone, Debug, Default, Deserialize, Serialize)]
    pub struct ClusterIp {
        #[serde(rename = "clusterIP", default, skip_serializing_if = "Option::is_none")]
        pub cluster_ip: Option<String>,
    }

    /// Served at the URL of the kind `K` stands for.
    macro_rules! resource_as {
        ($cached:ty, $k:ty) => {
            impl kube::Resource for $cached {
                type DynamicType = ();
                type Scope = NamespaceResourceScope;

                fn kind(_: &()) -> Cow<'_, str> {
                    <$k>::KIND.into()
                }
                fn group(_: &()) -> Cow<'_, str> {
                    <$k>::GROUP.into()
                }
                fn version(_: &()) -> Cow<'_, str> {
                    <$k>::VERSION.into()
                }
                fn api_version(_: &()) -> Cow<'_, str> {
                    <$k>::API_VERSION.into()
                }
                fn plural(_: &()) -> Cow<'_, str> {
                    <$k>::URL_PATH_SEGMENT.into()
                }
                fn meta(&self) -> &ObjectMeta {
                    &self.metadata
                }
                fn meta_mut(&mut self) -> &mut ObjectMeta {
                    &mut self.metadata
                }
            }
        };
    }
    resource_as!(CachedStatefulSet, StatefulSet);
    resource_as!(CachedService, Service);
    resource_as!(CachedPod, Pod);
}

/// The kinds of object the operator writes and compares by resourceVersion. (StatefulSets are
/// compared by generation and labels, from [`Caches::statefulset`]: see `apply::Version`.)
#[derive(Clone, Copy, Debug)]
pub enum Owned {
    Service,
    Secret,
    ServiceAccount,
    DisruptionBudget,
}

#[cfg(test)]
mod tests {
    use super::{CachedService, CachedStatefulSet, slim};
    use k8s_openapi::api::core::v1::Secret;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn the_caches_keep_what_the_phases_read_and_no_key_material() {
        let meta = json!({"name": "t-p0", "namespace": "ns", "resourceVersion": "7",
            "labels": {"v1.min.io/tenant": "t"}, "annotations": {"a": "b"},
            "ownerReferences": [{"apiVersion": "minio.min.io/v2", "kind": "Tenant", "name": "t", "uid": "u"}],
            "managedFields": [{"manager": "m", "operation": "Apply"}]});
        // As the watch sends it.
        let mut sts: CachedStatefulSet = serde_json::from_value(json!({"apiVersion": "apps/v1",
            "kind": "StatefulSet", "metadata": meta,
            "spec": {"serviceName": "t-hl", "selector": {}, "template": {"spec": {"containers": [{"name": "s3"}]}}},
            "status": {"replicas": 4, "readyReplicas": 3}})).unwrap();
        slim::statefulset(&mut sts);
        assert_eq!(
            serde_json::to_value(&sts).unwrap(),
            json!({"metadata": {"name": "t-p0", "namespace": "ns", "resourceVersion": "7",
                "labels": {"v1.min.io/tenant": "t"},
                "ownerReferences": [{"apiVersion": "minio.min.io/v2", "kind": "Tenant", "name": "t", "uid": "u"}]},
                "status": {"readyReplicas": 3}})
        );
        assert_eq!(
            CachedStatefulSet::url_path(&(), Some("ns")),
            "/apis/apps/v1/namespaces/ns/statefulsets",
            "watched and read where StatefulSets are"
        );

        let mut service: CachedService = serde_json::from_value(json!({"apiVersion": "v1",
            "kind": "Service", "metadata": {"name": "minio", "managedFields": []},
            "spec": {"clusterIP": "10.0.0.7", "ports": [{"port": 443}], "selector": {"a": "b"}},
            "status": {"loadBalancer": {}}}))
        .unwrap();
        slim::cached(&mut service);
        assert_eq!(
            serde_json::to_value(&service).unwrap(),
            json!({"metadata": {"name": "minio"}, "spec": {"clusterIP": "10.0.0.7"}})
        );
        assert_eq!(
            CachedService::url_path(&(), Some("ns")),
            "/api/v1/namespaces/ns/services"
        );
        assert_eq!(
            (CachedService::kind(&()), CachedStatefulSet::kind(&())),
            ("Service".into(), "StatefulSet".into())
        );

        let mut pod: super::CachedPod = serde_json::from_value(json!({"metadata": {"name": "t-p0-0",
            "annotations": {"hanzo.ai/root-credentials-hash": "h", "hanzo.ai/configuration-hash": "c", "other": "x"},
            "managedFields": []}, "status": {"podIP": "10.0.0.9"}}))
        .unwrap();
        slim::pod(&mut pod);
        assert_eq!(
            serde_json::to_value(&pod).unwrap(),
            json!({"metadata": {"name": "t-p0-0", "annotations": {"hanzo.ai/root-credentials-hash": "h", "hanzo.ai/configuration-hash": "c"}},
                "status": {"podIP": "10.0.0.9"}}),
            "the rollout compares the configuration and credentials a server started with, and nothing else"
        );

        let mut secret: Secret = serde_json::from_value(json!({"metadata": {"name": "t-tls"},
            "data": {"ca.crt": "Y2E=", "tls.key": "a2V5", "tls.crt": "Y3J0"}}))
        .unwrap();
        slim::own_secret(&mut secret);
        assert_eq!(
            serde_json::to_value(&secret).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t-tls"}, "data": {"ca.crt": "Y2E=", "tls.crt": "Y3J0"}})
        );
    }
}
