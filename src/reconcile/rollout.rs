//! Rollout: servers whose pod runs an older template are replaced by the reconciler itself, one at
//! a time and only when the S3 cluster can spare the next one (the StatefulSets are `OnDelete`).
//!
//! Why not the StatefulSet controller's rolling update: it replaces the next pod once the last one
//! is Ready, and the S3 server compares what its peers run (every `MINIO_*`/`S3_*` variable, the
//! binary's checksum, the command line) before it joins them: a server restarted with a changed
//! variable waits, not Ready, until half of the others (rounded down) run the same, so the rolling
//! update never moves on. While it waits, the cluster counts its drives offline (measured on the
//! real node), so the servers' own check refuses the next restart too.
//!
//! Each pass, in order:
//! - a server on the new template that crashes or cannot start stops the rollout there (the rest
//!   keep serving on the previous template, and the Tenant says which server and why);
//! - a server going away or starting is waited for;
//! - a change of the root credentials restarts every server together: servers authenticate each
//!   other with them, so servers of two values cannot form one cluster;
//! - so does a pool added, once its servers run, and they restart with the others: they cannot
//!   join servers that do not know it, and a server learns the pools only when it starts;
//! - servers restarting together get a second to stop, not their drain: no server is left for
//!   the drained requests to go to;
//! - a restarted server that is not Ready must be waiting for peers with its configuration (its
//!   log says so), or it is given [`STARTUP_ALLOWANCE_SECONDS`] before the rollout stops;
//! - servers waiting for peers with their configuration get them: the next servers restart
//!   without the cluster's consent until enough run the new template to join each other (the
//!   first restarted server is the canary: its configuration got as far as comparing itself with
//!   its peers before more servers are risked), and are then waited for;
//! - otherwise the next server is asked whether the cluster keeps write quorum without it and heals
//!   nothing (`/minio/health/cluster?maintenance=true`), and restarted only if it does.
//!
//! What each kind of change costs a running tenant under load is measured in
//! benches/results/day2.md.

use std::cmp::Reverse;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

use super::caches::CachedPod;
use super::configuration::Configured;
use super::context::{Context, ReadyWhen};
use super::desired::{
    self, CONFIG_HASH_ANNOTATION, CREDENTIALS_HASH_ANNOTATION, Rendered, STARTUP_ALLOWANCE_SECONDS,
    TEMPLATE_HASH_ANNOTATION,
};
use super::events::EventType;
use super::health;
use super::in_place;
use super::observed::Rollout;
use super::outcome::StepError;
use super::report;
use super::servers::{Count, Server, restart_together, restart_within};
use crate::api::names::{POOL_LABEL, SERVER_CONTAINER_NAME, pool_statefulset_name};
use crate::api::tenant::Tenant;
use crate::s3admin::{AdminClient, Credentials};

