//! Applying to a trip and withdrawing, with the original API's names: `createApplyPost`,
//! `deleteApplyPost`, `ApplyPost`. Both go through sagas (see `fishapp_app::board`).

use super::account::{User, parse_id};
use super::board::Post;
use super::context::Guards;
use super::loaders::{load, loaders};
use super::scalars::Time;
use crate::error::{ApiResult, AppError, IntoGql};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use fishapp_app::board::Board;
use fishapp_store::board::ApplicationRow;

/// One user's seat on one trip.
pub(crate) struct ApplyPost(pub(crate) ApplicationRow);

#[Object]
impl ApplyPost {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        User::load(ctx, self.0.user_id, "the applicant is gone").await
    }

    async fn post(&self, ctx: &Context<'_>) -> ApiResult<Post> {
        let loaded = load(&loaders(ctx).posts, self.0.post_id).await?;
        loaded
            .map(Post)
            .ok_or_else(|| AppError::NotFound(format!("no post {}", self.0.post_id)))
            .gql()
    }

    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }

    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

#[derive(InputObject)]
pub(crate) struct CreateApplyPostInput {
    post_id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct CreateApplyPostPayload {
    apply_post: ApplyPost,
}

#[derive(InputObject)]
pub(crate) struct DeleteApplyPostInput {
    id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct DeleteApplyPostPayload {
    success: bool,
}

#[derive(Default)]
pub(crate) struct ApplyingMutation;

#[Object]
impl ApplyingMutation {
    /// Takes a seat on someone else's OPEN, future trip while one is left, and joins its chat
    /// room (the Apply saga). A refusal is CONFLICT (NOT_FOUND for no such trip) with
    /// `extensions.reason`: POST_NOT_OPEN, POST_IN_THE_PAST, OWN_POST, POST_FULL, ALREADY_APPLIED.
    async fn create_apply_post(
        &self,
        ctx: &Context<'_>,
        input: CreateApplyPostInput,
    ) -> ApiResult<CreateApplyPostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let post_id = parse_id("input.postId", &input.post_id).gql()?;
        let application = ctx
            .data_unchecked::<Board>()
            .apply(&viewer, post_id)
            .await
            .gql()?;
        Ok(CreateApplyPostPayload {
            apply_post: ApplyPost(application),
        })
    }

    /// Gives the seat back and leaves the room (the Withdraw saga; the applicant only).
    async fn delete_apply_post(
        &self,
        ctx: &Context<'_>,
        input: DeleteApplyPostInput,
    ) -> ApiResult<DeleteApplyPostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let id = parse_id("input.id", &input.id).gql()?;
        ctx.data_unchecked::<Board>()
            .withdraw(&viewer, id)
            .await
            .gql()?;
        Ok(DeleteApplyPostPayload { success: true })
    }
}
