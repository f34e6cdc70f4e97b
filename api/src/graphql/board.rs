//! The board over GraphQL: post, posts, createPost, updatePost, deletePost and saga(id), with the
//! original API's names. Changes go through the sagas (see `fishapp_app::board`); reads come from
//! Postgres, nested fields through the dataloaders.

use super::APPLICANTS;
use super::account::{User, parse_id};
use super::applying::ApplyPost;
use super::context::{Guards, while_signed_in};
use super::cursor::Cursor;
use super::loaders::{
    ApplicationsInLoader, ListOf, Loaders, Page, PageSelection, load, load_in_page, loaders,
};
use super::media::{Image, take_upload};
use super::scalars::Time;
use super::streams::open_stream;
use crate::error::{ApiResult, AppError, IntoGql};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription, Upload};
use chrono::Utc;
use fishapp_app::Calendar;
use fishapp_app::board::{Board, MutationKey, NewPost, PostChange};
use fishapp_domain::board::ApplicationStatus;
use fishapp_domain::board::{
    Content, FishTypeIds, FishingSpotTypeId, MaxApply, MeetingAt, MeetingPlaceId, PostDraft,
    PrefectureId, Title,
};
use fishapp_store::board::{self as store, ApplicationRow, Order, PostFilter, PostRow, SortBy};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use temporalio_client::WorkflowExecutionStatus;

/// Page size of `posts`: 10 unless asked, at most 30.
const DEFAULT_PAGE: i64 = 10;
const MAX_PAGE: i64 = 30;

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
        self.applications_in(ctx, first, in_line, |l| &l.waitlists)
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
        self.applications_in(ctx, first, |_| false, |l| &l.requests)
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
    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }
    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

impl Post {
    /// Whether the caller is this trip's organiser, or has an application to it that `mine`
    /// accepts (anonymous: no).
    /// The trip's applications in one status (`of` picks the loader), at most `first`: for the
    /// organiser and for a viewer whose own application `may_see` admits; `None` for anyone else.
    async fn applications_in(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        may_see: impl FnOnce(&ApplicationRow) -> bool,
        of: impl FnOnce(&Loaders) -> &DataLoader<ApplicationsInLoader>,
    ) -> ApiResult<Option<Vec<ApplyPost>>> {
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
            loaded
                .unwrap_or_default()
                .into_iter()
                .map(ApplyPost)
                .collect(),
        ))
    }

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

#[derive(SimpleObject)]
pub(crate) struct PageInfo {
    pub(crate) has_next_page: bool,
    pub(crate) end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub(crate) struct PostConnection {
    page_info: PageInfo,
    nodes: Vec<Post>,
}

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
    prefecture_id: Option<ID>,
    fishing_spot_type_id: Option<ID>,
    user_id: Option<ID>,
    meeting_at_from: Option<Time>,
    meeting_at_to: Option<Time>,
    /// Posts that have all of these fish types.
    fish_type_ids: Option<Vec<ID>>,
    /// true: posts with room left; false: full ones.
    can_apply: Option<bool>,
    /// CREATED_AT unless given.
    sort_by: Option<PostSortBy>,
    /// DESC unless given.
    order_by: Option<PostOrderBy>,
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
    fn sort(&self) -> (PostSortBy, PostOrderBy) {
        (
            self.sort_by.unwrap_or_default(),
            self.order_by.unwrap_or_default(),
        )
    }