/// Why a container cannot start, as the kubelet says it (its waiting reason).
const FAILED_TO_START: &[&str] = &[
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// What the S3 server logs while it waits for peers that run what it runs.
const WAITING_FOR_PEERS: &[&str] = &["with valid configuration", "mismatching configuration"];

pub async fn advance(
    ctx: &Context,
    tenant: &Tenant,
    configured: &Configured,
) -> Result<Rollout, StepError> {
    let rendered = &configured.rendered;
    let servers_wanted = tenant.servers();
    let Some(servers) = classify(ctx, tenant, rendered) else {
        let none = Count {
            updated: 0,
            servers: servers_wanted,
        };
        return Ok(none.in_progress(
            "waiting for the StatefulSet controller to take the new template".to_owned(),
        ));
    };
    let count = Count {
        updated: servers.iter().filter(|s| s.updated).count(),
        servers: servers_wanted,
    };
    let outdated: Vec<&Server> = servers
        .iter()
        .filter(|s| !s.updated && !s.pod.terminating())
        .collect();
    if outdated.is_empty() {
        return Ok(Rollout::Done);
    }
    if let Some((server, why)) = servers.iter().filter(|s| s.updated).find_map(failing) {
        return Ok(count.stopped(server, why));
    }
    if let Some(wait) = in_flight(&servers, servers_wanted) {
        return Ok(count.in_progress(wait));
    }
    // Servers that differ in their configuration file alone restart in place, together.
    let in_place = ctx.settings.restart_in_place
        && ctx.settings.ready_when == ReadyWhen::S3Healthy
        && in_place::possible(&outdated, &template_hashes(tenant, rendered));
    let pass = Pass {
        ctx,
        tenant,
        configured,
        count,
        in_place,
    };
    if let Some(rollout) = pass.all_together(&servers, &outdated).await? {
        return Ok(rollout);
    }
    let mut waiting_for_peers = Vec::new();
    for joining in servers.iter().filter(|s| s.updated && !s.pod.ready()) {
        match joining_state(ctx, tenant, joining).await {
            Joining::WaitsForPeers => waiting_for_peers.push(joining.pod.name()),
            Joining::Starting(wait) => return Ok(count.in_progress(wait)),
            Joining::Failed(why) => {
                return Ok(count.stopped(joining.pod.name().to_owned(), why));
            }
        }
    }
    // The first restarted server (the canary) got as far as comparing its configuration with
    // its peers': the others take it in place.
    if in_place && !waiting_for_peers.is_empty() {
        return pass.in_place(&outdated).await;
    }
    restart_next(ctx, tenant, count, &outdated, &waiting_for_peers).await
}

/// What one pass of a rollout works with.
struct Pass<'a> {
    ctx: &'a Context,
    tenant: &'a Tenant,
    configured: &'a Configured,
    count: Count,
    /// The outdated servers may take the change in place.
    in_place: bool,
}

impl Pass<'_> {
    async fn in_place(&self, outdated: &[&Server]) -> Result<Rollout, StepError> {
        let Configured {
            rendered, admin, ..
        } = self.configured;
        in_place::step(
            self.ctx,
            self.tenant,
            rendered,
            admin.as_ref(),
            self.count,
            outdated,
        )
        .await
    }

    /// The changes no cluster can take one server at a time (new root credentials, a pool
    /// added): every server restarts at once, or takes the change in place. `None` for the
    /// others.
    async fn all_together(
        &self,
        servers: &[Server],
        outdated: &[&Server],
    ) -> Result<Option<Rollout>, StepError> {
        let (ctx, tenant, rendered) = (self.ctx, self.tenant, &self.configured.rendered);
        let in_place_started = self.in_place
            && outdated
                .iter()
                .any(|s| s.pod.annotation(CONFIG_HASH_ANNOTATION) == Some(&rendered.config_hash));
        // A pod without the annotation predates it (an older operator made it): nothing says
        // its credentials differ, and restarting every server would be the costlier mistake.
        if outdated.iter().any(|s| {
            s.pod
                .annotation(CREDENTIALS_HASH_ANNOTATION)
                .is_some_and(|h| h != rendered.credentials_hash)
        }) || (in_place_started && added_pool(tenant, servers).is_none())
        {
            if self.in_place {
                return self.in_place(outdated).await.map(Some);
            }
            let why = format!(
                "the root credentials changed: all {} servers on the previous template restart together (servers authenticate each other with them, so two values cannot form one cluster)",
                outdated.len()
            );
            restart_together(ctx, tenant, outdated, &why).await?;
            return Ok(Some(self.count.in_progress(why)));
        }
        let Some((index, pool)) = added_pool(tenant, servers) else {
            return Ok(None);
        };
        // In place, the first pools' servers keep their addresses, and the new pool's servers,
        // which ask for peers with their configuration every tenth of a second, find them as
        // soon as they run it: the new pool's pods stay (replaced with the others, they took
        // 30 s to start again while every server waited: benches/results/day2.md).
        if self.in_place {
            return self.in_place(outdated).await.map(Some);
        }
        // The new pool's servers restart too: started before the others knew them, they were
        // seen to take 30 s and more to form the larger cluster after the others restarted
        // (the failing stretch of benches/results/day2.md); started together, every server
        // forms it from a clean start.
        let together: Vec<&Server> = outdated
            .iter()
            .copied()
            .chain(servers.iter().filter(|s| s.pool == index))
            .collect();
        let why = format!(
            "pool {pool:?} was added: all {} servers restart together, the new pool's with the others' (a server learns the pools only when it starts, and the new pool's servers cannot join servers that do not know it)",
            together.len()
        );
        restart_together(ctx, tenant, &together, &why).await?;
        Ok(Some(self.count.in_progress(why)))
    }
}

