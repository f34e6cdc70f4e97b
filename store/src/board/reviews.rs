//! Reviews of trips that are over: written by a member who held a seat (one per member and
//! trip, a second replaces the first, its event in the same transaction), read by trip and
//! summed up per trip and per organiser. A review outlives its trip: deleting a trip that is
//! over does not take its reviews out of the organiser's rating.

use crate::outbox::{self, Event};
use chrono::{DateTime, Utc};
use fishapp_domain::board::{ApplicationStatus, PostStatus};
use fishapp_domain::events::ReviewData;
use fishapp_domain::review::{Rating, ReviewComment, ReviewRefusal, ReviewWindow};
use sqlx::{FromRow, PgPool};
use std::collections::HashMap;

#[derive(Debug, Clone, FromRow)]
pub struct ReviewRow {
    pub id: i64,
    pub post_id: i64,
    pub user_id: i64,
    pub rating: i16,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReviewRow {
    /// The review as the domain's events carry it.
    pub fn data(&self) -> ReviewData {
        ReviewData {
            id: self.id,
            post_id: self.post_id,
            user_id: self.user_id,
            rating: self.rating,
            comment: self.comment.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Ratings summed up: how many, and their mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatingSummary {
    pub count: i64,
    pub average: f64,
}

const COLUMNS: &str = "id, post_id, user_id, rating, comment, created_at, updated_at";

/// Writes (or replaces) `user_id`'s review of `post_id` and its `board.post.reviewed` event, when
/// the rules allow: the post is COMPLETED and its review `window` has not passed, and the
/// reviewer held a seat on it and did not organise it. The post's row is locked for share, so a review and a teardown of the same
/// trip do not cross.
pub async fn write_review(
    db: &PgPool,
    post_id: i64,
    user_id: i64,
    rating: Rating,
    comment: Option<&ReviewComment>,
    window: ReviewWindow,
) -> Result<Result<ReviewRow, ReviewRefusal>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let post: Option<(i64, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT user_id, status, meeting_at FROM board.posts WHERE id = $1 FOR SHARE",
    )
    .bind(post_id)
    .fetch_optional(&mut *tx)
    .await?;
    // A trip being created or torn down is nobody's to review, and a stranger learns nothing of
    // it: as if there were none.
    let public = post.and_then(|(organiser, status, meeting_at)| {
        let status = PostStatus::try_from(status).ok()?;
        status
            .is_public()
            .then_some((organiser, status, meeting_at))
    });
    let Some((organiser, status, meeting_at)) = public else {
        return Ok(Err(ReviewRefusal::NotFound));
    };
    if organiser == user_id {
        return Ok(Err(ReviewRefusal::OwnTrip));
    }
    let seated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM board.applications
                         WHERE post_id = $1 AND user_id = $2 AND status = $3)",
    )
    .bind(post_id)
    .bind(user_id)
    .bind(ApplicationStatus::Applied.as_str())
    .fetch_one(&mut *tx)
    .await?;
    if !seated {
        return Ok(Err(ReviewRefusal::NotMember));
    }
    if status != PostStatus::Completed {
        return Ok(Err(ReviewRefusal::NotOver));
    }
    if window.closes_at(meeting_at) <= Utc::now() {
        return Ok(Err(ReviewRefusal::Closed));
    }
    let review: ReviewRow = sqlx::query_as(&format!(
        "INSERT INTO board.reviews (post_id, user_id, rating, comment, organiser_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (post_id, user_id) DO UPDATE
            SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now()
         RETURNING {COLUMNS}"
    ))
    .bind(post_id)
    .bind(user_id)
    .bind(rating.get())
    .bind(comment.map(ReviewComment::as_str))
    .bind(organiser)
    .fetch_one(&mut *tx)
    .await?;
    outbox::append(&mut tx, &Event::review(&review.data())).await?;
    tx.commit().await?;
    Ok(Ok(review))
}

/// The trip's reviews after its first page, newest first: at most `limit` with ids below
/// `before` (the keyset; a first page is [`reviews_of_posts`]).
pub async fn reviews_of_post(
    db: &PgPool,
    post_id: i64,
    before: i64,
    limit: i64,
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM board.reviews
          WHERE post_id = $1 AND id < $2
          ORDER BY id DESC LIMIT $3"
    ))
    .bind(post_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The newest `limit` reviews of each of `post_ids` (a page's first pages in one statement),
/// grouped by post, newest first.
pub async fn reviews_of_posts(
    db: &PgPool,
    post_ids: &[i64],
    limit: i64,
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM (
            SELECT *, row_number() OVER (PARTITION BY post_id ORDER BY id DESC) AS n
              FROM board.reviews WHERE post_id = ANY($1)
         ) r WHERE n <= $2 ORDER BY r.post_id, r.id DESC"
    ))
    .bind(post_ids)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// `user_id`'s reviews of those of `post_ids` they reviewed.
pub async fn reviews_by_user_of(
    db: &PgPool,
    user_id: i64,
    post_ids: &[i64],
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM board.reviews WHERE user_id = $1 AND post_id = ANY($2)"
    ))
    .bind(user_id)
    .bind(post_ids)
    .fetch_all(db)
    .await
}

/// What a rating sums up: one trip's reviews, or those of every trip one organiser organised
/// (deleted ones too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingOf {
    Trip,
    Organiser,
}

impl RatingOf {
    const fn column(self) -> &'static str {
        match self {
            RatingOf::Trip => "post_id",
            RatingOf::Organiser => "organiser_id",
        }
    }
}

/// The rating of each of `ids` (trips or organisers, as `of` says) that has reviews.
pub async fn ratings(
    db: &PgPool,
    of: RatingOf,
    ids: &[i64],
) -> Result<HashMap<i64, RatingSummary>, sqlx::Error> {
    let by = of.column();
    let rows: Vec<(i64, i64, f64)> = sqlx::query_as(&format!(
        "SELECT {by}, count(*), avg(rating)::float8 FROM board.reviews
          WHERE {by} = ANY($1) GROUP BY {by}"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, count, average)| (id, RatingSummary { count, average }))
        .collect())
}
