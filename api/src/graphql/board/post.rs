//! A trip as GraphQL sees it: `Post`, its status and its connection.

use crate::error::{ApiResult, IntoGql};
use crate::graphql::APPLICANTS;
use crate::graphql::account::User;
use crate::graphql::applying::ApplyPost;
use crate::graphql::context::Guards;
use crate::graphql::loaders::{ListOf, LoadError, Loaders, load, load_in_page, loaders};
use crate::graphql::media::Image;
use crate::graphql::review::{Rating, TripReview, TripReviewConnection, rating_of, reviews_of};
use crate::graphql::scalars::Time;
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use fishapp_app::Calendar;
use fishapp_app::board::Board;
use fishapp_domain::board::ApplicationStatus;
use fishapp_store::board::{ApplicationRow, PostRow, RemovalRow};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "fishapp_domain::board::PostStatus")]
pub(crate) enum PostStatus {
    /// Its create saga is running: visible to its owner only.
    Pending,
    Open,
    /// The meeting time has passed.
    Closed,
    /// Some hours after the meeting: the trip's life is over.
    Completed,
    /// Being torn down: visible to its owner only, until it is gone.
    Deleting,
}

pub(crate) struct Post(pub(crate) PostRow);

/// Resolved field by field (`serial`), not concurrently: its fields are at hand (a page's
/// nested data is loaded ahead, see `posts` and `post`), and concurrent resolution costs a
/// `FuturesUnordered` and a task per field, several per cent of a listing (docs/benchmarks.md).
/// Where a post comes without a page (`User.posts`, an application's post, a mutation's
/// result), its user, images and fish types go through the loaders one after another; every
/// post of a list still asks at the same time, so each is still one batch.
#[Object(serial)]
impl Post {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// A code (1–4), as the original's `ID`.
    async fn fishing_spot_type_id(&self) -> ID {
        ID(self.0.fishing_spot_type_id.to_string())
    }
    /// Codes (1–95), as the original's `ID`s.
    async fn fish_type_ids(&self, ctx: &Context<'_>) -> ApiResult<Vec<ID>> {
        let fish = &loaders(ctx).fish_types;
        let loaded = load_in_page(ctx, |p| p.fish_types.as_ref(), fish, self.0.id).await?;
        Ok(loaded
            .unwrap_or_default()
            .into_iter()
            .map(|code| ID(code.to_string()))
            .collect())
    }
    /// A JIS prefecture code (1–47), as the original's `ID`.
    async fn prefecture_id(&self) -> ID {
        ID(self.0.prefecture_id.to_string())
    }
    async fn meeting_place_id(&self) -> &str {
        &self.0.meeting_place_id
    }
    async fn meeting_at(&self) -> Time {
        Time(self.0.meeting_at)
    }
    async fn max_apply(&self) -> i32 {
        self.0.max_apply
    }
    /// How many have applied so far.
    async fn apply_count(&self) -> i32 {
        self.0.apply_count
    }
    async fn status(&self) -> PostStatus {
        self.0.status.into()
    }
    /// Whether the organiser approves each application: `createApplyPost` then makes a
    /// request (`ApplyPost.status` PENDING_APPROVAL) that they accept or decline.
    async fn approval_required(&self) -> bool {
        self.0.approval_required
    }
    /// The trip's line (those who asked for `waitlist` on a full trip), first in line first:
    /// for its organiser and for those in it; `null` for anyone else. `first`: at most that
    /// many (100 unless asked, up to 1000).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::APPLICANTS.items(first), child_complexity)"
    )]
    async fn waitlist(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> ApiResult<Option<Vec<ApplyPost>>> {
        let in_line = |a: &ApplicationRow| a.status == ApplicationStatus::Waitlisted;
        self.list_for(ctx, first, in_line, |l| &l.waitlists, ApplyPost)
            .await
    }
    /// Requests waiting for the organiser, oldest first: theirs alone (`null` for anyone else).
    /// `first`: at most that many (100 unless asked, up to 1000).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::APPLICANTS.items(first), child_complexity)"
    )]
    async fn apply_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> ApiResult<Option<Vec<ApplyPost>>> {
        self.list_for(ctx, first, |_| false, |l| &l.requests, ApplyPost)
            .await
    }
    /// Those its organiser removed from it (who may not apply again until the removal is
    /// lifted with `liftRemoval`), newest first: the organiser's alone (`null` for anyone
    /// else). `first`: at most that many (100 unless asked, up to 1000).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::APPLICANTS.items(first), child_complexity)"
    )]
    async fn removals(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> ApiResult<Option<Vec<TripRemoval>>> {
        self.list_for(ctx, first, |_| false, |l| &l.removals, TripRemoval)
            .await
    }
    /// A link to the trip's event (iCalendar, RFC 5545) for a calendar app: for its members
    /// (the organiser and those holding a seat) alone, `null` for anyone else. Personal — it
    /// works without a sign-in until some weeks after the meeting, and only while its holder
    /// is a member.
    async fn calendar_url(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let seated = |a: &ApplicationRow| a.status == ApplicationStatus::Applied;
        if !self.viewer_is_organiser_or(ctx, seated).await? {
            return Ok(None);
        }
        let Some(viewer) = ctx.viewer_if_any().await else {
            return Ok(None);
        };
        let link = ctx
            .data_unchecked::<Calendar>()
            .link(viewer.user_id, &self.0)
            .gql()?;
        Ok(Some(link))
    }
    /// Who applied, oldest first. `first`: at most that many (100 unless asked, up to 1000).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::APPLICANTS.items(first), child_complexity)"
    )]
    async fn apply_posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> ApiResult<Vec<ApplyPost>> {
        let limit = APPLICANTS.limit("first", first).gql()?;
        let key = ListOf {
            id: self.0.id,
            limit,
        };
        let loaded = load(&loaders(ctx).applications, key).await?;
        Ok(loaded
            .unwrap_or_default()
            .into_iter()
            .map(ApplyPost)
            .collect())
    }
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::ASSUMED_IMAGES, child_complexity)"
    )]
    async fn images(&self, ctx: &Context<'_>) -> ApiResult<Vec<Image>> {
        let images = &loaders(ctx).post_images;
        let loaded = load_in_page(ctx, |p| p.images.as_ref(), images, self.0.id).await?;
        Ok(loaded.unwrap_or_default().into_iter().map(Image).collect())
    }
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        User::load(ctx, self.0.user_id, "the post's author is gone").await
    }
    /// What its members said once it was over, newest first; `after`: the `endCursor` of the
    /// page before. `first`: 20 unless asked, 1 to 50.
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::review::REVIEWS.items(first), child_complexity).saturating_add(1)"
    )]
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<TripReviewConnection> {
        reviews_of(ctx, self.0.id, first, after.as_deref()).await
    }
    /// The signed-in viewer's own application to it — a seat, a place in its line or a request
    /// (`status` says which; its `id` withdraws it); `null` when they have none (or are not
    /// signed in).
    async fn viewer_application(&self, ctx: &Context<'_>) -> ApiResult<Option<ApplyPost>> {
        let Some(viewer) = ctx.viewer_if_any().await else {
            return Ok(None);
        };
        let application = load(&loaders(ctx).application_of, (self.0.id, viewer.user_id)).await?;
        Ok(application.map(ApplyPost))
    }
    /// The signed-in viewer's own review of it; `null` when they wrote none (or are not signed in).
    async fn viewer_review(&self, ctx: &Context<'_>) -> ApiResult<Option<TripReview>> {
        let Some(viewer) = ctx.viewer_if_any().await else {
            return Ok(None);
        };
        let review = load(&loaders(ctx).review_of, (self.0.id, viewer.user_id)).await?;
        Ok(review.map(TripReview))
    }
    /// Until when its members may review it (`reviewTrip`): a configured time after the meeting
    /// (reviews open when it is COMPLETED).
    async fn reviews_close_at(&self, ctx: &Context<'_>) -> Time {
        Time(
            ctx.data_unchecked::<Board>()
                .reviews_close_at(self.0.meeting_at),
        )
    }
    /// Its members' ratings summed up; `null` before any review.
    async fn rating(&self, ctx: &Context<'_>) -> ApiResult<Option<Rating>> {
        rating_of(ctx, self.0.id, fishapp_store::board::RatingOf::Trip).await
    }
    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }
    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

