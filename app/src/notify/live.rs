//! `notificationAdded`'s feed: every API process reads `notify.notification.written` (which the
//! notifier writes with the notifications, through the outbox) and wakes the subscriptions of
//! the users concerned, who read their new (or grown) notifications from Postgres.

use crate::feed::{Fanout, FanoutWatch, FeedSource, follow_events};
use fishapp_domain::events::{Envelope, EventType, NotificationsData};
use fishapp_store::Database;
use prometheus::{IntGauge, Registry};
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;

/// Wake-ups buffered per user; a subscriber further behind misses some live (the notifications
/// stay readable with `notifications`).
const USER_BUFFER: usize = 64;

/// The process's fan-out of written notifications by user. Cheap to clone.
#[derive(Clone)]
pub struct LiveNotifications {
    users: Fanout<Vec<i64>>,
}

/// One subscription's view: ids of the user's notifications written or grown.
pub type NotificationWatch = FanoutWatch<Vec<i64>>;

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
                for (user_id, ids) in written(envelope) {
                    fan_out.users.dispatch(user_id, ids);
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

    /// The user's written notifications from now on, for the signed-in user themself.
    pub fn watch(&self, user_id: i64) -> NotificationWatch {
        self.users.watch(user_id)
    }
}

/// The notification ids per user an event announces.
fn written(envelope: &Envelope) -> HashMap<i64, Vec<i64>> {
    let mut by_user: HashMap<i64, Vec<i64>> = HashMap::new();
    if EventType::from_name(&envelope.event_type) == Some(EventType::NotificationsWritten)
        && let Ok(data) = serde_json::from_value::<NotificationsData>(envelope.data.clone())
    {
        for n in data.notifications {
            by_user.entry(n.user_id).or_default().push(n.id);
        }
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
        let by_user = written(&envelope);
        assert_eq!(by_user[&1], [10, 12]);
        assert_eq!(by_user[&2], [11]);
        let other = Envelope {
            event_type: EventType::MessageAdded.name().to_owned(),
            ..envelope
        };
        assert!(written(&other).is_empty());
    }
}
