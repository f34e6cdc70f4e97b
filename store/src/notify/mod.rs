//! The notifications context's tables (schema `notify`): users' notifications, the events already
//! handled (so a redelivered event never makes a second notification), the trips and members as
//! the events told them, muted kinds and dead letters. Written by the notifications consumer in
//! one transaction per event; read and marked by the API. The e-mail channel's settings and
//! digests are in `mail.rs`.

mod mail;

pub use mail::{
    DigestDue, DigestItem, MailState, confirm_mail, digest_items, digest_sent, disable_mail,
    mail_state, next_digest, request_mail,
};

use chrono::{DateTime, Utc};
use fishapp_domain::notify::NotificationKind;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub user_id: i64,
    /// Its place in the user's list (newest first): taken again each time it grows.
    pub recency: i64,
    #[sqlx(try_from = "String")]
    pub kind: NotificationKind,
    pub event_id: Uuid,
    pub post_id: Option<i64>,
    pub room_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub title: String,
    pub count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, user_id, recency, kind, event_id, post_id, room_id, actor_id, title, count, \
     created_at, updated_at, read_at";

/// One notification to write for each of `users` (muted kinds and the actor are left out).
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NotificationKind,
    pub event_id: Uuid,
    pub post_id: Option<i64>,
    pub room_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub title: String,
}

/// Starts handling event `event_id`: records it, in `tx`. `false`: it was handled before (a
/// redelivery), and nothing more must be written.
pub async fn first_handling(
    tx: &mut Transaction<'_, Postgres>,
    event_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let recorded = sqlx::query(
        "INSERT INTO notify.handled (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(recorded == 1)
}

/// A notification written: its id and user.
pub type Written = Vec<(i64, i64)>;

/// Writes `notice` for each of `users` but the actor and those who muted its kind. Returns what
/// was written.
pub async fn write(
    conn: &mut PgConnection,
    notice: &Notice,
    users: &[i64],
) -> Result<Written, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO notify.notifications (user_id, kind, event_id, post_id, room_id, actor_id, title)
         SELECT DISTINCT u, $2, $3, $4, $5, $6, $7 FROM unnest($1::bigint[]) AS u
          WHERE u IS DISTINCT FROM $6
            AND EXISTS (SELECT 1 FROM account.users WHERE id = u)
            AND NOT EXISTS (SELECT 1 FROM notify.muted m WHERE m.user_id = u AND m.kind = $2)
         RETURNING id, user_id",
    )
    .bind(users)
    .bind(notice.kind.as_str())
    .bind(notice.event_id)
    .bind(notice.post_id)
    .bind(notice.room_id)
    .bind(notice.actor_id)
    .bind(&notice.title)
    .fetch_all(conn)
    .await
}

/// A new message in a room for each of `users` (but the writer, those who muted it and those
/// reading the room live): the user's unread NEW_MESSAGES of that room counts one more and moves
/// to the top of their list, or a new one is written.
pub async fn collapse_message(
    conn: &mut PgConnection,
    notice: &Notice,
    users: &[i64],
) -> Result<Written, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO notify.notifications AS n
                (user_id, kind, event_id, post_id, room_id, actor_id, title)
         SELECT DISTINCT u, 'NEW_MESSAGES', $2, $3, $4, $5, $6 FROM unnest($1::bigint[]) AS u
          WHERE u IS DISTINCT FROM $5
            AND EXISTS (SELECT 1 FROM account.users WHERE id = u)
            AND NOT EXISTS (SELECT 1 FROM notify.muted m
                             WHERE m.user_id = u AND m.kind = 'NEW_MESSAGES')
            -- Not for a member reading the room live (chat.watching, refreshed while it lasts).
            AND NOT EXISTS (SELECT 1 FROM chat.watching w
                             WHERE w.user_id = u AND w.room_id = $4
                               AND w.seen_at > now() - make_interval(secs => $7))
         ON CONFLICT (user_id, room_id) WHERE kind = 'NEW_MESSAGES' AND read_at IS NULL
         DO UPDATE SET count = n.count + 1, event_id = EXCLUDED.event_id,
                       actor_id = EXCLUDED.actor_id, updated_at = now(), mailed_at = NULL,
                       recency = EXCLUDED.recency
         RETURNING id, user_id",
    )
    .bind(users)
    .bind(notice.event_id)
    .bind(notice.post_id)
    .bind(notice.room_id)
    .bind(notice.actor_id)
    .bind(&notice.title)
    .bind(f64::from(crate::chat::WATCHING_TTL_SECS))
    .fetch_all(conn)
    .await
}

/// The organiser and title of a trip, if it still exists.
pub async fn trip_of(
    conn: &mut PgConnection,
    post_id: i64,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, title FROM board.posts WHERE id = $1")
        .bind(post_id)
        .fetch_optional(conn)
        .await
}

