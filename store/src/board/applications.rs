//! Applications: a seat taken on a trip (never more than it has), given back, and listed by
//! user and by post.

use super::reading::post_by_id;
use super::rows::PostRow;
use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::board::{ApplyRefusal, PostStatus};
use fishapp_domain::events::ApplicationData;
use fishapp_domain::events::EventType;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool};

/// An application: one user's seat on one trip.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, Deserialize)]
pub struct ApplicationRow {
    pub id: i64,
    pub post_id: i64,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const APPLICATION_COLUMNS: &str = "a.id, a.post_id, a.user_id, a.created_at, a.updated_at";

impl ApplicationRow {
    /// The application as the domain's events carry it.
    pub fn data(&self) -> ApplicationData {
        ApplicationData {
            id: self.id,
            post_id: self.post_id,
            user_id: self.user_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// What taking a seat came to: the seat, or why not. A refusal is an answer, not an error: the
/// saga ends with it, having changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seat {
    Taken(ApplicationRow),
    Refused(ApplyRefusal),
}

/// Takes a seat on `post_id` for `user_id`, in one transaction: one conditional UPDATE of the
/// post's count (OPEN, meeting time ahead, not the user's own, a seat left — so simultaneous
/// applications can never overfill it), the application row, and its event. Idempotent by
/// (post, user): when the user holds a seat already, that seat is the answer.
pub async fn take_seat(db: &PgPool, post_id: i64, user_id: i64) -> Result<Seat, sqlx::Error> {
    let mut tx = db.begin().await?;
    let held: Option<ApplicationRow> = sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a WHERE post_id = $1 AND user_id = $2"
    ))
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(held) = held {
        return Ok(Seat::Taken(held));
    }
    let taken: Option<i64> = sqlx::query_scalar(
        "UPDATE board.posts SET apply_count = apply_count + 1, updated_at = now()
          WHERE id = $1 AND status = 'OPEN' AND meeting_at > now() AND user_id <> $2
            AND apply_count < max_apply
          RETURNING id",
    )
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if taken.is_none() {
        let post = post_by_id(&mut *tx, post_id).await?;
        return Ok(Seat::Refused(refusal(post.as_ref(), user_id)));
    }
    let application: ApplicationRow = sqlx::query_as(
        "INSERT INTO board.applications (post_id, user_id) VALUES ($1, $2)
         RETURNING id, post_id, user_id, created_at, updated_at",
    )
    .bind(post_id)
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    outbox::append(
        &mut tx,
        &Event::application(EventType::ApplicationCreated, &application.data()),
    )
    .await?;
    tx.commit().await?;
    Ok(Seat::Taken(application))
}

/// Why `user_id` may not apply to `post` (None: it does not exist), by the same rules as
/// [`take_seat`]'s UPDATE; checked up front by the API for a clear answer, and after a refused
/// UPDATE to name the reason.
pub fn refusal(post: Option<&PostRow>, user_id: i64) -> ApplyRefusal {
    match post {
        None => ApplyRefusal::NotFound,
        Some(post) if post.user_id == user_id => ApplyRefusal::OwnPost,
        Some(post) if post.status != PostStatus::Open => ApplyRefusal::NotOpen,
        Some(post) if post.meeting_at <= Utc::now() => ApplyRefusal::Past,
        Some(_) => ApplyRefusal::Full,
    }
}

/// Gives `user_id`'s seat on `post_id` back: the application goes, the count drops. `announce`:
/// the world hears of it (a withdrawal), or not (a failed Apply's compensation, whose unpublished
/// `board.application.created` is withdrawn instead, unless it already went out). Gone already is
/// success.
pub async fn give_back_seat(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
    announce: bool,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted: Option<ApplicationRow> = sqlx::query_as(
        "DELETE FROM board.applications WHERE post_id = $1 AND user_id = $2
         RETURNING id, post_id, user_id, created_at, updated_at",
    )
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(application) = &deleted {
        sqlx::query(
            "UPDATE board.posts SET apply_count = apply_count - 1, updated_at = now() WHERE id = $1",
        )
        .bind(post_id)
        .execute(&mut *tx)
        .await?;
        let event = Event::application(EventType::ApplicationDeleted, &application.data());
        outbox::append_undo(&mut tx, &event, announce).await?;
    }
    tx.commit().await?;
    Ok(deleted.is_some())
}

pub async fn application_by_id(
    db: &PgPool,
    id: i64,
) -> Result<Option<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn application_of(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
) -> Result<Option<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM board.applications a WHERE post_id = $1 AND user_id = $2"
    ))
    .bind(post_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// The `limit` newest applications of each of these users; one statement for a whole page.
pub async fn applications_of_users(
    db: &PgPool,
    user_ids: &[i64],
    limit: i64,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM (
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS n
              FROM board.applications WHERE user_id = ANY($1)
         ) a WHERE n <= $2 ORDER BY a.user_id, a.id DESC"
    ))
    .bind(user_ids)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The first `limit` applications of each of these posts, oldest first; one statement for a
/// whole page.
pub async fn applications_of_posts(
    db: &PgPool,
    post_ids: &[i64],
    limit: i64,
) -> Result<Vec<ApplicationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM (
            SELECT *, row_number() OVER (PARTITION BY post_id ORDER BY id) AS n
              FROM board.applications WHERE post_id = ANY($1)
         ) a WHERE n <= $2 ORDER BY a.post_id, a.id"
    ))
    .bind(post_ids)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes every application to a post (the teardown's step before the post itself).
pub async fn delete_applications(db: &PgPool, post_id: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted = sqlx::query("DELETE FROM board.applications WHERE post_id = $1")
        .bind(post_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("UPDATE board.posts SET apply_count = 0 WHERE id = $1")
        .bind(post_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(deleted)
}
