//! Health: how many servers are ready (from the StatefulSets) and, where pods really run, whether
//! the S3 cluster itself answers healthy. Ready means the S3 cluster answers: pods Running is not
//! enough (a server can run and still lack write quorum, a certificate or its peers).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::controller::Context;
use super::status::{self, AtStep, STATE_INITIALIZED, STATE_WAITING, Step, StepError};
use crate::api::names::{S3_SERVICE_NAME, pool_statefulset_name, tls_secret_name};
use crate::api::status::{PoolStatus, TenantStatus};
use crate::api::tenant::Tenant;

/// The server's cluster health endpoint: 200 while the cluster has write quorum.
pub const CLUSTER_HEALTH_PATH: &str = "/minio/health/cluster";
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `Ready` requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadyWhen {
    /// Every server's pod is ready and the S3 cluster answers healthy on its health endpoint.
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

/// What the health phase saw.
#[derive(Clone, Debug)]
pub struct Observed {
    pub pools: Vec<PoolStatus>,
    pub servers_ready: i32,
    pub servers: i32,
    /// `None` when not asked ([`ReadyWhen::PodsReady`]).
    pub s3: Option<S3Health>,
}

pub async fn observe(ctx: &Context, tenant: &Tenant) -> Result<Observed, StepError> {
    let ns = tenant.namespace();
    let sts_api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    let mut pools = Vec::new();
    let (mut servers_ready, mut servers) = (0, 0);
    for pool in &tenant.spec.pools {
        let sts_name = pool_statefulset_name(tenant, pool);
        let live = sts_api.get_opt(&sts_name).await.at(Step::Health)?;
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
    let s3 = match ctx.settings.ready_when {
        ReadyWhen::PodsReady => None,
        ReadyWhen::S3Healthy if servers_ready == 0 => {
            Some(S3Health::Unhealthy("no server is ready yet".to_owned()))
        }
        ReadyWhen::S3Healthy => Some(probe_tenant(ctx, tenant).await?),
    };
    Ok(Observed {
        pools,
        servers_ready,
        servers,
        s3,
    })
}

/// Asks the tenant's S3 Service for its cluster health, over the tenant's TLS, trusting the CA that
/// signed the tenant's certificate. Connects to the Service's ClusterIP (no cluster DNS needed:
/// the operator may run outside the cluster) and verifies the Service's DNS name.
async fn probe_tenant(ctx: &Context, tenant: &Tenant) -> Result<S3Health, StepError> {
    let ns = tenant.namespace();
    let domain = &ctx.settings.defaults.cluster_domain;
    let service = Api::<Service>::namespaced(ctx.client.clone(), ns)
        .get_opt(S3_SERVICE_NAME)
        .await
        .at(Step::Health)?;
    let Some(ip) = service
        .and_then(|s| s.spec)
        .and_then(|s| s.cluster_ip)
        .and_then(|ip| IpAddr::from_str(&ip).ok())
    else {
        return Ok(S3Health::Unhealthy(format!(
            "the Service {S3_SERVICE_NAME:?} has no ClusterIP yet"
        )));
    };
    let host = format!("{S3_SERVICE_NAME}.{ns}.svc.{domain}");
    if !tenant.tls() {
        return Ok(probe(SocketAddr::new(ip, 80), &host, None).await);
    }
    // The CA that signed the certificate the servers present: ca.crt of the Secret they mount
    // (the operator CA for requestAutoCert, whichever CA that was), and the current operator CA.
    let mounted = if tenant.spec.request_auto_cert.unwrap_or(true) {
        Some(tls_secret_name(tenant))
    } else {
        tenant
            .spec
            .external_cert_secret
            .first()
            .map(|s| s.name.clone())
    };
    let mut roots = rustls::RootCertStore::empty();
    let mut add = |pem: &[u8]| {
        for cert in CertificateDer::pem_slice_iter(pem).flatten() {
            let _ = roots.add(cert);
        }
    };
    add(ctx.settings.ca.cert_pem().as_bytes());
    if let Some(name) = mounted
        && let Some(secret) = Api::<Secret>::namespaced(ctx.client.clone(), ns)
            .get_opt(&name)
            .await
            .at(Step::Health)?
        && let Some(ca) = secret.data.as_ref().and_then(|d| d.get("ca.crt"))
    {
        add(&ca.0);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    let config = match config {
        Ok(c) => c,
        Err(e) => return Ok(S3Health::Unhealthy(format!("TLS setup: {e}"))),
    };
    Ok(probe(SocketAddr::new(ip, 443), &host, Some(Arc::new(config))).await)
}

/// GET [`CLUSTER_HEALTH_PATH`] on `addr` (HTTPS with `tls`, verifying `host`), bounded in time.
pub async fn probe(
    addr: SocketAddr,
    host: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> S3Health {
    match tokio::time::timeout(PROBE_TIMEOUT, probe_once(addr, host, tls)).await {
        Ok(Ok(200)) => S3Health::Healthy,
        Ok(Ok(503)) => S3Health::Unhealthy(format!(
            "https://{host}{CLUSTER_HEALTH_PATH} answered 503: the cluster has no write quorum"
        )),
        Ok(Ok(code)) => {
            S3Health::Unhealthy(format!("{host}{CLUSTER_HEALTH_PATH} answered HTTP {code}"))
        }
        Ok(Err(e)) => S3Health::Unhealthy(format!("{host} ({addr}) cannot be reached: {e}")),
        Err(_) => S3Health::Unhealthy(format!(
            "{host} ({addr}) did not answer within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

async fn probe_once(
    addr: SocketAddr,
    host: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<u16, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    match tls {
        None => get(tcp, host).await,
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| e.to_string())?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            get(stream, host).await
        }
    }
}

async fn get<S>(stream: S, host: &str) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::get(CLUSTER_HEALTH_PATH)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let _ = response.into_body().collect().await;
    Ok(code)
}

/// The status a reconcile that got this far reports, and whether the S3 cluster just stopped
/// answering (worth a Warning event).
pub fn status_of(tenant: &Tenant, observed: &Observed) -> (TenantStatus, Option<String>) {
    let was = |type_: &str| status::was(tenant, type_);
    let servers_ok = observed.servers_ready >= observed.servers;
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
    let fully = ready && servers_ok;
    // Degraded once it had been up: a Tenant still starting is progressing, not degraded.
    let degraded = !fully && (was("Ready") || was("Degraded"));
    let degraded_message = if degraded {
        ready_message.clone()
    } else {
        String::new()
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
        match (fully, ready) {
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
    status.conditions = status::conditions(
        tenant,
        status::Conditions {
            ready: (ready, ready_reason, ready_message.clone()),
            degraded: (
                degraded,
                match (degraded, servers_ok) {
                    (false, _) => "Reconciled",
                    (true, false) => "ServersNotReady",
                    (true, true) => ready_reason,
                },
                degraded_message,
            ),
            invalid: status::quiet("Valid"),
            // Until every server runs and the cluster answers, the Tenant is still converging.
            reconciling: if fully {
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
        },
    );
    (status, stopped_answering.then_some(ready_message))
}
