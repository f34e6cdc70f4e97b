//! The relay's Prometheus metrics, registered in the registry the process serves at `/metrics`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct RelayMetrics {
    /// Events JetStream acknowledged (and the outbox marked published).
    pub published: IntCounter,
    /// Rows read per batch.
    pub batch_size: Histogram,
    /// Publish failures by kind: `transient` (retried) or `refused` (the row failed for good).
    pub errors: IntCounterVec,
    /// 1 while this process is the active relay.
    pub leader: IntGauge,
    /// Age of the oldest row in the last batch read, in milliseconds (0 when the outbox is drained).
    pub lag_ms: IntGauge,
    /// From an event's write to its acknowledgement by JetStream.
    pub delay: Histogram,
}

impl RelayMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            published: IntCounter::new(
                "relay_published_total",
                "Outbox events published to JetStream and acknowledged",
            )?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("relay_batch_size", "Outbox rows read per batch")
                    .buckets(vec![1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0]),
            )?,
            errors: IntCounterVec::new(
                Opts::new("relay_errors_total", "Publish failures by kind"),
                &["kind"],
            )?,
            leader: IntGauge::new("relay_leader", "1 while this process is the active relay")?,
            lag_ms: IntGauge::new(
                "relay_lag_milliseconds",
                "Age of the oldest unpublished event the relay last read",
            )?,
            delay: Histogram::with_opts(
                HistogramOpts::new(
                    "relay_delay_seconds",
                    "Time from an event's write to its JetStream acknowledgement",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
                ]),
            )?,
        };
        registry.register(Box::new(metrics.published.clone()))?;
        registry.register(Box::new(metrics.batch_size.clone()))?;
        registry.register(Box::new(metrics.errors.clone()))?;
        registry.register(Box::new(metrics.leader.clone()))?;
        registry.register(Box::new(metrics.lag_ms.clone()))?;
        registry.register(Box::new(metrics.delay.clone()))?;
        Ok(metrics)
    }
}
