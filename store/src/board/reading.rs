//! Reading posts: by id, by user, and one page of the listing (filters, keyset order).

use super::rows::{POST_COLUMNS, PostRow};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder};

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
        // `PostStatus::is_public`: a trip that is over stays on its organiser's list.
        PostVisibility::Public => "status IN ('OPEN', 'CLOSED', 'COMPLETED')",
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