/// `user_id`'s notifications among `ids` (others' are left out), in the order of `ids`.
pub async fn by_ids(
    db: &PgPool,
    user_id: i64,
    ids: &[i64],
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notify.notifications
          WHERE user_id = $1 AND id = ANY($2) ORDER BY array_position($2, id)"
    ))
    .bind(user_id)
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Who holds a seat on the trip now.
pub async fn seated(conn: &mut PgConnection, post_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM board.applications WHERE post_id = $1 AND status = 'APPLIED'
          ORDER BY user_id",
    )
    .bind(post_id)
    .fetch_all(conn)
    .await
}

/// A room's trip (id, title) and its members now, if the room still exists.
pub async fn room_of(
    conn: &mut PgConnection,
    room_id: i64,
) -> Result<Option<(i64, String, Vec<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.post_id, p.title,
                ARRAY(SELECT m.user_id FROM chat.members m WHERE m.room_id = r.id ORDER BY m.user_id)
           FROM chat.rooms r JOIN board.posts p ON p.id = r.post_id
          WHERE r.id = $1",
    )
    .bind(room_id)
    .fetch_optional(conn)
    .await
}

/// Records the trip's time and place as an event told them; returns what they were before
/// (`None`: not known yet). Held until the transaction ends, so replicas handling two updates of
/// one trip compare one after the other.
pub async fn swap_trip_time_and_place(
    conn: &mut PgConnection,
    post_id: i64,
    meeting_at: DateTime<Utc>,
    meeting_place_id: &str,
) -> Result<Option<(DateTime<Utc>, String)>, sqlx::Error> {
    let before: Option<(DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT meeting_at, meeting_place_id FROM notify.trips WHERE post_id = $1 FOR UPDATE",
    )
    .bind(post_id)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO notify.trips (post_id, meeting_at, meeting_place_id) VALUES ($1, $2, $3)
         ON CONFLICT (post_id) DO UPDATE
           SET meeting_at = EXCLUDED.meeting_at, meeting_place_id = EXCLUDED.meeting_place_id",
    )
    .bind(post_id)
    .bind(meeting_at)
    .bind(meeting_place_id)
    .execute(conn)
    .await?;
    Ok(before)
}

