//! What the controller remembers of each Tenant between passes, by uid: its consecutive failures
//! (the retry backoff), since when its cluster has been forming (how soon to look again), the last
//! status it wrote (so a pass that runs before the watch brings that write back does not write it
//! again), the users and buckets provisioned (so a healthy Tenant costs its server nothing), and
//! the root credentials its servers last accepted (a restart after their rotation is asked with
//! them).
//! Forgotten when the Tenant's watch reports it deleted, so the memory is bounded by the
//! Tenants that exist, not by every Tenant ever created.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::s3admin::Credentials;

#[derive(Default)]
pub struct TenantMemory(Mutex<HashMap<String, Remembered>>);

#[derive(Default)]
struct Remembered {
    failures: u32,
    forming_since: Option<Instant>,
    /// The resourceVersion the last status write was made on top of, and a hash of that status.
    status_written: Option<(String, u64)>,
    provisioned: ProvisionedRecord,
    /// The root credentials the servers last accepted: after a rotation, the servers take the
    /// new ones only once they restart, which the rollout asks them with these.
    admin: Option<Credentials>,
    /// Monitoring: the fingerprint of the scrape user's key last set on the servers, and a hash
    /// of the ServiceMonitor last applied.
    scrape_user: Option<String>,
    monitors: Option<u64>,
}

impl Remembered {
    fn is_empty(&self) -> bool {
        self.admin.is_none()
            && self.scrape_user.is_none()
            && self.monitors.is_none()
            && self.failures == 0
            && self.forming_since.is_none()
            && self.status_written.is_none()
            && self.provisioned.is_empty()
    }
}

/// The users and buckets provisioned for one Tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvisionedRecord {
    /// User Secret name -> the resourceVersion provisioned.
    pub users: BTreeMap<String, String>,
    pub buckets: BTreeSet<String>,
}

impl ProvisionedRecord {
    fn is_empty(&self) -> bool {
        self.users.is_empty() && self.buckets.is_empty()
    }
}

impl TenantMemory {
    /// Runs `change` on the Tenant's entry, dropping the entry when nothing is left in it. Every
    /// pass calls this: a Tenant with an entry costs no allocation, one without gets an entry only
    /// when `change` leaves something in it.
    fn with<T>(&self, uid: &str, change: impl FnOnce(&mut Remembered) -> T) -> Option<T> {
        let mut map = self.0.lock().ok()?;
        let Some(entry) = map.get_mut(uid) else {
            let mut fresh = Remembered::default();
            let out = change(&mut fresh);
            if !fresh.is_empty() {
                map.insert(uid.to_owned(), fresh);
            }
            return Some(out);
        };
        let out = change(entry);
        if entry.is_empty() {
            map.remove(uid);
        }
        Some(out)
    }

    /// Counts one more failed pass; returns how many in a row.
    pub fn failed(&self, uid: &str) -> u32 {
        self.with(uid, |r| {
            r.failures = r.failures.saturating_add(1);
            r.failures
        })
        .unwrap_or(1)
    }

    pub fn succeeded(&self, uid: &str) {
        self.with(uid, |r| r.failures = 0);
    }

    /// How long the Tenant has been forming, when it is (`forming`); otherwise it is not any more.
    pub fn forming_for(&self, uid: &str, forming: bool) -> Option<Duration> {
        self.with(uid, |r| {
            if forming {
                Some(r.forming_since.get_or_insert_with(Instant::now).elapsed())
            } else {
                r.forming_since = None;
                None
            }
        })
        .flatten()
    }

    /// Whether the status with `hash` was already written on top of `resource_version`: the
    /// watch has not brought that write back yet, and writing it again would change nothing.
    pub fn status_already_written(&self, uid: &str, resource_version: &str, hash: u64) -> bool {
        self.0.lock().is_ok_and(|map| {
            map.get(uid)
                .and_then(|r| r.status_written.as_ref())
                .is_some_and(|(on, h)| on == resource_version && *h == hash)
        })
    }

    pub fn status_written(&self, uid: &str, resource_version: &str, hash: u64) {
        self.with(uid, |r| {
            r.status_written = Some((resource_version.to_owned(), hash));
        });
    }

