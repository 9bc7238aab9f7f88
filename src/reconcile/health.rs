//! Health: how many servers are ready (from the StatefulSets) and, where pods really run, whether
//! the S3 cluster itself answers healthy, and what its admin API says of its drives and usage.
//! Ready means the S3 cluster answers: pods Running is not enough (a server can run and still lack
//! write quorum, a certificate or its peers).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::caches::CachedStatefulSet;
use super::controller::Context;
use super::desired::S3_PORT;
use super::provisioning::Provisioned;
use super::status::{self, AtStep, STATE_INITIALIZED, STATE_WAITING, Step, StepError};
use crate::api::names::{S3_SERVICE_NAME, TENANT_LABEL, pool_statefulset_name, tls_secret_name};
use crate::api::status::{PoolStatus, TenantStatus, TenantUsage};
use crate::api::tenant::Tenant;
use crate::s3admin::{
    AdminClient, AdminError, CLUSTER_HEALTH_PATH, Credentials, Endpoint, StorageInfo,
};

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

/// The S3 cluster's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Health {
    Healthy,
    /// Why not: the HTTP status it answered, or why it could not be reached.
    Unhealthy(String),
}

/// The drives and usage the admin API reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Storage {
    pub online: i32,
    pub offline: i32,
    pub healing: i32,
    pub write_quorum: Option<i32>,
    pub usage: TenantUsage,
    /// The pods whose drives are offline, by name, sorted.
    pub offline_pods: Vec<String>,
}

/// What the health phase saw.
#[derive(Clone, Debug)]
pub struct Observed {
    pub pools: Vec<PoolStatus>,
    pub servers_ready: i32,
    pub servers: i32,
    /// `None` when not asked ([`ReadyWhen::PodsReady`]).
    pub s3: Option<S3Health>,
    /// `None` unless the cluster answered healthy and the root credentials are known.
    pub storage: Option<Storage>,
}

impl Observed {
    /// Whether every server's pod is ready.
    pub fn servers_up(&self) -> bool {
        self.servers_ready >= self.servers
    }
}

