//! `run`: the webhook server (and, in a cluster, certificate management and webhook registration).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{EXIT_OK, EXIT_UNREADABLE};
use crate::admission::DefaultsConfig;
use crate::certs::{self, Ca, SERVING_VALIDITY, due_for_renewal, store};
use crate::reconcile::leader;
use crate::webhook::cluster::ApiCluster;
use crate::webhook::config::{self, Target};
use crate::webhook::metrics::Metrics;
use crate::webhook::server::{self, AppState};
use crate::webhook::tls::ServingCert;

pub const FIELD_MANAGER: &str = "hanzo-s3-operator";

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
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    #[error(transparent)]
    Cert(#[from] certs::CertError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
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
    let metrics = Metrics::default();
    let defaults = DefaultsConfig::from_env();
    if args.standalone {
        let ca = Ca::generate("hanzo-s3-operator-standalone-ca")?;
        let pair = ca.sign_serving(&["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        cert.set_pem(&pair.cert_pem, &pair.key_pem)?;
        metrics
            .certificate_expiry
            .set(store::unix_seconds(pair.not_after));
        if let Some(path) = &args.ca_out {
            std::fs::write(path, ca.cert_pem()).map_err(|source| RunError::Write {
                path: path.clone(),
                source,
            })?;
        }
        tracing::info!(listen = %args.listen, "standalone mode: no cluster; the one-Tenant-per-namespace and Secret checks are skipped");
        let state = Arc::new(AppState {
            defaults,
            cluster: None,
            metrics,
            cert,
        });
        let listener = server::bind(args.listen).await?;
        tracing::info!(listen = %args.listen, "webhook server ready");
        return Ok(server::serve(listener, state, shutdown_signal()).await?);
    }

    let client = client(args).await?;
    let listener = server::bind(args.listen).await?;
    let state = Arc::new(AppState {
        defaults,
        cluster: Some(ApiCluster::new(client.clone())),
        metrics,
        cert: cert.clone(),
    });
    // One signal stops both the server (after in-flight reviews) and the controller.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let stored = store::ensure_ca(client.clone(), &args.namespace).await?;
    match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert_file), Some(key_file)) => {
            load_files(&cert, cert_file, key_file)?;
            tokio::spawn(reload_files(
                cert.clone(),
                cert_file.clone(),
                key_file.clone(),
            ));
        }
        _ => {
            let bundle = refresh_certificate(&client, args, &state).await?;
            if !args.no_webhook_config {
                apply_webhook_configurations(&client, args, &bundle).await?;
            }
            tokio::spawn(renew_loop(
                client.clone(),
                args_target(args),
                state.clone(),
                bundle,
            ));
        }
    }
    if !args.no_reconcile {
        // Every replica serves the webhooks; only the holder of the Lease reconciles. Tenants' TLS
        // certificates are signed by the operator CA read at start.
        let ca = Arc::new(stored.ca);
        let (reconcile_client, defaults) = (client.clone(), state.defaults.clone());
        let namespaces = args.watch_namespaces.clone();
        let lease = leader::LeaseConfig::new(&args.namespace, &leader::default_identity());
        tokio::spawn(leader::run_elected(
            client.clone(),
            lease,
            move |lost| {
                crate::reconcile::run_in(
                    reconcile_client.clone(),
                    defaults.clone(),
                    ca.clone(),
                    namespaces.clone(),
                    stopped(lost),
                )
            },
            stopped(stop_rx.clone()),
        ));
    }
    tracing::info!(listen = %args.listen, namespace = %args.namespace, "webhook server ready");
    Ok(server::serve(listener, state, stopped(stop_rx)).await?)
}

