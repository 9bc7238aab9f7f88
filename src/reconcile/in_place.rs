//! Restarting servers in place: for a change of their configuration file alone (a variable, the
//! root credentials, a pool added), every server restarts together through the S3 server's own
//! service restart, in its running pod, instead of its pod being replaced.
//!
//! Why: servers compare these variables with their peers and join only peers that run the same,
//! so such a change restarts every server at once either way. A replaced pod leaves the Service
//! (every server at once: no endpoint left, clients are refused) and takes seconds to be made
//! again; a server restarting in place keeps its pod, its address and its place in the Service,
//! and answers within a moment, first "not initialized" (503, which clients retry) until the
//! servers have formed their cluster again. The server executes itself again, which reads the
//! configuration file anew.
//!
//! The steps, one per pass:
//! 1. each pod gets the new configuration's hashes (annotations): the kubelet, syncing the changed
//!    pod, rewrites the files of its Secret volumes, `config.env` among them;
//! 2. [`FILE_REFRESH_SECONDS`] later, one server is asked to restart them all (with the root
//!    credentials they run: after a rotation, the previous ones), and the pods say so;
//! 3. each server says which configuration it started with (the admin API's server info shows
//!    its variables, [`CONFIGURATION_MARK`] among them); a pod whose server runs the new one takes
//!    the StatefulSet's current revision, as a replaced pod would have. A server still on the
//!    previous one [`IN_PLACE_ALLOWANCE_SECONDS`] after the restart has its pod replaced.
//!
//! When the restart cannot be asked for (no server answers, no credentials it accepts), the pods
//! are replaced together, as before this path existed.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::context::Context;
use super::desired::{
    CONFIG_HASH_ANNOTATION, CONFIGURATION_MARK, CONFIGURED_AT_ANNOTATION,
    CREDENTIALS_HASH_ANNOTATION, RESTARTED_FOR_ANNOTATION, Rendered,
};
use super::events::EventType;
use super::health;
use super::observed::Rollout;
use super::outcome::{AtStep, Step, StepError};
use super::report;
use super::servers::{Count, Server, merge_pod_metadata, restart_together};
use crate::api::tenant::Tenant;
use crate::s3admin::{AdminClient, AdminError, Credentials, ServerInfo};

/// Seconds from a pod's change to its server's restart: the kubelet rewrites the pod's Secret
/// files when it syncs the changed pod, within a second or two on the real node.
const FILE_REFRESH_SECONDS: u64 = 5;
/// Seconds a server may take to restart in place with the new configuration before its pod is
/// replaced instead.
const IN_PLACE_ALLOWANCE_SECONDS: u64 = 60;

/// The StatefulSet label that names a pod's template revision.
const REVISION_LABEL: &str = "controller-revision-hash";

/// Whether `outdated` may restart in place: their pods differ from their pool's current template
/// (`template_hashes`, by pool) in the configuration alone.
pub(super) fn possible(outdated: &[&Server], template_hashes: &[Option<String>]) -> bool {
    !outdated.is_empty()
        && outdated.iter().all(|s| {
            let current = template_hashes.get(s.pool).and_then(Option::as_deref);
            current.is_some() && s.pod_template_hash() == current
        })
}

