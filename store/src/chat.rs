//! The chat context's tables: a post's room and its members (written by the post and apply
//! sagas; room writes are idempotent by post id), and the room's messages (written straight by
//! createMessage, with their image and event in one transaction).

use crate::media::{self, NewImage};
use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::events::{Aggregate, EventType};
use fishapp_domain::events::{MemberData, MessageData, RoomData};
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

impl MemberRow {
    /// The member as the domain's events carry it.
    pub fn data(&self) -> MemberData {
        MemberData {
            id: self.id,
            room_id: self.room_id,
            user_id: self.user_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl RoomRow {
    /// The room as the domain's events carry it.
    pub fn data(&self) -> RoomData {
        RoomData {
            id: self.id,
            post_id: self.post_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
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
            outbox::append(&mut tx, &Event::room(EventType::RoomCreated, &room.data())).await?;
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
    let Some(room) = lock_room_of_post(&mut tx, post_id).await? else {
        return Ok(false);
    };
    let deleted: Option<RoomRow> = sqlx::query_as(
        "DELETE FROM chat.rooms WHERE id = $1 RETURNING id, post_id, created_at, updated_at",
    )
    .bind(room)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(room) = &deleted {
        outbox::append_undo(
            &mut tx,
            &Event::room(EventType::RoomDeleted, &room.data()),
            event,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deleted.is_some())
}

/// What joining a room came to.
#[derive(Debug)]
pub enum Joined {
    /// A member now, or already (no second event).
    Member(MemberRow),
    /// The post has no room: it is being torn down.
    NoRoom,
    /// The user holds no seat on the trip (the application was withdrawn meanwhile).
    NoSeat,
}

/// Adds `user_id` to the post's room, with `chat.member.joined` — only while the user holds a
/// seat (an application). The application is read `FOR SHARE`: a withdrawal that gives the seat
/// back either waits for this transaction (and its leave step then removes the member) or came
/// first (and nobody joins without a seat).
pub async fn join_room(db: &PgPool, post_id: i64, user_id: i64) -> Result<Joined, sqlx::Error> {
    let mut tx = db.begin().await?;
    let Some(room) = lock_room_of_post(&mut tx, post_id).await? else {
        return Ok(Joined::NoRoom);
    };
    let seat: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM board.applications
          WHERE post_id = $1 AND user_id = $2 AND status = 'APPLIED' FOR SHARE",
    )
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if seat.is_none() {
        return Ok(Joined::NoSeat);
    }
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
            outbox::append(
                &mut tx,
                &Event::member(EventType::MemberJoined, &member.data()),
            )
            .await?;
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
    Ok(Joined::Member(member))
}

/// The post's room, read `FOR SHARE` (a teardown deleting it waits, or came first: `None`), with
/// the room's aggregate lock taken first — the order a message takes them in
/// ([`add_message`]), so that a membership change and a message of the same room never wait for
/// each other the wrong way round, and their events are in commit order on the room's stream.
async fn lock_room_of_post(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    post_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let Some(room) = sqlx::query_scalar::<_, i64>("SELECT id FROM chat.rooms WHERE post_id = $1")
        .bind(post_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    outbox::lock_aggregate(tx, Aggregate::Room, room).await?;
    sqlx::query_scalar("SELECT id FROM chat.rooms WHERE id = $1 FOR SHARE")
        .bind(room)
        .fetch_optional(&mut **tx)
        .await
}

/// Removes `user_id` from the post's room; not a member (or no room) is success. `announce` as in
/// [`delete_room`]. The member's `chat.room.member_left` is on the room's stream, ahead of every
/// message written after the leave: a subscriber hears it before any of them.
pub async fn leave_room(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
    announce: bool,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let Some(room) = lock_room_of_post(&mut tx, post_id).await? else {
        return Ok(false);
    };
    let left: Option<MemberRow> = sqlx::query_as(
        "DELETE FROM chat.members
          WHERE room_id = $1 AND user_id = $2
          RETURNING id, room_id, user_id, created_at, updated_at",
    )
    .bind(room)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(member) = &left {
        let event = Event::member(EventType::MemberLeft, &member.data());
        outbox::append_undo(&mut tx, &event, announce).await?;
    }
    tx.commit().await?;
    Ok(left.is_some())
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct MessageRow {
    pub id: i64,
    pub room_id: i64,
    pub user_id: i64,
    /// The text; `None` for an image message.
    pub body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const MESSAGE_COLUMNS: &str = "id, room_id, user_id, body, created_at, updated_at";

impl MessageRow {
    /// The message as the domain's events carry it (`has_image`: whether an image row is its).
    pub fn data(&self, has_image: bool) -> MessageData {
        MessageData {
            id: self.id,
            room_id: self.room_id,
            user_id: self.user_id,
            body: self.body.clone(),
            has_image,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The room `room_id` if `user_id` is one of its members: the member-of guard every chat read,
/// write and subscription goes through.
pub async fn room_of_member(
    db: impl sqlx::PgExecutor<'_>,
    room_id: i64,
    user_id: i64,
) -> Result<Option<RoomRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.post_id, r.created_at, r.updated_at
           FROM chat.rooms r JOIN chat.members m ON m.room_id = r.id
          WHERE r.id = $1 AND m.user_id = $2",
    )
    .bind(room_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The post's room if `user_id` is one of its members.
pub async fn room_of_post_for_member(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
) -> Result<Option<RoomRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.post_id, r.created_at, r.updated_at
           FROM chat.rooms r JOIN chat.members m ON m.room_id = r.id
          WHERE r.post_id = $1 AND m.user_id = $2",
    )
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The first `limit` members of each room, oldest first (the owner, then the applicants in the
/// order they joined).
pub async fn members_of_rooms(
    db: &PgPool,
    room_ids: &[i64],
    limit: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, room_id, user_id, created_at, updated_at FROM (
            SELECT *, row_number() OVER (PARTITION BY room_id ORDER BY id) AS n
              FROM chat.members WHERE room_id = ANY($1)
         ) m WHERE n <= $2 ORDER BY room_id, id",
    )
    .bind(room_ids)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Which slice of a room's messages: the `limit` newest before `before` (or the newest of all),
/// or the `limit` oldest after `after` (scrolling forward, or catching up). Always returned
/// oldest first, as a chat shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePage {
    Newest { before: Option<i64>, limit: i64 },
    After { after: i64, limit: i64 },
}

/// The page of the room's messages, if `user_id` is a member — both read in one snapshot, so a
/// message written after the member left is never in a page read while they seemed a member.
/// `None` when they are not.
pub async fn messages_of_member(
    db: &PgPool,
    room_id: i64,
    user_id: i64,
    page: MessagePage,
) -> Result<Option<Vec<MessageRow>>, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let member = room_of_member(&mut *tx, room_id, user_id).await?.is_some();
    let messages = if member {
        Some(messages(&mut *tx, room_id, page).await?)
    } else {
        None
    };
    tx.commit().await?;
    Ok(messages)
}

pub async fn messages(
    db: impl sqlx::PgExecutor<'_>,
    room_id: i64,
    page: MessagePage,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    match page {
        MessagePage::Newest { before, limit } => {
            let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM chat.messages
                  WHERE room_id = $1 AND ($2::bigint IS NULL OR id < $2)
                  ORDER BY id DESC LIMIT $3"
            ))
            .bind(room_id)
            .bind(before)
            .bind(limit)
            .fetch_all(db)
            .await?;
            rows.reverse();
            Ok(rows)
        }
        MessagePage::After { after, limit } => {
            sqlx::query_as(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM chat.messages
                  WHERE room_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(room_id)
            .bind(after)
            .bind(limit)
            .fetch_all(db)
            .await
        }
    }
}

/// A message to write: exactly one of `body` and `image` (the API checks; the table's CHECK and
/// this module do not care which).
pub struct NewMessage<'a> {
    pub room_id: i64,
    pub user_id: i64,
    pub body: Option<&'a str>,
    /// The image's row (its renditions are already in object storage); its owner is set here.
    pub image: Option<NewImage<'a>>,
    /// createMessage's idempotency key.
    pub client_mutation_id: Option<&'a str>,
}

/// What writing a message came to.
#[derive(Debug)]
pub enum Sent {
    /// Written now, with its image and its event.
    New(MessageRow),
    /// The author already wrote a message with this idempotency key in this room: that one,
    /// unchanged (the new image, if any, was not recorded).
    Replayed(MessageRow),
    /// Not written: the author is not a member of that room (or it does not exist).
    NotMember,
    /// Not written: the trip is not open for chat (being created or torn down).
    RoomClosed,
    /// Not written: the key was used for a message in another room.
    KeyReused,
}

/// Writes a message, its image row and its `chat.room.message_added` event in one transaction.
///
/// The room's aggregate lock comes first, so message ids grow in commit order within a room (the
/// order subscribers get them). The membership row and the post row are read `FOR SHARE`: a
/// withdrawal (which deletes the member) or a teardown (which marks the post DELETING before it
/// collects the room's message images) waits for this transaction, or this one sees its result —
/// so no message lands from a former member, and no message image escapes the teardown.
pub async fn add_message(db: &PgPool, message: NewMessage<'_>) -> Result<Sent, sqlx::Error> {
    let mut tx = db.begin().await?;
    outbox::lock_aggregate(&mut tx, Aggregate::Room, message.room_id).await?;
    let status: Option<String> = sqlx::query_scalar(
        "SELECT p.status FROM chat.members m
           JOIN chat.rooms r ON r.id = m.room_id
           JOIN board.posts p ON p.id = r.post_id
          WHERE m.room_id = $1 AND m.user_id = $2
          FOR SHARE OF m, p",
    )
    .bind(message.room_id)
    .bind(message.user_id)
    .fetch_optional(&mut *tx)
    .await?;
    match status.as_deref() {
        None => return Ok(Sent::NotMember),
        Some("OPEN" | "CLOSED") => {}
        Some(_) => return Ok(Sent::RoomClosed),
    }
    let inserted: Option<MessageRow> = sqlx::query_as(&format!(
        "INSERT INTO chat.messages (room_id, user_id, body, client_mutation_id)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, client_mutation_id) WHERE client_mutation_id IS NOT NULL DO NOTHING
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(message.room_id)
    .bind(message.user_id)
    .bind(message.body)
    .bind(message.client_mutation_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = inserted else {
        let earlier: MessageRow = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat.messages
              WHERE user_id = $1 AND client_mutation_id = $2"
        ))
        .bind(message.user_id)
        .bind(message.client_mutation_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        return Ok(if earlier.room_id == message.room_id {
            Sent::Replayed(earlier)
        } else {
            Sent::KeyReused
        });
    };
    let has_image = message.image.is_some();
    if let Some(image) = message.image {
        let owned = NewImage {
            owner: Some(fishapp_domain::media::ImageOwner::Message(row.id)),
            ..image
        };
        media::insert_image(&mut *tx, &owned).await?;
    }
    outbox::append(&mut tx, &Event::message(&row.data(has_image))).await?;
    tx.commit().await?;
    Ok(Sent::New(row))
}

/// How long a `chat.watching` row counts without a refresh: a process that died stops counting
/// this long after its last refresh (it refreshes every third of it).
pub const WATCHING_TTL_SECS: i32 = 30;

/// `user_id` reads `room_id` live in API process `instance` (its first subscription there).
pub async fn watching_started(
    db: &PgPool,
    instance: uuid::Uuid,
    user_id: i64,
    room_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat.watching (user_id, room_id, instance) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, room_id, instance) DO UPDATE SET seen_at = now()",
    )
    .bind(user_id)
    .bind(room_id)
    .bind(instance)
    .execute(db)
    .await?;
    Ok(())
}

/// `user_id`'s last subscription to `room_id` in `instance` ended.
pub async fn watching_ended(
    db: &PgPool,
    instance: uuid::Uuid,
    user_id: i64,
    room_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM chat.watching WHERE user_id = $1 AND room_id = $2 AND instance = $3")
        .bind(user_id)
        .bind(room_id)
        .bind(instance)
        .execute(db)
        .await?;
    Ok(())
}

/// Makes `instance`'s rows exactly `pairs` (user, room), all seen now: the process's periodic
/// refresh, which also repairs a start and an end that raced.
pub async fn watching_now(
    db: &PgPool,
    instance: uuid::Uuid,
    pairs: &[(i64, i64)],
) -> Result<(), sqlx::Error> {
    let (users, rooms): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO chat.watching (user_id, room_id, instance)
         SELECT u, r, $3 FROM unnest($1::bigint[], $2::bigint[]) AS p (u, r)
         ON CONFLICT (user_id, room_id, instance) DO UPDATE SET seen_at = now()",
    )
    .bind(&users)
    .bind(&rooms)
    .bind(instance)
    .execute(&mut *tx)
    .await?;
    // now() is the transaction's start: every row just written has it, the rest are older.
    sqlx::query("DELETE FROM chat.watching WHERE instance = $1 AND seen_at < now()")
        .bind(instance)
        .execute(&mut *tx)
        .await?;
    // Rows of processes that died, by anyone's refresh.
    sqlx::query("DELETE FROM chat.watching WHERE seen_at < now() - make_interval(secs => $1)")
        .bind(f64::from(WATCHING_TTL_SECS) * 2.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
