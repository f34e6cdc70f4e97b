//! The board over GraphQL: post, posts, createPost, updatePost, deletePost and saga(id), with the
//! original API's names. Changes go through the sagas (see `crate::board`); reads come from
//! Postgres, nested fields through the dataloaders.

use super::account::{User, parse_id};
use super::context::Guards;
use super::loaders::Loaders;
use super::media::Image;
use super::scalars::Time;
use crate::board::{Board, SagaWait, UpdateRequest};
use crate::error::{ApiError, ApiResult, IntoGql};
use crate::media::Media;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription, Upload};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use fishapp_domain::board::{
    Content, FishTypeIds, FishingSpotTypeId, MaxApply, MeetingAt, MeetingPlaceId, PrefectureId,
    Title,
};
use fishapp_store::board::{self as store, Keyset, Order, PostFields, PostFilter, PostRow, SortBy};
use fishapp_store::media::{self as media_store, OwnerType as StoreOwner};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use temporalio_client::WorkflowExecutionStatus;
use uuid::Uuid;

/// Page size of `posts`: 10 unless asked, at most 30.
const DEFAULT_PAGE: i64 = 10;
const MAX_PAGE: i64 = 30;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum PostStatus {
    /// Its create saga is running: visible to its owner only.
    Pending,
    Open,
    /// The meeting time has passed.
    Closed,
    /// Being torn down: visible to its owner only, until it is gone.
    Deleting,
}

pub(crate) struct Post(pub(crate) PostRow);

impl Post {
    /// Whether `viewer` may see this post: everyone sees OPEN and CLOSED posts, the owner all.
    fn visible_to(&self, viewer: Option<i64>) -> bool {
        matches!(self.0.status.as_str(), "OPEN" | "CLOSED") || viewer == Some(self.0.user_id)
    }
}

#[Object]
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
    async fn fishing_spot_type_id(&self) -> i32 {
        self.0.fishing_spot_type_id.into()
    }
    async fn fish_type_ids(&self, ctx: &Context<'_>) -> ApiResult<Vec<i32>> {
        let loaded = ctx
            .data_unchecked::<Loaders>()
            .fish_types
            .load_one(self.0.id)
            .await
            .map_err(|e| ApiError::from(clone_sqlx(&e)))
            .gql()?;
        Ok(loaded
            .unwrap_or_default()
            .into_iter()
            .map(i32::from)
            .collect())
    }
    async fn prefecture_id(&self) -> i32 {
        self.0.prefecture_id.into()
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
        match self.0.status.as_str() {
            "PENDING" => PostStatus::Pending,
            "CLOSED" => PostStatus::Closed,
            "DELETING" => PostStatus::Deleting,
            _ => PostStatus::Open,
        }
    }
    async fn images(&self, ctx: &Context<'_>) -> ApiResult<Vec<Image>> {
        let loaded = ctx
            .data_unchecked::<Loaders>()
            .post_images
            .load_one(self.0.id)
            .await
            .map_err(|e| ApiError::from(clone_sqlx(&e)))
            .gql()?;
        Ok(loaded.unwrap_or_default().into_iter().map(Image).collect())
    }
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        let loaded = ctx
            .data_unchecked::<Loaders>()
            .users
            .load_one(self.0.user_id)
            .await
            .map_err(|e| ApiError::from(clone_sqlx(&e)))
            .gql()?;
        loaded
            .map(User)
            .ok_or_else(|| ApiError::NotFound("the post's author is gone".to_owned()))
            .gql()
    }
    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }
    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

