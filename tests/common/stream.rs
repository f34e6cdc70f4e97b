//! The app's event stream as JetStream holds it, and waiting for the relay to drain the outbox.

use super::*;

/// One message of the app's event stream: its subject, `Nats-Msg-Id` and envelope.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    pub message_id: String,
    pub envelope: fishapp_domain::events::Envelope,
    /// The outbox row the event was published from (its position in this database), while the
    /// row is there.
    pub row_id: Option<i64>,
}

impl Published {
    /// The outbox row id, for tests of order and once-ness by position.
    pub fn row(&self) -> i64 {
        self.row_id.expect("the event's outbox row")
    }
}

/// Every message in the app's event stream, in stream order (empty when there is no stream),
/// each with the outbox row it came from.
pub async fn published(app: &TestApp) -> Vec<Published> {
    let rows: std::collections::HashMap<uuid::Uuid, i64> =
        sqlx::query_as::<_, (uuid::Uuid, i64)>("SELECT event_id, id FROM outbox.events")
            .fetch_all(&app.pool().await)
            .await
            .expect("the outbox")
            .into_iter()
            .collect();
    let jetstream = app.jetstream().await;
    let Ok(mut stream) = jetstream.get_stream(&app.config.relay.relay_stream).await else {
        return Vec::new();
    };
    let state = stream.info().await.expect("stream info").state.clone();
    let mut messages = Vec::new();
    if state.messages == 0 {
        return messages;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream
            .get_raw_message(sequence)
            .await
            .expect("message by sequence");
        let message_id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let envelope: fishapp_domain::events::Envelope =
            serde_json::from_slice(&message.payload).expect("an envelope");
        messages.push(Published {
            subject: message.subject.to_string(),
            message_id,
            row_id: rows.get(&envelope.id).copied(),
            envelope,
        });
    }
    messages
}

/// Waits until the relay has published every outbox row that can be published (none waiting
/// but failed ones); panics after `within`.
pub async fn wait_until_drained(app: &TestApp, within: Duration) {
    let pool = app.pool().await;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox.pending WHERE failed_at IS NULL")
                .fetch_one(&pool)
                .await
                .expect("outbox count");
        if waiting == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} outbox events still unpublished after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
