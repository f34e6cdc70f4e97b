//! Notifications (added; the original had none): a user's own, newest first, their unread
//! count, marking them read, and muting kinds. Written by the notifications consumer from the
//! event stream (see `fishapp_app::notify`).

use super::account::{User, parse_id};
use super::board::PageInfo;
use super::context::Guards;
use super::context::while_signed_in;
use super::scalars::Time;
use super::streams::open_stream;
use crate::error::{ApiResult, AppError, GqlError, IntoGql};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use fishapp_app::Notifications;
use fishapp_store::notify::NotificationRow;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

/// A notification page: 20 unless asked, at most 50.
const PAGE: super::ListBound = super::ListBound {
    default: 20,
    max: 50,
};

/// What a notification is about.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "fishapp_domain::notify::NotificationKind")]
pub(crate) enum NotificationKind {
    /// Someone applied to your trip (a seat, a place in its line, or a request).
    Applied,
    /// Someone withdrew from your trip.
    Withdrew,
    /// The organiser accepted your request.
    RequestAccepted,
    /// The organiser declined your request.
    RequestDeclined,
    /// Nobody answered your request before the deadline.
    RequestExpired,
    /// A seat freed and you moved up from the line.
    Promoted,
    /// The organiser removed you from their trip (you may not apply to it again).
    Removed,
    /// A trip of yours is soon.
    TripReminder,
    /// A trip you joined changed its time or place.
    TripChanged,
    /// A trip you joined was cancelled.
    TripCancelled,
    /// A trip you joined is over: say how it went (a member who held a seat: `reviewTrip`).
    TripCompleted,
    /// A member reviewed a trip you organised (`Post.reviews`).
    TripReviewed,
    /// New messages in a room of yours (`count` of them; one notification per room until it is
    /// read, or until you open the room with `messageAdded`).
    NewMessages,
}

/// Whether notifications are mailed too.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "fishapp_store::notify::MailState")]
pub(crate) enum NotificationEmail {
    /// Not mailed (never asked, turned off, the request expired, or the account's address
    /// changed since it was confirmed).
    Off,
    /// A confirmation mail went to the account's address; nothing is mailed until it is
    /// confirmed.
    Pending,
    /// A digest of unread notifications is mailed to the account's address (at most one per
    /// interval the server sets).
    On,
}

pub(crate) struct Notification(NotificationRow);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> NotificationKind {
        self.0.kind.into()
    }
    /// The trip it is about (its id stays when the trip is gone).
    async fn post_id(&self) -> Option<ID> {
        self.0.post_id.map(|id| ID(id.to_string()))
    }
    /// The room, for NEW_MESSAGES.
    async fn room_id(&self) -> Option<ID> {
        self.0.room_id.map(|id| ID(id.to_string()))
    }
    /// Who did it (the applicant, the organiser, the last writer); `null` for the trip's own
    /// moments and for a user who is gone.
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        match self.0.actor_id {
            Some(id) => Ok(User::load(ctx, id, "gone").await.ok()),
            None => Ok(None),
        }
    }
    /// The trip's title when it happened.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// How many events it stands for (messages collapsed into one NEW_MESSAGES).
    async fn count(&self) -> i32 {
        self.0.count
    }
    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }
    async fn read_at(&self) -> Option<Time> {
        self.0.read_at.map(Time)
    }
    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }
    /// When it last grew (NEW_MESSAGES) or was written.
    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

#[derive(SimpleObject)]
pub(crate) struct NotificationConnection {
    page_info: PageInfo,
    nodes: Vec<Notification>,
}

#[derive(Default)]
pub(crate) struct NotifyQuery;

#[Object]
impl NotifyQuery {
    /// The signed-in user's notifications, newest first by their last change (a NEW_MESSAGES
    /// that grows moves to the top); `after`: the `endCursor` of the page before. `first`: 20
    /// unless asked, 1 to 50.
    #[graphql(
        complexity = "super::list_cost(PAGE.items(first), child_complexity).saturating_add(1)"
    )]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<NotificationConnection> {
        let viewer = ctx.viewer().await.gql()?;
        let limit = PAGE.limit("first", first).gql()?;
        let after = super::cursor::number_after(after.as_deref()).gql()?;
        let (rows, has_next_page) = ctx
            .data_unchecked::<Notifications>()
            .page(viewer.user_id, after, limit)
            .await
            .gql()?;
        Ok(NotificationConnection {
            page_info: PageInfo {
                has_next_page,
                end_cursor: rows.last().map(|n| n.recency.to_string()),
            },
            nodes: rows.into_iter().map(Notification).collect(),
        })
    }

    /// How many of the signed-in user's notifications are unread.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let viewer = ctx.viewer().await.gql()?;
        ctx.data_unchecked::<Notifications>()
            .unread_count(viewer.user_id)
            .await
            .gql()
    }

    /// The kinds the signed-in user muted (never written for them).
    async fn muted_notification_kinds(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<NotificationKind>> {
        let viewer = ctx.viewer().await.gql()?;
        let muted = ctx
            .data_unchecked::<Notifications>()
            .muted(viewer.user_id)
            .await
            .gql()?;
        Ok(muted.into_iter().map(Into::into).collect())
    }

    /// Whether the signed-in user's notifications are mailed too.
    async fn notification_email(&self, ctx: &Context<'_>) -> ApiResult<NotificationEmail> {
        let viewer = ctx.viewer().await.gql()?;
        let state = ctx
            .data_unchecked::<Notifications>()
            .mail_state(viewer.user_id)
            .await
            .gql()?;
        Ok(state.into())
    }
}