async fn client(args: &RunArgs) -> Result<kube::Client, RunError> {
    let config = match &args.kubeconfig {
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

fn args_target(args: &RunArgs) -> RenewTarget {
    RenewTarget {
        namespace: args.namespace.clone(),
        names: serving_names(args),
        options: config_options(args, None),
        manage_configurations: !args.no_webhook_config,
    }
}

fn config_options(args: &RunArgs, bundle: Option<&str>) -> config::Options {
    config::Options {
        target: match &args.webhook_url {
            Some(url) => Target::Url(url.clone()),
            None => Target::Service {
                namespace: args.namespace.clone(),
                name: args.service_name.clone(),
            },
        },
        ca_bundle_pem: bundle.map(str::to_owned),
        operator_namespace: args.namespace.clone(),
        mutation_failure_policy: args.mutation_failure_policy.clone(),
    }
}

/// Signs a serving certificate with the (possibly just rotated) CA from the Secret; returns the
/// CA bundle clients must trust.
async fn refresh_certificate(
    client: &kube::Client,
    args: &RunArgs,
    state: &AppState,
) -> Result<String, RunError> {
    let stored = store::ensure_ca(client.clone(), &args.namespace).await?;
    let pair = stored.ca.sign_serving(&serving_names(args))?;
    state.cert.set_pem(&pair.cert_pem, &pair.key_pem)?;
    state
        .metrics
        .certificate_expiry
        .set(store::unix_seconds(pair.not_after));
    Ok(stored.bundle_pem)
}

async fn apply_webhook_configurations(
    client: &kube::Client,
    args: &RunArgs,
    bundle: &str,
) -> Result<(), RunError> {
    config::apply(client, &config_options(args, Some(bundle)), FIELD_MANAGER).await?;
    tracing::info!("webhook configurations applied with the current CA bundle");
    Ok(())
}

struct RenewTarget {
    namespace: String,
    names: Vec<String>,
    options: config::Options,
    manage_configurations: bool,
}

/// Every 10 minutes: rotate the CA when due (old and new both trusted), renew the serving
/// certificate when a third of its life is left; new handshakes get the new one, no restart.
async fn renew_loop(
    client: kube::Client,
    target: RenewTarget,
    state: Arc<AppState>,
    mut bundle: String,
) {
    let mut not_after = std::time::SystemTime::now() + SERVING_VALIDITY;
    loop {
        tokio::time::sleep(Duration::from_secs(600)).await;
        let stored = match store::ensure_ca(client.clone(), &target.namespace).await {
            Ok(s) => s,
            Err(error) => {
                tracing::warn!(%error, "cannot read the CA; retrying in 10 minutes");
                continue;
            }
        };
        let ca_changed = stored.bundle_pem != bundle;
        if ca_changed && target.manage_configurations {
            let mut options = target.options.clone();
            options.ca_bundle_pem = Some(stored.bundle_pem.clone());
            // Trust the new CA before serving its certificates.
            if let Err(error) = config::apply(&client, &options, FIELD_MANAGER).await {
                tracing::warn!(%error, "cannot update the webhook configurations");
                continue;
            }
        }
        if ca_changed || due_for_renewal(not_after, SERVING_VALIDITY) {
            match stored.ca.sign_serving(&target.names) {
                Ok(pair) => {
                    if state.cert.set_pem(&pair.cert_pem, &pair.key_pem).is_ok() {
                        not_after = pair.not_after;
                        state
                            .metrics
                            .certificate_expiry
                            .set(store::unix_seconds(pair.not_after));
                        tracing::info!("serving certificate renewed");
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot sign a serving certificate"),
            }
        }
        bundle = stored.bundle_pem;
    }
}

fn load_files(cert: &ServingCert, cert_file: &PathBuf, key_file: &PathBuf) -> Result<(), RunError> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|source| RunError::Read {
            path: p.clone(),
            source,
        })
    };
    cert.set_pem(&read(cert_file)?, &read(key_file)?)?;
    Ok(())
}

/// cert-manager replaces the files in place: poll them and swap the certificate when they change.
async fn reload_files(cert: Arc<ServingCert>, cert_file: PathBuf, key_file: PathBuf) {
    let stamp = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = (stamp(&cert_file), stamp(&key_file));
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = (stamp(&cert_file), stamp(&key_file));
        if now != seen {
            match load_files(&cert, &cert_file, &key_file) {
                Ok(()) => {
                    tracing::info!(file = %cert_file.display(), "serving certificate reloaded");
                    seen = now;
                }
                // A half-written pair (cert updated, key not yet): try again next round.
                Err(error) => tracing::warn!(%error, "cannot reload the serving certificate yet"),
            }
        }
    }
}