/// `user_id` holds a seat on `post_id` (as the events told).
pub async fn add_member(
    conn: &mut PgConnection,
    post_id: i64,
    user_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO notify.members VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(post_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn remove_member(
    conn: &mut PgConnection,
    post_id: i64,
    user_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM notify.members WHERE post_id = $1 AND user_id = $2")
        .bind(post_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The trip's members as the events told them.
pub async fn members_of(conn: &mut PgConnection, post_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM notify.members WHERE post_id = $1 ORDER BY user_id")
        .bind(post_id)
        .fetch_all(conn)
        .await
}

/// A trip is over for the notifications: what the consumer kept of it goes.
pub async fn forget_trip(conn: &mut PgConnection, post_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM notify.members WHERE post_id = $1")
        .bind(post_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM notify.trips WHERE post_id = $1")
        .bind(post_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An event the consumer gave up on.
#[derive(Debug, Clone)]
pub struct DeadLetter<'a> {
    pub event_id: Option<Uuid>,
    pub subject: &'a str,
    pub stream_sequence: u64,
    pub attempts: i64,
    pub error: &'a str,
    pub payload: &'a str,
}

/// Records a dead letter; recorded already (a redelivery after a crash) is success.
pub async fn dead_letter(db: &PgPool, letter: &DeadLetter<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notify.dead_letters (event_id, subject, stream_sequence, attempts, error, payload)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream_sequence) DO NOTHING",
    )
    .bind(letter.event_id)
    .bind(letter.subject)
    .bind(i64::try_from(letter.stream_sequence).unwrap_or(i64::MAX))
    .bind(i32::try_from(letter.attempts).unwrap_or(i32::MAX))
    .bind(letter.error)
    .bind(letter.payload)
    .execute(db)
    .await?;
    Ok(())
}

/// A dead letter as recorded.
#[derive(Debug, Clone, FromRow)]
pub struct DeadLetterRow {
    pub id: i64,
    pub event_id: Option<Uuid>,
    pub subject: String,
    pub stream_sequence: i64,
    pub attempts: i32,
    pub error: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// The dead letters, oldest first, at most `limit`; with `only`, that one alone.
pub async fn dead_letters(
    db: &PgPool,
    only: Option<i64>,
    limit: i64,
) -> Result<Vec<DeadLetterRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, event_id, subject, stream_sequence, attempts, error, payload, created_at
           FROM notify.dead_letters WHERE $1::bigint IS NULL OR id = $1
          ORDER BY id LIMIT $2",
    )
    .bind(only)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A dead letter handled at last: it goes.
pub async fn forget_dead_letter(db: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM notify.dead_letters WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A dead letter failed once more: one attempt more, and this attempt's error.
pub async fn dead_letter_failed_again(
    db: &PgPool,
    id: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notify.dead_letters SET attempts = attempts + 1, error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

/// A page of `user_id`'s notifications, newest first (by their last change), after the one whose
/// `recency` is `after` (exclusive).
pub async fn page(
    db: &PgPool,
    user_id: i64,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notify.notifications
          WHERE user_id = $1 AND ($2::bigint IS NULL OR recency < $2)
          ORDER BY recency DESC LIMIT $3"
    ))
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn unread_count(db: &PgPool, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM notify.notifications WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(db)
    .await
}

/// Marks `user_id`'s notifications read: those of `ids` (others' ids select nothing), or all.
/// Returns how many changed.
pub async fn mark_read(
    conn: &mut PgConnection,
    user_id: i64,
    ids: Option<&[i64]>,
) -> Result<u64, sqlx::Error> {
    let marked = sqlx::query(
        "UPDATE notify.notifications SET read_at = now()
          WHERE user_id = $1 AND read_at IS NULL AND ($2::bigint[] IS NULL OR id = ANY($2))",
    )
    .bind(user_id)
    .bind(ids)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked)
}

/// `user_id` opened `room_id` live: the room's unread NEW_MESSAGES, if any, is read (they are
/// reading the messages it counts). Returns how many became read (0 or 1).
pub async fn room_opened(
    conn: &mut PgConnection,
    user_id: i64,
    room_id: i64,
) -> Result<u64, sqlx::Error> {
    let marked = sqlx::query(
        "UPDATE notify.notifications SET read_at = now()
          WHERE user_id = $1 AND room_id = $2 AND kind = 'NEW_MESSAGES' AND read_at IS NULL",
    )
    .bind(user_id)
    .bind(room_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(marked)
}

/// The kinds `user_id` muted.
pub async fn muted(db: &PgPool, user_id: i64) -> Result<Vec<NotificationKind>, sqlx::Error> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM notify.muted WHERE user_id = $1 ORDER BY kind")
            .bind(user_id)
            .fetch_all(db)
            .await?;
    Ok(names
        .into_iter()
        .filter_map(|n| NotificationKind::parse(&n))
        .collect())
}

pub async fn set_muted(
    db: &PgPool,
    user_id: i64,
    kind: NotificationKind,
    muted: bool,
) -> Result<(), sqlx::Error> {
    let sql = if muted {
        "INSERT INTO notify.muted (user_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM notify.muted WHERE user_id = $1 AND kind = $2"
    };
    sqlx::query(sql)
        .bind(user_id)
        .bind(kind.as_str())
        .execute(db)
        .await?;
    Ok(())
}

/// What a prune keeps.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Read notifications read before this go.
    pub read_after: DateTime<Utc>,
    /// Past this many notifications of one user (read or not), the oldest go: what other people
    /// cause (applications, messages) cannot grow one user's list without bound.
    pub per_user: i64,
    /// The record of events handled before this goes (older than anything the stream can
    /// still redeliver).
    pub handled_after: DateTime<Utc>,
}

/// What one prune deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Notifications deleted, read or not.
    pub deleted: u64,
    /// Per user, the unread notifications the cap deleted (only users with some): their unread
    /// count dropped without a reading, which their live counts must hear of.
    pub unread_by_user: Vec<(i64, i64)>,
}

/// Deletes what [`Keep`] does not keep, at most `batch` rows (or users over their cap) per
/// statement, in `tx` (the caller announces the dropped unread counts in it).
pub async fn prune(tx: &mut PgConnection, keep: Keep, batch: i64) -> Result<Pruned, sqlx::Error> {
    let read = sqlx::query(
        "DELETE FROM notify.notifications WHERE id IN (
           SELECT id FROM notify.notifications WHERE read_at < $1 LIMIT $2)",
    )
    .bind(keep.read_after)
    .bind(batch)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Per user over the cap: everything up to their (cap + 1)-th newest, by the page's order.
    let over_cap: Vec<(i64, i64, i64)> = sqlx::query_as(
        "WITH over AS (
           SELECT user_id FROM notify.notifications
            GROUP BY user_id HAVING count(*) > $1 LIMIT $2),
         cutoff AS (
           SELECT o.user_id,
                  (SELECT n.recency FROM notify.notifications n WHERE n.user_id = o.user_id
                    ORDER BY n.recency DESC OFFSET $1 LIMIT 1) AS recency
             FROM over o),
         gone AS (
           DELETE FROM notify.notifications n USING cutoff c
            WHERE n.user_id = c.user_id AND n.recency <= c.recency
           RETURNING n.user_id, n.read_at IS NULL AS unread)
         SELECT user_id, count(*), count(*) FILTER (WHERE unread) FROM gone GROUP BY user_id",
    )
    .bind(keep.per_user)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM notify.handled WHERE event_id IN (
           SELECT event_id FROM notify.handled WHERE handled_at < $1 LIMIT $2)",
    )
    .bind(keep.handled_after)
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    let capped: i64 = over_cap.iter().map(|(_, all, _)| all).sum();
    Ok(Pruned {
        deleted: read + u64::try_from(capped).unwrap_or(0),
        unread_by_user: over_cap
            .into_iter()
            .filter(|(_, _, unread)| *unread > 0)
            .map(|(user, _, unread)| (user, unread))
            .collect(),
    })
}