/// A pool all of whose servers run the current template and none is Ready, beside servers on an
/// older one: a pool just added, whose servers wait for the others to know it (measured on the
/// real node: they never do while the others run the previous pools, so restarting those one at
/// a time behind the cluster's consent never starts). The S3 server's own procedure for an
/// expansion restarts every server together, and so does this rollout.
fn added_pool<'a>(tenant: &'a Tenant, servers: &[Server]) -> Option<(usize, &'a str)> {
    tenant
        .spec
        .pools
        .iter()
        .enumerate()
        .find(|(index, _)| {
            let mut of_pool = servers.iter().filter(|s| s.pool == *index).peekable();
            of_pool.peek().is_some() && of_pool.all(|s| s.updated && !s.pod.ready())
        })
        .map(|(index, pool)| (index, pool.name.as_str()))
}

/// What to wait for before any server restarts: one going away or starting, or a pod not made yet.
/// An outdated server that does not run (it crashes on the template being undone, say) serves
/// nothing: it is the next to go, not one to wait for.
fn in_flight(servers: &[Server], wanted: usize) -> Option<String> {
    if let Some(busy) = servers
        .iter()
        .find(|s| s.pod.terminating() || (s.updated && !running(&s.pod)))
    {
        let what = if busy.pod.terminating() {
            "stop"
        } else {
            "start"
        };
        return Some(format!("waiting for server {} to {what}", busy.pod.name()));
    }
    (servers.len() < wanted).then(|| "waiting for every server's pod".to_owned())
}

/// Restarts the next outdated server, when it may go.
///
/// A starting server joins once half of the others (rounded down) run what it runs; until then it
/// waits, serves nothing, and the cluster counts its drives offline, so the server's own check
/// refuses the next restart. The waiting servers need that restart (the first got that far, so
/// its configuration starts): it is forced, until enough of them wait to join each other, and
/// then they are waited for.
async fn restart_next(
    ctx: &Context,
    tenant: &Tenant,
    count: Count,
    outdated: &[&Server],
    waiting_for_peers: &[&str],
) -> Result<Rollout, StepError> {
    let victim = next_victim(outdated);
    let group = count.servers.saturating_sub(1) / 2 + 1;
    let waiting = waiting_for_peers.join(", ");
    if !waiting_for_peers.is_empty() && count.updated >= group {
        return Ok(count.in_progress(format!(
            "waiting for {waiting} to join each other ({} servers run the new template, {group} are enough)",
            count.updated
        )));
    }
    if waiting_for_peers.is_empty()
        && let Some(why) = cannot_spare(ctx, tenant, victim).await?
    {
        return Ok(count.in_progress(why));
    }
    restart(ctx, tenant, &victim.pod).await?;
    let mut note = format!(
        "server {} restarts on the new template ({} of {} updated before it)",
        victim.pod.name(),
        count.updated,
        count.servers
    );
    if !waiting_for_peers.is_empty() {
        note.push_str(&format!(
            " for {waiting} to find a peer that runs what it runs"
        ));
    }
    report::publish(
        &ctx.events,
        tenant,
        EventType::Normal,
        "RestartingServer",
        note.clone(),
    )
    .await;
    Ok(count.in_progress(note))
}

