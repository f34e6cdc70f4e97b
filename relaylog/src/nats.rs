//! The NATS connection the relay (and the API's live subscriptions) use.

use std::time::Duration;

/// The address itself is not repeated: it may carry a token or a password.
#[derive(Debug, thiserror::Error)]
#[error("invalid NATS address: {source}")]
pub struct NatsAddressError {
    source: std::io::Error,
}

/// Connects without waiting for the server: the client keeps reconnecting in the background
/// (forever), so the process starts while NATS is down and recovers when it is back.
pub async fn connect(url: &str) -> Result<async_nats::Client, NatsAddressError> {
    async_nats::ConnectOptions::new()
        .name("fishapp")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(3))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("disconnected from NATS; reconnecting")
                }
                other => tracing::debug!(event = %other, "NATS event"),
            }
        })
        .connect(url)
        .await
        .map_err(|e| NatsAddressError {
            source: std::io::Error::other(e.to_string()),
        })
}
