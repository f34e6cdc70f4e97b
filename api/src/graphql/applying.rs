//! Applying to a trip and withdrawing, with the original API's names: `createApplyPost`,
//! `deleteApplyPost`, `ApplyPost`; and, added, the trip's line (`waitlist`) and the organiser's
//! answer to a request (`acceptApplyPost`, `declineApplyPost`). Seats change through sagas
//! (see `fishapp_app::board`).

use super::account::{User, parse_id};
use super::board::Post;
use super::context::Guards;
use super::loaders::{load, loaders};
use super::scalars::Time;
use crate::error::{ApiResult, AppError, IntoGql};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use fishapp_app::board::Board;
use fishapp_domain::board::ApplicationStatus;
use fishapp_store::board::ApplicationRow;

/// Where an application stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "fishapp_domain::board::ApplicationStatus")]
pub(crate) enum ApplyPostStatus {
    /// A seat on the trip, and a member of its room.
    Applied,
    /// In the trip's line: promoted, first come first served, when a seat frees.
    Waitlisted,
    /// Waiting for the organiser of a trip that approves each application (no seat is held).
    PendingApproval,
}

/// One user's seat on one trip, place in its line, or request to its organiser.
pub(crate) struct ApplyPost(pub(crate) ApplicationRow);

#[Object]
impl ApplyPost {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn status(&self) -> ApplyPostStatus {
        self.0.status.into()
    }

    /// Place in the trip's line (1: next to move up) while WAITLISTED; `null` otherwise.
    async fn waitlist_position(&self, ctx: &Context<'_>) -> ApiResult<Option<i64>> {
        if self.0.status != ApplicationStatus::Waitlisted {
            return Ok(None);
        }
        load(&loaders(ctx).waitlist_positions, self.0.id).await
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
    /// On a full trip, join its line instead of being refused (false unless given): the first
    /// in line takes the next seat that frees.
    waitlist: Option<bool>,
}

#[derive(InputObject)]
pub(crate) struct AcceptApplyPostInput {
    /// The request (`ApplyPost.id`).
    id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct AcceptApplyPostPayload {
    apply_post: ApplyPost,
}

#[derive(InputObject)]
pub(crate) struct DeclineApplyPostInput {
    /// The request (`ApplyPost.id`).
    id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct DeclineApplyPostPayload {
    success: bool,
}

#[derive(InputObject)]
pub(crate) struct RemoveApplyPostInput {
    /// The application to the organiser's trip (`ApplyPost.id`): a seat, a place in its line,
    /// or a request.
    id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct RemoveApplyPostPayload {
    success: bool,
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

#[derive(InputObject)]
pub(crate) struct LiftRemovalInput {
    /// The organiser's trip.
    post_id: ID,
    /// The user they removed from it (`Post.removals`).
    user_id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct LiftRemovalPayload {
    success: bool,
}

#[derive(Default)]
pub(crate) struct ApplyingMutation;

#[Object]
impl ApplyingMutation {
    /// Takes a seat on someone else's OPEN, future trip while one is left (and nobody is in its
    /// line), and joins its chat room (the Apply saga). On a full trip with `waitlist`, joins
    /// its line instead (`status` WAITLISTED); on a trip that approves each application, makes
    /// a request (`status` PENDING_APPROVAL). A refusal is CONFLICT (NOT_FOUND for no such trip)
    /// with `extensions.reason`: POST_NOT_OPEN, POST_IN_THE_PAST, OWN_POST, POST_FULL,
    /// ALREADY_APPLIED, REQUESTS_CLOSED (a trip that approves each application, past the
    /// organiser's deadline for requests); FORBIDDEN REMOVED_FROM_TRIP for one the organiser
    /// removed from it.
    async fn create_apply_post(
        &self,
        ctx: &Context<'_>,
        input: CreateApplyPostInput,
    ) -> ApiResult<CreateApplyPostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let post_id = parse_id("input.postId", &input.post_id).gql()?;
        let application = ctx
            .data_unchecked::<Board>()
            .apply(&viewer, post_id, input.waitlist.unwrap_or(false))
            .await
            .gql()?;
        Ok(CreateApplyPostPayload {
            apply_post: ApplyPost(application),
        })
    }

    /// The organiser accepts a request to their trip: the applicant takes a seat and joins the
    /// room (an Apply saga). CONFLICT with `extensions.reason` POST_FULL when no seat is left
    /// (the request stays), NOT_WAITING when it was answered, taken back or expired; NOT_FOUND
    /// for a request to someone else's trip.
    async fn accept_apply_post(
        &self,
        ctx: &Context<'_>,
        input: AcceptApplyPostInput,
    ) -> ApiResult<AcceptApplyPostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let id = parse_id("input.id", &input.id).gql()?;
        let application = ctx
            .data_unchecked::<Board>()
            .accept(&viewer, id)
            .await
            .gql()?;
        Ok(AcceptApplyPostPayload {
            apply_post: ApplyPost(application),
        })
    }

    /// The organiser declines a request to their trip: it goes (the applicant may ask again).
    /// Errors as `acceptApplyPost`'s.
    async fn decline_apply_post(
        &self,
        ctx: &Context<'_>,
        input: DeclineApplyPostInput,
    ) -> ApiResult<DeclineApplyPostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let id = parse_id("input.id", &input.id).gql()?;
        ctx.data_unchecked::<Board>()
            .decline(&viewer, id)
            .await
            .gql()?;
        Ok(DeclineApplyPostPayload { success: true })
    }

    /// The organiser removes someone from their OPEN trip (the Withdraw saga, run for them): a
    /// member gives the seat back (it goes to the first in line) and leaves the room, one in
    /// line leaves it, a request goes. The removed user is told (REMOVED) and may not apply to
    /// this trip again (FORBIDDEN, `extensions.reason` REMOVED_FROM_TRIP) until the organiser
    /// lifts the removal (`liftRemoval`). NOT_FOUND for an
    /// application to someone else's trip; CONFLICT POST_NOT_OPEN once the trip is not OPEN.
    async fn remove_apply_post(
        &self,
        ctx: &Context<'_>,
        input: RemoveApplyPostInput,
    ) -> ApiResult<RemoveApplyPostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let id = parse_id("input.id", &input.id).gql()?;
        ctx.data_unchecked::<Board>()
            .remove(&viewer, id)
            .await
            .gql()?;
        Ok(RemoveApplyPostPayload { success: true })
    }

    /// The organiser lets someone they removed from their trip apply to it again (the removal
    /// goes; nothing else changes: they are not put back). NOT_FOUND when that user was not
    /// removed from it; FORBIDDEN for someone else's trip.
    async fn lift_removal(
        &self,
        ctx: &Context<'_>,
        input: LiftRemovalInput,
    ) -> ApiResult<LiftRemovalPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let post_id = parse_id("input.postId", &input.post_id).gql()?;
        let user_id = parse_id("input.userId", &input.user_id).gql()?;
        ctx.data_unchecked::<Board>()
            .lift_removal(&viewer, post_id, user_id)
            .await
            .gql()?;
        Ok(LiftRemovalPayload { success: true })
    }

    /// Gives the seat back and leaves the room, leaves the trip's line, or takes a request back
    /// (the Withdraw saga; the applicant only). A seat given back goes to the first in line.
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
