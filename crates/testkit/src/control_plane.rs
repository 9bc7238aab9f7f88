//! Control planes for the control-plane tier (`tests/control_plane`), where every former test
//! binary is a module of one process.
//!
//! [`ControlPlane::shared`] is one control plane per process, and the first caller's node count
//! wins: the tier asks for it through [`shared`] only, always with [`SHARED_NODES`]. Modules that
//! change what every Tenant of a cluster meets (admission policies and webhooks for all
//! namespaces, a reconciler of all namespaces, cluster roles) have a control plane of their own:
//! [`Dedicated`] for one a module's tests share, [`ControlPlane::start`] for one a test owns.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hanzo_local_cluster::{ControlPlane, Options};
use hanzo_s3_operator::admission::DefaultsConfig;
use hanzo_s3_operator::certs::Ca;
use hanzo_s3_operator::reconcile::{ReadyWhen, Settings};

/// Fake nodes of the shared control plane: the most any module on it asks for (Tenants of 4
/// servers become Ready on them; modules that asked for none are indifferent to them).
pub const SHARED_NODES: usize = 3;

/// The tier's one shared control plane, with [`SHARED_NODES`] fake nodes. Modules on it keep to
/// namespaces of their own and register nothing that judges or reconciles other namespaces.
pub fn shared() -> &'static ControlPlane {
    ControlPlane::shared(SHARED_NODES).unwrap()
}

/// A control plane of a module's own, started on first use on a thread of its own (so it outlives
/// every test's runtime, as [`ControlPlane::shared`] does) and kept until the process exits (the
/// harness's watchdog then stops it). Declared as a `static` in the module.
pub struct Dedicated(OnceLock<Result<ControlPlane, String>>);

impl Dedicated {
    pub const fn new() -> Dedicated {
        Dedicated(OnceLock::new())
    }

    /// The control plane, started with `options` by the first caller.
    pub fn get(&'static self, options: impl FnOnce() -> Options) -> &'static ControlPlane {
        let options = options();
        self.0
            .get_or_init(|| {
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime
                        .block_on(ControlPlane::start(options))
                        .map_err(|e| e.to_string())
                })
                .join()
                .unwrap_or_else(|_| Err("control plane start-up panicked".to_owned()))
            })
            .as_ref()
            .unwrap_or_else(|e| panic!("the control plane did not start: {e}"))
    }
}

impl Default for Dedicated {
    fn default() -> Dedicated {
        Dedicated::new()
    }
}

/// The standard reconciler (all namespaces, default configuration, a Tenant Ready when every
/// server's pod is ready: fake nodes run no S3 server) on a thread of its own, with the CRD, on a
/// control plane of its own with 3 fake nodes. Modules that need the standard reconciler share it;
/// a reconciler of all namespaces acts on every Tenant of its cluster, so nothing else runs there.
pub fn reconciled() -> &'static ControlPlane {
    static CLUSTER: Dedicated = Dedicated::new();
    static STARTED: OnceLock<()> = OnceLock::new();
    let cp = CLUSTER.get(|| Options::with_nodes(3));
    STARTED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    let client = cp.client().await.unwrap();
                    hanzo_s3_operator::operator::install::install_crd(
                        &client,
                        "test",
                        Duration::from_secs(10),
                    )
                    .await
                    .unwrap();
                    tx.send(()).unwrap();
                    let ca = Arc::new(Ca::generate("e2e-operator-ca").unwrap());
                    hanzo_s3_operator::reconcile::run(
                        client,
                        Settings::new(DefaultsConfig::default(), ca, ReadyWhen::PodsReady),
                        std::future::pending(),
                    )
                    .await;
                });
        });
        rx.recv().unwrap();
    });
    cp
}
