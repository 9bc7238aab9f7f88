//! The process's Prometheus metrics, one registry both halves of the operator report into (one
//! `/metrics` endpoint per process): the webhook server's requests and latency per webhook and
//! verdict, requests in flight, open connections and when its serving certificate expires; and the
//! reconciler's passes, failures, API writes, whether it leads, and one gauge set per Tenant it
//! reconciles (the alerts of deploy/monitoring read them). Nothing here knows either half: they
//! call in.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// mutate, validate
    pub webhook: &'static str,
    /// allowed, patched, denied, bad_request, too_large, timeout, overloaded
    pub verdict: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RequestLabels, Histogram>,
    pub in_flight: Gauge,
    pub connections: Gauge,
    pub certificate_expiry: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut top = Registry::default();
        top.sub_registry_with_prefix("hanzo_s3_operator_reconcile")
            .register_collector(Box::new(ReconcilerCounters));
        top.sub_registry_with_prefix("hanzo_s3_operator_tenant")
            .register_collector(Box::new(TenantGauges));
        let registry = top.sub_registry_with_prefix("hanzo_s3_operator_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        // 50 µs .. ~0.8 s: admission answers are sub-millisecond; the tail shows trouble.
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 15))
        });
        let in_flight = Gauge::default();
        let connections = Gauge::default();
        let certificate_expiry = Gauge::<i64, AtomicI64>::default();
        registry.register("requests", "Admission requests answered", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time to answer an admission request, reading its body included",
            latency.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Admission requests being answered",
            in_flight.clone(),
        );
        registry.register(
            "open_connections",
            "TLS connections open (handshaking, idle or busy)",
            connections.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "Unix time at which the serving certificate expires",
            certificate_expiry.clone(),
        );
        Metrics {
            registry: top,
            requests,
            latency,
            in_flight,
            connections,
            certificate_expiry,
        }
    }
}

/// Reconcile passes started (Tenants being deleted apart).
static PASSES: AtomicU64 = AtomicU64::new(0);
/// Write requests the reconciler sent (applies, status patches, events), whether or not they
/// changed the object: what the apiserver's audit log counts.
static API_WRITES: AtomicU64 = AtomicU64::new(0);
/// Passes that ended in a step failing against an API (retried with backoff).
static FAILURES: AtomicU64 = AtomicU64::new(0);
/// Whether this process reconciles (holds the leader Lease, or runs without election).
static LEADING: AtomicBool = AtomicBool::new(false);
/// What the last pass over each Tenant reported, by (namespace, name): one series per Tenant and
/// gauge, gone with the Tenant or when this process stops reconciling (a follower reports none,
/// so the replicas never report a Tenant twice).
static TENANTS: Mutex<BTreeMap<(String, String), TenantState>> = Mutex::new(BTreeMap::new());

/// One Tenant as its last pass saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantState {
    pub ready: bool,
    /// Servers the spec asks for, and how many of them are Ready.
    pub servers: u64,
    pub servers_ready: u64,
    pub drives_offline: u64,
    /// Unix time at which the certificate the operator signed for it expires (none: it has none).
    pub certificate_expiry: Option<i64>,
}

pub fn count_pass() {
    PASSES.fetch_add(1, Ordering::Relaxed);
}

pub fn count_failure() {
    FAILURES.fetch_add(1, Ordering::Relaxed);
}

pub fn set_leading(leading: bool) {
    LEADING.store(leading, Ordering::Relaxed);
    if !leading {
        with_tenants(BTreeMap::clear);
    }
}

fn with_tenants<T>(f: impl FnOnce(&mut BTreeMap<(String, String), TenantState>) -> T) -> T {
    // Every change under the lock is one map operation: a poisoned map is still whole.
    let mut map = TENANTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut map)
}

/// Records what a pass reported of a Tenant; the certificate expiry is kept (the status does
/// not carry it: [`tenant_certificate_expiry`] sets it).
pub fn record_tenant(namespace: &str, name: &str, state: TenantState) {
    with_tenants(|map| {
        let entry = map
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default();
        *entry = TenantState {
            certificate_expiry: entry.certificate_expiry,
            ..state
        };
    });
}

pub fn tenant_certificate_expiry(namespace: &str, name: &str, not_after: Option<SystemTime>) {
    let seconds = not_after.map(unix_seconds);
    with_tenants(|map| {
        map.entry((namespace.to_owned(), name.to_owned()))
            .or_default()
            .certificate_expiry = seconds;
    });
}

pub fn forget_tenant(namespace: &str, name: &str) {
    with_tenants(|map| map.remove(&(namespace.to_owned(), name.to_owned())));
}

/// After a relist: only the Tenants `alive` says exist keep their gauges.
pub fn keep_tenants(alive: impl Fn(&str, &str) -> bool) {
    with_tenants(|map| map.retain(|(namespace, name), _| alive(namespace, name)));
}

