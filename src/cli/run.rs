//! `run`: the webhook server (and, in a cluster, certificate management and webhook registration).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{EXIT_OK, EXIT_UNREADABLE};
use crate::admission::DefaultsConfig;
use crate::certs::serving::{ServingCertificates, WebhookConfigurations};
use crate::certs::{self, Ca, store};
use crate::operator::{Operator, Reconciler, stopped};
use crate::reconcile::{ReadyWhen, Settings, leader};
use crate::webhook::config::{self, Target};
use crate::webhook::server;
use crate::webhook::tls::ServingCert;

pub const FIELD_MANAGER: &str = "hanzo-s3-operator";
/// How often each replica re-reads the CA Secret (rotation steps, renewal of its certificate).
const REFRESH_PERIOD: Duration = Duration::from_secs(600);
/// How often externally managed certificate files are checked for a new pair.
const RELOAD_PERIOD: Duration = Duration::from_secs(10);

/// Run the admission webhook server (in a cluster, or standalone for local tests).
///
/// In a cluster, the operator keeps its CA in a Secret of its namespace, signs its own serving
/// certificate in memory, renews it before expiry, and registers both webhook configurations with
/// the CA bundle. With --tls-cert-file/--tls-key-file it serves an externally managed certificate
/// (e.g. from cert-manager) instead and reloads it when the files change.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator run --standalone --listen 127.0.0.1:8443 --ca-out /tmp/webhook-ca.pem\n  \
    hanzo-s3-operator run --namespace hanzo-s3-operator --service-name hanzo-s3-operator-webhook\n  \
    hanzo-s3-operator run --tls-cert-file /certs/tls.crt --tls-key-file /certs/tls.key --no-webhook-config")]
pub struct RunArgs {
    /// No cluster: generate a CA, serve a certificate for localhost and 127.0.0.1, skip cluster checks.
    #[arg(long)]
    pub standalone: bool,
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// With --standalone: write the generated CA certificate (PEM) here, for clients to trust.
    #[arg(long, value_name = "FILE", requires = "standalone")]
    pub ca_out: Option<PathBuf>,
    /// Serve this certificate (PEM) instead of one signed by the operator CA; reloaded on change.
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Kubeconfig to use instead of the in-cluster service account (or $KUBECONFIG).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The operator's namespace: holds the CA Secret, and is exempt from the webhooks.
    #[arg(long, env = "POD_NAMESPACE", default_value = "hanzo-s3-operator")]
    pub namespace: String,
    /// The Service in front of the webhook server (port 443).
    #[arg(long, default_value = "hanzo-s3-operator-webhook")]
    pub service_name: String,
    /// Register the webhooks at this URL (https://host:port) instead of the Service.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// failurePolicy of the mutating webhook; validation always fails closed.
    #[arg(long, default_value = "Fail", value_parser = ["Fail", "Ignore"])]
    pub mutation_failure_policy: String,
    /// Do not create or update the webhook configurations (e.g. when cert-manager injects the CA).
    #[arg(long)]
    pub no_webhook_config: bool,
    /// Reconcile Tenants in these namespaces only (comma-separated; default: all). Pairs with
    /// per-namespace Roles instead of cluster-wide access to Secrets.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS,..."
    )]
    pub watch_namespaces: Vec<String>,
    /// Serve the webhooks only; do not run the reconciler.
    #[arg(long)]
    pub no_reconcile: bool,
    /// Answer reviews only from callers presenting a client certificate this CA (PEM) signed: the
    /// apiserver, given one through its admission configuration (docs/operations.md). Probes and
    /// /metrics stay open.
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    /// What a Tenant's Ready condition requires. `pods-ready` is for clusters whose nodes run no
    /// containers (KWOK fake nodes), where no S3 server could answer.
    #[arg(long, value_enum, default_value_t = ReadyWhen::S3Healthy, value_name = "WHEN")]
    pub ready_when: ReadyWhen,
    /// Tenants reconciled at once. Bounds the operator's memory when many Tenants change together
    /// (a restore, a first install); 0 means no bound.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = crate::reconcile::context::DEFAULT_CONCURRENCY, value_name = "N")]
    pub max_concurrent_reconciles: u16,
    /// How long the tenants' certificates the operator CA signs (requestAutoCert) are valid, e.g.
    /// 90d or 300s; each is signed again when a third of it is left.
    #[arg(long, env = "TENANT_CERTIFICATE_LIFETIME", default_value = "90d", value_parser = super::parse_duration, value_name = "DURATION")]
    pub tenant_certificate_lifetime: std::time::Duration,
    /// How long the metrics token of a Tenant with spec.prometheusOperator is valid (its
    /// ServiceMonitor sends it), e.g. 24h or 120s; each is made again when a third of it is left.
    #[arg(long, env = "TENANT_METRICS_TOKEN_LIFETIME", default_value = "24h", value_parser = super::parse_duration, value_name = "DURATION")]
    pub tenant_metrics_token_lifetime: std::time::Duration,
    /// Restart servers in place for a change of their configuration file alone (a variable, the
    /// root credentials, a pool added) instead of replacing their pods: fewer failed requests,
    /// but under load it was seen to lose acknowledged objects (docs/operations.md). Off until
    /// that is understood.
    #[arg(long, env = "RESTART_IN_PLACE")]
    pub restart_in_place: bool,
    /// How long a rotation of the operator CA announces the next CA (in every bundle: webhook
    /// configurations, tenants' ca.crt) before it signs. Tenants' certificates move to it only
    /// once their servers restarted trusting it, whatever this says.
    #[arg(long, env = "CA_ANNOUNCE_FOR", default_value = "15m", value_parser = super::parse_duration, value_name = "DURATION")]
    pub ca_announce_for: std::time::Duration,
    /// How long the replaced CA stays in the bundles after the next one signs.
    #[arg(long, env = "CA_KEEP_PREVIOUS_FOR", default_value = "24h", value_parser = super::parse_duration, value_name = "DURATION")]
    pub ca_keep_previous_for: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    #[error(transparent)]
    Cert(#[from] certs::CertError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Certificates(#[from] crate::certs::serving::RefreshError),
    #[error("serving certificate: {0}")]
    Tls(#[from] crate::webhook::tls::TlsError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Kubernetes client: {0}")]
    Client(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

pub fn run(args: &RunArgs) -> u8 {
    let command = async {
        run_async(args)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "operator stopped"))
    };
    super::block_on(command, EXIT_UNREADABLE).map_or_else(|code| code, |()| EXIT_OK)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}

async fn run_async(args: &RunArgs) -> Result<(), RunError> {
    let cert = Arc::new(ServingCert::default());
    let defaults = DefaultsConfig::from_env();
    // One signal stops the server (after in-flight reviews), the certificate refresh and the
    // controller.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    if args.standalone {
        return standalone(args, defaults, cert, stop).await;
    }
    let client = client(args).await?;
    let listener = server::bind(args.listen).await?;
    let ca = serving_certificate(args, &client, &cert, &stop).await?;
    // Every replica serves the webhooks; only the holder of the Lease reconciles. Tenants' TLS
    // certificates are signed by the operator CA as this replica last read it.
    let reconciler = (!args.no_reconcile).then(|| {
        let mut settings = Settings::following(defaults.clone(), ca, args.ready_when);
        settings.namespaces = args.watch_namespaces.clone();
        settings.concurrency = args.max_concurrent_reconciles;
        settings.tenant_certificate_lifetime = args.tenant_certificate_lifetime;
        settings.metrics_token_lifetime = args.tenant_metrics_token_lifetime;
        settings.restart_in_place = args.restart_in_place;
        Reconciler {
            settings,
            lease: Some(leader::LeaseConfig::new(
                &args.namespace,
                &leader::default_identity(),
            )),
        }
    });
    let options = server_options(args)?;
    tracing::info!(listen = %args.listen, namespace = %args.namespace, client_certificates = options.client_ca_pem.is_some(), "webhook server ready");
    let operator = Operator {
        client: Some(client),
        defaults,
        cert,
        server: options,
        namespaces: args.watch_namespaces.clone(),
        reconciler,
    };
    Ok(operator.run(listener, stop).await?)
}

