//! What a pass saw of a tenant's servers and did for its users and buckets: the facts its status is
//! decided from (`status::status_of`), gathered by the health and provisioning phases.

use crate::api::status::{PoolStatus, TenantUsage};
use crate::s3admin::StorageInfo;

/// Where a tenant's rollout stands after a pass: whether every server runs the current pod
/// template, and if not, what the next step waits for or why it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Every server runs the current template.
    Done,
    /// Servers are being replaced; `step` is what this pass did or waits for.
    InProgress {
        updated: usize,
        servers: usize,
        step: String,
    },
    /// A server on the current template fails, so no other is replaced: the rest keep serving
    /// on the previous one until the change is fixed or undone.
    Stopped {
        updated: usize,
        servers: usize,
        server: String,
        why: String,
    },
}

/// The S3 cluster's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Health {
    Healthy,
    /// Why not: the HTTP status it answered, or why it could not be reached.
    Unhealthy(String),
}

/// The drives and usage the admin API reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Storage {
    pub online: i32,
    pub offline: i32,
    pub healing: i32,
    pub write_quorum: Option<i32>,
    pub usage: TenantUsage,
    /// The pods whose drives are offline, by name, sorted.
    pub offline_pods: Vec<String>,
}

/// What the health phase saw.
#[derive(Clone, Debug)]
pub struct Observed {
    pub pools: Vec<PoolStatus>,
    pub servers_ready: i32,
    pub servers: i32,
    /// `None` when not asked ([`ReadyWhen::PodsReady`]).
    pub s3: Option<S3Health>,
    /// `None` unless the cluster answered healthy and the root credentials are known.
    pub storage: Option<Storage>,
}

impl Observed {
    /// Whether every server's pod is ready.
    pub fn servers_up(&self) -> bool {
        self.servers_ready >= self.servers
    }
}

/// The outcome: whether every user and bucket is in place, and the first thing that is not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    pub users: bool,
    pub buckets: bool,
    /// (reason, message) of what blocks provisioning; names the Secret or bucket.
    pub problem: Option<(&'static str, String)>,
    /// Users created or updated, and buckets created, on this pass (for one event).
    pub done_now: Vec<String>,
}

/// Drive counts, usage as the Go operator computes it (raw space per pool, scaled by the pool's
/// data-to-total ratio for the net figures), and the pods of the offline drives.
pub fn storage_of(info: &StorageInfo, write_quorum: Option<i32>) -> Storage {
    let count = |f: &dyn Fn(&&crate::s3admin::Drive) -> bool| {
        i32::try_from(info.drives.iter().filter(f).count()).unwrap_or(i32::MAX)
    };
    let pools = info.backend.standard_sc_data.len();
    let (mut raw_capacity, mut raw_usage) = (vec![0u64; pools], vec![0u64; pools]);
    for drive in &info.drives {
        if let (Some(c), Some(u)) = (
            raw_capacity.get_mut(drive.pool_index),
            raw_usage.get_mut(drive.pool_index),
        ) {
            *c = c.saturating_add(drive.available_space);
            *u = u.saturating_add(drive.used_space);
        }
    }
    let (mut capacity, mut usage) = (0u64, 0u64);
    for (pool, data) in info.backend.standard_sc_data.iter().enumerate() {
        let parity = info
            .backend
            .standard_sc_parities
            .get(pool)
            .copied()
            .unwrap_or(info.backend.standard_sc_parity);
        let total = data.saturating_add(parity);
        if total == 0 {
            continue;
        }
        // u128: drive sizes in bytes times a handful of drives stay far below its range.
        let net = |raw: u64| (u128::from(raw) * u128::from(*data) / u128::from(total)) as u64;
        capacity = capacity.saturating_add(net(raw_capacity[pool]));
        usage = usage.saturating_add(net(raw_usage[pool]));
    }
    let signed = |v: u64| Some(i64::try_from(v).unwrap_or(i64::MAX));
    let mut offline_pods: Vec<String> = info
        .drives
        .iter()
        .filter(|d| !d.online())
        .map(|d| pod_of(&d.endpoint))
        .collect();
    offline_pods.sort();
    offline_pods.dedup();
    Storage {
        online: count(&|d| d.online()),
        offline: count(&|d| !d.online()),
        healing: count(&|d| d.healing),
        write_quorum,
        usage: TenantUsage {
            capacity: signed(capacity),
            raw_capacity: signed(raw_capacity.iter().sum()),
            usage: signed(usage),
            raw_usage: signed(raw_usage.iter().sum()),
            ..TenantUsage::default()
        },
        offline_pods,
    }
}

/// The pod of a drive endpoint (`https://<pod>.<headless>.<ns>.svc...:9000/export0`).
fn pod_of(endpoint: &str) -> String {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    host.split(['.', ':', '/'])
        .next()
        .unwrap_or(host)
        .to_owned()
}
