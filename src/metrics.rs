//! The process's Prometheus metrics, one registry both halves of the operator report into (one
//! `/metrics` endpoint per process): the webhook server's requests and latency per webhook and
//! verdict, requests in flight, open connections and when its serving certificate expires; and the
//! reconciler's passes and API writes. Nothing here knows either half: they call in.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

pub fn count_pass() {
    PASSES.fetch_add(1, Ordering::Relaxed);
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
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
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
        let seconds = not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.certificate_expiry.set(seconds);
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