/// The admin credentials to try, newest first: the configuration's, then those the servers last
/// accepted (after a rotation the servers run the previous ones until they restart).
fn credentials(ctx: &Context, tenant: &Tenant, admin: Option<&Credentials>) -> Vec<Credentials> {
    let uid = tenant.metadata.uid.as_deref().unwrap_or_default();
    let mut all: Vec<Credentials> = admin.cloned().into_iter().collect();
    if let Some(last) = ctx.memory.admin(uid)
        && !all
            .iter()
            .any(|c| c.access_key == last.access_key && c.secret_key == last.secret_key)
    {
        all.push(last);
    }
    all
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// One step of the restart in place of `group`.
pub(super) async fn step(
    ctx: &Context,
    tenant: &Tenant,
    rendered: &Rendered,
    admin: Option<&Credentials>,
    count: Count,
    group: &[&Server],
) -> Result<Rollout, StepError> {
    let hash = rendered.config_hash.as_str();
    let stale: Vec<&&Server> = group
        .iter()
        .filter(|s| s.pod.annotation(CONFIG_HASH_ANNOTATION) != Some(hash))
        .collect();
    if !stale.is_empty() {
        for server in &stale {
            let annotations = json!({
                CONFIG_HASH_ANNOTATION: hash,
                CREDENTIALS_HASH_ANNOTATION: rendered.credentials_hash,
                CONFIGURED_AT_ANNOTATION: now().to_string(),
                RESTARTED_FOR_ANNOTATION: Value::Null,
            });
            patch(ctx, tenant, server, json!({ "annotations": annotations })).await?;
        }
        return Ok(count.in_progress(format!(
            "the configuration file of {} server(s) is being rewritten; they restart in place together next",
            group.len()
        )));
    }
    let configured_at = group
        .iter()
        .filter_map(|s| {
            s.pod
                .annotation(CONFIGURED_AT_ANNOTATION)?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or_default();
    if now() < configured_at + FILE_REFRESH_SECONDS {
        return Ok(count.in_progress(
            "waiting for the kubelet to rewrite the servers' configuration file".to_owned(),
        ));
    }
    let asked_at = |s: &Server| {
        let (for_hash, at) = s
            .pod
            .annotation(RESTARTED_FOR_ANNOTATION)?
            .split_once('@')?;
        (for_hash == hash).then(|| at.parse::<u64>().ok()).flatten()
    };
    if group.iter().any(|s| asked_at(s).is_none()) {
        let asking = Asking {
            hash,
            admin,
            configured_at,
        };
        return ask(ctx, tenant, asking, count, group).await;
    }
    let since = group
        .iter()
        .filter_map(|s| asked_at(s))
        .min()
        .unwrap_or_default();
    confirm(ctx, tenant, hash, admin, count, group, since).await
}

/// What a restart is asked with.
struct Asking<'a> {
    hash: &'a str,
    admin: Option<&'a Credentials>,
    configured_at: u64,
}

/// Asks one server to restart every server, and marks the pods asked for. A server that cannot
/// be asked (busy, restarting, credentials refused) is asked again on the next passes; after
/// [`IN_PLACE_ALLOWANCE_SECONDS`] the pods are replaced together instead.
async fn ask(
    ctx: &Context,
    tenant: &Tenant,
    Asking {
        hash,
        admin,
        configured_at,
    }: Asking<'_>,
    count: Count,
    group: &[&Server],
) -> Result<Rollout, StepError> {
    let asked = call(ctx, tenant, admin, group, |c| async move {
        c.restart_servers().await
    })
    .await;
    if let Err(why) = asked {
        if now() < configured_at + IN_PLACE_ALLOWANCE_SECONDS {
            return Ok(count.in_progress(format!(
                "waiting to ask the servers to restart in place: {why}"
            )));
        }
        let why = format!(
            "the servers could not be restarted in place ({why}): all {} restart together",
            group.len()
        );
        restart_together(ctx, tenant, group, &why).await?;
        return Ok(count.in_progress(why));
    }
    let mark = format!("{hash}@{}", now());
    for server in group {
        let annotations = json!({ RESTARTED_FOR_ANNOTATION: mark });
        patch(ctx, tenant, server, json!({ "annotations": annotations })).await?;
    }
    let note = format!(
        "{} server(s) restart in place together with the new configuration",
        group.len()
    );
    report::publish(
        &ctx.events,
        tenant,
        EventType::Normal,
        "RestartingServersInPlace",
        note.clone(),
    )
    .await;
    Ok(count.in_progress(note))
}

/// Moves the pods whose server runs the new configuration to the current revision; replaces
/// those whose server does not, once it had its allowance.
async fn confirm(
    ctx: &Context,
    tenant: &Tenant,
    hash: &str,
    admin: Option<&Credentials>,
    count: Count,
    group: &[&Server],
    since: u64,
) -> Result<Rollout, StepError> {
    let info = call(ctx, tenant, admin, group, |c| async move {
        c.server_info().await
    })
    .await;
    let running = match &info {
        Ok(info) => runs_configuration(info, hash),
        Err(_) => BTreeMap::new(),
    };
    let (done, pending): (Vec<&Server>, Vec<&Server>) = group
        .iter()
        .copied()
        .partition(|s| running.get(s.pod.name()).copied().unwrap_or(false));
    for server in &done {
        let labels = json!({ REVISION_LABEL: server.revision });
        patch(ctx, tenant, server, json!({ "labels": labels })).await?;
    }
    if pending.is_empty() {
        return Ok(count.in_progress(format!(
            "{} server(s) restarted in place and run the new configuration",
            done.len()
        )));
    }
    let names: Vec<&str> = pending.iter().map(|s| s.pod.name()).collect();
    if now() >= since + IN_PLACE_ALLOWANCE_SECONDS {
        let why = format!(
            "server(s) {} did not restart in place with the new configuration within {IN_PLACE_ALLOWANCE_SECONDS} s{}: their pods are replaced",
            names.join(", "),
            info.err().map(|e| format!(" ({e})")).unwrap_or_default()
        );
        restart_together(ctx, tenant, &pending, &why).await?;
        return Ok(count.in_progress(why));
    }
    Ok(count.in_progress(format!(
        "waiting for server(s) {} to restart in place with the new configuration",
        names.join(", ")
    )))
}

/// Which servers (by pod name, the first label of their host) report `hash` as the configuration
/// they started with.
fn runs_configuration(info: &ServerInfo, hash: &str) -> BTreeMap<String, bool> {
    info.servers
        .iter()
        .filter_map(|server| {
            let host = server.endpoint.split([':', '.']).next()?;
            let mark = server
                .variables
                .iter()
                .find(|(k, _)| mark_name(k))
                .map(|(_, v)| v.as_str());
            Some((
                host.to_owned(),
                server.state == "online" && mark == Some(hash),
            ))
        })
        .collect()
}

/// The server's name for [`CONFIGURATION_MARK`] (MinIO shows `MINIO_OPERATOR_CONFIGURATION`).
fn mark_name(key: &str) -> bool {
    let suffix = CONFIGURATION_MARK.trim_start_matches("S3_");
    key.strip_suffix(suffix)
        .is_some_and(|prefix| prefix.ends_with('_'))
}

/// `f` on an admin client of a ready server of `group` with the first credentials it accepts.
async fn call<T, F, Fut>(
    ctx: &Context,
    tenant: &Tenant,
    admin: Option<&Credentials>,
    group: &[&Server],
    f: F,
) -> Result<T, String>
where
    F: Fn(AdminClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, AdminError>>,
{
    let Some(ip) = group
        .iter()
        .filter(|s| s.pod.ready())
        .chain(group.iter())
        .find_map(|s| s.pod.ip())
    else {
        return Err("no server has an address".to_owned());
    };
    let service = match health::tenant_endpoint(ctx, tenant).await {
        Ok(Ok(service)) => service,
        Ok(Err(why)) => return Err(why.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    let mut last = "no root credentials are known".to_owned();
    for credentials in credentials(ctx, tenant, admin) {
        let client = AdminClient::new(health::server_endpoint(&service, ip), credentials);
        match f(client).await {
            Ok(answer) => return Ok(answer),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Merges `metadata` (annotations, labels) into the server's pod (one gone is left to the next
/// pass).
async fn patch(
    ctx: &Context,
    tenant: &Tenant,
    server: &Server,
    metadata: Value,
) -> Result<(), StepError> {
    merge_pod_metadata(ctx, tenant.namespace(), server.pod.name(), &metadata)
        .await
        .map(|_| ())
        .at(Step::Rollout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3admin::ServerProperties;

    #[test]
    fn a_server_runs_the_configuration_its_variables_name() {
        let server = |endpoint: &str, state: &str, mark: Option<&str>| ServerProperties {
            state: state.to_owned(),
            endpoint: endpoint.to_owned(),
            variables: mark
                .map(|m| {
                    BTreeMap::from([("MINIO_OPERATOR_CONFIGURATION".to_owned(), m.to_owned())])
                })
                .unwrap_or_default(),
        };
        let info = ServerInfo {
            servers: vec![
                server(
                    "t-p0-0.t-hl.ns.svc.cluster.local:9000",
                    "online",
                    Some("h2"),
                ),
                server(
                    "t-p0-1.t-hl.ns.svc.cluster.local:9000",
                    "online",
                    Some("h1"),
                ),
                server("t-p0-2.t-hl.ns.svc.cluster.local:9000", "offline", None),
                server("t-p0-3.t-hl.ns.svc.cluster.local:9000", "online", None),
            ],
        };
        let running = runs_configuration(&info, "h2");
        assert!(running["t-p0-0"]);
        assert!(!running["t-p0-1"]);
        assert!(!running["t-p0-2"]);
        assert!(!running["t-p0-3"]);
    }

    #[test]
    fn the_mark_is_found_under_the_servers_prefix() {
        assert!(mark_name("MINIO_OPERATOR_CONFIGURATION"));
        assert!(mark_name("S3_OPERATOR_CONFIGURATION"));
        assert!(!mark_name("MINIO_XOPERATOR_CONFIGURATION"));
        assert!(!mark_name("OPERATOR_CONFIGURATION"));
    }
}
