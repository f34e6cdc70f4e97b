//! The outbox relay: reads the events that the store wrote in the same transaction as the
//! changes that caused them, and publishes them to NATS JetStream (the outbox row id is the
//! message id, so a republish after a crash is dropped by the server).
//!
//! The outbox table and the relay loop arrive with the board issue; until then the relay has
//! nothing to publish and says so.

pub mod nats;

use tokio_util::sync::CancellationToken;

/// Runs the relay until `shutdown` fires.
pub async fn run(shutdown: CancellationToken) {
    tracing::info!("outbox relay: no outbox to publish from yet; idle until shutdown");
    shutdown.cancelled().await;
    tracing::info!("outbox relay stopped");
}
