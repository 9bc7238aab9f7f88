//! Prometheus metrics of the webhook server: requests and latency per webhook and verdict, requests
//! in flight, and when the serving certificate expires.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub webhook: &'static str,
    /// allowed, denied, patched, bad_request, timeout
    pub verdict: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RequestLabels, Histogram>,
    pub in_flight: Gauge,
    pub certificate_expiry: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hanzo_s3_operator_webhook");
        let requests = Family::<RequestLabels, Counter>::default();
        // 50 µs .. ~0.8 s: admission answers are sub-millisecond; the tail shows trouble.
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00005, 2.0, 15))
        });
        let in_flight = Gauge::default();
        let certificate_expiry = Gauge::<i64, AtomicI64>::default();
        registry.register("requests", "Admission requests answered", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time to answer an admission request",
            latency.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Admission requests being answered",
            in_flight.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "Unix time at which the serving certificate expires",
            certificate_expiry.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
            certificate_expiry,
        }
    }
}

impl Metrics {
    pub fn observe(&self, webhook: &'static str, verdict: &'static str, seconds: f64) {
        let labels = RequestLabels { webhook, verdict };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
