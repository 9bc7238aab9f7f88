//! The operator wired together in one place, for `run` (in a cluster) and `dev` (on the local
//! cluster): the webhook server on its listener and, beside it, the reconciler, straight away or
//! only while this replica holds the Lease (every replica serves the webhooks). One stop signal
//! ends both: the server after its in-flight reviews, the reconciler after its passes.

pub mod install;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admission::DefaultsConfig;
use crate::metrics::Metrics;
use crate::reconcile::{self, Settings, leader};
use crate::webhook::cluster::ApiCluster;
use crate::webhook::server::{self, AppState, ServeError, ServerOptions};
use crate::webhook::tls::ServingCert;

/// How long a stopping operator waits for its reconciler (which gives up its Lease on the way).
const RECONCILER_GRACE: Duration = Duration::from_secs(10);

/// What the operator runs with.
pub struct Operator {
    /// The cluster; `None` serves the webhooks without the checks that need the API (standalone).
    pub client: Option<kube::Client>,
    pub defaults: DefaultsConfig,
    pub cert: Arc<ServingCert>,
    pub server: ServerOptions,
    /// The namespaces whose Tenants the admission caches hold (empty: every namespace); the same
    /// as the reconciler's, and what the RBAC grants.
    pub namespaces: Vec<String>,
    /// `None`: webhooks only.
    pub reconciler: Option<Reconciler>,
}

pub struct Reconciler {
    pub settings: Settings,
    /// Reconcile only while holding this Lease; `None` reconciles at once (one process).
    pub lease: Option<leader::LeaseConfig>,
}

/// A stop signal as a future: resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

impl Operator {
    /// Serves the webhooks on `listener` and runs the reconciler until `stop` turns true.
    pub async fn run(
        self,
        listener: TcpListener,
        stop: watch::Receiver<bool>,
    ) -> Result<(), ServeError> {
        let reconciling = match (&self.client, self.reconciler) {
            (Some(client), Some(reconciler)) => {
                Some(start_reconciler(client.clone(), reconciler, stop.clone()))
            }
            _ => None,
        };
        let state = Arc::new(AppState {
            defaults: self.defaults,
            cluster: self
                .client
                .map(|client| ApiCluster::cached(client, &self.namespaces, stopped(stop.clone()))),
            metrics: Metrics::default(),
            cert: self.cert,
        });
        let served = server::serve_with(listener, state, self.server, stopped(stop)).await;
        if let Some(task) = reconciling {
            let _ = tokio::time::timeout(RECONCILER_GRACE, task).await;
        }
        served
    }
}

fn start_reconciler(
    client: kube::Client,
    reconciler: Reconciler,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let Reconciler { settings, lease } = reconciler;
    match lease {
        Some(lease) => {
            let reconcile_client = client.clone();
            tokio::spawn(leader::run_elected(
                client,
                lease,
                move |lost| {
                    reconcile::run(reconcile_client.clone(), settings.clone(), stopped(lost))
                },
                stopped(stop),
            ))
        }
        None => tokio::spawn(reconcile::run(client, settings, stopped(stop))),
    }
}