    fn filter(&self, viewer: Option<i64>) -> Result<PostFilter, AppError> {
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
    title: String,
    content: String,
    fishing_spot_type_id: ID,
    fish_type_ids: Vec<ID>,
    prefecture_id: ID,
    meeting_place_id: String,
    meeting_at: Time,
    max_apply: i32,
}

impl PostFieldsInput {
    /// Parsed and checked; the first invalid field is reported by name.
    fn parse(&self) -> Result<PostDraft, AppError> {
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
    fields: PostFieldsInput,
    images: Option<Vec<Upload>>,
    /// The organiser approves each application (false unless given).
    approval_required: Option<bool>,
    /// An idempotency key: the same key from the same user returns the same post (and runs
    /// one saga), however often the mutation is retried. 1–64 of `A-Z a-z 0-9 - _ .`.
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(crate) struct CreatePostPayload {
    /// OPEN when the saga finished within the wait; PENDING otherwise (follow it with
    /// `saga(id)` or the createPostResult subscription).
    post: Post,
    saga_id: String,
}

#[derive(InputObject)]
pub(crate) struct UpdatePostInput {
    id: ID,
    #[graphql(flatten)]
    fields: PostFieldsInput,
    /// Images of this post to delete (their `Image.id`s).
    image_ids_to_delete: Option<Vec<i64>>,
    images: Option<Vec<Upload>>,
    client_mutation_id: Option<String>,
    /// Turns the organiser's approval on or off (left out: as it is). Requests already made
    /// stay until answered or expired.
    approval_required: Option<bool>,
}

#[derive(SimpleObject)]
pub(crate) struct UpdatePostPayload {
    post: Post,
}

#[derive(InputObject)]
pub(crate) struct DeletePostInput {
    id: ID,
}

#[derive(SimpleObject)]
pub(crate) struct DeletePostPayload {
    success: bool,
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
    id: String,
    /// The workflow type, e.g. CreatePostWorkflow.
    r#type: String,
    status: SagaStatus,
    post_id: Option<ID>,
}

/// The files of an `images` argument, as the use cases take them.
fn upload_values(
    ctx: &Context<'_>,
    images: Option<&Vec<Upload>>,
) -> Result<Vec<fishapp_app::Upload>, AppError> {
    images
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|u| take_upload(ctx, "input.images", u))
        .collect()
}

#[derive(Default)]
pub(crate) struct BoardQuery;

#[Object]
impl BoardQuery {
    /// One post. PENDING and DELETING posts are their owner's alone: NOT_FOUND for others.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Post> {
        let id = parse_id("id", &id).gql()?;
        let viewer = ctx.viewer_if_any().await;
        let board = ctx.data_unchecked::<Board>();
        let row = board.post(viewer.as_ref(), id).await.gql()?;
        // Its author, images and fish types side by side now: `Post` resolves its fields one
        // after another (see `Post`), so through the loaders they would be three rounds.
        let selected = PageSelection::of(&ctx.look_ahead());
        let page = Page::load(loaders(ctx), std::slice::from_ref(&row), selected).await?;
        let _ = loaders(ctx).page.set(page);
        Ok(Post(row))
    }

    /// OPEN posts, newest first unless asked otherwise, filtered; keyset-paginated (`first`
    /// 1–30, default 10; `after` is the previous page's endCursor). A user asking for their
    /// own posts (`userId` = theirs) sees them whatever their status.
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::page_items(first, DEFAULT_PAGE, MAX_PAGE), child_complexity)"
    )]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        input: PostsInput,
    ) -> ApiResult<PostConnection> {
        let first = i64::from(first.unwrap_or(DEFAULT_PAGE as i32));
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(AppError::bad_input(
                "first",
                format!("must be between 1 and {MAX_PAGE}"),
            ))
            .gql();
        }
        let viewer = if input.user_id.is_some() {
            ctx.viewer_if_any().await.map(|v| v.user_id)
        } else {
            None
        };
        let filter = input.filter(viewer).gql()?;
        let (sort_by, order_by) = input.sort();
        let sort = match sort_by {
            PostSortBy::CreatedAt => SortBy::CreatedAt,
            PostSortBy::MeetingAt => SortBy::MeetingAt,
        };
        let store_order = match order_by {
            PostOrderBy::Asc => Order::Asc,
            PostOrderBy::Desc => Order::Desc,
        };
        let after = after
            .as_deref()
            .map(|c| Cursor::decode(c, sort_by, order_by))
            .transpose()
            .gql()?;
        let board = ctx.data_unchecked::<Board>();
        let mut rows = store::list_posts(
            board.db().pool(),
            &filter,
            sort,
            store_order,
            after,
            first + 1,
        )
        .await
        .map_err(AppError::from)
        .gql()?;
        let has_next_page = rows.len() as i64 > first;
        rows.truncate(first as usize);
        // The page's authors, images and fish types in one go, where the query asks for them.
        let selected = PageSelection::of(&ctx.look_ahead().field("nodes"));
        let page = Page::load(loaders(ctx), &rows, selected).await?;
        // A second `posts` in the same request (under an alias) goes through the loaders.
        let _ = loaders(ctx).page.set(page);
        let end_cursor = rows.last().map(|last| {
            Cursor {
                s: sort_by,
                o: order_by,
                t: match sort {
                    SortBy::CreatedAt => last.created_at,
                    SortBy::MeetingAt => last.meeting_at,
                }
                .timestamp_micros(),
                i: last.id,
            }
            .encode()
        });
        Ok(PostConnection {
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
            nodes: rows.into_iter().map(Post).collect(),
        })
    }

    /// A saga the caller started: its type, status and post.
    async fn saga(&self, ctx: &Context<'_>, id: String) -> ApiResult<Saga> {
        let viewer = ctx.viewer().await.gql()?;
        let info = ctx
            .data_unchecked::<Board>()
            .saga(&viewer, &id)
            .await
            .gql()?;
        let status = match info.status {
            WorkflowExecutionStatus::Completed => SagaStatus::Completed,
            WorkflowExecutionStatus::Failed => SagaStatus::Failed,
            WorkflowExecutionStatus::Canceled => SagaStatus::Canceled,
            WorkflowExecutionStatus::Terminated => SagaStatus::Terminated,
            WorkflowExecutionStatus::TimedOut => SagaStatus::TimedOut,
            _ => SagaStatus::Running,
        };
        Ok(Saga {
            id: info.id,
            r#type: info.workflow_type,
            status,
            post_id: info.post_id.map(|p| ID(p.to_string())),
        })
    }
}

