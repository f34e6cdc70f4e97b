//! The board context's tables: posts, their fish types, applications. Every write the sagas make
//! is idempotent (Temporal may run an activity twice) and writes its outbox event in the same
//! transaction.

use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::board::{
    ApplyRefusal, Content, FishTypeIds, FishingSpotTypeId, MaxApply, MeetingAt, MeetingPlaceId,
    PostDraft, PostStatus, PrefectureId, Title,
};
use fishapp_domain::events::EventType;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};

#[derive(Debug, Clone, FromRow, Serialize, Deserialize)]
pub struct PostRow {
    pub id: i64,
    pub user_id: i64,
    pub title: String,
    pub content: String,
    pub fishing_spot_type_id: i16,
    pub prefecture_id: i16,
    pub meeting_place_id: String,
    pub meeting_at: DateTime<Utc>,
    pub max_apply: i32,
    pub apply_count: i32,
    #[sqlx(try_from = "String")]
    pub status: PostStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PostRow {
    /// The post's fields as a draft (with its fish types, which live in their own table).
    pub fn draft(&self, fish_type_ids: Vec<i16>) -> PostDraft {
        PostDraft {
            title: Title::from_record(self.title.clone()),
            content: Content::from_record(self.content.clone()),
            fishing_spot_type_id: FishingSpotTypeId::from_record(self.fishing_spot_type_id),
            prefecture_id: PrefectureId::from_record(self.prefecture_id),
            meeting_place_id: MeetingPlaceId::from_record(self.meeting_place_id.clone()),
            meeting_at: MeetingAt::from_record(self.meeting_at),
            max_apply: MaxApply::from_record(self.max_apply),
            fish_type_ids: FishTypeIds::from_record(fish_type_ids),
        }
    }
}

const POST_COLUMNS: &str = "p.id, p.user_id, p.title, p.content, p.fishing_spot_type_id, \
     p.prefecture_id, p.meeting_place_id, p.meeting_at, p.max_apply, p.apply_count, p.status, \
     p.created_at, p.updated_at";

/// A business rule the database refused; retrying cannot help.
#[derive(Debug, thiserror::Error)]
pub enum PostRuleError {
    #[error("maxApply cannot be below the {0} people who already applied")]
    MaxApplyBelowApplicants(i32),
    #[error("post {0} does not exist or is not yours")]
    NotFound(i64),
    #[error("another change of this post is in progress; try again shortly")]
    UpdateInProgress,
}

#[derive(Debug, thiserror::Error)]
pub enum WritePostError {
    #[error(transparent)]
    Rule(#[from] PostRuleError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Reserves an id for a post that a saga is about to create (no row is written).
pub async fn reserve_post_id(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval('board.post_ids')")
        .fetch_one(db)
        .await
}

/// Writes the post, PENDING (hidden), with its fish types. Idempotent by id: a second run finds
/// the row and changes nothing. Returns whether this call wrote it.
pub async fn insert_pending(
    db: &PgPool,
    id: i64,
    user_id: i64,
    draft: &PostDraft,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let insert = sqlx::query_as::<_, (i64,)>(
        "INSERT INTO board.posts (id, user_id, title, content, fishing_spot_type_id,
             prefecture_id, meeting_place_id, meeting_at, max_apply)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO NOTHING
         RETURNING id",
    )
    .bind(id)
    .bind(user_id);
    let inserted = bind_draft(insert, draft)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if inserted {
        replace_fish_types(&mut tx, id, draft.fish_type_ids.as_slice()).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}

async fn replace_fish_types(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    post_id: i64,
    fish_type_ids: &[i16],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM board.post_fish_types WHERE post_id = $1")
        .bind(post_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO board.post_fish_types (post_id, fish_type_id)
         SELECT $1, unnest($2::smallint[])",
    )
    .bind(post_id)
    .bind(fish_type_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// PENDING → OPEN, with the `post.published` event. Publishing an OPEN post again is a no-op
/// (no second event). Returns the post as published.
pub async fn publish(db: &PgPool, id: i64) -> Result<PostRow, WritePostError> {
    let mut tx = db.begin().await?;
    let published: Option<PostRow> = sqlx::query_as(&format!(
        "UPDATE board.posts p SET status = 'OPEN', updated_at = now()
         WHERE id = $1 AND status = 'PENDING'
         RETURNING {POST_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let post = match published {
        Some(post) => {
            outbox::append(&mut tx, &Event::post(EventType::PostPublished, &post)).await?;
            post
        }
        None => post_by_id(&mut *tx, id)
            .await?
            .ok_or(PostRuleError::NotFound(id))?,
    };
    tx.commit().await?;
    Ok(post)
}

/// Deletes the post row (fish types and applications go with it). Deleting what is gone is
/// success. `event` says whether the world is told (a teardown) or not (a compensation of a
/// post nobody ever saw).
pub async fn delete_post(db: &PgPool, id: i64, event: bool) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted: Option<PostRow> = sqlx::query_as(&format!(
        "DELETE FROM board.posts p WHERE id = $1 RETURNING {POST_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let (Some(post), true) = (&deleted, event) {
        outbox::append(&mut tx, &Event::post(EventType::PostDeleted, post)).await?;
    }
    tx.commit().await?;
    Ok(deleted.is_some())
}

/// Hides a post for its teardown (any status → DELETING). Idempotent.
pub async fn hide(db: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE board.posts SET status = 'DELETING', updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// OPEN posts whose meeting time has passed become CLOSED, each with `post.closed`. Returns how
/// many; bounded per call (the next run takes the rest).
pub async fn close_past(db: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let closed: Vec<PostRow> = sqlx::query_as(&format!(
        "UPDATE board.posts p SET status = 'CLOSED', updated_at = now()
          WHERE id IN (SELECT id FROM board.posts
                        WHERE status = 'OPEN' AND meeting_at <= now()
                        ORDER BY meeting_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
          RETURNING {POST_COLUMNS}"
    ))
    .fetch_all(&mut *tx)
    .await?;
    for post in &closed {
        outbox::append(&mut tx, &Event::post(EventType::PostClosed, post)).await?;
    }
    tx.commit().await?;
    Ok(closed.len() as u64)
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

/// Binds a draft's fields, in their column order (title, content, fishing spot, prefecture,
/// meeting place, meeting time, maxApply), after the arguments already bound.
fn bind_draft<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    draft: &'q PostDraft,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(draft.title.as_str())
        .bind(draft.content.as_str())
        .bind(draft.fishing_spot_type_id.get())
        .bind(draft.prefecture_id.get())
        .bind(draft.meeting_place_id.as_str())
        .bind(draft.meeting_at.get())
        .bind(draft.max_apply.get())
}

/// A post's fields as they were before an update, to restore them if the update saga fails.
pub type Snapshot = PostDraft;

/// Replaces an owner's post's fields and fish types; returns what they were. The CHECK on
/// apply_count ≤ max_apply turns "maxApply below the applicants" into a rule error, atomically.
pub async fn update_fields(
    db: &PgPool,
    id: i64,
    owner_id: i64,
    draft: &PostDraft,
    saga: Option<&str>,
) -> Result<Snapshot, WritePostError> {
    let mut tx = db.begin().await?;
    let before: Option<PostRow> = sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM board.posts p
         WHERE id = $1 AND user_id = $2 AND status IN ('OPEN', 'PENDING') FOR UPDATE"
    ))
    .bind(id)
    .bind(owner_id)
    .fetch_optional(&mut *tx)
    .await?;
    let before = before.ok_or(PostRuleError::NotFound(id))?;
    if let Some(saga) = saga {
        hold_for_update(&mut tx, id, saga).await?;
    }
    let fish_types = fish_types_of(&mut *tx, &[id]).await?;
    let snapshot = before.draft(fish_types.into_iter().map(|(_, f)| f).collect());
    if draft.max_apply.get() < before.apply_count {
        return Err(PostRuleError::MaxApplyBelowApplicants(before.apply_count).into());
    }
    write_fields(&mut tx, id, draft, "$8")
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some("posts_capacity") => {
                WritePostError::Rule(PostRuleError::MaxApplyBelowApplicants(before.apply_count))
            }
            _ => e.into(),
        })?;
    tx.commit().await?;
    Ok(snapshot)
}

/// How long an UpdatePost saga's hold on a post lasts at most: one that old belongs to a saga
/// that will not finish (terminated by an operator) and may be taken over.
const STALE_UPDATE_HOLD: &str = "1 hour";

/// Marks the post (locked by the caller) as being changed by `saga`; refused while another
/// saga's hold is fresh. Holding it again is success (a retried step).
async fn hold_for_update(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    id: i64,
    saga: &str,
) -> Result<(), WritePostError> {
    let held = sqlx::query(&format!(
        "UPDATE board.posts SET update_saga = $2, update_started_at = now()
          WHERE id = $1 AND (update_saga IS NULL OR update_saga = $2
                             OR update_started_at < now() - interval '{STALE_UPDATE_HOLD}')"
    ))
    .bind(id)
    .bind(saga)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if held == 0 {
        return Err(PostRuleError::UpdateInProgress.into());
    }
    Ok(())
}

/// Ends `saga`'s hold on the post (its last step, or after its compensations); gone already,
/// or held by another saga since (a stale hold taken over), is success.
pub async fn release_update(db: &PgPool, id: i64, saga: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE board.posts SET update_saga = NULL, update_started_at = NULL
          WHERE id = $1 AND update_saga = $2",
    )
    .bind(id)
    .bind(saga)
    .execute(db)
    .await?;
    Ok(())
}

/// Writes a post's fields and fish types, and `post.updated` when the post is public.
/// `max_apply` is the SQL for the new maxApply (`$8` is the given value).
async fn write_fields(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    id: i64,
    draft: &PostDraft,
    max_apply: &str,
) -> Result<Option<PostRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE board.posts p SET title = $2, content = $3, fishing_spot_type_id = $4,
             prefecture_id = $5, meeting_place_id = $6, meeting_at = $7, max_apply = {max_apply},
             updated_at = now()
         WHERE id = $1
         RETURNING {POST_COLUMNS}"
    );
    let update = sqlx::query_as::<_, PostRow>(&sql).bind(id);
    let written = bind_draft(update, draft).fetch_optional(&mut **tx).await?;
    if let Some(post) = &written {
        replace_fish_types(tx, id, draft.fish_type_ids.as_slice()).await?;
        if post.status == PostStatus::Open {
            outbox::append(tx, &Event::post(EventType::PostUpdated, post)).await?;
        }
    }
    Ok(written)
}

/// Puts a snapshot back (the update saga's compensation). maxApply is restored only as far as
/// the applicants allow: someone may have applied in between.
pub async fn restore_fields(db: &PgPool, id: i64, snapshot: &Snapshot) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    write_fields(&mut tx, id, snapshot, "GREATEST($8, apply_count)").await?;
    tx.commit().await?;
    Ok(())
}

pub async fn post_by_id(
    db: impl sqlx::PgExecutor<'_>,
    id: i64,
) -> Result<Option<PostRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM board.posts p WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// These posts (any status: the caller decides what to show), one statement for a whole page.
pub async fn posts_by_ids(db: &PgPool, ids: &[i64]) -> Result<Vec<PostRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM board.posts p WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(db)
    .await
}

/// The `limit` newest posts of each of these users that `visible` shows; one statement for a
/// whole page.
pub async fn posts_of_users(
    db: &PgPool,
    user_ids: &[i64],
    visible: PostVisibility,
    limit: i64,
) -> Result<Vec<PostRow>, sqlx::Error> {
    let statuses = match visible {
        PostVisibility::Public => "status IN ('OPEN', 'CLOSED')",
        PostVisibility::Owner => "status <> 'DELETING'",
    };
    sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM (
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC, id DESC) AS n
              FROM board.posts WHERE user_id = ANY($1) AND {statuses}
         ) p WHERE n <= $2 ORDER BY p.user_id, p.created_at DESC, p.id DESC"
    ))
    .bind(user_ids)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Which of a user's posts a reader sees: everyone the public ones, the user themself all but