/// Each pool's current template hash ([`TEMPLATE_HASH_ANNOTATION`]), rendered only when servers
/// are outdated: a steady-state pass does not pay for it.
fn template_hashes(tenant: &Tenant, rendered: &Rendered) -> Vec<Option<String>> {
    tenant
        .spec
        .pools
        .iter()
        .map(|pool| {
            desired::pool_statefulset(tenant, pool, rendered)
                .spec
                .template
                .metadata
                .and_then(|m| m.annotations)
                .and_then(|mut a| a.remove(TEMPLATE_HASH_ANNOTATION))
        })
        .collect()
}

/// The tenant's server pods, each marked with whether it runs its pool's current template; `None`
/// while a StatefulSet controller has not taken its pool's template yet.
fn classify(ctx: &Context, tenant: &Tenant, rendered: &Rendered) -> Option<Vec<Server>> {
    let ns = tenant.namespace();
    let mut revisions = Vec::new();
    for pool in &tenant.spec.pools {
        let name = pool_statefulset_name(tenant, pool);
        let sts = ctx.caches.statefulset(ns, &name)?;
        let status = sts.status.as_ref()?;
        if status.observed_generation < sts.metadata.generation {
            return None;
        }
        revisions.push((pool.name.as_str(), name, status.update_revision.clone()?));
    }
    let servers = ctx
        .caches
        .pods_of(tenant)
        .into_iter()
        .filter_map(|pod| {
            let pool_name = pod.metadata.labels.as_ref()?.get(POOL_LABEL)?;
            let pool = revisions.iter().position(|(p, _, _)| p == pool_name)?;
            let (_, sts, revision) = &revisions[pool];
            let ordinal = pod.name().strip_prefix(sts.as_str())?.strip_prefix('-')?;
            // A pod restarted in place takes the current revision only once its server runs
            // the configuration; one that was handed a configuration since is not up to date.
            let configured = pod
                .annotation(CONFIG_HASH_ANNOTATION)
                .is_none_or(|h| h == rendered.config_hash);
            Some(Server {
                updated: pod.revision() == Some(revision.as_str()) && configured,
                ordinal: ordinal.parse().ok()?,
                pool,
                revision: revision.clone(),
                pod,
            })
        })
        .collect();
    Some(servers)
}

/// The server container runs (not waiting to be created or restarted).
fn running(pod: &CachedPod) -> bool {
    pod.container(SERVER_CONTAINER_NAME)
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some())
}

/// Why a server on the new template fails, if it does: it cannot start, or it exited.
fn failing(server: &Server) -> Option<(String, String)> {
    let container = server.pod.container(SERVER_CONTAINER_NAME)?;
    let state = container.state.as_ref();
    let waiting = state
        .and_then(|s| s.waiting.as_ref())
        .filter(|w| FAILED_TO_START.contains(&w.reason.as_deref().unwrap_or_default()));
    let exited = container
        .last_state
        .as_ref()
        .or(state)
        .and_then(|s| s.terminated.as_ref())
        .filter(|t| t.exit_code != 0);
    if waiting.is_none() && exited.is_none() && container.restart_count == 0 {
        return None;
    }
    let mut why = match waiting {
        Some(w) => format!(
            "{}{}",
            w.reason.as_deref().unwrap_or_default(),
            w.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        None => format!("restarted {} time(s)", container.restart_count),
    };
    if let Some(t) = exited {
        why.push_str(&format!(
            "; it exited with code {}{}",
            t.exit_code,
            t.message
                .as_deref()
                .map(|m| format!(", its last output: {}", last_lines(m, 4)))
                .unwrap_or_default()
        ));
    }
    Some((server.pod.name().to_owned(), why))
}

/// The last `n` non-empty lines of `text`, joined, at most 400 characters.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    let start = tail.len().saturating_sub(400);
    let start = (start..=tail.len())
        .find(|i| tail.is_char_boundary(*i))
        .unwrap_or(0);
    tail[start..].to_owned()
}

