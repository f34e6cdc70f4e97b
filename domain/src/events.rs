//! Every domain event Fishapp publishes, in one place: its name, the aggregate it belongs to,
//! when it is emitted, its payload and that payload's schema version — and the one envelope every
//! event travels in on NATS JetStream. `docs/events.md` is generated from this module (a test
//! fails when the file and the code disagree).
//!
//! Subjects are `<prefix>.<name>` with the deployment's subject prefix (`fishapp` by default),
//! e.g. `fishapp.board.post.published`. The envelope's `id` is the event's identity, a UUIDv7
//! made when the event was written, also sent as the JetStream `Nats-Msg-Id`: unique across
//! databases, restores and deployments, so a consumer that remembers the ids it has handled
//! never handles an event twice, and no new event is ever taken for an old one. `deployment`
//! names the database the event comes from: a consumer ignores other deployments' events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The aggregates events are about; the envelope's `aggregate.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Post,
    Room,
    Application,
    /// What the notifier wrote for one event it handled (its id is that event's).
    Notification,
    /// One user's notifications as a whole (its id is the user's): their reads, in order.
    Inbox,
}

impl Aggregate {
    pub const fn as_str(self) -> &'static str {
        match self {
            Aggregate::Post => "post",
            Aggregate::Room => "room",
            Aggregate::Application => "application",
            Aggregate::Notification => "notification",
            Aggregate::Inbox => "inbox",
        }
    }
}

/// Every kind of event. Adding one: a variant here, its row in each `match`, then regenerate
/// docs/events.md (see [`markdown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    PostPublished,
    PostUpdated,
    PostClosed,
    PostReminderDue,
    PostCompleted,
    PostReviewed,
    PostDeleted,
    RoomCreated,
    RoomDeleted,
    ApplicationCreated,
    ApplicationDeleted,
    ApplicationWaitlisted,
    ApplicationPromoted,
    ApplicationRequested,
    ApplicationAccepted,
    ApplicationDeclined,
    ApplicationExpired,
    ApplicationRemoved,
    MemberJoined,
    MemberLeft,
    MessageAdded,
    NotificationsWritten,
    NotificationsRead,
    NotificationsPruned,
}

impl EventType {
    pub const ALL: [EventType; 24] = [
        EventType::PostPublished,
        EventType::PostUpdated,
        EventType::PostClosed,
        EventType::PostReminderDue,
        EventType::PostCompleted,
        EventType::PostReviewed,
        EventType::PostDeleted,
        EventType::RoomCreated,
        EventType::RoomDeleted,
        EventType::ApplicationCreated,
        EventType::ApplicationDeleted,
        EventType::ApplicationWaitlisted,
        EventType::ApplicationPromoted,
        EventType::ApplicationRequested,
        EventType::ApplicationAccepted,
        EventType::ApplicationDeclined,
        EventType::ApplicationExpired,
        EventType::ApplicationRemoved,
        EventType::MemberJoined,
        EventType::MemberLeft,
        EventType::MessageAdded,
        EventType::NotificationsWritten,
        EventType::NotificationsRead,
        EventType::NotificationsPruned,
    ];

