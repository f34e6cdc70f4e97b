//! A post as its row: the columns every read selects, and the rule errors its writes report.

use chrono::{DateTime, Utc};
use fishapp_domain::board::{
    Content, FishTypeIds, FishingSpotTypeId, MaxApply, MeetingAt, MeetingPlaceId, PostDraft,
    PostStatus, PrefectureId, Title,
};
use fishapp_domain::events::PostData;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

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
    /// Whether the organiser approves each application. Absent from histories recorded before
    /// approval existed: off then.
    #[serde(default)]
    pub approval_required: bool,
    /// Whether the organiser's deadline for requests has passed for the current meeting time
    /// (see `expire_requests`). Read with the row, for applying; not part of any event or
    /// workflow history.
    #[serde(skip)]
    pub requests_closed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PostRow {
    /// The post as the domain's events carry it.
    pub fn data(&self) -> PostData {
        PostData {
            id: self.id,
            user_id: self.user_id,
            title: self.title.clone(),
            content: self.content.clone(),
            fishing_spot_type_id: self.fishing_spot_type_id,
            prefecture_id: self.prefecture_id,
            meeting_place_id: self.meeting_place_id.clone(),
            meeting_at: self.meeting_at,
            max_apply: self.max_apply,
            apply_count: self.apply_count,
            status: self.status,
            approval_required: self.approval_required,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

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
            approval_required: Some(self.approval_required),
        }
    }
}

pub(super) const POST_COLUMNS: &str = "p.id, p.user_id, p.title, p.content, p.fishing_spot_type_id, \
     p.prefecture_id, p.meeting_place_id, p.meeting_at, p.max_apply, p.apply_count, p.status, \
     p.approval_required, coalesce(p.requests_closed_for = p.meeting_at, false) AS requests_closed, \
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
