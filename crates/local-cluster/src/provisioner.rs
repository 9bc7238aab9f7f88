//! A minimal volume provisioner: every pending PersistentVolumeClaim gets a hostPath
//! PersistentVolume pre-bound to it, so the scheduler's volume binding lets its pod be placed, as a
//! real cluster's provisioner would. Runs on a thread with its own runtime so it outlives the
//! runtimes of individual tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};

use crate::Error;

pub struct Provisioner {
    stop: Arc<AtomicBool>,
}

impl Provisioner {
    /// Claims' data go to `<volumes>/<namespace>/<claim>` (used for real on a real node).
    pub fn start(kubeconfig: Kubeconfig, volumes: PathBuf) -> Result<Provisioner, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the provisioner runtime", e))?;
        std::thread::Builder::new()
            .name("pv-provisioner".into())
            .spawn(move || runtime.block_on(run(kubeconfig, volumes, flag)))
            .map_err(|e| Error::io("start the provisioner thread", e))?;
        Ok(Provisioner { stop })
    }
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn run(kubeconfig: Kubeconfig, volumes: PathBuf, stop: Arc<AtomicBool>) {
    let Ok(config) =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await
    else {
        return;
    };
    let Ok(client) = kube::Client::try_from(config) else {
        return;
    };
    let claims: Api<PersistentVolumeClaim> = Api::all(client.clone());
    let persistent_volumes: Api<PersistentVolume> = Api::all(client);
    // The watch's own store is what the resync reads: no LIST of every claim in the cluster every
    // few seconds (4,000 of them in the 1,000-Tenant benchmark).
    let (known, writer) = reflector::store();
    let mut events = reflector(writer, watcher(claims, watcher::Config::default()))
        .applied_objects()
        .boxed();
    // A create that fails while the apiserver restarts is not retried by the watch: the claim
    // sees no new event and its pod stays Pending for good. A periodic look at every claim
    // provisions what an event alone missed, as a real provisioner's resync does.
    let mut resync = tokio::time::interval(std::time::Duration::from_secs(5));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        tokio::select! {
            event = events.next() => match event {
                None => return,
                Some(Ok(claim)) => provision(&persistent_volumes, &volumes, &claim).await,
                Some(Err(_)) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            },
            _ = resync.tick() => {
                for claim in known.state() {
                    provision(&persistent_volumes, &volumes, &claim).await;
                }
            }
        }
    }
}

/// Creates the volume of a claim that is pending and names none; a volume that exists already
/// (an event and a resync for one claim) is left as it is.
async fn provision(
    persistent_volumes: &Api<PersistentVolume>,
    volumes_root: &Path,
    claim: &PersistentVolumeClaim,
) {
    let pending = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
    let unbound = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_ref())
        .is_none();
    if !pending || !unbound || claim.metadata.deletion_timestamp.is_some() {
        return;
    }
    let path = volumes_root
        .join(claim.metadata.namespace.as_deref().unwrap_or_default())
        .join(claim.metadata.name.as_deref().unwrap_or_default());
    if crate::node::make_volume_dir(&path).is_ok() {
        let _ = persistent_volumes
            .create(&PostParams::default(), &volume_for(claim, &path))
            .await;
    }
}

fn volume_for(claim: &PersistentVolumeClaim, path: &Path) -> PersistentVolume {
    let ns = claim.metadata.namespace.clone().unwrap_or_default();
    let name = claim.metadata.name.clone().unwrap_or_default();
    let spec = claim.spec.clone().unwrap_or_default();
    let size = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .cloned()
        .unwrap_or_else(|| Quantity("1Gi".into()));
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(format!(
                "pv-{}",
                claim.metadata.uid.as_deref().unwrap_or(&name)
            )),
            labels: Some(BTreeMap::from([(
                "hanzo.ai/test-provisioner".into(),
                "true".into(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".into(), size)])),
            access_modes: spec.access_modes.clone(),
            storage_class_name: spec.storage_class_name.clone(),
            volume_mode: spec.volume_mode.clone(),
            persistent_volume_reclaim_policy: Some("Retain".into()),
            claim_ref: Some(ObjectReference {
                namespace: Some(ns.clone()),
                name: Some(name.clone()),
                uid: claim.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
            host_path: Some(HostPathVolumeSource {
                path: path.display().to_string(),
                type_: Some("Directory".into()),
            }),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    }
}
