//! Tenant manifests for tests and benchmarks, built fluently as JSON (`serde_json::Value`).
//!
//! Many tests assert exact messages that name fields of the Tenant they send, so a builder writes
//! exactly the fields it is given and the few every Tenant of the tests has, nothing more:
//! `apiVersion`, `kind`, `metadata.name`, `spec.pools`, and per pool `servers`, `volumesPerServer`
//! and a `volumeClaimTemplate` asking ReadWriteOnce storage of 1Gi.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// A Tenant manifest: `apiVersion: minio.min.io/v2`, `kind: Tenant`, `metadata.name`, and in
/// `spec` the pools given (`spec.pools` is always written, `[]` when none was) and any other field
/// set.
#[derive(Clone, Debug)]
pub struct TenantBuilder {
    metadata: Map<String, Value>,
    spec: Map<String, Value>,
    pools: Vec<Value>,
}

impl TenantBuilder {
    /// Tenant `name`, without a namespace, a configuration Secret or pools yet.
    pub fn new(name: impl Into<String>) -> TenantBuilder {
        let mut metadata = Map::new();
        metadata.insert("name".to_owned(), Value::String(name.into()));
        TenantBuilder {
            metadata,
            spec: Map::new(),
            pools: Vec::new(),
        }
    }

    /// `metadata.namespace`.
    pub fn namespace(self, namespace: impl Into<String>) -> TenantBuilder {
        let namespace: String = namespace.into();
        self.metadata("namespace", namespace)
    }

    /// Any other field of `metadata` (`uid`, `labels`, ...).
    pub fn metadata(mut self, key: &str, value: impl Into<Value>) -> TenantBuilder {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// `spec.configuration.name`: the Secret holding `config.env`.
    pub fn configuration(self, secret: impl Into<String>) -> TenantBuilder {
        let secret: String = secret.into();
        self.spec("configuration", json!({ "name": secret }))
    }

    /// Appends a pool ([`PoolBuilder`] or JSON).
    pub fn pool(mut self, pool: impl Into<Value>) -> TenantBuilder {
        self.pools.push(pool.into());
        self
    }

    /// Appends pools ([`PoolBuilder`]s or JSON).
    pub fn pools<P: Into<Value>>(mut self, pools: impl IntoIterator<Item = P>) -> TenantBuilder {
        self.pools.extend(pools.into_iter().map(Into::into));
        self
    }

    /// Any other field of `spec` (`requestAutoCert`, `env`, `kes`, ...). `spec.pools` comes from
    /// [`TenantBuilder::pool`] and [`TenantBuilder::pools`] only.
    pub fn spec(mut self, key: &str, value: impl Into<Value>) -> TenantBuilder {
        self.spec.insert(key.to_owned(), value.into());
        self
    }

    /// The manifest.
    pub fn build(self) -> Value {
        let mut spec = self.spec;
        spec.insert("pools".to_owned(), Value::Array(self.pools));
        json!({
            "apiVersion": "minio.min.io/v2",
            "kind": "Tenant",
            "metadata": self.metadata,
            "spec": spec,
        })
    }

    /// The manifest as a typed object, e.g. `hanzo_s3_operator::api::tenant::Tenant`; panics
    /// when it does not deserialize into `T`.
    pub fn typed<T: DeserializeOwned>(self) -> T {
        let value = self.build();
        serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("the built Tenant does not deserialize ({e}): {value}"))
    }
}

impl From<TenantBuilder> for Value {
    fn from(tenant: TenantBuilder) -> Value {
        tenant.build()
    }
}

/// One entry of `spec.pools`: `servers`, `volumesPerServer` and a `volumeClaimTemplate` asking
/// ReadWriteOnce storage of 1Gi unless [`PoolBuilder::storage`] says otherwise.
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    name: Option<String>,
    servers: i32,
    volumes_per_server: i32,
    claim_name: Option<String>,
    storage_class: Option<String>,
    storage: Value,
    fields: Map<String, Value>,
}

impl PoolBuilder {
    /// A pool with `name` (which may be empty: `"name": ""` is written as given).
    pub fn named(name: impl Into<String>, servers: i32, volumes_per_server: i32) -> PoolBuilder {
        PoolBuilder {
            name: Some(name.into()),
            ..PoolBuilder::unnamed(servers, volumes_per_server)
        }
    }

    /// A pool without a `name` field (the mutating webhook names it `ss-<index>`).
    pub fn unnamed(servers: i32, volumes_per_server: i32) -> PoolBuilder {
        PoolBuilder {
            name: None,
            servers,
            volumes_per_server,
            claim_name: None,
            storage_class: None,
            storage: Value::String("1Gi".to_owned()),
            fields: Map::new(),
        }
    }

    /// `volumeClaimTemplate.metadata.name` (the claims' prefix; absent unless set).
    pub fn claim_name(mut self, name: impl Into<String>) -> PoolBuilder {
        self.claim_name = Some(name.into());
        self
    }

    /// `volumeClaimTemplate.spec.storageClassName` (absent unless set).
    pub fn storage_class(mut self, name: impl Into<String>) -> PoolBuilder {
        self.storage_class = Some(name.into());
        self
    }

    /// The claim's storage request, `1Gi` unless set (a number is written as a number).
    pub fn storage(mut self, quantity: impl Into<Value>) -> PoolBuilder {
        self.storage = quantity.into();
        self
    }

    /// Any other field of the pool (`resources`, `affinity`, ...); it replaces one built above.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> PoolBuilder {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// The pool's JSON.
    pub fn build(self) -> Value {
        let mut claim = json!({"spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": self.storage}}
        }});
        if let Some(name) = self.claim_name {
            claim["metadata"] = json!({ "name": name });
        }
        if let Some(class) = self.storage_class {
            claim["spec"]["storageClassName"] = Value::String(class);
        }
        let mut pool = json!({
            "servers": self.servers,
            "volumesPerServer": self.volumes_per_server,
            "volumeClaimTemplate": claim,
        });
        if let Some(name) = self.name {
            pool["name"] = Value::String(name);
        }
        for (key, value) in self.fields {
            pool[key.as_str()] = value;
        }
        pool
    }
}

impl From<PoolBuilder> for Value {
    fn from(pool: PoolBuilder) -> Value {
        pool.build()
    }
}