#[derive(InputObject)]
pub(crate) struct MarkNotificationsReadInput {
    /// These (at most 100; ids of others' notifications change nothing) …
    ids: Option<Vec<ID>>,
    /// … or every unread one.
    all: Option<bool>,
}

#[derive(SimpleObject)]
pub(crate) struct MarkNotificationsReadPayload {
    /// How many became read.
    count: i64,
    unread_count: i64,
}

#[derive(InputObject)]
pub(crate) struct ConfirmNotificationEmailInput {
    /// The token the confirmation mail's link carries.
    token: String,
}

#[derive(InputObject)]
pub(crate) struct MuteNotificationKindInput {
    kind: NotificationKind,
    /// `false` unmutes.
    muted: bool,
}

#[derive(SimpleObject)]
pub(crate) struct MuteNotificationKindPayload {
    muted_kinds: Vec<NotificationKind>,
}

#[derive(Default)]
pub(crate) struct NotifyMutation;

#[Object]
impl NotifyMutation {
    /// Asks for notifications by e-mail too: a confirmation mail goes to the signed-in user's
    /// address (PENDING); nothing is mailed until its link is followed. A few per day;
    /// UNAVAILABLE when this server sends no mail.
    async fn request_notification_email(&self, ctx: &Context<'_>) -> ApiResult<NotificationEmail> {
        let viewer = ctx.viewer().await.gql()?;
        let state = ctx
            .data_unchecked::<Notifications>()
            .request_mail(viewer.user_id)
            .await
            .gql()?;
        Ok(state.into())
    }

    /// Turns notifications by e-mail on with the token the confirmation mail carried (no
    /// sign-in needed: the token proves the mailbox). BAD_USER_INPUT (`input.token`) when it is
    /// unknown, used or expired.
    async fn confirm_notification_email(
        &self,
        ctx: &Context<'_>,
        input: ConfirmNotificationEmailInput,
    ) -> ApiResult<NotificationEmail> {
        let state = ctx
            .data_unchecked::<Notifications>()
            .confirm_mail(&input.token)
            .await
            .gql()?;
        Ok(state.into())
    }

    /// Stops mailing the signed-in user's notifications (a pending request included).
    async fn disable_notification_email(&self, ctx: &Context<'_>) -> ApiResult<NotificationEmail> {
        let viewer = ctx.viewer().await.gql()?;
        let state = ctx
            .data_unchecked::<Notifications>()
            .disable_mail(viewer.user_id)
            .await
            .gql()?;
        Ok(state.into())
    }

    /// Marks the signed-in user's notifications read: `ids`, or `all: true` (exactly one of
    /// them).
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        input: MarkNotificationsReadInput,
    ) -> ApiResult<MarkNotificationsReadPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let ids = match (input.ids, input.all.unwrap_or(false)) {
            (Some(ids), false) => {
                Notifications::check_marked_count("input.ids", ids.len()).gql()?;
                let parsed = ids
                    .iter()
                    .map(|id| parse_id("input.ids", id))
                    .collect::<Result<Vec<_>, _>>()
                    .gql()?;
                Some(parsed)
            }
            (None, true) => None,
            _ => {
                return Err(AppError::bad_input("input", "give either ids or all: true")).gql();
            }
        };
        let notifications = ctx.data_unchecked::<Notifications>();
        let count = notifications
            .mark_read(viewer.user_id, ids.as_deref())
            .await
            .gql()?;
        let unread_count = notifications.unread_count(viewer.user_id).await.gql()?;
        Ok(MarkNotificationsReadPayload {
            count: i64::try_from(count).unwrap_or(i64::MAX),
            unread_count,
        })
    }

    /// Mutes (or unmutes) one kind of notification for the signed-in user: muted kinds are not
    /// written for them from then on.
    async fn mute_notification_kind(
        &self,
        ctx: &Context<'_>,
        input: MuteNotificationKindInput,
    ) -> ApiResult<MuteNotificationKindPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let muted = ctx
            .data_unchecked::<Notifications>()
            .set_muted(viewer.user_id, input.kind.into(), input.muted)
            .await
            .gql()?;
        Ok(MuteNotificationKindPayload {
            muted_kinds: muted.into_iter().map(Into::into).collect(),
        })
    }
}

#[derive(Default)]
pub(crate) struct NotifySubscription;

#[Subscription]
impl NotifySubscription {
    /// The signed-in user's notifications as they are written, and a NEW_MESSAGES again each
    /// time it grows (from NATS JetStream: written by any notifier, delivered by any API
    /// process). Ends with the sign-in (logout, expiry, revocation). One that falls far behind
    /// misses some; `notifications` still lists them.
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<Notification>>> {
        let viewer = ctx.viewer().await.gql()?;
        let permit = open_stream(ctx, &viewer).gql()?;
        let notifications = ctx
            .data_unchecked::<Notifications>()
            .follow(viewer.user_id)
            .map_ok(Notification)
            .map_err(|e| e.extend())
            .boxed();
        Ok(while_signed_in(ctx, &viewer, permit, notifications))
    }

    /// The signed-in user's unread count now, then again each time it changes: a notification
    /// written or grown, notifications read on any device (`markNotificationsRead`, opening
    /// a room with `messageAdded`), or unread ones dropped by the per-user cap. A badge that follows this stays right without polling. Ends
    /// with the sign-in.
    async fn unread_notification_count(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<i64>>> {
        let viewer = ctx.viewer().await.gql()?;
        let permit = open_stream(ctx, &viewer).gql()?;
        let counts = ctx
            .data_unchecked::<Notifications>()
            .follow_unread(viewer.user_id)
            .map_err(|e| e.extend())
            .boxed();
        Ok(while_signed_in(ctx, &viewer, permit, counts))
    }
}