/// Loader errors are shared by every key of a batch; they are reported as the database error
/// they were.
fn clone_sqlx(e: &std::sync::Arc<sqlx::Error>) -> sqlx::Error {
    match e.as_ref() {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

#[derive(SimpleObject)]
pub(crate) struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
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
pub(crate) enum OrderBy {
    #[default]
    Desc,
    Asc,
}

#[derive(InputObject, Default)]
pub(crate) struct PostsInput {
    prefecture_id: Option<i32>,
    fishing_spot_type_id: Option<i32>,
    user_id: Option<ID>,
    meeting_at_from: Option<Time>,
    meeting_at_to: Option<Time>,
    /// Posts that have all of these fish types.
    fish_type_ids: Option<Vec<i32>>,
    /// true: posts with room left; false: full ones.
    can_apply: Option<bool>,
    #[graphql(default)]
    sort_by: PostSortBy,
    #[graphql(default)]
    order_by: OrderBy,
}

/// What an opaque `after` cursor holds: the sort it belongs to and the last post's position.
#[derive(Serialize, Deserialize)]
struct Cursor {
    s: PostSortBy,
    o: OrderBy,
    /// The sort column's value, in microseconds since the epoch.
    t: i64,
    i: i64,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(raw: &str, sort: PostSortBy, order: OrderBy) -> Result<Keyset, ApiError> {
        let bad = || ApiError::bad_input("after", "is not a cursor of this listing");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.s != sort || cursor.o != order {
            return Err(bad());
        }
        Ok(Keyset {
            at: DateTime::<Utc>::from_timestamp_micros(cursor.t).ok_or_else(bad)?,
            id: cursor.i,
        })
    }
}

fn small(
    field: &str,
    value: Option<i32>,
    parse: fn(&str, i64) -> Result<i16, fishapp_domain::Invalid>,
) -> Result<Option<i16>, ApiError> {
    value
        .map(|v| parse(field, v.into()))
        .transpose()
        .map_err(ApiError::from)
}

impl PostsInput {
    fn filter(&self, viewer: Option<i64>) -> Result<PostFilter, ApiError> {
        let fish = self.fish_type_ids.as_deref().unwrap_or_default();
        let fish: Vec<i64> = fish.iter().map(|&f| f.into()).collect();
        Ok(PostFilter {
            prefecture_id: small("input.prefectureId", self.prefecture_id, |f, v| {
                PrefectureId::parse(f, v).map(PrefectureId::get)
            })?,
            fishing_spot_type_id: small(
                "input.fishingSpotTypeId",
                self.fishing_spot_type_id,
                |f, v| FishingSpotTypeId::parse(f, v).map(FishingSpotTypeId::get),
            )?,
            user_id: self
                .user_id
                .as_ref()
                .map(|id| parse_id("input.userId", id))
                .transpose()?,
            meeting_at_from: self.meeting_at_from.map(|t| t.0),
            meeting_at_to: self.meeting_at_to.map(|t| t.0),
            fish_type_ids: FishTypeIds::parse_any("input.fishTypeIds", &fish)?
                .map(FishTypeIds::into_inner)
                .unwrap_or_default(),
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
    fishing_spot_type_id: i32,
    fish_type_ids: Vec<i32>,
    prefecture_id: i32,
    meeting_place_id: String,
    meeting_at: Time,
    max_apply: i32,
}

impl PostFieldsInput {
    /// Parsed and checked; the first invalid field is reported by name.
    fn parse(&self) -> Result<PostFields, ApiError> {
        let fish: Vec<i64> = self.fish_type_ids.iter().map(|&f| f.into()).collect();
        Ok(PostFields {
            title: Title::parse("input.title", &self.title)?
                .as_str()
                .to_owned(),
            content: Content::parse("input.content", &self.content)?
                .as_str()
                .to_owned(),
            fishing_spot_type_id: FishingSpotTypeId::parse(
                "input.fishingSpotTypeId",
                self.fishing_spot_type_id.into(),
            )?
            .get(),
            prefecture_id: PrefectureId::parse("input.prefectureId", self.prefecture_id.into())?
                .get(),
            meeting_place_id: MeetingPlaceId::parse(
                "input.meetingPlaceId",
                &self.meeting_place_id,
            )?
            .as_str()
            .to_owned(),
            meeting_at: MeetingAt::parse("input.meetingAt", self.meeting_at.0, Utc::now())?.get(),
            max_apply: MaxApply::parse("input.maxApply", self.max_apply.into())?.get(),
            fish_type_ids: FishTypeIds::parse("input.fishTypeIds", &fish)?.into_inner(),
        })
    }
}

#[derive(InputObject)]
pub(crate) struct CreatePostInput {
    #[graphql(flatten)]
    fields: PostFieldsInput,
    images: Option<Vec<Upload>>,
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
    /// Images of this post to delete.
    image_ids_to_delete: Option<Vec<ID>>,
    images: Option<Vec<Upload>>,
    client_mutation_id: Option<String>,
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

fn mutation_key(raw: Option<&str>) -> Result<String, ApiError> {
    match raw {
        None => Ok(Uuid::new_v4().simple().to_string()),
        Some(key)
            if (1..=64).contains(&key.len())
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            Ok(key.to_owned())
        }
        Some(_) => Err(ApiError::bad_input(
            "input.clientMutationId",
            "must be 1 to 64 of A-Z, a-z, 0-9, '-', '_' and '.'",
        )),
    }
}

fn uploads(
    ctx: &Context<'_>,
    images: Option<&Vec<Upload>>,
    max: usize,
) -> Result<Vec<async_graphql::UploadValue>, ApiError> {
    let images = images.map(Vec::as_slice).unwrap_or_default();
    if images.len() > max {
        return Err(ApiError::bad_input(
            "input.images",
            format!(
                "at most {max} images per request; {} were sent",
                images.len()
            ),
        ));
    }
    images
        .iter()
        .map(|u| u.value(ctx).map_err(ApiError::internal))
        .collect()
}

#[derive(Default)]
pub(crate) struct BoardQuery;

#[Object]
impl BoardQuery {
    /// One post. PENDING and DELETING posts are their owner's alone: NOT_FOUND for others.
    async fn post(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Post> {
        let id = parse_id("id", &id).gql()?;
        let viewer = ctx.viewer_if_any().await.map(|v| v.user_id);
        let post = ctx
            .data_unchecked::<Board>()
            .post(id)
            .await
            .gql()?
            .map(Post);
        match post {
            Some(post) if post.visible_to(viewer) => Ok(post),
            _ => Err(ApiError::NotFound(format!("no post {id}"))).gql(),
        }
    }

    /// OPEN posts, newest first unless asked otherwise, filtered; keyset-paginated (`first`
    /// 1–30, default 10; `after` is the previous page's endCursor). A user asking for their
    /// own posts (`userId` = theirs) sees them whatever their status.
    async fn posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        input: PostsInput,
    ) -> ApiResult<PostConnection> {
        let first = i64::from(first.unwrap_or(DEFAULT_PAGE as i32));
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(
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
        let (sort, order) = match (input.sort_by, input.order_by) {
            (PostSortBy::CreatedAt, o) => (SortBy::CreatedAt, o),
            (PostSortBy::MeetingAt, o) => (SortBy::MeetingAt, o),
        };
        let store_order = match order {
            OrderBy::Asc => Order::Asc,
            OrderBy::Desc => Order::Desc,
        };
        let after = after
            .as_deref()
            .map(|c| Cursor::decode(c, input.sort_by, input.order_by))
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
        .map_err(ApiError::from)
        .gql()?;
        let has_next_page = rows.len() as i64 > first;
        rows.truncate(first as usize);
        let end_cursor = rows.last().map(|last| {
            Cursor {
                s: input.sort_by,
                o: input.order_by,
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
        let board = ctx.data_unchecked::<Board>();
        let client = board.client().gql()?;
        let (info, owner) = board.saga(&client, &id).await.gql()?;
        if owner != Some(viewer.user_id) {
            // Someone else's saga is indistinguishable from none.
            return Err(ApiError::NotFound(format!("no saga {id:?}"))).gql();
        }
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

/// The post `id` names, and its owner, who must be the caller (FORBIDDEN otherwise).
async fn owned_post(
    ctx: &Context<'_>,
    id: &ID,
) -> Result<(PostRow, crate::account::Viewer), ApiError> {
    let post_id = parse_id("input.id", id)?;
    let post = ctx
        .data_unchecked::<Board>()
        .post(post_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no post {post_id}")))?;
    let viewer = ctx.owner(post.user_id).await?;
    Ok((post, viewer))
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
        let board = ctx.data_unchecked::<Board>();
        let media = ctx.data_unchecked::<Media>();
        let fields = input.fields.parse().gql()?;
        let key = mutation_key(input.client_mutation_id.as_deref()).gql()?;
        let max_images = board
            .settings()
            .max_images_per_post
            .min(media.settings().max_files_per_request);
        let uploads = uploads(ctx, input.images.as_ref(), max_images).gql()?;
        // Temporal first: when it is unreachable, nothing is uploaded or written.
        let client = board.client().gql()?;
        let image_ids = media
            .stage_all("input.images", uploads, viewer.user_id)
            .await
            .gql()?;
        let started = match board
            .start_create(
                &client,
                viewer.user_id,
                &key,
                input.client_mutation_id.is_some(),
                fields.clone(),
                image_ids.clone(),
            )
            .await
        {
            Ok(started) => started,
            Err(e) => {
                media.discard_staged(&image_ids).await;
                return Err(e).gql();
            }
        };
        if !started.started_here {
            // A retry: the earlier request's saga owns the post; these uploads are not needed.
            media.discard_staged(&image_ids).await;
        }
        let wait = board
            .wait_create(&client, &started.saga_id, board.settings().saga_wait)
            .await
            .gql()?;
        if let SagaWait::Failed(reason) = wait {
            return Err(ApiError::Conflict(format!(
                "the post could not be created ({reason}); nothing was kept"
            )))
            .gql();
        }
        let post = match board.post(started.post_id).await.gql()? {
            Some(row) => row,
            // The saga has not written the row yet: answer with what it will write.
            None => PostRow {
                id: started.post_id,
                user_id: viewer.user_id,
                title: fields.title,
                content: fields.content,
                fishing_spot_type_id: fields.fishing_spot_type_id,
                prefecture_id: fields.prefecture_id,
                meeting_place_id: fields.meeting_place_id,
                meeting_at: fields.meeting_at,
                max_apply: fields.max_apply,
                apply_count: 0,
                status: "PENDING".to_owned(),
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
        };
        Ok(CreatePostPayload {
            post: Post(post),
            saga_id: started.saga_id,
        })
    }

    /// Changes a post through the UpdatePost saga (owner only).
    async fn update_post(
        &self,
        ctx: &Context<'_>,
        input: UpdatePostInput,
    ) -> ApiResult<UpdatePostPayload> {
        let board = ctx.data_unchecked::<Board>();
        let media = ctx.data_unchecked::<Media>();
        let (current, viewer) = owned_post(ctx, &input.id).await.gql()?;
        if current.status == "DELETING" {
            return Err(ApiError::NotFound(format!("no post {}", current.id))).gql();
        }
        let post_id = current.id;
        let fields = input.fields.parse().gql()?;
        if fields.max_apply < current.apply_count {
            return Err(ApiError::bad_input(
                "input.maxApply",
                format!(
                    "cannot be below the {} people who already applied",
                    current.apply_count
                ),
            ))
            .gql();
        }
        let existing = media_store::images_of(board.db().pool(), StoreOwner::Post, post_id)
            .await
            .map_err(ApiError::from)
            .gql()?;
        let mut to_delete = Vec::new();
        for (i, id) in input.image_ids_to_delete.iter().flatten().enumerate() {
            let field = format!("input.imageIdsToDelete.{i}");
            let id = Uuid::parse_str(id.as_str())
                .ok()
                .filter(|id| existing.iter().any(|img| img.id == *id))
                .ok_or_else(|| ApiError::bad_input(&field, "is not an image of this post"))
                .gql()?;
            if !to_delete.contains(&id) {
                to_delete.push(id);
            }
        }
        let room = board
            .settings()
            .max_images_per_post
            .saturating_sub(existing.len() - to_delete.len());
        let uploads = uploads(
            ctx,
            input.images.as_ref(),
            room.min(media.settings().max_files_per_request),
        )
        .gql()?;
        let key = mutation_key(input.client_mutation_id.as_deref()).gql()?;
        let client = board.client().gql()?;
        let new_images = media
            .stage_all("input.images", uploads, viewer.user_id)
            .await
            .gql()?;
        let saga = UpdateRequest {
            post_id,
            owner_id: viewer.user_id,
            fields,
            new_image_ids: new_images.clone(),
            image_ids_to_delete: to_delete,
        };
        let saga_id = match board.start_update(&client, &key, saga).await {
            Ok(id) => id,
            Err(e) => {
                media.discard_staged(&new_images).await;
                return Err(e).gql();
            }
        };
        match board
            .wait_update(&client, &saga_id, board.settings().saga_wait)
            .await
            .gql()?
        {
            SagaWait::Failed(reason) => Err(ApiError::Conflict(format!(
                "the post was not changed ({reason})"
            )))
            .gql(),
            SagaWait::Done(_) | SagaWait::Running => {
                let post = board
                    .post(post_id)
                    .await
                    .gql()?
                    .ok_or_else(|| ApiError::NotFound(format!("no post {post_id}")))
                    .gql()?;
                Ok(UpdatePostPayload { post: Post(post) })
            }
        }
    }

    /// Tears a post down through the DeletePost saga (owner only). The teardown always
    /// finishes; `success` is true once it has started.
    async fn delete_post(
        &self,
        ctx: &Context<'_>,
        input: DeletePostInput,
    ) -> ApiResult<DeletePostPayload> {
        let board = ctx.data_unchecked::<Board>();
        let (post, viewer) = owned_post(ctx, &input.id).await.gql()?;
        let post_id = post.id;
        let client = board.client().gql()?;
        board.delete(&client, post_id, viewer.user_id).await.gql()?;
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
        let board = ctx.data_unchecked::<Board>().clone();
        let client = board.client().gql()?;
        let (info, owner) = board.saga(&client, &input.saga_id).await.gql()?;
        if owner != Some(viewer.user_id) || info.workflow_type != "CreatePostWorkflow" {
            return Err(ApiError::NotFound(format!("no saga {:?}", input.saga_id))).gql();
        }
        let saga_id = input.saga_id;
        Ok(futures::stream::once(async move {
            let outcome = match board
                .wait_create(&client, &saga_id, RESULT_WAIT)
                .await
                .gql()?
            {
                SagaWait::Done(output) => CreatePostResultPayload {
                    post: board.post(output.post_id).await.gql()?.map(Post),
                    error: None,
                },
                SagaWait::Failed(reason) => CreatePostResultPayload {
                    post: None,
                    error: Some(format!(
                        "the post could not be created ({reason}); nothing was kept"
                    )),
                },
                SagaWait::Running => {
                    return Err(ApiError::Unavailable(
                        "the saga is still running; ask saga(id) later".to_owned(),
                    ))
                    .gql();
                }
            };
            Ok(outcome)
        })
        .boxed())
    }
}
