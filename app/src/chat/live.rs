//! Live chat: one JetStream consumer per API process reads the chat events the outbox relay
//! publishes, and fans them out to the process's subscriptions by room (see [`crate::feed`]:
//! this deployment's events only, each once, resuming after the last one seen).

use crate::feed::{Fanout, FanoutWatch, FeedSource, follow_events};
use fishapp_domain::events::{Envelope, EventType, MemberData, MessageData, RoomData};
use fishapp_store::Database;
use fishapp_store::chat::MessageRow;
use prometheus::{IntGauge, Registry};
use tokio_util::sync::CancellationToken;

/// Events buffered per room for slow subscribers; one that falls further behind catches up from
/// Postgres (see `Chat::subscribe`).
const ROOM_BUFFER: usize = 256;

/// What a room's subscribers hear.
#[derive(Debug, Clone)]
pub enum RoomEvent {
    Message(MessageRow),
    /// This user is no longer a member.
    Left {
        user_id: i64,
    },
    /// The room is gone (its trip was deleted).
    Deleted,
}

/// Where the chat events are.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// The JetStream stream the outbox relay publishes to.
    pub stream: String,
    /// The relay's subject prefix (`fishapp`): chat events are `<prefix>.chat.>`.
    pub subject_prefix: String,
}

/// The process's fan-out of chat events by room, holding a room only while it has live
/// subscribers (which the subscription caps bound). Cheap to clone.
#[derive(Clone)]
pub struct LiveChat {
    rooms: Fanout<RoomEvent>,
}

/// One subscription's view of its room's events.
pub type Watch = FanoutWatch<RoomEvent>;

impl LiveChat {
    /// Starts the consumer; it runs (reconnecting as needed) until `shutdown`. Its gauges go
    /// into `registry`: `chat_live_subscriptions`, `chat_live_rooms` (rooms with subscribers)
    /// and `chat_live_reading` (1 while the stream is being read).
    pub fn start(
        nats: async_nats::Client,
        db: Database,
        settings: LiveSettings,
        registry: &Registry,
        shutdown: CancellationToken,
    ) -> Result<Self, prometheus::Error> {
        let open = IntGauge::new(
            "chat_live_subscriptions",
            "messageAdded subscriptions open in this process",
        )?;
        let reading = IntGauge::new(
            "chat_live_reading",
            "1 while this process reads the chat events from JetStream",
        )?;
        let rooms = IntGauge::new(
            "chat_live_rooms",
            "rooms with at least one messageAdded subscription in this process",
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(reading.clone()))?;
        registry.register(Box::new(rooms.clone()))?;
        let chat = Self {
            rooms: Fanout::new(rooms, open, ROOM_BUFFER),
        };
        let fan_out = chat.clone();
        let source = FeedSource {
            stream: settings.stream,
            filter_subject: format!("{}.chat.>", settings.subject_prefix),
            role: "live chat",
        };
        tokio::spawn(async move {
            let take = |envelope: &Envelope| {
                if let Some((room_id, event)) = room_event(envelope) {
                    fan_out.rooms.dispatch(room_id, event);
                }
            };
            tokio::select! {
                () = follow_events(nats, &db, &source, &reading, take) => {}
                () = shutdown.cancelled() => {}
            }
            // Ends every subscription: their channels close.
            fan_out.rooms.clear();
        });
        Ok(chat)
    }

    /// The room's events from now on, for a caller whose membership was checked; counted in
    /// `chat_live_subscriptions` until dropped. The last watch of a room dropped removes it.
    pub fn watch(&self, room_id: i64) -> Watch {
        self.rooms.watch(room_id)
    }
}

/// The room an event concerns and what its subscribers hear, for the events they care about.
fn room_event(envelope: &Envelope) -> Option<(i64, RoomEvent)> {
    let data = envelope.data.clone();
    match EventType::from_name(&envelope.event_type)? {
        EventType::MessageAdded => {
            let m: MessageData = serde_json::from_value(data).ok()?;
            Some((m.room_id, RoomEvent::Message(message_row(m))))
        }
        EventType::MemberLeft => {
            let m: MemberData = serde_json::from_value(data).ok()?;
            Some((m.room_id, RoomEvent::Left { user_id: m.user_id }))
        }
        EventType::RoomDeleted => {
            let r: RoomData = serde_json::from_value(data).ok()?;
            Some((r.id, RoomEvent::Deleted))
        }
        _ => None,
    }
}

