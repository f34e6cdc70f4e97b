//! The media context's table: image metadata (the bytes are in object storage).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgExecutor, PgPool};
use uuid::Uuid;

use fishapp_domain::media::{ImageOwner, OwnerType};

#[derive(Debug, Clone, FromRow)]
pub struct ImageRow {
    pub id: Uuid,
    /// The id the API shows and takes back (the original API's integer image ids).
    pub number: i64,
    pub owner_type: Option<String>,
    pub owner_id: Option<i64>,
    pub display_key: String,
    pub thumbnail_key: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    pub original_name: String,
    pub uploader_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A processed image whose renditions are already in object storage.
pub struct NewImage<'a> {
    pub id: Uuid,
    pub owner: Option<ImageOwner>,
    pub display_key: &'a str,
    pub thumbnail_key: &'a str,
    pub content_type: &'a str,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    pub original_name: &'a str,
    pub uploader_id: Option<i64>,
}

impl ImageRow {
    /// Who the image belongs to; `None` while it is staged (no owner yet).
    pub fn owner(&self) -> Option<ImageOwner> {
        let kind = OwnerType::from_stored(self.owner_type.as_deref()?)?;
        Some(ImageOwner::new(kind, self.owner_id?))
    }
}

const IMAGE_COLUMNS: &str = "id, number, owner_type, owner_id, display_key, thumbnail_key, content_type, \
     width, height, bytes, original_name, uploader_id, created_at, updated_at";

/// Records an image; recording the same id again changes nothing (idempotent by image id).
pub async fn insert_image(
    db: impl PgExecutor<'_>,
    image: &NewImage<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO media.images (id, owner_type, owner_id, display_key, thumbnail_key, content_type,
                                   width, height, bytes, original_name, uploader_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(image.id)
    .bind(image.owner.map(|o| o.kind().as_str()))
    .bind(image.owner.map(ImageOwner::id))
    .bind(image.display_key)
    .bind(image.thumbnail_key)
    .bind(image.content_type)
    .bind(image.width)
    .bind(image.height)
    .bind(image.bytes)
    .bind(image.original_name)
    .bind(image.uploader_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn images_of(db: &PgPool, owner: ImageOwner) -> Result<Vec<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM media.images
          WHERE owner_type = $1 AND owner_id = $2 ORDER BY created_at, id"
    ))
    .bind(owner.kind().as_str())
    .bind(owner.id())
    .fetch_all(db)
    .await
}

/// Removes the rows of an owner's images except `keep`, returning them (their objects are the
/// caller's to delete, after the transaction commits).
pub async fn detach_all_but(
    db: impl PgExecutor<'_>,
    owner: ImageOwner,
    keep: Uuid,
) -> Result<Vec<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "DELETE FROM media.images WHERE owner_type = $1 AND owner_id = $2 AND id <> $3
         RETURNING {IMAGE_COLUMNS}"
    ))
    .bind(owner.kind().as_str())
    .bind(owner.id())
    .bind(keep)
    .fetch_all(db)
    .await
}

/// Images that could not be attached: unknown ids, or already attached to something else.
#[derive(Debug, thiserror::Error)]
#[error("images not attachable (unknown, or attached elsewhere): {0:?}")]
pub struct NotAttachable(pub Vec<Uuid>);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    NotAttachable(#[from] NotAttachable),
    /// The post is gone, or being torn down: its images would outlive it.
    #[error("the trip is being removed")]
    OwnerGone,
    /// The owner would have more images than it may.
    #[error("a trip may have at most {max} images; this change would give it {would_have}")]
    TooMany { max: u32, would_have: i64 },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// How many images an owner may have once an attachment is done: at most `max`, not counting
/// `leaving` (its images the same change removes afterwards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLimit {
    pub max: u32,
    pub leaving: Vec<Uuid>,
}

