//! What the board's fields take and answer: the listing's filter and order, the inputs and
//! payloads of createPost, updatePost and deletePost, and a saga's status.

use super::post::Post;
use crate::error::AppError;
use crate::graphql::account::parse_id;
use crate::graphql::scalars::Time;
use async_graphql::{Enum, ID, InputObject, SimpleObject, Upload};
use chrono::Utc;
use fishapp_domain::board::{
    Content, FishTypeIds, FishingSpotTypeId, MaxApply, MeetingAt, MeetingPlaceId, PostDraft,
    PrefectureId, Title,
};
use fishapp_store::board::PostFilter;
use serde::{Deserialize, Serialize};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) enum PostSortBy {
    #[default]
    CreatedAt,
    MeetingAt,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) enum PostOrderBy {
    #[default]
    Desc,
    Asc,
}

#[derive(InputObject, Default)]
pub(crate) struct PostsInput {
    pub(super) prefecture_id: Option<ID>,
    pub(super) fishing_spot_type_id: Option<ID>,
    pub(super) user_id: Option<ID>,
    pub(super) meeting_at_from: Option<Time>,
    pub(super) meeting_at_to: Option<Time>,
    /// Posts that have all of these fish types.
    pub(super) fish_type_ids: Option<Vec<ID>>,
    /// true: posts with room left; false: full ones.
    pub(super) can_apply: Option<bool>,
    /// CREATED_AT unless given.
    pub(super) sort_by: Option<PostSortBy>,
    /// DESC unless given.
    pub(super) order_by: Option<PostOrderBy>,
}

/// A code the original API sends as an `ID` (a number in a string, or a number).
fn code(field: &str, id: &ID) -> Result<i64, AppError> {
    id.parse::<i64>()
        .map_err(|_| AppError::bad_input(field, format!("{field} must be a number")))
}

fn codes(field: &str, ids: &[ID]) -> Result<Vec<i64>, AppError> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| code(&format!("{field}.{i}"), id))
        .collect()
}

impl PostsInput {
    pub(super) fn sort(&self) -> (PostSortBy, PostOrderBy) {
        (
            self.sort_by.unwrap_or_default(),
            self.order_by.unwrap_or_default(),
        )
    }

    pub(super) fn filter(&self, viewer: Option<i64>) -> Result<PostFilter, AppError> {
        let fish = codes(
            "input.fishTypeIds",
            self.fish_type_ids.as_deref().unwrap_or_default(),
        )?;
        let prefecture = |id: &ID| {
            let field = "input.prefectureId";
            Ok::<_, AppError>(PrefectureId::parse(field, code(field, id)?)?.get())
        };
        let spot = |id: &ID| {
            let field = "input.fishingSpotTypeId";
            Ok::<_, AppError>(FishingSpotTypeId::parse(field, code(field, id)?)?.get())
        };
        Ok(PostFilter {
            prefecture_id: self.prefecture_id.as_ref().map(prefecture).transpose()?,
            fishing_spot_type_id: self.fishing_spot_type_id.as_ref().map(spot).transpose()?,
            user_id: self
                .user_id
                .as_ref()
                .map(|id| parse_id("input.userId", id))
                .transpose()?,
            meeting_at_from: self.meeting_at_from.map(|t| t.0),
            meeting_at_to: self.meeting_at_to.map(|t| t.0),
            fish_type_ids: FishTypeIds::parse_filter("input.fishTypeIds", &fish)?.into_inner(),
            can_apply: self.can_apply,
            include_unpublished_of: viewer,
        })
    }
}

/// The fields createPost and updatePost share (flattened into both inputs: the wire names are
/// the original's).
#[derive(InputObject)]
pub(crate) struct PostFieldsInput {
    pub(super) title: String,
    pub(super) content: String,
    pub(super) fishing_spot_type_id: ID,
    pub(super) fish_type_ids: Vec<ID>,
    pub(super) prefecture_id: ID,
    pub(super) meeting_place_id: String,
    pub(super) meeting_at: Time,
    pub(super) max_apply: i32,
}

impl PostFieldsInput {
    /// Parsed and checked; the first invalid field is reported by name.
    pub(super) fn parse(&self) -> Result<PostDraft, AppError> {
        let fish = codes("input.fishTypeIds", &self.fish_type_ids)?;
        let spot = "input.fishingSpotTypeId";
        let prefecture = "input.prefectureId";
        Ok(PostDraft {
            title: Title::parse("input.title", &self.title)?,
            content: Content::parse("input.content", &self.content)?,
            fishing_spot_type_id: FishingSpotTypeId::parse(
                spot,
                code(spot, &self.fishing_spot_type_id)?,
            )?,
            prefecture_id: PrefectureId::parse(prefecture, code(prefecture, &self.prefecture_id)?)?,
            meeting_place_id: MeetingPlaceId::parse(
                "input.meetingPlaceId",
                &self.meeting_place_id,
            )?,
            meeting_at: MeetingAt::parse("input.meetingAt", self.meeting_at.0, Utc::now())?,
            max_apply: MaxApply::parse("input.maxApply", self.max_apply.into())?,
            fish_type_ids: FishTypeIds::parse("input.fishTypeIds", &fish)?,
            approval_required: None,
        })
    }
}

#[derive(InputObject)]
pub(crate) struct CreatePostInput {
    #[graphql(flatten)]
    pub(super) fields: PostFieldsInput,
    pub(super) images: Option<Vec<Upload>>,
    /// The organiser approves each application (false unless given).
    pub(super) approval_required: Option<bool>,
    /// An idempotency key: the same key from the same user returns the same post (and runs
    /// one saga), however often the mutation is retried. 1–64 of `A-Z a-z 0-9 - _ .`.
    pub(super) client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(crate) struct CreatePostPayload {
    /// OPEN when the saga finished within the wait; PENDING otherwise (follow it with
    /// `saga(id)` or the createPostResult subscription).
    pub(super) post: Post,
    pub(super) saga_id: String,
}

#[derive(InputObject)]
pub(crate) struct UpdatePostInput {
    pub(super) id: ID,
    #[graphql(flatten)]
    pub(super) fields: PostFieldsInput,
    /// Images of this post to delete (their `Image.id`s).
    pub(super) image_ids_to_delete: Option<Vec<i64>>,
    pub(super) images: Option<Vec<Upload>>,
    pub(super) client_mutation_id: Option<String>,
    /// Turns the organiser's approval on or off (left out: as it is). Requests already made
    /// stay until answered or expired.
    pub(super) approval_required: Option<bool>,
}

#[derive(SimpleObject)]
pub(crate) struct UpdatePostPayload {
    pub(super) post: Post,
}

#[derive(InputObject)]
pub(crate) struct DeletePostInput {
    pub(super) id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct DeletePostPayload {
    pub(super) success: bool,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum SagaStatus {
    Running,
    Completed,
    Failed,
    Canceled,
    Terminated,
    TimedOut,
}

#[derive(SimpleObject)]
pub(crate) struct Saga {
    pub(super) id: String,
    /// The workflow type, e.g. CreatePostWorkflow.
    pub(super) r#type: String,
    pub(super) status: SagaStatus,
    pub(super) post_id: Option<ID>,
}
