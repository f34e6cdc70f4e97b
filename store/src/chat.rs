//! The chat context's tables, as far as the post sagas need them: a post's room and its members
//! (messages arrive with live chat). Room writes are idempotent by post id.

use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::events::EventType;
use serde::Serialize;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct RoomRow {
    pub id: i64,
    pub post_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The post's room with its owner as the first member; a second call returns the same room.
pub async fn create_room(db: &PgPool, post_id: i64, owner_id: i64) -> Result<RoomRow, sqlx::Error> {
    let mut tx = db.begin().await?;
    let created: Option<RoomRow> = sqlx::query_as(
        "INSERT INTO chat.rooms (post_id) VALUES ($1)
         ON CONFLICT (post_id) DO NOTHING
         RETURNING id, post_id, created_at, updated_at",
    )
    .bind(post_id)
    .fetch_optional(&mut *tx)
    .await?;
    let room = match created {
        Some(room) => {
            sqlx::query("INSERT INTO chat.members (room_id, user_id) VALUES ($1, $2)")
                .bind(room.id)
                .bind(owner_id)
                .execute(&mut *tx)
                .await?;
            outbox::append(&mut tx, &Event::room(EventType::RoomCreated, &room)).await?;
            room
        }
        None => {
            sqlx::query_as(
                "SELECT id, post_id, created_at, updated_at FROM chat.rooms WHERE post_id = $1",
            )
            .bind(post_id)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;
    Ok(room)
}

pub async fn room_of_post(db: &PgPool, post_id: i64) -> Result<Option<RoomRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, post_id, created_at, updated_at FROM chat.rooms WHERE post_id = $1")
        .bind(post_id)
        .fetch_optional(db)
        .await
}

/// Ids of the room's messages (their images are deleted before the room).
pub async fn message_ids(db: &PgPool, room_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM chat.messages WHERE room_id = $1 ORDER BY id")
        .bind(room_id)
        .fetch_all(db)
        .await
}

/// Deletes the post's room with its members and messages; gone already is success. `event`:
/// whether the world is told (a teardown), or not (a compensation: the room's unpublished
/// events are withdrawn instead, unless some already went out).
pub async fn delete_room(db: &PgPool, post_id: i64, event: bool) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted: Option<RoomRow> = sqlx::query_as(
        "DELETE FROM chat.rooms WHERE post_id = $1 RETURNING id, post_id, created_at, updated_at",
    )
    .bind(post_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(room) = &deleted {
        let announce = event || outbox::withdraw_unpublished(&mut tx, "room", room.id).await?;
        if announce {
            outbox::append(&mut tx, &Event::room(EventType::RoomDeleted, room)).await?;
        }
    }
    tx.commit().await?;
    Ok(deleted.is_some())
}