impl Post {
    /// One of the trip's lists (`of` picks its loader), at most `first`, each item as `item`:
    /// for the organiser and for a viewer whose own application `may_see` admits; `None` for
    /// anyone else.
    async fn list_for<L, R, T>(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        may_see: impl FnOnce(&ApplicationRow) -> bool,
        of: impl FnOnce(&Loaders) -> &DataLoader<L>,
        item: impl Fn(R) -> T,
    ) -> ApiResult<Option<Vec<T>>>
    where
        L: Loader<ListOf, Value = Vec<R>, Error = LoadError>,
    {
        let limit = APPLICANTS.limit("first", first).gql()?;
        if !self.viewer_is_organiser_or(ctx, may_see).await? {
            return Ok(None);
        }
        let key = ListOf {
            id: self.0.id,
            limit,
        };
        let loaded = load(of(loaders(ctx)), key).await?;
        Ok(Some(
            loaded.unwrap_or_default().into_iter().map(item).collect(),
        ))
    }

    /// Whether the caller is this trip's organiser, or has an application to it that `mine`
    /// accepts (anonymous: no).
    async fn viewer_is_organiser_or(
        &self,
        ctx: &Context<'_>,
        mine: impl FnOnce(&ApplicationRow) -> bool,
    ) -> ApiResult<bool> {
        let Some(viewer) = ctx.viewer_if_any().await else {
            return Ok(false);
        };
        if viewer.user_id == self.0.user_id {
            return Ok(true);
        }
        let application = load(&loaders(ctx).application_of, (self.0.id, viewer.user_id)).await?;
        Ok(application.as_ref().is_some_and(mine))
    }
}

/// Someone the organiser removed from their trip.
pub(crate) struct TripRemoval(RemovalRow);

#[Object]
impl TripRemoval {
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        User::load(ctx, self.0.user_id, "the removed user is gone").await
    }
    async fn removed_at(&self) -> Time {
        Time(self.0.removed_at)
    }
}

#[derive(SimpleObject)]
pub(crate) struct PageInfo {
    pub(crate) has_next_page: bool,
    pub(crate) end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub(crate) struct PostConnection {
    pub(super) page_info: PageInfo,
    pub(super) nodes: Vec<Post>,
}