/// A restarted server that is not Ready yet.
enum Joining {
    /// It waits for peers that run its configuration: the next server may restart.
    WaitsForPeers,
    /// It is still starting: wait for it.
    Starting(String),
    /// It did not become Ready within the startup allowance.
    Failed(String),
}

async fn joining_state(ctx: &Context, tenant: &Tenant, joining: &Server) -> Joining {
    let name = joining.pod.name();
    let starting = || Joining::Starting(format!("waiting for server {name} to be ready"));
    if ctx.settings.ready_when == ReadyWhen::PodsReady {
        return starting();
    }
    let log = Api::<Pod>::namespaced(ctx.client.clone(), tenant.namespace())
        .logs(
            name,
            &LogParams {
                container: Some(SERVER_CONTAINER_NAME.to_owned()),
                tail_lines: Some(30),
                ..LogParams::default()
            },
        )
        .await
        .unwrap_or_default();
    if WAITING_FOR_PEERS.iter().any(|w| log.contains(w)) {
        return Joining::WaitsForPeers;
    }
    let since = running_for(&joining.pod).unwrap_or_default();
    if since > i64::from(STARTUP_ALLOWANCE_SECONDS) {
        return Joining::Failed(format!(
            "not Ready {since} s after it started (allowance {STARTUP_ALLOWANCE_SECONDS} s); its last output: {}",
            last_lines(&log, 2)
        ));
    }
    starting()
}

/// Seconds since the server container started running.
fn running_for(pod: &CachedPod) -> Option<i64> {
    let started = pod
        .container(SERVER_CONTAINER_NAME)?
        .state
        .as_ref()?
        .running
        .as_ref()?
        .get("startedAt")?
        .as_str()?
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()?;
    Some(
        k8s_openapi::jiff::Timestamp::now()
            .duration_since(started)
            .as_secs(),
    )
}

/// The next server to replace: one that is not Ready first (it serves nothing now), then the last
/// pool's highest ordinal, as a StatefulSet rolls.
fn next_victim<'a>(outdated: &[&'a Server]) -> &'a Server {
    let mut order: Vec<&Server> = outdated.to_vec();
    order.sort_by_key(|s| (s.pod.ready(), Reverse(s.pool), Reverse(s.ordinal)));
    order[0]
}

/// Why `victim` may not restart now, if not: the cluster would lose write quorum without it, or
/// heals drives (its own answer to `?maintenance=true`).
async fn cannot_spare(
    ctx: &Context,
    tenant: &Tenant,
    victim: &Server,
) -> Result<Option<String>, StepError> {
    let name = victim.pod.name();
    if ctx.settings.ready_when == ReadyWhen::PodsReady || !victim.pod.ready() {
        return Ok(None);
    }
    let (Some(ip), Ok(service)) = (victim.pod.ip(), health::tenant_endpoint(ctx, tenant).await?)
    else {
        return Ok(Some(format!("waiting for the address of server {name}")));
    };
    let client = AdminClient::new(
        health::server_endpoint(&service, ip),
        Credentials::anonymous(),
    );
    Ok(match client.can_spare().await {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "waiting until the cluster can spare server {name}: without it, it would lose write quorum, or it is healing drives"
        )),
        Err(e) => Some(format!(
            "waiting to ask server {name} whether it can be spared: {e}"
        )),
    })
}

/// Deletes `pod` (the StatefulSet controller makes it again from the current template).
async fn restart(ctx: &Context, tenant: &Tenant, pod: &CachedPod) -> Result<(), StepError> {
    restart_within(ctx, tenant, pod, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_of_a_log_are_kept_short() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines("", 2), "");
        assert_eq!(last_lines(&"é".repeat(300), 1).chars().count(), 200);
    }
}
