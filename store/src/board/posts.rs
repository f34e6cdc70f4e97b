//! A post's life in its table: written PENDING by the create saga, published, changed under an
//! update saga's hold (and restored by its compensation), closed once its day has passed, hidden
//! and deleted by the teardown.

use super::reading::{fish_types_of, post_by_id};
use super::rows::{POST_COLUMNS, PostRow, PostRuleError, WritePostError};
use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::board::{PostDraft, PostStatus};
use fishapp_domain::events::{EventType, TripNoticeData};
use sqlx::{PgPool, Postgres};

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
             prefecture_id, meeting_place_id, meeting_at, max_apply, approval_required)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, false))
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
            outbox::append(
                &mut tx,
                &Event::post(EventType::PostPublished, &post.data()),
            )
            .await?;
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
        outbox::append(&mut tx, &Event::post(EventType::PostDeleted, &post.data())).await?;
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

/// The trip workflow's closing at the meeting time: OPEN → CLOSED with `post.closed`, if the
/// meeting time has come (a trip moved later meanwhile is left OPEN). Returns whether it closed
/// it; closing a post that is not OPEN (closed already, being torn down, gone) does nothing.
pub async fn close_post(db: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let closed: Option<PostRow> = sqlx::query_as(&format!(
        "UPDATE board.posts p SET status = 'CLOSED', updated_at = now()
          WHERE id = $1 AND status = 'OPEN' AND meeting_at <= now()
          RETURNING {POST_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(post) = &closed {
        outbox::append(&mut tx, &Event::post(EventType::PostClosed, &post.data())).await?;
    }
    tx.commit().await?;
    Ok(closed.is_some())
}

/// The end of a trip's life, some hours after its meeting: CLOSED → COMPLETED with
/// `post.completed` for its members. Returns whether it completed it (a post that is not
/// CLOSED — torn down, gone, completed already — is left as it is).
pub async fn complete_post(db: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let completed: Option<PostRow> = sqlx::query_as(&format!(
        "UPDATE board.posts p SET status = 'COMPLETED', updated_at = now()
          WHERE id = $1 AND status = 'CLOSED'
          RETURNING {POST_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(post) = &completed {
        let notice = trip_notice(&mut tx, post).await?;
        outbox::append(
            &mut tx,
            &Event::trip_notice(EventType::PostCompleted, &notice),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(completed.is_some())
}

/// The reminder before a trip: `post.reminder_due` for its members, if the trip is still OPEN
/// and its meeting time ahead (a trip closed, torn down or moved into the past gets none).
/// Returns whether it was written.
/// `for_meeting`: the meeting time the reminder is for; a trip moved since gets none (its
/// workflow reminds again for the new time).
pub async fn remind(
    db: &PgPool,
    id: i64,
    for_meeting: Option<DateTime<Utc>>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let post: Option<PostRow> = sqlx::query_as(&format!(
        "SELECT {POST_COLUMNS} FROM board.posts p
          WHERE id = $1 AND status = 'OPEN' AND meeting_at > now()
            AND ($2::timestamptz IS NULL OR meeting_at = $2)
            FOR SHARE"
    ))
    .bind(id)
    .bind(for_meeting)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(post) = &post {
        let notice = trip_notice(&mut tx, post).await?;
        outbox::append(
            &mut tx,
            &Event::trip_notice(EventType::PostReminderDue, &notice),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(post.is_some())
}

/// A notice of `post` for its members: the organiser, then everyone holding a seat.
async fn trip_notice(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    post: &PostRow,
) -> Result<TripNoticeData, sqlx::Error> {
    let applicants: Vec<i64> = sqlx::query_scalar(
        "SELECT user_id FROM board.applications
          WHERE post_id = $1 AND status = 'APPLIED' ORDER BY id",
    )
    .bind(post.id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(TripNoticeData {
        post_id: post.id,
        user_id: post.user_id,
        title: post.title.clone(),
        meeting_at: post.meeting_at,
        meeting_place_id: post.meeting_place_id.clone(),
        member_ids: std::iter::once(post.user_id).chain(applicants).collect(),
    })
}

/// OPEN posts whose meeting time has passed become CLOSED, each with `post.closed`. Returns how
/// many; bounded per call (the next run takes the rest). The safety net for trips without a
/// trip workflow (posted before it existed); the trip workflow closes the others on time.
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
        outbox::append(&mut tx, &Event::post(EventType::PostClosed, &post.data())).await?;
    }
    tx.commit().await?;
    Ok(closed.len() as u64)
}

/// Binds a draft's fields, in their column order (title, content, fishing spot, prefecture,
/// meeting place, meeting time, maxApply, then whether approval is required — `NULL`: as it
/// is), after the arguments already bound.
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
        .bind(draft.approval_required)
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
             approval_required = COALESCE($9, approval_required), updated_at = now()
         WHERE id = $1
         RETURNING {POST_COLUMNS}"
    );
    let update = sqlx::query_as::<_, PostRow>(&sql).bind(id);
    let written = bind_draft(update, draft).fetch_optional(&mut **tx).await?;
    if let Some(post) = &written {
        replace_fish_types(tx, id, draft.fish_type_ids.as_slice()).await?;
        if post.status == PostStatus::Open {
            outbox::append(tx, &Event::post(EventType::PostUpdated, &post.data())).await?;
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
