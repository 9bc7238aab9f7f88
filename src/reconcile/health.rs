//! Health: how many servers are ready (from the StatefulSets) and, where pods really run, whether
//! the S3 cluster itself answers healthy, and what its admin API says of its drives and usage.
//! Ready means the S3 cluster answers: pods Running is not enough (a server can run and still lack
//! write quorum, a certificate or its peers).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use kube::api::Api;

use super::caches::CachedStatefulSet;
use super::context::{Context, ReadyWhen};
use super::desired::{self, S3_PORT};
use super::observed::{Observed, S3Health, storage_of};
use super::outcome::{AtStep, Step, StepError, log_admin_error};
use super::status;
use crate::api::names::{S3_SERVICE_NAME, pool_statefulset_name, tls_secret_name};
use crate::api::status::{
    CONDITION_READY, POOL_CREATED, POOL_INITIALIZED, POOL_NOT_CREATED, PoolStatus,
};
use crate::api::tenant::Tenant;
use crate::certs::client;
use crate::s3admin::{
    AdminClient, AdminError, CLUSTER_HEALTH_PATH, ClusterHealth, Credentials, Endpoint,
};

/// Observes the tenant; hands back the admin client when the S3 cluster answered healthy (the
/// provisioning phase uses it).
pub async fn observe(
    ctx: &Context,
    tenant: &Tenant,
    admin: Option<&Credentials>,
) -> Result<(Observed, Option<AdminClient>), StepError> {
    let mut observed = observe_pools(ctx, tenant).await?;
    if ctx.settings.ready_when == ReadyWhen::PodsReady {
        return Ok((observed, None));
    }
    let client = ask_s3(ctx, tenant, admin, &mut observed).await?;
    Ok((observed, client))
}

/// Each pool's StatefulSet and its ready servers.
async fn observe_pools(ctx: &Context, tenant: &Tenant) -> Result<Observed, StepError> {
    let ns = tenant.namespace();
    let mut pools = Vec::new();
    let (mut servers_ready, mut servers) = (0, 0);
    let ready_in = |s: &Option<Arc<CachedStatefulSet>>| {
        s.as_ref()
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    };
    for pool in &tenant.spec.pools {
        let sts_name = pool_statefulset_name(tenant, pool);
        let mut live = ctx.caches.statefulset(ns, &sts_name);
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
        let pool_ready = ready_in(&live);
        servers_ready += pool_ready;
        servers += pool.servers;
        let state = match (&live, pool_ready >= pool.servers) {
            (None, _) => POOL_NOT_CREATED,
            (Some(_), true) => POOL_INITIALIZED,
            (Some(_), false) => POOL_CREATED,
        };
        pools.push(PoolStatus {
            ss_name: sts_name,
            state: state.to_owned(),
            legacy_security_context: Some(false),
        });
    }
    Ok(Observed {
        pools,
        servers_ready,
        servers,
        s3: None,
        storage: None,
    })
}

/// The S3 cluster's own answer, and its drives and usage once it takes requests; the admin client
/// when it does.
async fn ask_s3(
    ctx: &Context,
    tenant: &Tenant,
    admin: Option<&Credentials>,
    observed: &mut Observed,
) -> Result<Option<AdminClient>, StepError> {
    let unhealthy = |observed: &mut Observed, why: String| {
        observed.s3 = Some(S3Health::Unhealthy(why));
        None
    };
    if observed.servers_ready == 0 {
        return Ok(unhealthy(observed, "no server is ready yet".to_owned()));
    }
    let endpoint = match tenant_endpoint(ctx, tenant).await? {
        Ok(e) => e,
        Err(why) => return Ok(unhealthy(observed, why)),
    };
    let client = AdminClient::new(
        endpoint,
        admin.cloned().unwrap_or_else(Credentials::anonymous),
    );
    let health = client.cluster_health().await;
    observed.s3 = Some(health_of(&client, &health));
    let Some(health) = health.ok().filter(|h| h.healthy) else {
        return Ok(None);
    };
    // The Service answered through one server. Before a Tenant is called Ready (first, or again),
    // every server must say so itself: one still joining its peers answers a write with 503
    // SlowDownWrite although another already has quorum. Once Ready, the Service alone is
    // asked (a Ready Tenant's pass costs one request, not a LIST of its pods and one per server).
    if !status::was(tenant, CONDITION_READY)
        && let Some(why) = server_not_healthy(ctx, tenant, client.endpoint()).await
    {
        return Ok(unhealthy(observed, why));
    }
    if admin.is_none() {
        return Ok(None);
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
            let why = format!(
                "the S3 cluster has write quorum but does not take requests yet: {message}"
            );
            return Ok(unhealthy(observed, why));
        }
        Err(error) => log_admin_error(tenant, "list buckets", &error),
        // The credentials the servers accept: after a rotation, the restart that gives them the
        // new ones is asked with these (reconcile/in_place.rs).
        Ok(()) => ctx.memory.remember_admin(
            tenant.metadata.uid.as_deref().unwrap_or_default(),
            client.credentials(),
        ),
    }
    match client.storage_info().await {
        Ok(info) => observed.storage = Some(storage_of(&info, health.write_quorum)),
        // The cluster answers; only the report is missing. Ready does not depend on it.
        Err(error) => log_admin_error(tenant, "storage info", &error),
    }
    Ok(Some(client))
}