/// Observes the tenant; hands back the admin client when the S3 cluster answered healthy (the
/// provisioning phase uses it).
pub async fn observe(
    ctx: &Context,
    tenant: &Tenant,
    admin: Option<&Credentials>,
) -> Result<(Observed, Option<AdminClient>), StepError> {
    let ns = tenant.namespace();
    let mut pools = Vec::new();
    let (mut servers_ready, mut servers) = (0, 0);
    for pool in &tenant.spec.pools {
        let sts_name = pool_statefulset_name(tenant, pool);
        let mut live = ctx.caches.statefulset(ns, &sts_name);
        let ready_in = |s: &Option<Arc<CachedStatefulSet>>| {
            s.as_ref()
                .and_then(|s| s.status.as_ref())
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        };
        // A pool short of ready servers is asked for, not read from the cache: a watch resumed
        // across an apiserver restart is the one way the cache can miss an update, and a Tenant
        // would wait on it. Only converging pools cost a GET; a Ready Tenant's passes none.
        if ready_in(&live) < pool.servers {
            live = Api::<CachedStatefulSet>::namespaced(ctx.client.clone(), ns)
                .get_opt(&sts_name)
                .await
                .at(Step::Health)?
                .map(Arc::new);
        }
        let pool_ready = live
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        servers_ready += pool_ready;
        servers += pool.servers;
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
    let mut observed = Observed {
        pools,
        servers_ready,
        servers,
        s3: None,
        storage: None,
    };
    if ctx.settings.ready_when == ReadyWhen::PodsReady {
        return Ok((observed, None));
    }
    if servers_ready == 0 {
        observed.s3 = Some(S3Health::Unhealthy("no server is ready yet".to_owned()));
        return Ok((observed, None));
    }
    let endpoint = match tenant_endpoint(ctx, tenant).await? {
        Ok(e) => e,
        Err(why) => {
            observed.s3 = Some(S3Health::Unhealthy(why));
            return Ok((observed, None));
        }
    };
    let client = AdminClient::new(
        endpoint,
        admin.cloned().unwrap_or_else(Credentials::anonymous),
    );
    let health = client.cluster_health().await;
    observed.s3 = Some(match &health {
        Ok(h) if h.healthy => S3Health::Healthy,
        Ok(h) if h.status == 503 => S3Health::Unhealthy(format!(
            "{} answered 503: the cluster has no write quorum",
            client.endpoint().url(CLUSTER_HEALTH_PATH)
        )),
        Ok(h) => S3Health::Unhealthy(format!(
            "{} answered HTTP {}",
            client.endpoint().url(CLUSTER_HEALTH_PATH),
            h.status
        )),
        Err(e) => S3Health::Unhealthy(e.to_string()),
    });
    let Some(health) = health.ok().filter(|h| h.healthy) else {
        return Ok((observed, None));
    };
    // The Service answered through one server. Before a Tenant is called Ready (first, or again),
    // every server must say so itself: one still joining its peers answers a write with 503
    // SlowDownWrite although another already has quorum. Once Ready, the Service alone is
    // asked (a Ready Tenant's pass costs one request, not a LIST of its pods and one per server).
    if !status::was(tenant, "Ready")
        && let Some(why) = server_not_healthy(ctx, tenant, client.endpoint()).await?
    {
        observed.s3 = Some(S3Health::Unhealthy(why));
        return Ok((observed, None));
    }
    if admin.is_none() {
        return Ok((observed, None));
    }
    // Write quorum comes before the server takes signed requests (it loads its users and
    // policies after): until then S3 calls get 503 "Server not initialized yet", and a Tenant
    // called Ready would refuse the first request of whoever believed it.
    match client.takes_requests().await {
        Err(AdminError::Server {
            status: 503,
            message,
            ..
        }) => {
            observed.s3 = Some(S3Health::Unhealthy(format!(
                "the S3 cluster has write quorum but does not take requests yet: {message}"
            )));
            return Ok((observed, None));
        }
        Err(error) => log_admin_error(tenant, "list buckets", &error),
        Ok(()) => {}
    }
    match client.storage_info().await {
        Ok(info) => observed.storage = Some(storage_of(&info, health.write_quorum)),
        // The cluster answers; only the report is missing. Ready does not depend on it.
        Err(error) => log_admin_error(tenant, "storage info", &error),
    }
    Ok((observed, Some(client)))
}

/// Why not every ready server of `tenant` answers healthy on its own, asked by pod IP (with the
/// Service's host name and TLS, which every server's certificate carries); `None` when all do.
async fn server_not_healthy(
    ctx: &Context,
    tenant: &Tenant,
    service: &Endpoint,
) -> Result<Option<String>, StepError> {
    let selector = format!("{TENANT_LABEL}={}", tenant.name());
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), tenant.namespace())
        .list(&ListParams::default().labels(&selector))
        .await
        .at(Step::Health)?;
    let mut servers: Vec<(String, IpAddr)> = pods
        .items
        .iter()
        .filter(|p| pod_ready(p))
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.as_deref()?;
            Some((p.name_any(), IpAddr::from_str(ip).ok()?))
        })
        .collect();
    servers.sort();
    let port = u16::try_from(S3_PORT).unwrap_or(9000);
    let answers = futures::future::join_all(servers.iter().map(|(name, ip)| async move {
        let endpoint = Endpoint {
            addr: SocketAddr::new(*ip, port),
            ..service.clone()
        };
        let client = AdminClient::new(endpoint, Credentials::anonymous());
        (name, client.cluster_health().await)
    }))
    .await;
    Ok(answers.into_iter().find_map(|(name, answer)| match answer {
        Ok(h) if h.healthy => None,
        Ok(h) => Some(format!(
            "the S3 cluster answers healthy, but its server {name} answers HTTP {} on {CLUSTER_HEALTH_PATH}: it has not joined its peers yet",
            h.status
        )),
        Err(e) => Some(format!(
            "the S3 cluster answers healthy, but its server {name} does not: {e}"
        )),
    }))
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn log_admin_error(tenant: &Tenant, call: &str, error: &AdminError) {
    tracing::warn!(
        namespace = tenant.namespace(),
        name = tenant.name(),
        call,
        %error,
        "S3 admin call failed"
    );
}