    /// `<context>.<aggregate>.<event>`: the envelope's `type` and the subject after the prefix.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::PostPublished => "board.post.published",
            EventType::PostUpdated => "board.post.updated",
            EventType::PostClosed => "board.post.closed",
            EventType::PostReminderDue => "board.post.reminder_due",
            EventType::PostCompleted => "board.post.completed",
            EventType::PostReviewed => "board.post.reviewed",
            EventType::PostDeleted => "board.post.deleted",
            EventType::RoomCreated => "chat.room.created",
            EventType::RoomDeleted => "chat.room.deleted",
            EventType::ApplicationCreated => "board.application.created",
            EventType::ApplicationDeleted => "board.application.deleted",
            EventType::ApplicationWaitlisted => "board.application.waitlisted",
            EventType::ApplicationPromoted => "board.application.promoted",
            EventType::ApplicationRequested => "board.application.requested",
            EventType::ApplicationAccepted => "board.application.accepted",
            EventType::ApplicationDeclined => "board.application.declined",
            EventType::ApplicationExpired => "board.application.expired",
            EventType::ApplicationRemoved => "board.application.removed",
            EventType::MemberJoined => "chat.room.member_joined",
            EventType::MemberLeft => "chat.room.member_left",
            EventType::MessageAdded => "chat.room.message_added",
            EventType::NotificationsWritten => "notify.notification.written",
            EventType::NotificationsRead => "notify.inbox.read",
            EventType::NotificationsPruned => "notify.inbox.pruned",
        }
    }

    /// The type of a name, also of the names events had before (`chat.member.*`, which may still
    /// be in a stream or an outbox written by an older build).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "chat.member.joined" => Some(EventType::MemberJoined),
            "chat.member.left" => Some(EventType::MemberLeft),
            _ => Self::ALL.into_iter().find(|t| t.name() == name),
        }
    }

    pub const fn aggregate(self) -> Aggregate {
        match self {
            EventType::PostPublished
            | EventType::PostUpdated
            | EventType::PostClosed
            | EventType::PostReminderDue
            | EventType::PostCompleted
            | EventType::PostReviewed
            | EventType::PostDeleted => Aggregate::Post,
            // Messages and memberships belong to their room: one aggregate, so a room's events
            // are published in the order they were written — a member who left hears of it
            // before any message written after the leave.
            EventType::RoomCreated
            | EventType::RoomDeleted
            | EventType::MessageAdded
            | EventType::MemberJoined
            | EventType::MemberLeft => Aggregate::Room,
            EventType::ApplicationCreated
            | EventType::ApplicationDeleted
            | EventType::ApplicationWaitlisted
            | EventType::ApplicationPromoted
            | EventType::ApplicationRequested
            | EventType::ApplicationAccepted
            | EventType::ApplicationDeclined
            | EventType::ApplicationExpired
            | EventType::ApplicationRemoved => Aggregate::Application,
            EventType::NotificationsWritten => Aggregate::Notification,
            EventType::NotificationsRead | EventType::NotificationsPruned => Aggregate::Inbox,
        }
    }

    /// The schema version of this event's `data`. Raise it when a field changes meaning or
    /// goes away (adding a field is compatible and keeps the version).
    pub const fn version(self) -> u16 {
        1
    }

    /// When the event is emitted (for docs/events.md).
    pub const fn emitted_when(self) -> &'static str {
        match self {
            EventType::PostPublished => {
                "CreatePost saga, last step: the post became visible (PENDING → OPEN)"
            }
            EventType::PostUpdated => {
                "UpdatePost saga: an OPEN post's fields changed (also when a failed update is undone after its first change was announced)"
            }
            EventType::PostClosed => {
                "the trip workflow at the meeting time (the close-posts schedule is a safety net for trips without one): OPEN → CLOSED"
            }
            EventType::PostReminderDue => {
                "the trip workflow, before the meeting (by default the evening before, Japan time): remind `memberIds` (the organiser and everyone holding a seat)"
            }
            EventType::PostCompleted => {
                "the trip workflow, some hours after the meeting (CLOSED → COMPLETED): invite `memberIds` to say how it went"
            }
            EventType::PostReviewed => {
                "reviewTrip: a member who held a seat on a COMPLETED trip rated it (a second review by the same member replaces the first and is announced again)"
            }
            EventType::PostDeleted => "DeletePost saga (teardown), last step: the post is gone",
            EventType::RoomCreated => {
                "CreatePost saga: the post's chat room was created with the owner as first member"
            }
            EventType::RoomDeleted => {
                "DeletePost saga: the room, its members and messages are gone; also when a failed CreatePost removes a room whose `chat.room.created` was already published"
            }
            EventType::ApplicationCreated => {
                "Apply saga, first step: a seat was taken (the post's `applyCount` grew by one)"
            }
            EventType::ApplicationDeleted => {
                "Withdraw saga: the applicant gave the seat back, left the line or took back a request (`status` says which); also when a failed Apply gives back a seat whose `board.application.created` was already published"
            }
            EventType::ApplicationWaitlisted => {
                "Apply saga on a full trip, asked with `waitlist`: the applicant is in the trip's line (no seat yet)"
            }
            EventType::ApplicationPromoted => {
                "the trip workflow, when a seat freed: the first in line took it (WAITLISTED → APPLIED), through an Apply saga that also joins the room"
            }
            EventType::ApplicationRequested => {
                "Apply saga on a trip that approves each application: a request waits for the organiser (no seat is held)"
            }
            EventType::ApplicationAccepted => {
                "the organiser accepted a request (PENDING_APPROVAL → APPLIED), through an Apply saga that also joins the room"
            }
            EventType::ApplicationDeclined => {
                "the organiser declined a request; the request is gone"
            }
            EventType::ApplicationExpired => {
                "the trip workflow, at the request deadline before the meeting: a request nobody answered is gone"
            }
            EventType::ApplicationRemoved => {
                "the Withdraw saga run for the organiser (`removeApplyPost`): the organiser removed the applicant from the trip — a seat given back, a place in the line or a request gone (`status` says which); the applicant may not apply to it again"
            }
            EventType::MemberJoined => "Apply saga: the applicant joined the post's chat room",
            EventType::MemberLeft => {
                "Withdraw saga: the applicant left the room (or was removed by the organiser); also when a failed Apply undoes a join that was already published"
            }
            EventType::MessageAdded => {
                "createMessage: a member wrote a message (text or one image) in the room; `messageAdded` subscriptions are fed from these"
            }
            EventType::NotificationsWritten => {
                "the notifier wrote (or, for NEW_MESSAGES, grew) users' notifications for one event it handled; `notificationAdded` subscriptions are fed from these"
            }
            EventType::NotificationsRead => {
                "a user's unread notifications became read: `markNotificationsRead`, or opening a room with `messageAdded` (its NEW_MESSAGES); `unreadNotificationCount` subscriptions are fed from these, from `notify.inbox.pruned` and from `notify.notification.written`"
            }
            EventType::NotificationsPruned => {
                "the notifier's prune deleted unread notifications of a user over the cap (`NOTIFY_MAX_PER_USER`): their unread count dropped without a reading"
            }
        }
    }

    /// The shape of `data`, by example (docs/events.md lists its fields from this).
    pub fn example_data(self) -> serde_json::Value {
        let value = match (self, self.aggregate()) {
            (EventType::MessageAdded, _) => serde_json::to_value(MessageData::example()),
            (EventType::MemberJoined | EventType::MemberLeft, _) => {
                serde_json::to_value(MemberData::example())
            }
            (EventType::PostReminderDue | EventType::PostCompleted, _) => {
                serde_json::to_value(TripNoticeData::example())
            }
            (EventType::PostReviewed, _) => serde_json::to_value(ReviewData::example()),
            (_, Aggregate::Post) => serde_json::to_value(PostData::example()),
            (_, Aggregate::Room) => serde_json::to_value(RoomData::example()),
            (_, Aggregate::Application) => serde_json::to_value(ApplicationData::example()),
            (_, Aggregate::Notification) => serde_json::to_value(NotificationsData::example()),
            (_, Aggregate::Inbox) => serde_json::to_value(NotificationsReadData::example()),
        };
        value.unwrap_or_default()
    }
}

