//! The one JetStream stream every event goes to, provisioned (created or brought to the
//! configured limits) each time a relay becomes the leader.

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use std::time::Duration;

/// The stream's name, subjects and limits, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream's name (`FISHAPP`).
    pub name: String,
    /// Subjects are `<prefix>.<event type>`; the stream takes `<prefix>.>`.
    pub subject_prefix: String,
    /// Republishes of one message id within this window are dropped by the server.
    pub duplicate_window: Duration,
    /// Messages older than this are discarded.
    pub max_age: Duration,
    /// Total size; past it the oldest messages are discarded.
    pub max_bytes: i64,
    /// Largest message; a larger event is refused for good (a failed outbox row).
    pub max_message_bytes: i32,
    /// Copies kept in a clustered deployment (1 on a single server).
    pub replicas: usize,
}

impl StreamSettings {
    pub fn config(&self) -> Config {
        Config {
            name: self.name.clone(),
            subjects: vec![format!("{}.>", self.subject_prefix)],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            max_message_size: self.max_message_bytes,
            num_replicas: self.replicas,
            ..Config::default()
        }
    }
}

/// Creates the stream, or updates it to the configured limits. Idempotent.
pub async fn provision(
    jetstream: &async_nats::jetstream::Context,
    settings: &StreamSettings,
) -> Result<(), async_nats::jetstream::context::CreateStreamError> {
    jetstream.create_or_update_stream(settings.config()).await?;
    Ok(())
}