fn unix_seconds(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub fn count_api_write() {
    API_WRITES.fetch_add(1, Ordering::Relaxed);
}

/// Reconcile passes started in this process (benchmarks and tests read it too).
pub fn passes() -> u64 {
    PASSES.load(Ordering::Relaxed)
}

/// API writes by the reconciler in this process.
pub fn api_writes() -> u64 {
    API_WRITES.load(Ordering::Relaxed)
}

/// The reconciler's counters, process-wide (the reconciler may run on a Lease's schedule, apart
/// from any one registry), read at each scrape.
#[derive(Debug)]
struct ReconcilerCounters;

impl Collector for ReconcilerCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            (
                "passes",
                "Reconcile passes started (Tenants being deleted apart)",
                passes(),
            ),
            (
                "api_writes",
                "Objects created or changed, status patches and events written by the reconciler",
                api_writes(),
            ),
            (
                "failures",
                "Reconcile passes in which a step failed against an API (each retried with backoff)",
                FAILURES.load(Ordering::Relaxed),
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        let leading = ConstGauge::new(i64::from(LEADING.load(Ordering::Relaxed)));
        let metric = encoder.encode_descriptor(
            "leader",
            "1 while this process reconciles (holds the leader Lease), else 0",
            None,
            leading.metric_type(),
        )?;
        leading.encode(metric)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    namespace: String,
    tenant: String,
}

/// One gauge per Tenant and kind, from what its last pass reported (read at each scrape).
#[derive(Debug)]
struct TenantGauges;

impl Collector for TenantGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tenants = with_tenants(|map| map.clone());
        type Read = fn(&TenantState) -> Option<i64>;
        let gauges: [(&str, &str, Read); 5] = [
            (
                "ready",
                "1 when the Tenant's Ready condition is True, else 0",
                |t| Some(i64::from(t.ready)),
            ),
            ("servers", "Servers the Tenant's pools ask for", |t| {
                i64::try_from(t.servers).ok()
            }),
            ("servers_ready", "Servers whose pod is Ready", |t| {
                i64::try_from(t.servers_ready).ok()
            }),
            (
                "drives_offline",
                "Drives the S3 cluster reports offline (0 when it cannot be asked)",
                |t| i64::try_from(t.drives_offline).ok(),
            ),
            (
                "certificate_expiry_timestamp_seconds",
                "Unix time at which the certificate the operator signed for the Tenant expires",
                |t| t.certificate_expiry,
            ),
        ];
        for (name, help, read) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for ((namespace, tenant), state) in &tenants {
                let Some(value) = read(state) else { continue };
                let labels = TenantLabels {
                    namespace: namespace.clone(),
                    tenant: tenant.clone(),
                };
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Counts one unit of a gauge for as long as it lives, so a request cancelled half-way (its client
/// went away) still leaves the gauge right.
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn observe(&self, webhook: &'static str, verdict: &'static str, seconds: f64) {
        let labels = RequestLabels { webhook, verdict };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    pub fn set_certificate_expiry(&self, not_after: SystemTime) {
        self.certificate_expiry.set(unix_seconds(not_after));
    }

    /// The text exposition format (version 0.0.4 compatible, as Prometheus scrapes it).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str, tenant: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(&format!("tenant=\"{tenant}\"")))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn each_tenant_has_one_series_per_gauge_until_it_is_forgotten() {
        let state = TenantState {
            ready: true,
            servers: 4,
            servers_ready: 3,
            drives_offline: 2,
            certificate_expiry: None,
        };
        record_tenant("ns-metrics", "gauged", state);
        tenant_certificate_expiry(
            "ns-metrics",
            "gauged",
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000)),
        );
        // A later pass keeps the certificate's expiry, which only the configuration phase knows.
        record_tenant("ns-metrics", "gauged", state);
        let text = Metrics::default().render();
        let lines = lines_of(&text, "gauged");
        for expected in [
            "hanzo_s3_operator_tenant_ready{namespace=\"ns-metrics\",tenant=\"gauged\"} 1",
            "hanzo_s3_operator_tenant_servers{namespace=\"ns-metrics\",tenant=\"gauged\"} 4",
            "hanzo_s3_operator_tenant_servers_ready{namespace=\"ns-metrics\",tenant=\"gauged\"} 3",
            "hanzo_s3_operator_tenant_drives_offline{namespace=\"ns-metrics\",tenant=\"gauged\"} 2",
            "hanzo_s3_operator_tenant_certificate_expiry_timestamp_seconds{namespace=\"ns-metrics\",tenant=\"gauged\"} 1900000000",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} in {lines:#?}"
            );
        }
        assert_eq!(lines.len(), 5, "{lines:#?}");
        forget_tenant("ns-metrics", "gauged");
        assert!(lines_of(&Metrics::default().render(), "gauged").is_empty());
    }

    #[test]
    fn a_relist_keeps_only_the_tenants_that_exist() {
        record_tenant("ns-relist", "kept", TenantState::default());
        record_tenant("ns-relist", "gone", TenantState::default());
        keep_tenants(|ns, name| ns != "ns-relist" || name == "kept");
        let text = Metrics::default().render();
        assert!(!lines_of(&text, "kept").is_empty());
        assert!(lines_of(&text, "gone").is_empty());
        forget_tenant("ns-relist", "kept");
    }

    #[test]
    fn the_reconcilers_counters_and_leader_gauge_are_exposed() {
        let text = Metrics::default().render();
        for name in [
            "hanzo_s3_operator_reconcile_passes_total",
            "hanzo_s3_operator_reconcile_failures_total",
            "hanzo_s3_operator_reconcile_api_writes_total",
            "hanzo_s3_operator_reconcile_leader",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(name) && !l.starts_with('#')),
                "{name} in {text}"
            );
        }
    }
}
