//! The board over GraphQL: post, posts, createPost, updatePost, deletePost and saga(id), with the
//! original API's names. Changes go through the sagas (see `fishapp_app::board`); reads come from
//! Postgres, nested fields through the dataloaders.

mod inputs;
mod post;

pub(crate) use inputs::{PostOrderBy, PostSortBy};
pub(crate) use post::{PageInfo, Post};

use super::account::parse_id;
use super::context::{Guards, while_signed_in};
use super::cursor::Cursor;
use super::loaders::{Page, PageSelection, loaders};
use super::media::take_upload;
use super::streams::open_stream;
use crate::error::{ApiResult, AppError, IntoGql};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription, Upload};
use fishapp_app::board::{Board, MutationKey, NewPost, PostChange};
use fishapp_domain::board::PostDraft;
use fishapp_store::board::{self as store, Order, SortBy};
use futures::StreamExt;
use futures::stream::BoxStream;
use inputs::{
    CreatePostInput, CreatePostPayload, DeletePostInput, DeletePostPayload, PostsInput, Saga,
    SagaStatus, UpdatePostInput, UpdatePostPayload,
};
use post::PostConnection;
use temporalio_client::WorkflowExecutionStatus;

/// Page size of `posts`: 10 unless asked, at most 30.
const DEFAULT_PAGE: i64 = 10;
const MAX_PAGE: i64 = 30;

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