fn message_row(m: MessageData) -> MessageRow {
    MessageRow {
        id: m.id,
        room_id: m.room_id,
        user_id: m.user_id,
        body: m.body,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use fishapp_domain::events::AggregateRef;

    fn envelope(event: EventType, data: serde_json::Value) -> Envelope {
        Envelope {
            id: uuid::Uuid::now_v7(),
            deployment: uuid::Uuid::nil(),
            event_type: event.name().to_owned(),
            subject: format!("fishapp.{}", event.name()),
            aggregate: AggregateRef {
                kind: event.aggregate().as_str().to_owned(),
                id: "7".to_owned(),
            },
            occurred_at: DateTime::<Utc>::UNIX_EPOCH,
            version: 1,
            data,
        }
    }

    #[test]
    fn chat_events_reach_their_room_and_others_are_ignored() {
        let message = envelope(
            EventType::MessageAdded,
            EventType::MessageAdded.example_data(),
        );
        let Some((room, RoomEvent::Message(row))) = room_event(&message) else {
            panic!("a message event");
        };
        assert_eq!(
            (room, row.id, row.body.as_deref()),
            (1, 1, Some("On my way"))
        );
        let left = envelope(EventType::MemberLeft, EventType::MemberLeft.example_data());
        assert!(matches!(
            room_event(&left),
            Some((1, RoomEvent::Left { user_id: 2 }))
        ));
        let deleted = envelope(
            EventType::RoomDeleted,
            EventType::RoomDeleted.example_data(),
        );
        assert!(matches!(
            room_event(&deleted),
            Some((1, RoomEvent::Deleted))
        ));
        let joined = envelope(
            EventType::MemberJoined,
            EventType::MemberJoined.example_data(),
        );
        assert!(room_event(&joined).is_none());
    }

    fn chat() -> (LiveChat, IntGauge, IntGauge) {
        let open = IntGauge::new("open", "open").unwrap();
        let size = IntGauge::new("rooms", "rooms").unwrap();
        let chat = LiveChat {
            rooms: Fanout::new(size.clone(), open.clone(), ROOM_BUFFER),
        };
        (chat, open, size)
    }

    #[test]
    fn a_second_copy_of_an_event_is_taken_once() {
        let (chat, ..) = chat();
        let mut watch = chat.watch(1);
        let mut seen = crate::feed::Seen::new();
        let mine = envelope(
            EventType::MessageAdded,
            EventType::MessageAdded.example_data(),
        );
        for copy in [&mine, &mine] {
            if seen.first_time(copy.id)
                && let Some((room, event)) = room_event(copy)
            {
                chat.rooms.dispatch(room, event);
            }
        }
        let delivered = watch.try_recv();
        assert!(
            matches!(delivered, Ok(RoomEvent::Message(_))),
            "{delivered:?}"
        );
        assert!(watch.try_recv().is_err(), "not the copy");
    }

    #[test]
    fn a_room_is_held_exactly_while_it_has_subscribers() {
        let (chat, open, size) = chat();
        let first = chat.watch(3);
        let second = chat.watch(3);
        let other = chat.watch(4);
        let receivers = chat.rooms.receivers(3);
        assert_eq!((receivers, open.get(), size.get()), (Some(2), 3, 2));
        drop(first);
        assert_eq!(
            (open.get(), size.get()),
            (2, 2),
            "room 3 still has a subscriber"
        );
        drop(second);
        assert_eq!(
            (open.get(), size.get()),
            (1, 1),
            "room 3 went with its last"
        );
        assert_eq!(chat.rooms.receivers(3), None);
        drop(other);
        assert_eq!(size.get(), 0);
        // An event for a room nobody watches makes no entry.
        chat.rooms.dispatch(5, RoomEvent::Deleted);
        assert_eq!((chat.rooms.receivers(5), size.get()), (None, 0));
    }
}