/// Drive counts, usage as the Go operator computes it (raw space per pool, scaled by the pool's
/// data-to-total ratio for the net figures), and the pods of the offline drives.
pub fn storage_of(info: &StorageInfo, write_quorum: Option<i32>) -> Storage {
    let count = |f: &dyn Fn(&&crate::s3admin::Drive) -> bool| {
        i32::try_from(info.drives.iter().filter(f).count()).unwrap_or(i32::MAX)
    };
    let pools = info.backend.standard_sc_data.len();
    let (mut raw_capacity, mut raw_usage) = (vec![0u64; pools], vec![0u64; pools]);
    for drive in &info.drives {
        if let (Some(c), Some(u)) = (
            raw_capacity.get_mut(drive.pool_index),
            raw_usage.get_mut(drive.pool_index),
        ) {
            *c = c.saturating_add(drive.available_space);
            *u = u.saturating_add(drive.used_space);
        }
    }
    let (mut capacity, mut usage) = (0u64, 0u64);
    for (pool, data) in info.backend.standard_sc_data.iter().enumerate() {
        let parity = info
            .backend
            .standard_sc_parities
            .get(pool)
            .copied()
            .unwrap_or(info.backend.standard_sc_parity);
        let total = data.saturating_add(parity);
        if total == 0 {
            continue;
        }
        // u128: drive sizes in bytes times a handful of drives stay far below its range.
        let net = |raw: u64| (u128::from(raw) * u128::from(*data) / u128::from(total)) as u64;
        capacity = capacity.saturating_add(net(raw_capacity[pool]));
        usage = usage.saturating_add(net(raw_usage[pool]));
    }
    let signed = |v: u64| Some(i64::try_from(v).unwrap_or(i64::MAX));
    let mut offline_pods: Vec<String> = info
        .drives
        .iter()
        .filter(|d| !d.online())
        .map(|d| pod_of(&d.endpoint))
        .collect();
    offline_pods.sort();
    offline_pods.dedup();
    Storage {
        online: count(&|d| d.online()),
        offline: count(&|d| !d.online()),
        healing: count(&|d| d.healing),
        write_quorum,
        usage: TenantUsage {
            capacity: signed(capacity),
            raw_capacity: signed(raw_capacity.iter().sum()),
            usage: signed(usage),
            raw_usage: signed(raw_usage.iter().sum()),
            ..TenantUsage::default()
        },
        offline_pods,
    }
}

/// The pod of a drive endpoint (`https://<pod>.<headless>.<ns>.svc...:9000/export0`).
fn pod_of(endpoint: &str) -> String {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    host.split(['.', ':', '/'])
        .next()
        .unwrap_or(host)
        .to_owned()
}

/// Where the tenant's S3 Service answers, over the tenant's TLS trusting the CA that signed its
/// certificate. Connects to the Service's ClusterIP (no cluster DNS needed: the operator may run
/// outside the cluster) and verifies the Service's DNS name. `Err` says why there is none yet.
async fn tenant_endpoint(
    ctx: &Context,
    tenant: &Tenant,
) -> Result<Result<Endpoint, String>, StepError> {
    let ns = tenant.namespace();
    let domain = &ctx.settings.defaults.cluster_domain;
    let service = ctx.caches.service(ns, S3_SERVICE_NAME);
    let Some(ip) = service
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.cluster_ip.as_deref())
        .and_then(|ip| IpAddr::from_str(ip).ok())
    else {
        return Ok(Err(format!(
            "the Service {S3_SERVICE_NAME:?} has no ClusterIP yet"
        )));
    };
    let host = format!("{S3_SERVICE_NAME}.{ns}.svc.{domain}");
    if !tenant.tls() {
        return Ok(Ok(Endpoint {
            addr: SocketAddr::new(ip, 80),
            host,
            tls: None,
        }));
    }
    // The CA that signed the certificate the servers present: ca.crt of the Secret they mount
    // (ours for requestAutoCert, whichever CA signed it then; else the user's first external
    // certificate), and the current operator CA.
    let mounted = if tenant.spec.request_auto_cert.unwrap_or(true) {
        ctx.caches.own_ca(ns, &tls_secret_name(tenant))
    } else if let Some(external) = tenant.spec.external_cert_secret.first() {
        ctx.caches
            .secret(&ctx.client, ns, &external.name)
            .await
            .at(Step::Health)?
            .and_then(|s| s.data.as_ref()?.get("ca.crt").map(|ca| ca.0.clone()))
    } else {
        None
    };
    let mut roots = rustls::RootCertStore::empty();
    let mut add = |pem: &[u8]| {
        for cert in CertificateDer::pem_slice_iter(pem).flatten() {
            let _ = roots.add(cert);
        }
    };
    add(ctx.settings.ca.cert_pem().as_bytes());
    if let Some(ca) = mounted {
        add(&ca);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    Ok(match config {
        Ok(c) => Ok(Endpoint {
            addr: SocketAddr::new(ip, 443),
            host,
            tls: Some(Arc::new(c)),
        }),
        Err(e) => Err(format!("TLS setup: {e}")),
    })
}