/// The serving certificate: externally managed files, or signed by the operator CA (whose bundle
/// is published to the webhook configurations before any certificate it signs is served). Either
/// way, the operator CA that signs Tenants' certificates, as each refresh reads it (with
/// externally managed files: as read at start).
async fn serving_certificate(
    args: &RunArgs,
    client: &kube::Client,
    cert: &Arc<ServingCert>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<store::SharedCa, RunError> {
    if let (Some(cert_file), Some(key_file)) = (&args.tls_cert_file, &args.tls_key_file) {
        load_files(cert, cert_file, key_file)?;
        tokio::spawn(reload_files(
            cert.clone(),
            cert_file.clone(),
            key_file.clone(),
            stopped(stop.clone()),
        ));
        // Tenants' TLS certificates are still signed by the operator CA.
        let stored = store::ensure_ca_with(client.clone(), &args.namespace, &policy(args)).await?;
        return Ok(store::SharedCa::fixed(stored));
    }
    let publisher = (!args.no_webhook_config).then(|| WebhookConfigurations {
        client: client.clone(),
        options: config_options(args),
        field_manager: FIELD_MANAGER.to_owned(),
    });
    let mut certificates = ServingCertificates::new(
        client.clone(),
        &args.namespace,
        serving_names(args),
        cert.clone(),
        publisher,
    )
    .with_policy(policy(args));
    let stored = certificates.refresh().await?;
    let (tenants, shared) = store::SharedCa::channel(stored);
    tokio::spawn(
        certificates
            .with_tenants(tenants)
            .run(REFRESH_PERIOD, stopped(stop.clone())),
    );
    Ok(shared)
}

fn policy(args: &RunArgs) -> store::RotationPolicy {
    store::RotationPolicy {
        announce_for: args.ca_announce_for,
        keep_previous_for: args.ca_keep_previous_for,
    }
}

/// No cluster: a CA generated in memory, a certificate for localhost and 127.0.0.1, and reviews
/// judged without the checks that need the API.
async fn standalone(
    args: &RunArgs,
    defaults: DefaultsConfig,
    cert: Arc<ServingCert>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), RunError> {
    let ca = Ca::generate("hanzo-s3-operator-standalone-ca")?;
    let pair = ca.sign_serving(&["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    cert.set_pem(&pair.cert_pem, &pair.key_pem)?;
    let listener = server::bind(args.listen).await?;
    if let Some(path) = &args.ca_out {
        std::fs::write(path, ca.cert_pem()).map_err(|source| RunError::Write {
            path: path.clone(),
            source,
        })?;
    }
    tracing::info!(
        listen = %args.listen,
        "standalone mode: no cluster; the one-Tenant-per-namespace and configuration Secret checks are skipped"
    );
    let options = server_options(args)?;
    tracing::info!(listen = %args.listen, client_certificates = options.client_ca_pem.is_some(), "webhook server ready");
    let operator = Operator {
        client: None,
        defaults,
        cert,
        server: options,
        namespaces: Vec::new(),
        reconciler: None,
    };
    Ok(operator.run(listener, stop).await?)
}

fn server_options(args: &RunArgs) -> Result<server::ServerOptions, RunError> {
    let client_ca_pem = match &args.client_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|source| RunError::Read {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    Ok(server::ServerOptions {
        client_ca_pem,
        ..server::ServerOptions::default()
    })
}

async fn client(args: &RunArgs) -> Result<kube::Client, RunError> {
    client_of(args.kubeconfig.as_deref()).await
}

/// A client from `kubeconfig`, or else from the environment (in-cluster, $KUBECONFIG).
pub(super) async fn client_of(
    kubeconfig: Option<&std::path::Path>,
) -> Result<kube::Client, RunError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| RunError::Client(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| RunError::Client(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| RunError::Client(e.to_string()))?,
    };
    // kube retries a 429, 503 or 504 inside the request, with a backoff growing to minutes: a
    // watch opened again while the apiserver restarted sat in those retries, and no Tenant created
    // afterwards was seen for 4 minutes (tests/faults). The watches back off on their own (from
    // 0.8 s to 30 s), and a failed pass is retried by the reconciler's error policy.
    config.default_retry = false;
    // Nothing the operator asks takes longer than its watches stay open, so an answer that has
    // not come by then never will.
    config.read_timeout.get_or_insert(Duration::from_secs(
        u64::from(crate::reconcile::controller::WATCH_TIMEOUT_SECS) + 20,
    ));
    kube::Client::try_from(config).map_err(|e| RunError::Client(e.to_string()))
}

/// The names the serving certificate must carry.
fn serving_names(args: &RunArgs) -> Vec<String> {
    let mut names = certs::service_names(&args.service_name, &args.namespace);
    if let Some(host) = args
        .webhook_url
        .as_deref()
        .and_then(|u| u.split("://").nth(1))
        .and_then(|rest| rest.split(['/', ':']).next())
    {
        names.push(host.to_owned());
    }
    names
}

/// The webhook configurations to publish (the CA bundle is filled in by each publication).
fn config_options(args: &RunArgs) -> config::Options {
    config::Options {
        target: match &args.webhook_url {
            Some(url) => Target::Url(url.clone()),
            None => Target::Service {
                namespace: args.namespace.clone(),
                name: args.service_name.clone(),
            },
        },
        ca_bundle_pem: None,
        operator_namespace: args.namespace.clone(),
        mutation_failure_policy: args.mutation_failure_policy.clone(),
    }
}

fn read_pair(cert_file: &PathBuf, key_file: &PathBuf) -> Result<(String, String), RunError> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|source| RunError::Read {
            path: p.clone(),
            source,
        })
    };
    Ok((read(cert_file)?, read(key_file)?))
}

