//! The transactional outbox: events are rows written in the transaction of the change that
//! caused them, so that a change is never published without having happened, nor happens
//! without being published. The relay (relaylog) publishes them in id order.

use serde::Serialize;
use serde_json::Value;

/// One event. Subjects are `fishapp.<context>.<aggregate>.<event>`.
#[derive(Debug, Clone)]
pub struct Event {
    pub subject: String,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub payload: Value,
}

impl Event {
    /// `fishapp.board.post.<what>`, with the post as it is after the change.
    pub fn post(what: &str, post: &crate::board::PostRow) -> Self {
        Self::new("board", "post", post.id, what, post)
    }

    /// `fishapp.chat.room.<what>`.
    pub fn room(what: &str, room: &crate::chat::RoomRow) -> Self {
        Self::new("chat", "room", room.id, what, room)
    }

    fn new(
        context: &str,
        aggregate: &'static str,
        id: i64,
        what: &str,
        body: &impl Serialize,
    ) -> Self {
        Self {
            subject: format!("fishapp.{context}.{aggregate}.{what}"),
            aggregate_type: aggregate,
            aggregate_id: id.to_string(),
            // Our own row types always serialize; Null would only hide a bug, never lose data.
            payload: serde_json::to_value(body).unwrap_or(Value::Null),
        }
    }
}

/// Takes back an aggregate's events that the relay has not published yet (a compensation of
/// something nobody saw). Returns whether some were already published: then the world must be
/// told about the undo with an event of its own.
pub async fn withdraw_unpublished(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    aggregate_type: &str,
    aggregate_id: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "DELETE FROM outbox.events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND published_at IS NULL",
    )
    .bind(aggregate_type)
    .bind(aggregate_id.to_string())
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM outbox.events WHERE aggregate_type = $1 AND aggregate_id = $2)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id.to_string())
    .fetch_one(&mut **tx)
    .await
}

/// Appends an event inside the caller's transaction.
pub async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event: &Event,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO outbox.events (subject, aggregate_type, aggregate_id, payload)
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(&event.subject)
    .bind(event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(&event.payload)
    .fetch_one(&mut **tx)
    .await
}