#[derive(Default)]
pub(crate) struct BoardMutation;

#[Object]
impl BoardMutation {
    /// Posts a trip through the CreatePost saga; waits for it up to the configured budget.
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        input: CreatePostInput,
    ) -> ApiResult<CreatePostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let request = NewPost {
            draft: PostDraft {
                approval_required: Some(input.approval_required.unwrap_or(false)),
                ..input.fields.parse().gql()?
            },
            key: MutationKey::parse(
                "input.clientMutationId",
                input.client_mutation_id.as_deref(),
            )
            .gql()?,
            images: upload_values(ctx, input.images.as_ref()).gql()?,
        };
        let created = ctx
            .data_unchecked::<Board>()
            .create_post(&viewer, request)
            .await
            .gql()?;
        Ok(CreatePostPayload {
            post: Post(created.post),
            saga_id: created.saga_id,
        })
    }

    /// Changes a post through the UpdatePost saga (owner only).
    async fn update_post(
        &self,
        ctx: &Context<'_>,
        input: UpdatePostInput,
    ) -> ApiResult<UpdatePostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let change = PostChange {
            post_id: parse_id("input.id", &input.id).gql()?,
            draft: PostDraft {
                approval_required: input.approval_required,
                ..input.fields.parse().gql()?
            },
            image_ids_to_delete: input.image_ids_to_delete.unwrap_or_default(),
            key: MutationKey::parse(
                "input.clientMutationId",
                input.client_mutation_id.as_deref(),
            )
            .gql()?,
            images: upload_values(ctx, input.images.as_ref()).gql()?,
        };
        let post = ctx
            .data_unchecked::<Board>()
            .update_post(&viewer, change)
            .await
            .gql()?;
        Ok(UpdatePostPayload { post: Post(post) })
    }

    /// Tears a post down through the DeletePost saga (owner only). The teardown always
    /// finishes; `success` is true once it has started.
    async fn delete_post(
        &self,
        ctx: &Context<'_>,
        input: DeletePostInput,
    ) -> ApiResult<DeletePostPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let post_id = parse_id("input.id", &input.id).gql()?;
        ctx.data_unchecked::<Board>()
            .delete_post(&viewer, post_id)
            .await
            .gql()?;
        Ok(DeletePostPayload { success: true })
    }
}

#[derive(InputObject)]
pub(crate) struct CreatePostResultInput {
    saga_id: String,
}

/// One saga's outcome: the post, or why it failed (and was undone).
#[derive(SimpleObject)]
pub(crate) struct CreatePostResultPayload {
    post: Option<Post>,
    error: Option<String>,
}

/// How long a createPostResult subscription waits for its saga before giving up (the saga
/// itself keeps going; `saga(id)` tells its end).
const RESULT_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[derive(Default)]
pub(crate) struct BoardSubscription;

#[Subscription]
impl BoardSubscription {
    /// The result of one of the caller's create sagas (createPost's `sagaId`): exactly one
    /// message, then the stream completes. Someone else's saga is NOT_FOUND.
    async fn create_post_result(
        &self,
        ctx: &Context<'_>,
        input: CreatePostResultInput,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<CreatePostResultPayload>>>
    {
        let viewer = ctx.viewer().await.gql()?;
        let permit = open_stream(ctx, &viewer).gql()?;
        let result = ctx
            .data_unchecked::<Board>()
            .create_result(&viewer, &input.saga_id, RESULT_WAIT)
            .await
            .gql()?;
        let outcome = futures::stream::once(async move {
            Ok(match result.await.gql()? {
                Ok(post) => CreatePostResultPayload {
                    post: post.map(Post),
                    error: None,
                },
                Err(reason) => CreatePostResultPayload {
                    post: None,
                    error: Some(reason),
                },
            })
        })
        .boxed();
        Ok(while_signed_in(ctx, &viewer, permit, outcome))
    }
}