/// The notifications the notifier wrote for one event (`data` of
/// `notify.notification.written`): which, and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsData {
    /// The handled event's id (also this event's aggregate).
    pub source_event_id: Uuid,
    pub notifications: Vec<WrittenNotification>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenNotification {
    pub id: i64,
    pub user_id: i64,
}

impl NotificationsData {
    fn example() -> Self {
        Self {
            source_event_id: Uuid::nil(),
            notifications: vec![WrittenNotification { id: 1, user_id: 2 }],
        }
    }
}

/// Notifications of one user that left the unread count: became read (`data` of
/// `notify.inbox.read`) or were pruned unread (`notify.inbox.pruned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsReadData {
    pub user_id: i64,
    /// How many became read (or were pruned unread).
    pub count: i64,
}

impl NotificationsReadData {
    fn example() -> Self {
        Self {
            user_id: 2,
            count: 3,
        }
    }
}

/// A member's review of a trip (`data` of `board.post.reviewed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewData {
    pub id: i64,
    pub post_id: i64,
    /// The reviewer.
    pub user_id: i64,
    /// 1–5.
    pub rating: i16,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReviewData {
    fn example() -> Self {
        Self {
            id: 1,
            post_id: 1,
            user_id: 2,
            rating: 5,
            comment: Some("Seven ayu before noon".to_owned()),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// A post as it is after the change (`data` of every `board.post.*` event but the trip's
/// moments and reviews).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
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
    /// PENDING, OPEN, CLOSED, COMPLETED or DELETING.
    pub status: crate::board::PostStatus,
    /// Whether the organiser approves each application.
    #[serde(default)]
    pub approval_required: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A moment of a trip its members are told of (`data` of `board.post.reminder_due` and
/// `board.post.completed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TripNoticeData {
    pub post_id: i64,
    /// The organiser.
    pub user_id: i64,
    pub title: String,
    pub meeting_at: DateTime<Utc>,
    pub meeting_place_id: String,
    /// Everyone it is for: the organiser and every applicant holding a seat.
    pub member_ids: Vec<i64>,
}

impl TripNoticeData {
    fn example() -> Self {
        Self {
            post_id: 1,
            user_id: 1,
            title: "Sea bass at dawn".to_owned(),
            meeting_at: DateTime::<Utc>::UNIX_EPOCH,
            meeting_place_id: "ChIJ51cu8IcbXWARiRtXIothAS4".to_owned(),
            member_ids: vec![1, 2, 3],
        }
    }
}

/// A chat room (`data` of every `chat.room.*` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomData {
    pub id: i64,
    pub post_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An application: a seat on a trip (`data` of every `board.application.*` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationData {
    pub id: i64,
    pub post_id: i64,
    pub user_id: i64,
    /// APPLIED (a seat), WAITLISTED (in the line) or PENDING_APPROVAL (waiting for the
    /// organiser); as it is after the change (for a deletion: as it was).
    #[serde(default)]
    pub status: crate::board::ApplicationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A member of a post's chat room (`data` of every `chat.member.*` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberData {
    pub id: i64,
    pub room_id: i64,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A message, as written (`data` of `chat.room.message_added`; the envelope's aggregate is its
/// room). Its image, if any, is the `MESSAGE` image owned by `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageData {
    pub id: i64,
    pub room_id: i64,
    pub user_id: i64,
    /// The text; `None` for an image message.
    pub body: Option<String>,
    pub has_image: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MessageData {
    fn example() -> Self {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Self {
            id: 1,
            room_id: 1,
            user_id: 2,
            body: Some("On my way".to_owned()),
            has_image: false,
            created_at: at,
            updated_at: at,
        }
    }
}

impl ApplicationData {
    fn example() -> Self {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Self {
            id: 1,
            post_id: 1,
            user_id: 2,
            status: crate::board::ApplicationStatus::Applied,
            created_at: at,
            updated_at: at,
        }
    }
}

impl MemberData {
    fn example() -> Self {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Self {
            id: 1,
            room_id: 1,
            user_id: 2,
            created_at: at,
            updated_at: at,
        }
    }
}

impl PostData {
    fn example() -> Self {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Self {
            id: 1,
            user_id: 1,
            title: "Sea bass at dawn".to_owned(),
            content: "Meet at the pier.".to_owned(),
            fishing_spot_type_id: 1,
            prefecture_id: 13,
            meeting_place_id: "ChIJ51cu8IcbXWARiRtXIothAS4".to_owned(),
            meeting_at: at,
            max_apply: 3,
            apply_count: 0,
            status: crate::board::PostStatus::Open,
            approval_required: false,
            created_at: at,
            updated_at: at,
        }
    }
}

impl RoomData {
    fn example() -> Self {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        Self {
            id: 1,
            post_id: 1,
            created_at: at,
            updated_at: at,
        }
    }
}

/// One event to write: its type, the aggregate it belongs to, and its payload (`data` of the
/// envelope), built from the domain's data of what changed — never from a table's row. The store
/// persists it (the outbox) as it is.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_type: EventType,
    pub aggregate_id: String,
    /// What within the aggregate the event is about, when that is not the aggregate itself (a
    /// member of a room): an undo takes back this one's unpublished events, not the aggregate's.
    pub part_id: Option<i64>,
    pub payload: serde_json::Value,
}

impl Event {
    /// A `board.post.*` event with the post as it is after the change.
    pub fn post(event_type: EventType, post: &PostData) -> Self {
        Self::new(event_type, post.id, post)
    }

    /// A `chat.room.created` / `chat.room.deleted` event.
    pub fn room(event_type: EventType, room: &RoomData) -> Self {
        Self::new(event_type, room.id, room)
    }

    /// `board.post.reminder_due` or `board.post.completed`: a moment of the trip, for its
    /// members.
    pub fn trip_notice(event_type: EventType, notice: &TripNoticeData) -> Self {
        Self::new(event_type, notice.post_id, notice)
    }

    /// A `board.application.*` event.
    pub fn application(event_type: EventType, application: &ApplicationData) -> Self {
        Self::new(event_type, application.id, application)
    }

    /// A `chat.room.member_*` event: in its room's stream of events, so that a member who left
    /// is told so before any message written after the leave.
    pub fn member(event_type: EventType, member: &MemberData) -> Self {
        Self {
            part_id: Some(member.id),
            ..Self::new(event_type, member.room_id, member)
        }
    }

    /// `notify.notification.written`: what the notifier wrote for one event.
    pub fn notifications_written(data: &NotificationsData) -> Self {
        Self {
            event_type: EventType::NotificationsWritten,
            aggregate_id: data.source_event_id.to_string(),
            part_id: None,
            payload: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// `notify.inbox.read`: some of a user's notifications became read.
    pub fn notifications_read(data: &NotificationsReadData) -> Self {
        Self::new(EventType::NotificationsRead, data.user_id, data)
    }

    /// `notify.inbox.pruned`: the cap deleted some of a user's unread notifications.
    pub fn notifications_pruned(data: &NotificationsReadData) -> Self {
        Self::new(EventType::NotificationsPruned, data.user_id, data)
    }

    /// `board.post.reviewed`: a member's review, in its trip's stream of events.
    pub fn review(review: &ReviewData) -> Self {
        Self::new(EventType::PostReviewed, review.post_id, review)
    }

    /// `chat.room.message_added`: the message, in its room's stream of events.
    pub fn message(message: &MessageData) -> Self {
        Self::new(EventType::MessageAdded, message.room_id, message)
    }

    fn new(event_type: EventType, aggregate_id: i64, data: &impl Serialize) -> Self {
        Self {
            event_type,
            aggregate_id: aggregate_id.to_string(),
            part_id: None,
            // Our own plain data types always serialize; Null would only hide a bug.
            payload: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The envelope every event is published in (the JetStream message body, JSON). Types are
/// strings, so a consumer built before a new event type still reads the envelope. `D` is how
/// `data` is held: parsed by consumers, the stored JSON text as it is (`&RawValue`) by the
/// relay, which need not parse what it only forwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<D = serde_json::Value> {
    /// The event's identity (a UUIDv7); also the `Nats-Msg-Id` header.
    pub id: Uuid,
    /// The deployment (database) the event comes from.
    pub deployment: Uuid,
    /// The event's name, e.g. `board.post.published`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The subject it was published on.
    pub subject: String,
    pub aggregate: AggregateRef,
    /// When the change committed's transaction wrote the event.
    pub occurred_at: DateTime<Utc>,
    /// The schema version of `data`.
    pub version: u16,
    pub data: D,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateRef {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// The subject an event is published on, under the deployment's prefix.
pub fn subject(prefix: &str, event_type: &str) -> String {
    format!("{prefix}.{event_type}")
}

/// docs/events.md, generated from [`EventType::ALL`].
pub fn markdown() -> String {
    let mut out = String::from(
        "# Events\n\n\
         <!-- Generated from domain/src/events.rs; do not edit by hand. After changing an event, run\n\
         \x20    FISHAPP_WRITE_DOCS=1 cargo test -p fishapp-domain events_doc\n\
         \x20    to rewrite this file. -->\n\n\
         Every change that other parts of the system (or other systems) may react to is written as an\n\
         event in the transaction of the change (the outbox, `outbox.events`), and the outbox relay\n\
         publishes it to NATS JetStream on `<prefix>.<type>` (prefix `fishapp` unless\n\
         `FISHAPP_RELAY_SUBJECT_PREFIX` says otherwise), in one stream (`FISHAPP_RELAY_STREAM`).\n\n\
         ## The envelope\n\n\
         Each message body is one JSON object:\n\n\
         | field | meaning |\n|---|---|\n\
         | `id` | the event's identity: a UUIDv7 made in the transaction that wrote the event, unique across databases, restores and deployments; also the `Nats-Msg-Id` header, so JetStream drops a republish within its duplicate window, and a consumer that remembers ids never handles an event twice (and never takes a new event for an old one) |\n\
         | `deployment` | the deployment (its database's `outbox.deployment` id, kept by backups and restores) the event comes from: a consumer ignores other deployments' events |\n\
         | `type` | the event type below, e.g. `board.post.published` |\n\
         | `subject` | the subject it was published on |\n\
         | `aggregate` | `{ \"type\": \"post\" \\| \"room\" \\| \"application\" \\| \"notification\" \\| \"inbox\", \"id\": \"<id>\" }` |\n\
         | `occurredAt` | when the change's transaction wrote the event (RFC 3339) |\n\
         | `version` | the schema version of `data` for this type |\n\
         | `data` | the aggregate as it is after the change, or for `chat.room.message_added` the message and for `chat.room.member_*` the member (fields below) |\n\n\
         Order: within one aggregate, events are published in the order their transactions committed;\n\
         across aggregates there is no order. A room's memberships and messages are one aggregate (the\n\
         room), so a member who left hears of it before any message written after the leave.\n\
         (Before round 3 the membership events were `chat.member.joined` / `chat.member.left`, on an\n\
         aggregate `member`; consumers still read those names.)\n\n\
         ## Event types\n\n\
         | type | aggregate | version | emitted when | `data` fields |\n|---|---|---|---|---|\n",
    );
    for event in EventType::ALL {
        let fields = match event.example_data() {
            serde_json::Value::Object(map) => map
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            event.name(),
            event.aggregate().as_str(),
            event.version(),
            event.emitted_when(),
            fields
        ));
    }
    out.push_str(
        "\n## Who consumes what\n\n\
         | consumer | reads | does |\n|---|---|---|\n\
         | live chat (every API process; an ordered consumer, nothing kept on the server) | `<prefix>.chat.>` | feeds `messageAdded`: `chat.room.message_added` to the room's subscribers, `chat.room.member_left` ends the leaver's subscription, `chat.room.deleted` ends the room's |\n\
         | notifier (`fishapp notifier` or `dev`; the durable consumer `NOTIFY_CONSUMER`, shared by its replicas) | `<prefix>.>` | writes notifications: `board.application.created` / `waitlisted` / `requested` → APPLIED and `deleted` → WITHDREW to the organiser; `promoted` → PROMOTED, `removed` → REMOVED, `accepted` → REQUEST_ACCEPTED, `declined` → REQUEST_DECLINED, `expired` → REQUEST_EXPIRED to the applicant; `board.post.updated` that moved the time or place → TRIP_CHANGED and `board.post.deleted` → TRIP_CANCELLED to the members; `board.post.reminder_due` → TRIP_REMINDER and `completed` → TRIP_COMPLETED to `memberIds`; `board.post.reviewed` → TRIP_REVIEWED to the organiser; `chat.room.message_added` → NEW_MESSAGES (one per user and room until read) to the room's members; never to the event's actor; `board.post.published` and the application events keep its own record of times, places and members; for what it wrote, `notify.notification.written` |\n\
         | live notifications (every API process; an ordered consumer) | `<prefix>.notify.>` | feeds `notificationAdded` and `unreadNotificationCount`: `notify.notification.written` wakes the subscriptions of the users it names, which read those notifications (and the unread count) from Postgres; `notify.inbox.read` and `notify.inbox.pruned` wake the user's `unreadNotificationCount` subscriptions |\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        for event in EventType::ALL {
            assert_eq!(EventType::from_name(event.name()), Some(event));
            let context_and_aggregate: Vec<&str> = event.name().split('.').collect();
            assert_eq!(context_and_aggregate.len(), 3, "{}", event.name());
            assert_eq!(context_and_aggregate[1], event.aggregate().as_str());
        }
    }

    #[test]
    fn the_envelope_reads_back() {
        let envelope = Envelope {
            id: Uuid::nil(),
            deployment: Uuid::nil(),
            event_type: EventType::RoomCreated.name().to_owned(),
            subject: subject("fishapp", EventType::RoomCreated.name()),
            aggregate: AggregateRef {
                kind: "room".to_owned(),
                id: "1".to_owned(),
            },
            occurred_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 1,
            data: EventType::RoomCreated.example_data(),
        };
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "chat.room.created");
        assert_eq!(json["aggregate"]["type"], "room");
        assert_eq!(json["subject"], "fishapp.chat.room.created");
        assert_eq!(json["data"]["postId"], 1);
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    /// docs/events.md is what the code says. `FISHAPP_WRITE_DOCS=1` rewrites it.
    #[test]
    fn events_doc_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md");
        let generated = markdown();
        if std::env::var_os("FISHAPP_WRITE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/events.md is out of date: run FISHAPP_WRITE_DOCS=1 cargo test -p fishapp-domain events_doc"
        );
    }
}