/// those being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostVisibility {
    Public,
    Owner,
}

/// (post id, fish type id) pairs of these posts, ordered; one statement for a whole page.
pub async fn fish_types_of(
    db: impl sqlx::PgExecutor<'_>,
    post_ids: &[i64],
) -> Result<Vec<(i64, i16)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT post_id, fish_type_id FROM board.post_fish_types
         WHERE post_id = ANY($1) ORDER BY post_id, fish_type_id",
    )
    .bind(post_ids)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortBy {
    CreatedAt,
    MeetingAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    Asc,
    Desc,
}

/// Every filter of `posts`, combinable; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct PostFilter {
    pub prefecture_id: Option<i16>,
    pub fishing_spot_type_id: Option<i16>,
    pub user_id: Option<i64>,
    pub meeting_at_from: Option<DateTime<Utc>>,
    pub meeting_at_to: Option<DateTime<Utc>>,
    /// The post has all of these.
    pub fish_type_ids: Vec<i16>,
    /// Some(true): applicants < maxApply; Some(false): full.
    pub can_apply: Option<bool>,
    /// List this user's own posts whatever their status (but DELETING); everyone else sees OPEN.
    pub include_unpublished_of: Option<i64>,
}

/// Where a page starts: after the post with this sort value and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyset {
    pub at: DateTime<Utc>,
    pub id: i64,
}