/// The status a reconcile that got this far reports, and whether the S3 cluster just stopped
/// answering (worth a Warning event).
pub fn status_of(
    tenant: &Tenant,
    observed: &Observed,
    provisioned: Option<&Provisioned>,
) -> (TenantStatus, Option<String>) {
    let was = |type_: &str| status::was(tenant, type_);
    let servers_ok = observed.servers_up();
    let servers = format!(
        "{} of {} servers ready",
        observed.servers_ready, observed.servers
    );
    let (ready, ready_reason, ready_message) = match &observed.s3 {
        None if servers_ok => (true, "ServersReady", servers.clone()),
        None => (false, "ServersStarting", servers.clone()),
        Some(S3Health::Healthy) => (
            true,
            "S3Healthy",
            format!("the S3 cluster answers healthy; {servers}"),
        ),
        Some(S3Health::Unhealthy(why)) => (false, "S3Unhealthy", format!("{why}; {servers}")),
    };
    let drives_offline = observed.storage.as_ref().filter(|s| s.offline > 0);
    let converged = ready && servers_ok;
    let fully = converged && drives_offline.is_none();
    // Degraded once it had been up: a Tenant still starting is progressing, not degraded. Offline
    // drives degrade it at once, naming their pods.
    let degraded = (!fully && (was("Ready") || was("Degraded"))) || drives_offline.is_some();
    let offline_message = |s: &Storage| {
        format!(
            "{} of {} drives offline, on pod(s) {}",
            s.offline,
            s.offline + s.online,
            s.offline_pods.join(", ")
        )
    };
    let (degraded_reason, degraded_message) = match (degraded, servers_ok, drives_offline) {
        (false, _, _) => ("Reconciled", String::new()),
        // A server that is gone takes its drives with it: which pods, the cluster says.
        (true, false, Some(s)) => (
            "ServersNotReady",
            format!("{ready_message}; {}", offline_message(s)),
        ),
        (true, false, None) => ("ServersNotReady", ready_message.clone()),
        (true, true, Some(s)) if ready => ("DrivesOffline", offline_message(s)),
        (true, true, _) => (ready_reason, ready_message.clone()),
    };
    let stopped_answering = was("Ready") && !ready && observed.s3.is_some();
    let mut status = tenant.status.clone().unwrap_or_default();
    status.current_state = Some(
        if ready {
            STATE_INITIALIZED
        } else {
            STATE_WAITING
        }
        .to_owned(),
    );
    status.available_replicas = Some(observed.servers_ready);
    status.pools = Some(observed.pools.clone());
    status.observed_generation = tenant.metadata.generation;
    status.health_status = Some(
        match (converged, ready) {
            (true, _) => "green",
            (false, true) => "yellow",
            (false, false) if observed.s3.is_some() && was("Ready") => "red",
            (false, false) => "yellow",
        }
        .to_owned(),
    );
    status.health_message = match &observed.s3 {
        Some(S3Health::Unhealthy(why)) => Some(why.clone()),
        _ => None,
    };
    if let Some(storage) = observed.storage.as_ref().filter(|_| ready) {
        // The Go operator's meanings: drives offline or healing is yellow, fewer online than the
        // write quorum is red.
        if storage.offline > 0 || storage.healing > 0 {
            status.health_status = Some("yellow".to_owned());
            status.health_message = Some(if storage.healing > 0 {
                format!("{} drive(s) healing", storage.healing)
            } else {
                degraded_message.clone()
            });
        }
        if storage.write_quorum.is_some_and(|q| storage.online < q) {
            status.health_status = Some("red".to_owned());
        }
        status.drives_online = Some(storage.online);
        status.drives_offline = Some(storage.offline);
        status.drives_healing = Some(storage.healing);
        status.write_quorum = storage.write_quorum;
        status.usage = Some(storage.usage.clone());
    }
    if let Some(p) = provisioned {
        status.provisioned_users = (!tenant.spec.users.is_empty()).then_some(p.users);
        status.provisioned_buckets = (!tenant.spec.buckets.is_empty()).then_some(p.buckets);
    }
    let provisioned_condition = provisioned.map(|p| match &p.problem {
        None => (
            true,
            "Provisioned",
            format!(
                "{} user(s) and {} bucket(s) in place",
                tenant.spec.users.len(),
                tenant.spec.buckets.len()
            ),
        ),
        Some((reason, message)) => (false, *reason, message.clone()),
    });
    status.conditions = status::conditions(
        tenant,
        status::Conditions {
            ready: (ready, ready_reason, ready_message.clone()),
            degraded: (degraded, degraded_reason, degraded_message),
            invalid: status::quiet("Valid"),
            // Until every server runs and the cluster answers, the Tenant is still converging.
            reconciling: if converged {
                status::quiet("Reconciled")
            } else {
                (
                    true,
                    if servers_ok {
                        ready_reason
                    } else {
                        "ServersNotReady"
                    },
                    ready_message.clone(),
                )
            },
            stalled: status::quiet("Reconciled"),
            provisioned: provisioned_condition,
        },
    );
    (status, stopped_answering.then_some(ready_message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3admin::{Backend, Drive};

    fn drive(pod: &str, pool: usize, state: &str) -> Drive {
        Drive {
            endpoint: format!("https://{pod}.t-hl.ns.svc.cluster.local:9000/export0"),
            state: state.to_owned(),
            pool_index: pool,
            available_space: 1000,
            used_space: 100,
            ..Drive::default()
        }
    }

    #[test]
    fn usage_is_net_of_parity_and_offline_drives_name_their_pods() {
        let info = StorageInfo {
            drives: vec![
                drive("t-p0-0", 0, "ok"),
                drive("t-p0-1", 0, "offline"),
                drive("t-p0-1", 0, "offline"),
                drive("t-p0-2", 0, "ok"),
            ],
            backend: Backend {
                standard_sc_data: vec![2],
                standard_sc_parities: vec![2],
                standard_sc_parity: 2,
            },
        };
        let s = storage_of(&info, Some(3));
        assert_eq!((s.online, s.offline, s.healing), (2, 2, 0));
        assert_eq!(s.offline_pods, ["t-p0-1"]);
        assert_eq!(s.usage.raw_capacity, Some(4000));
        assert_eq!(s.usage.capacity, Some(2000), "half the drives hold parity");
        assert_eq!(s.usage.usage, Some(200));

        let tenant: Tenant = serde_json::from_value(serde_json::json!({
            "apiVersion": "minio.min.io/v2", "kind": "Tenant",
            "metadata": {"name": "t", "namespace": "ns"},
            "spec": {"pools": [{"name": "p0", "servers": 4, "volumesPerServer": 1}]}
        }))
        .unwrap();
        let observed = Observed {
            pools: Vec::new(),
            servers_ready: 4,
            servers: 4,
            s3: Some(S3Health::Healthy),
            storage: Some(s),
        };
        let (status, _) = status_of(&tenant, &observed, None);
        assert_eq!(
            status.health_status.as_deref(),
            Some("red"),
            "2 online < quorum 3"
        );
        let degraded = |status: &TenantStatus| {
            let c = status.conditions.iter().find(|c| c.type_ == "Degraded");
            c.map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
                .unwrap()
        };
        assert_eq!(
            degraded(&status),
            (
                "True".to_owned(),
                "DrivesOffline".to_owned(),
                "2 of 4 drives offline, on pod(s) t-p0-1".to_owned()
            )
        );
        assert_eq!(
            (status.drives_online, status.drives_offline),
            (Some(2), Some(2))
        );

        // The server of those drives gone (its pod not ready): both said, in one message.
        let observed = Observed {
            servers_ready: 3,
            ..observed
        };
        let (status, _) = status_of(&tenant, &observed, None);
        assert_eq!(
            degraded(&status),
            (
                "True".to_owned(),
                "ServersNotReady".to_owned(),
                "the S3 cluster answers healthy; 3 of 4 servers ready; 2 of 4 drives offline, on pod(s) t-p0-1".to_owned()
            )
        );
    }
}