/// Attaches staged images to an owner, all or none. Attaching images already attached to the
/// same owner succeeds (a retried activity lands here).
///
/// A post must be live: its row is locked first, so a teardown (which marks it DELETING
/// before it collects the post's images) either waits for this attachment — and then deletes
/// these images with the others — or came first, and nothing is attached to a post that is
/// going. The lock also orders attachments to one post, and under `limit` the owner's images are
/// counted inside it: concurrent changes cannot together pass the limit.
pub async fn attach(
    db: &PgPool,
    owner: ImageOwner,
    ids: &[Uuid],
    limit: Option<&ImageLimit>,
) -> Result<u64, AttachError> {
    let mut tx = db.begin().await?;
    if let ImageOwner::Post(post_id) = owner {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM board.posts WHERE id = $1 FOR NO KEY UPDATE")
                .bind(post_id)
                .fetch_optional(&mut *tx)
                .await?;
        if status.as_deref().is_none_or(|s| s == "DELETING") {
            return Err(AttachError::OwnerGone);
        }
    }
    let attached: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE media.images SET owner_type = $1, owner_id = $2, updated_at = now()
          WHERE id = ANY($3)
            AND (owner_id IS NULL OR (owner_type = $1 AND owner_id = $2))
          RETURNING id",
    )
    .bind(owner.kind().as_str())
    .bind(owner.id())
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let missing: Vec<Uuid> = ids
        .iter()
        .filter(|id| !attached.contains(id))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(NotAttachable(missing).into());
    }
    if let Some(limit) = limit {
        let would_have: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM media.images
              WHERE owner_type = $1 AND owner_id = $2 AND NOT (id = ANY($3))",
        )
        .bind(owner.kind().as_str())
        .bind(owner.id())
        .bind(&limit.leaving)
        .fetch_one(&mut *tx)
        .await?;
        if would_have > i64::from(limit.max) {
            return Err(AttachError::TooMany {
                max: limit.max,
                would_have,
            });
        }
    }
    tx.commit().await?;
    Ok(attached.len() as u64)
}

/// Which images to delete.
#[derive(Debug, Clone)]
pub enum Selection {
    Owner(ImageOwner),
    /// Every image of any of these owners (a room's messages, say).
    Owners(OwnerType, Vec<i64>),
    Ids(Vec<Uuid>),
    /// These images, but only those the owner has: an id of someone else's image selects nothing.
    OwnedIds(ImageOwner, Vec<Uuid>),
    /// These images, if still staged or the owner's.
    StagedOrOwnedIds(ImageOwner, Vec<Uuid>),
    /// Staged (never attached) and created before the instant.
    StagedBefore(DateTime<Utc>),
}

pub async fn select(db: &PgPool, selection: &Selection) -> Result<Vec<ImageRow>, sqlx::Error> {
    match selection {
        Selection::Owner(owner) => {
            sqlx::query_as(&format!(
                "SELECT {IMAGE_COLUMNS} FROM media.images WHERE owner_type = $1 AND owner_id = $2"
            ))
            .bind(owner.kind().as_str())
            .bind(owner.id())
            .fetch_all(db)
            .await
        }
        Selection::Owners(owner, ids) => sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM media.images WHERE owner_type = $1 AND owner_id = ANY($2)"
        ))
        .bind(owner.as_str())
        .bind(ids)
        .fetch_all(db)
        .await,
        Selection::OwnedIds(owner, ids) => {
            sqlx::query_as(&format!(
                "SELECT {IMAGE_COLUMNS} FROM media.images
                  WHERE owner_type = $1 AND owner_id = $2 AND id = ANY($3)"
            ))
            .bind(owner.kind().as_str())
            .bind(owner.id())
            .bind(ids)
            .fetch_all(db)
            .await
        }
        Selection::StagedOrOwnedIds(owner, ids) => {
            sqlx::query_as(&format!(
                "SELECT {IMAGE_COLUMNS} FROM media.images
                  WHERE id = ANY($3)
                    AND (owner_id IS NULL OR (owner_type = $1 AND owner_id = $2))"
            ))
            .bind(owner.kind().as_str())
            .bind(owner.id())
            .bind(ids)
            .fetch_all(db)
            .await
        }
        Selection::Ids(ids) => {
            sqlx::query_as(&format!(
                "SELECT {IMAGE_COLUMNS} FROM media.images WHERE id = ANY($1)"
            ))
            .bind(ids)
            .fetch_all(db)
            .await
        }
        // Bounded per call: the hourly cleanup takes the rest next time.
        Selection::StagedBefore(cutoff) => {
            sqlx::query_as(&format!(
                "SELECT {IMAGE_COLUMNS} FROM media.images
                  WHERE owner_id IS NULL AND created_at < $1 ORDER BY created_at LIMIT 1000"
            ))
            .bind(*cutoff)
            .fetch_all(db)
            .await
        }
    }
}

/// Deletes image rows by id (their objects first, by the caller). Gone already is fine.
pub async fn delete_rows(db: &PgPool, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM media.images WHERE id = ANY($1)")
        .bind(ids)
        .execute(db)
        .await?;
    Ok(result.rows_affected())
}

/// Images of many owners at once, in upload order (a page of posts costs one statement).
pub async fn images_of_owners(
    db: &PgPool,
    owner: OwnerType,
    owner_ids: &[i64],
) -> Result<Vec<ImageRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {IMAGE_COLUMNS} FROM media.images
          WHERE owner_type = $1 AND owner_id = ANY($2) ORDER BY created_at, id"
    ))
    .bind(owner.as_str())
    .bind(owner_ids)
    .fetch_all(db)
    .await
}
