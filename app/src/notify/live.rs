//! The feed of `notificationAdded` and `unreadNotificationCount`: every API process reads
//! `notify.notification.written` (which the notifier writes with the notifications, through the
//! outbox), `notify.inbox.read` (written with a marking) and `notify.inbox.pruned` (written
//! with a prune), and wakes the subscriptions of the
//! users concerned, who read what changed from Postgres.

use crate::feed::{Fanout, FanoutWatch, FeedSource, follow_events};
use fishapp_domain::events::{Envelope, EventType, NotificationsData, NotificationsReadData};
use fishapp_store::Database;
use prometheus::{IntGauge, Registry};
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

/// Wake-ups buffered per user; a subscriber further behind misses some live (the notifications
/// stay readable with `notifications`).
const USER_BUFFER: usize = 64;

/// The process's fan-out of notification changes by user. Cheap to clone.
#[derive(Clone)]
pub struct LiveNotifications {
    users: Fanout<Change>,
}

/// What happened to a user's notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These were written or grew.
    Written(Vec<i64>),
    /// Some unread ones became read or were pruned: the unread count dropped.
    FewerUnread,
}

/// One subscription's view: the changes of the user's notifications.
pub type NotificationWatch = FanoutWatch<Change>;

impl LiveNotifications {
    /// Starts the consumer of `<prefix>.notify.>` on `stream` until `shutdown`; its gauges go
    /// into `registry`: `notify_live_subscriptions`, `notify_live_users`, `notify_live_reading`.
    pub fn start(
        nats: async_nats::Client,
        db: Database,
        stream: String,
        subject_prefix: &str,
        registry: &Registry,
        shutdown: CancellationToken,
    ) -> Result<Self, prometheus::Error> {
        let open = IntGauge::new(
            "notify_live_subscriptions",
            "notificationAdded subscriptions open in this process",
        )?;
        let users = IntGauge::new(
            "notify_live_users",
            "users with a notificationAdded subscription in this process",
        )?;
        let reading = IntGauge::new(
            "notify_live_reading",
            "1 while this process reads written notifications from JetStream",
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(users.clone()))?;
        registry.register(Box::new(reading.clone()))?;
        let live = Self {
            users: Fanout::new(users, open, USER_BUFFER),
        };
        let fan_out = live.clone();
        let source = FeedSource {
            stream,
            filter_subject: format!("{subject_prefix}.notify.>"),
            role: "live notifications",
        };
        tokio::spawn(async move {
            let take = |envelope: &Envelope| {
                for (user_id, change) in changes(envelope) {
                    fan_out.users.dispatch(user_id, change);
                }
            };
            tokio::select! {
                () = follow_events(nats, &db, &source, &reading, take) => {}
                () = shutdown.cancelled() => {}
            }
            fan_out.users.clear();
        });
        Ok(live)
    }

    /// The changes of the user's notifications from now on, for the signed-in user themself.
    pub fn watch(&self, user_id: i64) -> NotificationWatch {
        self.users.watch(user_id)
    }
}

/// The change per user an event announces (none for an event of another type, or one this
/// build cannot read).
fn changes(envelope: &Envelope) -> HashMap<i64, Change> {
    let mut by_user: HashMap<i64, Change> = HashMap::new();
    match EventType::from_name(&envelope.event_type) {
        Some(EventType::NotificationsWritten) => {
            if let Ok(data) = serde_json::from_value::<NotificationsData>(envelope.data.clone()) {
                for n in data.notifications {
                    if let Change::Written(ids) = by_user
                        .entry(n.user_id)
                        .or_insert_with(|| Change::Written(Vec::new()))
                    {
                        ids.push(n.id);
                    }
                }
            }
        }
        Some(EventType::NotificationsRead | EventType::NotificationsPruned) => {
            if let Ok(data) = serde_json::from_value::<NotificationsReadData>(envelope.data.clone())
            {
                by_user.insert(data.user_id, Change::FewerUnread);
            }
        }
        _ => {}
    }
    by_user
}

#[cfg(test)]
mod tests {
    use super::*;
    use fishapp_domain::events::AggregateRef;

    #[test]
    fn each_user_hears_of_their_own_notifications() {
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            deployment: uuid::Uuid::nil(),
            event_type: EventType::NotificationsWritten.name().to_owned(),
            subject: "fishapp.notify.notification.written".to_owned(),
            aggregate: AggregateRef {
                kind: "notification".to_owned(),
                id: "x".to_owned(),
            },
            occurred_at: chrono::Utc::now(),
            version: 1,
            data: serde_json::json!({
                "sourceEventId": uuid::Uuid::nil(),
                "notifications": [
                    { "id": 10, "userId": 1 }, { "id": 11, "userId": 2 }, { "id": 12, "userId": 1 }
                ]
            }),
        };
        let by_user = changes(&envelope);
        assert_eq!(by_user[&1], Change::Written(vec![10, 12]));
        assert_eq!(by_user[&2], Change::Written(vec![11]));
        let read = Envelope {
            event_type: EventType::NotificationsRead.name().to_owned(),
            data: serde_json::json!({ "userId": 2, "count": 3 }),
            ..envelope.clone()
        };
        assert_eq!(changes(&read), HashMap::from([(2, Change::FewerUnread)]));
        let pruned = Envelope {
            event_type: EventType::NotificationsPruned.name().to_owned(),
            ..read.clone()
        };
        assert_eq!(changes(&pruned), HashMap::from([(2, Change::FewerUnread)]));
        let other = Envelope {
            event_type: EventType::MessageAdded.name().to_owned(),
            ..envelope
        };
        assert!(changes(&other).is_empty());
    }
}
