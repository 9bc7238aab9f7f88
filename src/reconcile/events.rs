//! Events on Tenants (events.k8s.io/v1). A repeat of the same reason on the same Tenant within
//! [`SERIES_FOR`] of the last one is folded into that event as a series (its count grows), so a
//! failure retried for hours is one event, not thousands.
//!
//! Kept here rather than in kube's `Recorder`, which does the same but remembers each event whole
//! (a `k8s_openapi` Event is over a kilobyte before its contents) in a map that never shrinks:
//! 3 MiB at 1,000 new Tenants (heaptrack, benches/results/reconcile-scale.md). A series is
//! remembered here as a hash, a name and a count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::apply::hash64;
use crate::api::tenant::Tenant;

/// How long after its last occurrence a reason still joins its series (kube's recorder and
/// client-go's use the same span).
const SERIES_FOR: Duration = Duration::from_secs(6 * 60);

/// events.k8s.io/v1 refuses a note longer than this (in bytes).
const NOTE_LIMIT: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Who publishes: the controller's name and, in a cluster, its pod.
pub struct Events {
    client: kube::Client,
    controller: String,
    instance: String,
    series: Repeats,
}

/// The series published lately, by a hash of (type, reason, Tenant).
#[derive(Default)]
struct Repeats(Mutex<HashMap<u64, Series>>);

struct Series {
    namespace: String,
    name: String,
    count: i32,
    last: Timestamp,
}

/// What to publish next: a new event, or one more of a series.
enum Next {
    Create,
    Repeat {
        namespace: String,
        name: String,
        count: i32,
    },
}

impl Events {
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Events {
        Events {
            client,
            controller: controller.to_owned(),
            instance: instance.unwrap_or_else(|| controller.to_owned()),
            series: Repeats::default(),
        }
    }

    /// Publishes `reason` with `note` on `tenant` (the action is always a reconcile).
    pub async fn publish(
        &self,
        tenant: &Tenant,
        type_: EventType,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = hash64(&(
            type_.as_str(),
            reason,
            tenant.namespace(),
            tenant.name_any(),
            tenant.uid(),
        ));
        let next = self.series.next(key, now);
        if let Next::Repeat {
            namespace,
            name,
            count,
        } = next
        {
            let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
            let repeated = Api::<Event>::namespaced(self.client.clone(), &namespace)
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            match repeated {
                Ok(_) => return Ok(()),
                // Gone (the apiserver's event TTL, or deleted): start a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(other) => return Err(other),
            }
        }
        let event = self.event(tenant, type_, reason, note, now);
        let (namespace, name) = (event.namespace().unwrap_or_default(), event.name_any());
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        self.series.started(key, namespace, name, now);
        Ok(())
    }

    fn event(
        &self,
        tenant: &Tenant,
        type_: EventType,
        reason: &str,
        note: &str,
        now: Timestamp,
    ) -> Event {
        Event {
            metadata: ObjectMeta {
                namespace: tenant.metadata.namespace.clone(),
                name: Some(format!("{}.{:x}", tenant.name_any(), now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_.as_str().to_owned()),
            reason: Some(reason.to_owned()),
            action: Some("Reconcile".to_owned()),
            note: Some(truncated(note, NOTE_LIMIT)),
            regarding: Some(tenant.object_ref(&())),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

impl Repeats {
    fn started(&self, key: u64, namespace: String, name: String, now: Timestamp) {
        if let Ok(mut series) = self.0.lock() {
            series.insert(
                key,
                Series {
                    namespace,
                    name,
                    count: 1,
                    last: now,
                },
            );
        }
    }

    /// Forgets series past [`SERIES_FOR`], then says whether `key` continues one (counting it).
    fn next(&self, key: u64, now: Timestamp) -> Next {
        let Ok(mut series) = self.0.lock() else {
            return Next::Create;
        };
        let live = |s: &Series| now.duration_since(s.last).unsigned_abs() < SERIES_FOR;
        series.retain(|_, s| live(s));
        // A map that once held a burst of Tenants' events gives the room back once they expire.
        if series.capacity() > 64 && series.len() < series.capacity() / 4 {
            series.shrink_to_fit();
        }
        match series.get_mut(&key) {
            Some(s) => {
                s.count = s.count.saturating_add(1);
                s.last = now;
                Next::Repeat {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    count: s.count,
                }
            }
            None => Next::Create,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |s| s.len())
    }
}

/// `note` cut to at most `limit` bytes at a character boundary, marked when cut.
fn truncated(note: &str, limit: usize) -> String {
    if note.len() <= limit {
        return note.to_owned();
    }
    const MARK: &str = " …";
    let mut end = limit - MARK.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_six_minutes_joins_the_series_and_a_later_one_starts_anew() {
        let repeats = Repeats::default();
        let t0 = Timestamp::UNIX_EPOCH;
        let at = |secs: i64| t0 + k8s_openapi::jiff::SignedDuration::from_secs(secs);
        assert!(matches!(repeats.next(1, t0), Next::Create));
        repeats.started(1, "ns".into(), "t.1".into(), t0);
        let Next::Repeat { name, count, .. } = repeats.next(1, at(60)) else {
            panic!("a repeat a minute later is in the series");
        };
        assert_eq!((name.as_str(), count), ("t.1", 2));
        let Next::Repeat { count, .. } = repeats.next(1, at(400)) else {
            panic!("six minutes after the last one, not the first");
        };
        assert_eq!(count, 3);
        assert!(
            matches!(repeats.next(2, at(400)), Next::Create),
            "another reason"
        );
        assert!(matches!(repeats.next(1, at(400 + 361)), Next::Create));
        assert_eq!(repeats.len(), 0, "expired series are forgotten");
    }

    #[test]
    fn a_long_note_is_cut_to_what_the_api_takes() {
        assert_eq!(truncated("short", 1024), "short");
        let long = "é".repeat(1000);
        let cut = truncated(&long, NOTE_LIMIT);
        assert!(cut.len() <= NOTE_LIMIT, "{} bytes", cut.len());
        assert!(cut.ends_with(" …"));
        assert!(cut.starts_with("éé"));
    }
}
