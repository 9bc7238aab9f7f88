//! Leader election on a coordination.k8s.io Lease: every replica serves the webhooks, only the
//! leader reconciles. The holder renews every `renew` period; when it stops renewing, another
//! replica takes the Lease once `duration` has passed since the last renewal. Writes use the Lease's
//! resourceVersion, so two candidates can never both win one round.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

pub const LEASE_NAME: &str = "hanzo-s3-operator-leader";

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's name in the Lease (the pod name in a cluster).
    pub identity: String,
    pub duration: Duration,
    pub renew: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, identity: &str) -> Self {
        LeaseConfig {
            namespace: namespace.to_owned(),
            name: LEASE_NAME.to_owned(),
            identity: identity.to_owned(),
            duration: Duration::from_secs(15),
            renew: Duration::from_secs(5),
        }
    }
}

/// This replica's identity: `POD_NAME`, else host name and process id.
pub fn default_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

fn lease(
    config: &LeaseConfig,
    transitions: i32,
    acquired: Option<MicroTime>,
    resource_version: Option<String>,
) -> Lease {
    let now = MicroTime(Timestamp::now());
    Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(config.namespace.clone()),
            resource_version,
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(config.identity.clone()),
            lease_duration_seconds: Some(config.duration.as_secs() as i32),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

/// One round: renew if we hold the Lease, take it if it is free or expired. Returns whether this
/// replica leads now.
pub async fn try_lead(leases: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let Some(current) = leases.get_opt(&config.name).await? else {
        return match leases
            .create(&PostParams::default(), &lease(config, 0, None, None))
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let ours = holder == config.identity;
    let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
        let ttl = spec
            .lease_duration_seconds
            .unwrap_or(config.duration.as_secs() as i32);
        let age = Timestamp::now().duration_since(renewed.0);
        age.as_secs() >= i64::from(ttl)
    });
    if !ours && !expired && !holder.is_empty() {
        return Ok(false);
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
    let acquired = if ours {
        spec.acquire_time.clone()
    } else {
        None
    };
    let next = lease(
        config,
        transitions,
        acquired,
        current.metadata.resource_version.clone(),
    );
    match leases
        .replace(&config.name, &PostParams::default(), &next)
        .await
    {
        Ok(_) => {
            if !ours {
                tracing::info!(identity = %config.identity, previous = %holder, "took the leader Lease");
            }
            Ok(true)
        }
        // Someone else renewed or took it in between.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `lead` while this replica holds the Lease, until `shutdown` resolves. `lead` gets a
/// receiver that turns true when leadership is lost (or on shutdown) and must stop then.
pub async fn run_elected<F, Fut>(
    client: kube::Client,
    config: LeaseConfig,
    lead: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let leases: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut running: Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)> = None;
    tokio::pin!(shutdown);
    loop {
        let leading = match try_lead(&leases, &config).await {
            Ok(l) => l,
            Err(error) => {
                tracing::warn!(%error, "cannot reach the leader Lease; acting as a follower");
                false
            }
        };
        match (&running, leading) {
            (None, true) => {
                tracing::info!(identity = %config.identity, "leading: reconciling");
                let (stop, stopped) = watch::channel(false);
                running = Some((stop, tokio::spawn(lead(stopped))));
            }
            (Some(_), false) => {
                tracing::warn!(identity = %config.identity, "lost the leader Lease: stopping the reconciler");
                if let Some((stop, task)) = running.take() {
                    let _ = stop.send(true);
                    let _ = task.await;
                }
            }
            _ => {}
        }
        tokio::select! {
            () = tokio::time::sleep(config.renew) => {}
            () = &mut shutdown => break,
        }
    }
    if let Some((stop, task)) = running.take() {
        let _ = stop.send(true);
        let _ = task.await;
    }
    // Hand over at once: an expired renewTime lets the next replica take the Lease immediately.
    if let Ok(Some(mut lease)) = leases.get_opt(&config.name).await
        && lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(config.identity.as_str())
    {
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(Timestamp::UNIX_EPOCH));
        }
        let _ = leases
            .replace(&config.name, &PostParams::default(), &lease)
            .await;
    }
}
