//! The one JetStream stream every event goes to, provisioned (created or brought to the
//! configured limits) each time a relay becomes the leader — and owned by one deployment.
//!
//! The owner (this database's `outbox.deployment` id) is written in the stream's description
//! when a relay creates or first claims it. A relay of another deployment refuses the stream,
//! naming both: two deployments on one NATS with the same stream would otherwise take each
//! other's events (and, on the same subjects, read them as their own).

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
use std::time::Duration;
use uuid::Uuid;

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
    /// The stream's configuration, owned by `deployment`.
    pub fn config(&self, deployment: Uuid) -> Config {
        Config {
            name: self.name.clone(),
            description: Some(owner_description(deployment)),
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

const OWNER: &str = "Fishapp events of deployment ";

fn owner_description(deployment: Uuid) -> String {
    format!("{OWNER}{deployment}")
}

/// The deployment a stream's description names, if any.
fn owner_of(description: Option<&str>) -> Option<Uuid> {
    description?.strip_prefix(OWNER)?.trim().parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The stream belongs to another deployment: publishing there would mix two deployments'
    /// events. Not retried: the configuration must change.
    #[error(
        "the JetStream stream {stream:?} belongs to deployment {owner}, but this database is \
         deployment {ours}: give each deployment a stream and subject prefix of its own \
         (FISHAPP_RELAY_STREAM, FISHAPP_RELAY_SUBJECT_PREFIX)"
    )]
    OwnedByAnother {
        stream: String,
        owner: Uuid,
        ours: Uuid,
    },
    /// NATS did not answer or refused; may pass on a retry.
    #[error("{0}")]
    Nats(String),
}

/// Creates the stream for `deployment`, or brings it to the configured limits when it is
/// `deployment`'s (or no one's yet: a stream made before owners were recorded is claimed).
pub async fn provision(
    jetstream: &async_nats::jetstream::Context,
    settings: &StreamSettings,
    deployment: Uuid,
) -> Result<(), ProvisionError> {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::GetStreamErrorKind;
    let nats = |e: &dyn std::fmt::Display| ProvisionError::Nats(e.to_string());
    // Twice at most: a stream another relay created between the look and the creation is looked
    // at again (its owner may be another deployment).
    for _ in 0..2 {
        match jetstream.get_stream(&settings.name).await {
            Ok(stream) => {
                let owner = owner_of(stream.cached_info().config.description.as_deref());
                if let Some(owner) = owner.filter(|owner| *owner != deployment) {
                    return Err(ProvisionError::OwnedByAnother {
                        stream: settings.name.clone(),
                        owner,
                        ours: deployment,
                    });
                }
                jetstream
                    .update_stream(settings.config(deployment))
                    .await
                    .map_err(|e| nats(&e))?;
                return Ok(());
            }
            Err(e) => match e.kind() {
                GetStreamErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    match jetstream.create_stream(settings.config(deployment)).await {
                        Ok(_) => return Ok(()),
                        Err(e) => {
                            tracing::debug!(error = %e, "the stream appeared meanwhile; looking again")
                        }
                    }
                }
                _ => return Err(nats(&e)),
            },
        }
    }
    Err(ProvisionError::Nats(format!(
        "the stream {:?} could neither be found nor created",
        settings.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_read_back_from_the_description() {
        let deployment = Uuid::now_v7();
        assert_eq!(
            owner_of(Some(&owner_description(deployment))),
            Some(deployment)
        );
        assert_eq!(owner_of(None), None);
        assert_eq!(owner_of(Some("someone's stream")), None);
    }
}