/// What the cluster health endpoint's answer says, in words.
fn health_of(client: &AdminClient, answer: &Result<ClusterHealth, AdminError>) -> S3Health {
    match answer {
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
    }
}

/// Why not every ready server of `tenant` answers healthy on its own, asked by pod IP (with the
/// Service's host name and TLS, which every server's certificate carries); `None` when all do.
async fn server_not_healthy(ctx: &Context, tenant: &Tenant, service: &Endpoint) -> Option<String> {
    let mut servers: Vec<(String, IpAddr)> = ctx
        .caches
        .pods_of(tenant)
        .iter()
        .filter(|p| p.ready())
        .filter_map(|p| Some((p.name().to_owned(), p.ip()?)))
        .collect();
    servers.sort();
    let answers = futures::future::join_all(servers.iter().map(|(name, ip)| async move {
        let client = AdminClient::new(server_endpoint(service, *ip), Credentials::anonymous());
        (name, client.cluster_health().await)
    }))
    .await;
    answers.into_iter().find_map(|(name, answer)| match answer {
        Ok(h) if h.healthy => None,
        Ok(h) => Some(format!(
            "the S3 cluster answers healthy, but its server {name} answers HTTP {} on {CLUSTER_HEALTH_PATH}: it has not joined its peers yet",
            h.status
        )),
        Err(e) => Some(format!(
            "the S3 cluster answers healthy, but its server {name} does not: {e}"
        )),
    })
}

/// One server of the tenant, by pod IP, with the Service's host name and TLS (every server's
/// certificate carries the Service's names).
pub fn server_endpoint(service: &Endpoint, ip: IpAddr) -> Endpoint {
    let port = u16::try_from(S3_PORT).unwrap_or(9000);
    Endpoint {
        addr: SocketAddr::new(ip, port),
        ..service.clone()
    }
}

/// Where the tenant's S3 Service answers, over the tenant's TLS trusting the CA that signed its
/// certificate. Connects to the Service's ClusterIP (no cluster DNS needed: the operator may run
/// outside the cluster) and verifies the Service's DNS name. `Err` says why there is none yet.
pub async fn tenant_endpoint(
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
    // The servers present one of the certificates they serve (certs_dir.rs; by SNI when there
    // are several): trusted by the CA each one's Secret holds (ours for requestAutoCert, whichever
    // CA signed it then) and the current operator CA; a user's Secret without a CA by its very
    // certificate, pinned.
    let (mut mounted, mut pinned) = (Vec::new(), Vec::new());
    if tenant.spec.request_auto_cert.unwrap_or(true) {
        mounted.extend(ctx.caches.own_ca(ns, &tls_secret_name(tenant)));
    }
    for external in &tenant.spec.external_cert_secret {
        let secret = ctx
            .caches
            .secret(&ctx.client, ns, &external.name)
            .await
            .at(Step::Health)?;
        let data = secret.as_ref().and_then(|s| s.data.as_ref());
        let value = |key: &str| data.and_then(|d| d.get(key)).map(|v| v.0.clone());
        match secret
            .as_ref()
            .and_then(|s| desired::CertKeys::of_secret(s))
        {
            Some(keys) if keys.ca == keys.cert => pinned.extend(value(keys.cert)),
            Some(keys) => mounted.extend(value(keys.ca)),
            None => {}
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    // The CAs are ours or the user's Secrets': one that does not parse is left out, and the
    // health check then says which certificate it could not verify.
    let _ = client::add_pem(&mut roots, ctx.settings.ca.current().bundle_pem.as_bytes());
    for ca in &mounted {
        let _ = client::add_pem(&mut roots, ca);
    }
    let config = if pinned.is_empty() {
        client::client_config(roots, None, &[]).map_err(|e| e.to_string())
    } else {
        pinned
            .iter()
            .map(|pem| client::first_certificate(pem))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|certs| {
                client::pinned_or_rooted_config(certs, roots).map_err(|e| e.to_string())
            })
    };
    Ok(match config {
        Ok(c) => Ok(Endpoint {
            addr: SocketAddr::new(ip, 443),
            host,
            tls: Some(Arc::new(c)),
        }),
        Err(e) => Err(format!("TLS setup: {e}")),
    })
}