/// One page in keyset order (never OFFSET): the sort column, then the id, both in `order`.
pub async fn list_posts(
    db: &PgPool,
    filter: &PostFilter,
    sort: SortBy,
    order: Order,
    after: Option<Keyset>,
    limit: i64,
) -> Result<Vec<PostRow>, sqlx::Error> {
    let column = match sort {
        SortBy::CreatedAt => "p.created_at",
        SortBy::MeetingAt => "p.meeting_at",
    };
    let (cmp, dir) = match order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    let mut q =
        QueryBuilder::<Postgres>::new(format!("SELECT {POST_COLUMNS} FROM board.posts p WHERE "));
    match (filter.include_unpublished_of, filter.user_id) {
        (Some(me), Some(user)) if me == user => {
            q.push("p.status <> 'DELETING'");
        }
        _ => {
            q.push("p.status = 'OPEN'");
        }
    }
    if let Some(v) = filter.prefecture_id {
        q.push(" AND p.prefecture_id = ").push_bind(v);
    }
    if let Some(v) = filter.fishing_spot_type_id {
        q.push(" AND p.fishing_spot_type_id = ").push_bind(v);
    }
    if let Some(v) = filter.user_id {
        q.push(" AND p.user_id = ").push_bind(v);
    }
    if let Some(v) = filter.meeting_at_from {
        q.push(" AND p.meeting_at >= ").push_bind(v);
    }
    if let Some(v) = filter.meeting_at_to {
        q.push(" AND p.meeting_at <= ").push_bind(v);
    }
    if !filter.fish_type_ids.is_empty() {
        q.push(
            " AND (SELECT count(*) FROM board.post_fish_types f
                   WHERE f.post_id = p.id AND f.fish_type_id = ANY(",
        )
        .push_bind(filter.fish_type_ids.clone())
        .push(")) = ")
        .push_bind(i64::try_from(filter.fish_type_ids.len()).unwrap_or(i64::MAX));
    }
    match filter.can_apply {
        Some(true) => {
            q.push(" AND p.apply_count < p.max_apply");
        }
        Some(false) => {
            q.push(" AND p.apply_count >= p.max_apply");
        }
        None => {}
    }
    if let Some(after) = after {
        q.push(format!(" AND ({column}, p.id) {cmp} ("))
            .push_bind(after.at)
            .push(", ")
            .push_bind(after.id)
            .push(")");
    }
    q.push(format!(" ORDER BY {column} {dir}, p.id {dir} LIMIT "))
        .push_bind(limit);
    q.build_query_as().fetch_all(db).await
}

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
        &Event::application(EventType::ApplicationCreated, &application),
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
        let event = Event::application(EventType::ApplicationDeleted, application);
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
