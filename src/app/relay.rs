//! The outbox relay role: its settings, and running it (a standby while another process leads).

use super::with_probes;
use crate::config::Config;
use anyhow::Context;
use fishapp_api::metrics::{new_registry, probe_router};
use fishapp_relaylog::{RelayMetrics, RelaySettings, StreamSettings};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The relay's settings from configuration.
pub fn relay_settings(config: &Config) -> RelaySettings {
    RelaySettings {
        database_url: config.connections.database_url.clone(),
        stream: StreamSettings {
            name: config.relay.relay_stream.clone(),
            subject_prefix: config.relay.relay_subject_prefix.clone(),
            duplicate_window: Duration::from_secs(config.relay.relay_duplicate_window_secs),
            max_age: Duration::from_secs(config.relay.relay_stream_max_age_secs),
            max_bytes: config.relay.relay_stream_max_bytes,
            max_message_bytes: config.relay.relay_stream_max_message_bytes,
            replicas: config.relay.relay_stream_replicas,
        },
        batch_size: config.relay.relay_batch_size,
        poll_interval: Duration::from_millis(config.relay.relay_poll_interval_ms),
        standby_retry: Duration::from_millis(config.relay.relay_standby_retry_ms),
        max_backoff: Duration::from_millis(config.relay.relay_max_backoff_ms),
        retention: Duration::from_secs(config.relay.relay_retention_secs),
        prune_interval: Duration::from_secs(config.relay.relay_prune_interval_secs),
    }
}

/// The outbox relay until `shutdown` (a standby while another process leads), its metrics
/// registered in `registry`.
pub async fn run_relay(
    config: &Config,
    nats: async_nats::Client,
    registry: &prometheus::Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = RelayMetrics::new(registry).context("relay metrics")?;
    fishapp_relaylog::run(relay_settings(config), nats, metrics, shutdown).await?;
    Ok(())
}

/// `fishapp relay`: the outbox relay until SIGTERM/SIGINT, with `/healthz` and `/metrics` on
/// `relay_http_addr`.
pub async fn relay(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = fishapp_relaylog::nats::connect(&config.connections.nats_url)
        .await
        .context("nats_url")?;
    let registry = new_registry();
    let relay = run_relay(config, nats, &registry, shutdown.clone());
    with_probes(
        "relay",
        config.relay.relay_http_addr,
        probe_router(registry.clone()),
        &shutdown,
        relay,
    )
    .await
}
