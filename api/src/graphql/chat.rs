//! Chat over GraphQL with the original API's names: `room(post_id:)`, `createMessage`,
//! `messageAdded`, and the `Room`, `Member`, `Message` types. Every entry point checks that the
//! caller is a member of the room (see `fishapp_app::chat`).

use super::MEMBERS;
use super::account::{User, parse_id};
use super::board::Post;
use super::context::{Guards, while_signed_in};
use super::loaders::{ListOf, load, loaders};
use super::media::{Image, take_upload};
use super::scalars::Time;
use super::streams::open_stream;
use crate::error::{ApiResult, AppError, GqlError, IntoGql};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Subscription, Upload};
use fishapp_app::board::MutationKey;
use fishapp_app::chat::{Chat, Content, DEFAULT_PAGE, MAX_PAGE};
use fishapp_domain::chat::MessageBody;
use fishapp_store::chat::{MemberRow, MessagePage, MessageRow, RoomRow};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

/// A trip's chat room. Only its members ever get one.
pub(crate) struct Room(RoomRow);

#[Object]
impl Room {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn post(&self, ctx: &Context<'_>) -> ApiResult<Post> {
        let loaded = load(&loaders(ctx).posts, self.0.post_id).await?;
        loaded
            .map(Post)
            .ok_or_else(|| AppError::NotFound(format!("no post {}", self.0.post_id)))
            .gql()
    }

    /// Oldest first. Without arguments: the newest page, as the original answered. `before`: the
    /// page just before that message (scrolling back); `after`: the page just after it. `limit`:
    /// the page size (50 unless asked, at most 100).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::page_items(limit, DEFAULT_PAGE, MAX_PAGE), child_complexity)"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        before: Option<ID>,
        after: Option<ID>,
        limit: Option<i32>,
    ) -> ApiResult<Option<Vec<Message>>> {
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(n) if (1..=MAX_PAGE).contains(&i64::from(n)) => i64::from(n),
            Some(_) => {
                return Err(AppError::bad_input(
                    "limit",
                    format!("must be 1 to {MAX_PAGE}"),
                ))
                .gql();
            }
        };
        let page = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    "after",
                    "give before or after, not both",
                ))
                .gql();
            }
            (None, Some(after)) => MessagePage::After {
                after: parse_id("after", &after).gql()?,
                limit,
            },
            (before, None) => MessagePage::Newest {
                before: before.map(|b| parse_id("before", &b)).transpose().gql()?,
                limit,
            },
        };
        let rows = ctx
            .data_unchecked::<Chat>()
            .messages(self.0.id, page)
            .await
            .gql()?;
        Ok(Some(rows.into_iter().map(Message).collect()))
    }

    /// The trip's owner first, then its applicants in the order they joined. `first`: at most
    /// that many (100 unless asked, up to 1001).
    #[graphql(
        complexity = "crate::graphql::list_cost(crate::graphql::MEMBERS.items(first), child_complexity)"
    )]
    async fn members(&self, ctx: &Context<'_>, first: Option<i32>) -> ApiResult<Vec<Member>> {
        let limit = MEMBERS.limit("first", first).gql()?;
        let key = ListOf {
            id: self.0.id,
            limit,
        };
        let loaded = load(&loaders(ctx).members, key).await?;
        Ok(loaded.unwrap_or_default().into_iter().map(Member).collect())
    }

    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }

    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

pub(crate) struct Member(MemberRow);

#[Object]
impl Member {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn room_id(&self) -> ID {
        ID(self.0.room_id.to_string())
    }

    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        User::load(ctx, self.0.user_id, "the member is gone").await
    }

    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }

    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

pub(crate) struct Message(MessageRow);

#[Object]
impl Message {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The text; `null` for an image message.
    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }

    async fn room_id(&self) -> ID {
        ID(self.0.room_id.to_string())
    }

    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        User::load(ctx, self.0.user_id, "the author is gone").await
    }

    /// The photo of an image message; `null` for text.
    async fn image(&self, ctx: &Context<'_>) -> ApiResult<Option<Image>> {
        let loaded = load(&loaders(ctx).message_images, self.0.id).await?;
        Ok(loaded
            .and_then(|images| images.into_iter().next())
            .map(Image))
    }

    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }

    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