fn load_files(cert: &ServingCert, cert_file: &PathBuf, key_file: &PathBuf) -> Result<(), RunError> {
    let (cert_pem, key_pem) = read_pair(cert_file, key_file)?;
    cert.set_pem(&cert_pem, &key_pem)?;
    Ok(())
}

/// cert-manager (through the kubelet) replaces the files in place: poll their content and serve
/// the new pair when it changes. Content, not mtime: a symlink swap or a rewrite within the same
/// second keeps a modification time that says nothing.
async fn reload_files(
    cert: Arc<ServingCert>,
    cert_file: PathBuf,
    key_file: PathBuf,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut served = read_pair(&cert_file, &key_file).ok();
    loop {
        tokio::select! {
            () = tokio::time::sleep(RELOAD_PERIOD) => {}
            () = &mut stop => return,
        }
        let pair = match read_pair(&cert_file, &key_file) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "cannot read the serving certificate files");
                continue;
            }
        };
        if served.as_ref() == Some(&pair) {
            continue;
        }
        match cert.set_pem(&pair.0, &pair.1) {
            Ok(()) => {
                tracing::info!(
                    file = %cert_file.display(),
                    not_after = ?cert.not_after(),
                    "serving certificate reloaded"
                );
                served = Some(pair);
            }
            // A half-written pair (certificate updated, key not yet): try again next round.
            Err(error) => tracing::warn!(%error, "cannot reload the serving certificate yet"),
        }
    }
}
