//! Media activities: attach staged images to their owner, delete images (objects, then rows),
//! and clean up staged uploads nobody attached. Workflows carry image ids, never bytes.

use crate::faults::FaultPlan;
use chrono::Utc;
pub use fishapp_domain::media::ImageOwner as Owner;
use fishapp_domain::media::OwnerType;
use fishapp_media::MediaStore;
use fishapp_store::Database;
pub use fishapp_store::media::ImageLimit;
use fishapp_store::media::{self as store, AttachError, Selection};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachImages {
    pub owner: Owner,
    pub image_ids: Vec<Uuid>,
    /// How many images the owner may have afterwards; none in sagas started before the limit
    /// was enforced here.
    #[serde(default)]
    pub limit: Option<ImageLimit>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DeleteImages {
    /// Every image of an owner (a post's teardown, say).
    OfOwner(Owner),
    /// Every image of these messages (a room's teardown).
    OfMessages(Vec<i64>),
    /// These images, but only those the owner has (an update's `imageIdsToDelete`).
    OwnedBy { owner: Owner, ids: Vec<Uuid> },
    /// These images if still staged or the owner's (a failed saga's compensation: never
    /// someone else's image, whatever ids it was given).
    StagedOrOwnedBy { owner: Owner, ids: Vec<Uuid> },
    /// Staged uploads older than this many seconds that nothing attached.
    StagedOlderThan { seconds: u64 },
}

pub struct MediaActivities {
    db: Database,
    store: MediaStore,
    faults: FaultPlan,
}

impl MediaActivities {
    pub fn new(db: Database, store: MediaStore, faults: FaultPlan) -> Self {
        Self { db, store, faults }
    }
}

#[activities]
impl MediaActivities {
    /// Attaches staged images to `owner`, all or none; attaching again to the same owner is a
    /// no-op. An unknown image, one attached elsewhere, a post being torn down, or more images
    /// than the limit fails for good (no retry can fix it).
    #[activity]
    pub async fn attach_images(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AttachImages,
    ) -> Result<u64, ActivityError> {
        self.faults.check(&ctx, "media.attach_images")?;
        let attached = store::attach(
            self.db.pool(),
            input.owner,
            &input.image_ids,
            input.limit.as_ref(),
        )
        .await;
        match attached {
            Ok(attached) => Ok(attached),
            Err(AttachError::Sql(e)) => Err(e.into()),
            Err(refused) => Err(ActivityError::application(
                ApplicationFailure::non_retryable(refused.to_string()),
            )),
        }
    }

    /// Deletes images: their objects first, then their rows, so that a crash in between leaves
    /// rows that the retry deletes again (a deleted object is success), never unreachable
    /// objects. Returns how many rows went.
    #[activity]
    pub async fn delete_images(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeleteImages,
    ) -> Result<u64, ActivityError> {
        if matches!(
            input,
            DeleteImages::OwnedBy { .. } | DeleteImages::OfOwner(_)
        ) {
            self.faults.check(&ctx, "media.delete_images")?;
        }
        let selection = match input {
            DeleteImages::OfOwner(owner) => Selection::Owner(owner),
            DeleteImages::OfMessages(ids) => Selection::Owners(OwnerType::Message, ids),
            DeleteImages::OwnedBy { owner, ids } => Selection::OwnedIds(owner, ids),
            DeleteImages::StagedOrOwnedBy { owner, ids } => Selection::StagedOrOwnedIds(owner, ids),
            DeleteImages::StagedOlderThan { seconds } => {
                let age = chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
                Selection::StagedBefore(Utc::now() - age)
            }
        };
        let rows = store::select(self.db.pool(), &selection).await?;
        for row in &rows {
            self.store
                .delete_renditions(&row.display_key, &row.thumbnail_key)
                .await?;
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let deleted = store::delete_rows(self.db.pool(), &ids).await?;
        if deleted > 0 {
            tracing::info!(deleted, "deleted images");
        }
        Ok(deleted)
    }
}