#[derive(Default)]
pub(crate) struct ChatQuery;

#[Object]
impl ChatQuery {
    /// The chat room of a trip, for its members (the owner and its applicants); NOT_FOUND for
    /// anyone else. The argument is snake_case, as in the original API.
    async fn room(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "post_id")] post_id: ID,
    ) -> ApiResult<Room> {
        let viewer = ctx.viewer().await.gql()?;
        let post_id = parse_id("post_id", &post_id).gql()?;
        let room = ctx
            .data_unchecked::<Chat>()
            .room_of_post(&viewer, post_id)
            .await
            .gql()?;
        Ok(Room(room))
    }
}

#[derive(InputObject)]
pub(crate) struct CreateMessageInput {
    room_id: ID,
    /// 1–1000 characters after trimming; or send `image` instead.
    body: Option<String>,
    /// One photo (JPEG, PNG, GIF or WebP); or send `body` instead.
    image: Option<Upload>,
    /// An idempotency key (1–64 of `A-Z a-z 0-9 - _ .`): a retry with the same key returns the
    /// message the first request wrote.
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(crate) struct CreateMessagePayload {
    message: Message,
}

#[derive(Default)]
pub(crate) struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Writes a message in a room the caller is a member of: exactly one of `body` or `image`.
    /// Limited per user (RATE_LIMITED with `extensions.retryAfterSeconds`); CONFLICT while the
    /// trip is being removed.
    async fn create_message(
        &self,
        ctx: &Context<'_>,
        input: CreateMessageInput,
    ) -> ApiResult<CreateMessagePayload> {
        let viewer = ctx.viewer().await.gql()?;
        let room_id = parse_id("input.roomId", &input.room_id).gql()?;
        let key = MutationKey::parse(
            "input.clientMutationId",
            input.client_mutation_id.as_deref(),
        )
        .gql()?;
        let content = match (input.body.as_deref(), input.image.as_ref()) {
            (Some(body), None) => Content::Text(MessageBody::parse("input.body", body).gql()?),
            (None, Some(upload)) => Content::Image(take_upload(ctx, "input.image", upload).gql()?),
            _ => {
                return Err(AppError::bad_input(
                    "input",
                    "send exactly one of body or image",
                ))
                .gql();
            }
        };
        let message = ctx
            .data_unchecked::<Chat>()
            .send(&viewer, room_id, content, &key)
            .await
            .gql()?;
        Ok(CreateMessagePayload {
            message: Message(message),
        })
    }
}

#[derive(InputObject)]
pub(crate) struct MessageAddedInput {
    room_id: ID,
    /// The id of the last message the client saw: what came after it is delivered first, in
    /// order, then the live messages (no gap, no duplicate). None: from now on.
    after: Option<ID>,
}

#[derive(SimpleObject)]
pub(crate) struct MessageAddedPayload {
    message: Message,
}

#[derive(Default)]
pub(crate) struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// Every new message of a room the caller is a member of, in order, as it is published
    /// (from NATS JetStream, so messages written through any API process arrive). Ends with
    /// FORBIDDEN when the caller leaves the room, NOT_FOUND when the room is deleted. While it
    /// lasts the room's messages are not counted into the caller's notifications, and its start
    /// marks the room's unread NEW_MESSAGES notification read.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        input: MessageAddedInput,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<MessageAddedPayload>>> {
        let viewer = ctx.viewer().await.gql()?;
        let permit = open_stream(ctx, &viewer).gql()?;
        let room_id = parse_id("input.roomId", &input.room_id).gql()?;
        let after = input
            .after
            .map(|a| parse_id("input.after", &a))
            .transpose()
            .gql()?;
        let messages = ctx
            .data_unchecked::<Chat>()
            .follow(&viewer, room_id, after)
            .await
            .gql()?;
        let payloads = messages
            .map_ok(|message| MessageAddedPayload {
                message: Message(message),
            })
            .map_err(|e| e.extend())
            .boxed();
        Ok(while_signed_in(ctx, &viewer, permit, payloads))
    }
}
