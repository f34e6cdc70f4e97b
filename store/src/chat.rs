//! The chat context's tables, as far as the post sagas need them: a post's room and its members
//! (messages arrive with live chat). Room writes are idempotent by post id.

use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::events::EventType;
use serde::Serialize;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, FromRow, Serialize, serde::Deserialize)]
pub struct MemberRow {
    pub id: i64,
    pub room_id: i64,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

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
        outbox::append_undo(&mut tx, &Event::room(EventType::RoomDeleted, room), event).await?;
    }
    tx.commit().await?;
    Ok(deleted.is_some())
}

/// Adds `user_id` to the post's room, with `chat.member.joined`; a member already is success (no
/// second event). `None` when the post has no room (it is being torn down).
pub async fn join_room(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
) -> Result<Option<MemberRow>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let Some(room) =
        sqlx::query_scalar::<_, i64>("SELECT id FROM chat.rooms WHERE post_id = $1 FOR SHARE")
            .bind(post_id)
            .fetch_optional(&mut *tx)
            .await?
    else {
        return Ok(None);
    };
    let joined: Option<MemberRow> = sqlx::query_as(
        "INSERT INTO chat.members (room_id, user_id) VALUES ($1, $2)
         ON CONFLICT (room_id, user_id) DO NOTHING
         RETURNING id, room_id, user_id, created_at, updated_at",
    )
    .bind(room)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let member = match joined {
        Some(member) => {
            outbox::append(&mut tx, &Event::member(EventType::MemberJoined, &member)).await?;
            member
        }
        None => {
            sqlx::query_as(
                "SELECT id, room_id, user_id, created_at, updated_at FROM chat.members
                  WHERE room_id = $1 AND user_id = $2",
            )
            .bind(room)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;
    Ok(Some(member))
}

/// Removes `user_id` from the post's room; not a member (or no room) is success. `announce` as in
/// [`delete_room`].
pub async fn leave_room(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
    announce: bool,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let left: Option<MemberRow> = sqlx::query_as(
        "DELETE FROM chat.members m USING chat.rooms r
          WHERE m.room_id = r.id AND r.post_id = $1 AND m.user_id = $2
          RETURNING m.id, m.room_id, m.user_id, m.created_at, m.updated_at",
    )
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(member) = &left {
        let event = Event::member(EventType::MemberLeft, member);
        outbox::append_undo(&mut tx, &event, announce).await?;
    }
    tx.commit().await?;
    Ok(left.is_some())
}
