//! What the domain measures for the server to export: store and embedder
//! latencies and the auth cache's hits. Metric types from
//! `prometheus-client` (atomics, no global registry); the server registers
//! them and encodes the Prometheus text (`engram-server/src/http/metrics.rs`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// Latency buckets in seconds: 100 µs doubling to about 13 s.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_1, 2.0, 18)
}

/// A latency histogram with [`latency_buckets`].
pub fn histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// Latency histograms by label set.
pub type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// An empty family of latency histograms.
pub fn histograms<L: Clone + std::hash::Hash + Eq>() -> Histograms<L> {
    Family::new_with_constructor(histogram)
}

/// The label of a store call: `read` (a snapshot), `point` (a lookup by
/// key), `write` (a transaction).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: &'static str,
}

/// Store calls' latencies by kind.
#[derive(Debug, Clone)]
pub struct StoreTimings(pub Histograms<OpLabel>);

impl Default for StoreTimings {
    fn default() -> Self {
        StoreTimings(histograms())
    }
}

impl StoreTimings {
    /// Records one call of kind `op`.
    pub fn record(&self, op: &'static str, elapsed: Duration) {
        self.0.get_or_create(&OpLabel { op }).observe(elapsed.as_secs_f64());
    }
}

/// The service's own measurements.
#[derive(Debug, Clone)]
pub struct ServiceMetrics {
    /// One call of the embedder (a batch of texts), seconds.
    pub embed: Histogram,
    /// Texts embedded.
    pub embedded_texts: Counter,
    /// API-key lookups answered from the auth cache / from the store.
    pub auth_cache_hits: Counter,
    pub auth_cache_misses: Counter,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics {
            embed: histogram(),
            embedded_texts: Counter::default(),
            auth_cache_hits: Counter::default(),
            auth_cache_misses: Counter::default(),
        }
    }
}

/// Records `elapsed` in `h`, in seconds.
pub fn observe(h: &Histogram, elapsed: Duration) {
    h.observe(elapsed.as_secs_f64());
}
