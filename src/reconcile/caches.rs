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

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use super::status::{AtStep, Step, StepError};
use crate::api::names::TENANT_LABEL;
use crate::api::tenant::Tenant;

/// How long a pass waits for the watches' first listing after the operator starts (or after it
/// becomes the leader) before it fails and retries.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Caches {
    tenants: Store<Tenant>,
    statefulsets: Store<StatefulSet>,
    services: Store<Service>,
    /// Secrets carrying the tenant label: the ones the operator writes.
    own_secrets: Store<Secret>,
    secret_metadata: Store<PartialObjectMeta<Secret>>,
    service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    /// Users' Secrets as last fetched, each at the resourceVersion it had then.
    fetched: Mutex<HashMap<ObjectRef<Secret>, Arc<Secret>>>,
}

impl Caches {
    pub fn new(
        tenants: Store<Tenant>,
        statefulsets: Store<StatefulSet>,
        services: Store<Service>,
        own_secrets: Store<Secret>,
        secret_metadata: Store<PartialObjectMeta<Secret>>,
        service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    ) -> Caches {
        Caches {
            tenants,
            statefulsets,
            services,
            own_secrets,
            secret_metadata,
            service_accounts,
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

    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<Arc<StatefulSet>> {
        self.statefulsets
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// The StatefulSets labelled as this Tenant's.
    pub fn statefulsets_of(&self, tenant: &Tenant) -> Vec<Arc<StatefulSet>> {
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

    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
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
        let Some(secret) = Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
        else {
            self.forget(&key);
            return Ok(None);
        };
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
        }
    }

    /// `ca.crt` of a Secret the operator wrote (the TLS Secret of requestAutoCert).
    pub fn own_ca(&self, namespace: &str, name: &str) -> Option<Vec<u8>> {
        self.own_secrets
            .get(&ObjectRef::new(name).within(namespace))?
            .data
            .as_ref()?
            .get("ca.crt")
            .map(|ca| ca.0.clone())
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
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Secret, Service, ServiceSpec};
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMeta;

    /// Name, namespace, labels, owners and resourceVersion stay; managedFields and annotations
    /// (`last-applied-configuration` can be as big as the object) go.
    pub fn metadata(meta: &mut ObjectMeta) {
        meta.managed_fields = None;
        meta.annotations = None;
    }

    /// An object watched for its metadata only (Secrets of users, ServiceAccounts).
    pub fn partial<K>(object: &mut PartialObjectMeta<K>) {
        metadata(&mut object.metadata);
    }

    /// Metadata and status (ready replicas); the spec is ours and known.
    pub fn statefulset(sts: &mut StatefulSet) {
        metadata(&mut sts.metadata);
        sts.spec = Default::default();
    }

    /// Metadata and the ClusterIP the health check connects to.
    pub fn service(service: &mut Service) {
        metadata(&mut service.metadata);
        service.spec = service.spec.take().map(|spec| ServiceSpec {
            cluster_ip: spec.cluster_ip,
            ..ServiceSpec::default()
        });
        service.status = None;
    }

    /// Metadata and the CA certificate the health check trusts: never a private key or a
    /// credential, which the operator writes but does not need to hold.
    pub fn own_secret(secret: &mut Secret) {
        metadata(&mut secret.metadata);
        secret.string_data = None;
        if let Some(data) = secret.data.as_mut() {
            data.retain(|key, _| key == "ca.crt");
        }
    }
}

/// The kinds of object the operator writes and compares by resourceVersion. (StatefulSets are
/// compared by generation and labels, from [`Caches::statefulset`]: see `apply::Version`.)
#[derive(Clone, Copy, Debug)]
pub enum Owned {
    Service,
    Secret,
    ServiceAccount,
}

#[cfg(test)]
mod tests {
    use super::slim;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Secret, Service};
    use serde_json::json;

    #[test]
    fn the_caches_keep_what_the_phases_read_and_no_key_material() {
        let meta = json!({"name": "t-p0", "namespace": "ns", "resourceVersion": "7",
            "labels": {"v1.min.io/tenant": "t"}, "annotations": {"a": "b"},
            "ownerReferences": [{"apiVersion": "minio.min.io/v2", "kind": "Tenant", "name": "t", "uid": "u"}],
            "managedFields": [{"manager": "m", "operation": "Apply"}]});
        let mut sts: StatefulSet = serde_json::from_value(json!({"metadata": meta,
            "spec": {"serviceName": "t-hl", "selector": {}, "template": {"spec": {"containers": [{"name": "s3"}]}}},
            "status": {"replicas": 4, "readyReplicas": 3}})).unwrap();
        slim::statefulset(&mut sts);
        assert_eq!(
            serde_json::to_value(&sts).unwrap(),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "t-p0", "namespace": "ns", "resourceVersion": "7",
                "labels": {"v1.min.io/tenant": "t"},
                "ownerReferences": [{"apiVersion": "minio.min.io/v2", "kind": "Tenant", "name": "t", "uid": "u"}]},
                "spec": {"selector": {}, "template": {}},
                "status": {"replicas": 4, "readyReplicas": 3}})
        );

        let mut service: Service = serde_json::from_value(json!({"metadata": {"name": "minio"},
            "spec": {"clusterIP": "10.0.0.7", "ports": [{"port": 443}], "selector": {"a": "b"}}}))
        .unwrap();
        slim::service(&mut service);
        assert_eq!(
            serde_json::to_value(&service).unwrap(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "minio"}, "spec": {"clusterIP": "10.0.0.7"}})
        );

        let mut secret: Secret = serde_json::from_value(json!({"metadata": {"name": "t-tls"},
            "data": {"ca.crt": "Y2E=", "tls.key": "a2V5", "tls.crt": "Y3J0"}}))
        .unwrap();
        slim::own_secret(&mut secret);
        assert_eq!(
            serde_json::to_value(&secret).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t-tls"}, "data": {"ca.crt": "Y2E="}})
        );
    }
}

/// The watches have not delivered their first listing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotSynced(pub String);
