//! A tenant's servers as a rollout sees them (each pod, its pool, whether it runs the current
//! template), how far the rollout got, and replacing their pods.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Value, json};

use super::caches::CachedPod;
use super::context::Context;
use super::desired::TEMPLATE_HASH_ANNOTATION;
use super::events::EventType;
use super::observed::Rollout;
use super::outcome::{AtStep, Step, StepError};
use super::report;
use crate::api::tenant::Tenant;

/// A server's pod, with what the rollout needs to know of it.
pub(super) struct Server {
    pub(super) pod: Arc<CachedPod>,
    pub(super) pool: usize,
    pub(super) ordinal: i32,
    pub(super) updated: bool,
    /// Its pool's current revision.
    pub(super) revision: String,
}

impl Server {
    /// The template hash its pod was made with.
    pub(super) fn pod_template_hash(&self) -> Option<&str> {
        self.pod.annotation(TEMPLATE_HASH_ANNOTATION)
    }
}

/// How far a rollout got: what every step reports with.
#[derive(Clone, Copy)]
pub(super) struct Count {
    pub(super) updated: usize,
    pub(super) servers: usize,
}

impl Count {
    pub(super) fn in_progress(self, step: String) -> Rollout {
        Rollout::InProgress {
            updated: self.updated,
            servers: self.servers,
            step,
        }
    }

    pub(super) fn stopped(self, server: String, why: String) -> Rollout {
        Rollout::Stopped {
            updated: self.updated,
            servers: self.servers,
            server,
            why,
        }
    }
}

/// How long a server restarted with all the others gets to stop. Its drain before stopping (a
/// few seconds, so the Service sends its requests to the others first) serves no one when every
/// server goes at once: from the first deletion on, the Service has no server to send requests to,
/// and each second of drain is a second more of outage. Requests in flight still get the server's
/// own shutdown (SIGTERM, then 2 s).
const TOGETHER_GRACE_SECONDS: u32 = 1;

/// Deletes `pod`, with `grace` seconds to stop instead of its own when given.
pub(super) async fn restart_within(
    ctx: &Context,
    tenant: &Tenant,
    pod: &CachedPod,
    grace: Option<u32>,
) -> Result<(), StepError> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        grace_period_seconds: grace,
        ..DeleteParams::default()
    };
    // Gone already, or replaced since the cache saw it: the next pass sees what is there.
    super::apply::delete(
        &Api::<Pod>::namespaced(ctx.client.clone(), tenant.namespace()),
        pod.name(),
        &params,
    )
    .await
    .at(Step::Rollout)?;
    Ok(())
}

/// Every server on the previous template at once, with one event.
pub(super) async fn restart_together(
    ctx: &Context,
    tenant: &Tenant,
    outdated: &[&Server],
    why: &str,
) -> Result<(), StepError> {
    for server in outdated {
        restart_within(ctx, tenant, &server.pod, Some(TOGETHER_GRACE_SECONDS)).await?;
    }
    report::publish(
        &ctx.events,
        tenant,
        EventType::Normal,
        "RestartingAllServers",
        why.to_owned(),
    )
    .await;
    Ok(())
}

/// Merges `metadata` (annotations, labels) into a server's pod: whether it was written (`false`:
/// the pod is gone since the cache saw it, and the next pass sees what is there).
pub(super) async fn merge_pod_metadata(
    ctx: &Context,
    namespace: &str,
    pod: &str,
    metadata: &Value,
) -> Result<bool, kube::Error> {
    let body = json!({ "metadata": metadata });
    match Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .patch(pod, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
        Ok(_) => {
            crate::metrics::count_api_write();
            Ok(true)
        }
    }
}