    /// What was provisioned for the Tenant so far.
    pub fn provisioned(&self, uid: &str) -> ProvisionedRecord {
        self.0
            .lock()
            .ok()
            .and_then(|map| map.get(uid).map(|r| r.provisioned.clone()))
            .unwrap_or_default()
    }

    pub fn remember_provisioned(&self, uid: &str, record: ProvisionedRecord) {
        self.with(uid, |r| r.provisioned = record);
    }

    pub fn remember_admin(&self, uid: &str, credentials: &Credentials) {
        self.with(uid, |r| r.admin = Some(credentials.clone()));
    }

    /// The root credentials the servers last accepted, if any were seen.
    pub fn admin(&self, uid: &str) -> Option<Credentials> {
        self.0
            .lock()
            .ok()
            .and_then(|map| map.get(uid).and_then(|r| r.admin.clone()))
    }

    /// Whether the scrape user's key with this fingerprint was set on the servers by this process.
    pub fn scrape_user_set(&self, uid: &str, fingerprint: &str) -> bool {
        self.0.lock().is_ok_and(|map| {
            map.get(uid)
                .is_some_and(|r| r.scrape_user.as_deref() == Some(fingerprint))
        })
    }

    pub fn remember_scrape_user(&self, uid: &str, fingerprint: Option<String>) {
        self.with(uid, |r| r.scrape_user = fingerprint);
    }

    /// Whether the ServiceMonitor with this hash was applied last.
    pub fn monitors_applied(&self, uid: &str, hash: u64) -> bool {
        self.0
            .lock()
            .is_ok_and(|map| map.get(uid).is_some_and(|r| r.monitors == Some(hash)))
    }

    /// Whether this process applied a ServiceMonitor for the Tenant.
    pub fn monitors_applied_any(&self, uid: &str) -> bool {
        self.0
            .lock()
            .is_ok_and(|map| map.get(uid).is_some_and(|r| r.monitors.is_some()))
    }

    pub fn remember_monitors(&self, uid: &str, hash: Option<u64>) {
        self.with(uid, |r| r.monitors = hash);
    }

    pub fn forget(&self, uid: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(uid);
        }
    }

    /// Forgets every Tenant not in `alive` (after a watch relists: deletions made while it was
    /// down are not reported one by one).
    pub fn keep_only(&self, alive: &HashSet<String>) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|uid, _| alive.contains(uid));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_up_and_a_success_forgets_them() {
        let memory = TenantMemory::default();
        assert_eq!(memory.failed("a"), 1);
        assert_eq!(memory.failed("a"), 2);
        assert_eq!(memory.failed("b"), 1);
        memory.succeeded("a");
        assert_eq!(memory.failed("a"), 1, "counted afresh after a success");
        memory.succeeded("a");
        memory.succeeded("b");
        assert_eq!(memory.len(), 0, "an entry with nothing in it is dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn forming_is_timed_from_the_first_pass_that_sees_it() {
        let memory = TenantMemory::default();
        assert_eq!(memory.forming_for("a", true), Some(Duration::ZERO));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(memory.forming_for("a", true), Some(Duration::from_secs(3)));
        assert_eq!(memory.forming_for("a", false), None);
        assert_eq!(
            memory.forming_for("a", true),
            Some(Duration::ZERO),
            "a new forming"
        );
    }

    #[test]
    fn a_status_is_not_written_twice_on_top_of_the_same_version() {
        let memory = TenantMemory::default();
        assert!(!memory.status_already_written("a", "7", 1));
        memory.status_written("a", "7", 1);
        assert!(memory.status_already_written("a", "7", 1));
        assert!(
            !memory.status_already_written("a", "7", 2),
            "a different status"
        );
        assert!(
            !memory.status_already_written("a", "8", 1),
            "the object moved on (our write came back, or someone else's)"
        );
    }

    #[test]
    fn deleted_tenants_are_forgotten() {
        let memory = TenantMemory::default();
        memory.failed("a");
        memory.status_written("b", "1", 1);
        memory.failed("c");
        memory.forget("a");
        assert_eq!(memory.len(), 2);
        memory.keep_only(&HashSet::from(["c".to_owned()]));
        assert_eq!(memory.len(), 1);
        assert_eq!(memory.failed("c"), 2, "the kept one kept its count");
    }
}
