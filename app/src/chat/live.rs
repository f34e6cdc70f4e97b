//! Live chat: one JetStream consumer per API process reads the chat events the outbox relay
//! publishes, and fans them out to the process's subscriptions by room.
//!
//! Why one consumer per process, not one per subscription: a thousand idle subscriptions then
//! cost a thousand channel receivers, not a thousand server-side consumers. Why JetStream and
//! not an in-process shortcut from createMessage: a message written through another API replica
//! must reach this replica's subscribers too, and it does only through the stream. The consumer
//! is an ordered consumer (no acks, server-side state is ephemeral); when it has to be made anew
//! it starts again right after the last stream sequence it saw, so nothing is skipped.
//!
//! Only this deployment's events are delivered (the envelope's `deployment` is this database's:
//! another deployment sharing the stream and its subjects has rooms with the same ids), and each
//! event once, by its identity (a republish the stream did not drop as a duplicate is dropped
//! here).

use fishapp_domain::events::{Envelope, EventType, MemberData, MessageData, RoomData};
use fishapp_store::Database;
use fishapp_store::chat::MessageRow;
use futures::StreamExt;
use prometheus::{IntGauge, Registry};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Events buffered per room for slow subscribers; one that falls further behind catches up from
/// Postgres (see `Chat::subscribe`).
const ROOM_BUFFER: usize = 256;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const START_MARGIN: Duration = Duration::from_secs(5);
/// Event identities remembered for dropping a second copy: far more than arrive within a
/// republish's reach (a relay republishes what it had not marked, moments after a crash).
const REMEMBERED_EVENTS: usize = 10_000;

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

/// The process's fan-out of chat events. Cheap to clone.
///
/// The room map holds a room only while it has live subscribers: an entry is made by the first
/// [`Watch`] of a room (after the caller's membership was checked) and removed by the last one
/// when it is dropped, so the map never grows with what clients ask for, only with what they
/// hold open (which the subscription caps bound).
#[derive(Clone)]
pub struct LiveChat {
    rooms: Rooms,
    /// `chat_live_subscriptions`: subscriptions open in this process.
    open: IntGauge,
}

/// The rooms with subscribers, and their count in `chat_live_rooms`.
#[derive(Clone)]
struct Rooms {
    map: Arc<Mutex<HashMap<i64, broadcast::Sender<RoomEvent>>>>,
    size: IntGauge,
}

impl Rooms {
    fn new(size: IntGauge) -> Self {
        Self {
            map: Arc::default(),
            size,
        }
    }

    fn lock(&self) -> RoomsGuard<'_> {
        RoomsGuard {
            map: self.map.lock().unwrap_or_else(PoisonError::into_inner),
            size: &self.size,
        }
    }
}

/// The locked map; its gauge is brought up to date when the lock is given back.
struct RoomsGuard<'a> {
    map: std::sync::MutexGuard<'a, HashMap<i64, broadcast::Sender<RoomEvent>>>,
    size: &'a IntGauge,
}

impl std::ops::Deref for RoomsGuard<'_> {
    type Target = HashMap<i64, broadcast::Sender<RoomEvent>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for RoomsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl Drop for RoomsGuard<'_> {
    fn drop(&mut self) {
        self.size
            .set(i64::try_from(self.map.len()).unwrap_or(i64::MAX));
    }
}

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
            rooms: Rooms::new(rooms),
            open,
        };
        let fan_out = chat.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = consume(nats, db, settings, &fan_out, reading) => {}
                () = shutdown.cancelled() => {}
            }
            // Ends every subscription: their channels close.
            fan_out.rooms.lock().clear();
        });
        Ok(chat)
    }

    /// The room's events from now on, for a caller whose membership was checked; counted in
    /// `chat_live_subscriptions` until dropped. The last watch of a room dropped removes it.
    pub fn watch(&self, room_id: i64) -> Watch {
        let events = self
            .rooms
            .lock()
            .entry(room_id)
            .or_insert_with(|| broadcast::channel(ROOM_BUFFER).0)
            .subscribe();
        self.open.inc();
        Watch {
            events: Some(events),
            room_id,
            rooms: self.rooms.clone(),
            open: self.open.clone(),
        }
    }

    fn dispatch(&self, room_id: i64, event: RoomEvent) {
        let mut rooms = self.rooms.lock();
        if let Some(sender) = rooms.get(&room_id) {
            // No receivers left (the process is shutting down): forget the room.
            if sender.send(event).is_err() {
                rooms.remove(&room_id);
            }
        }
    }
}

/// One subscription's view of its room's events.
pub struct Watch {
    /// Always `Some` until dropped (taken out to be dropped under the map's lock).
    events: Option<broadcast::Receiver<RoomEvent>>,
    room_id: i64,
    rooms: Rooms,
    open: IntGauge,
}

impl Watch {
    /// The next event of the room (see [`broadcast::Receiver::recv`]).
    pub async fn recv(&mut self) -> Result<RoomEvent, broadcast::error::RecvError> {
        match self.events.as_mut() {
            Some(events) => events.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.open.dec();
        // Under the lock, so that no new watch of the room subscribes in between: the receiver
        // goes, and with the last one the room's entry.
        let mut rooms = self.rooms.lock();
        drop(self.events.take());
        if rooms
            .get(&self.room_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            rooms.remove(&self.room_id);
        }
    }
}

/// The last event identities seen, for dropping a second copy.
struct Seen {
    ids: HashSet<uuid::Uuid>,
    order: VecDeque<uuid::Uuid>,
}

impl Seen {
    fn new() -> Self {
        Self {
            ids: HashSet::with_capacity(REMEMBERED_EVENTS),
            order: VecDeque::with_capacity(REMEMBERED_EVENTS),
        }
    }

    /// Whether `id` is new (and remembers it).
    fn first_time(&mut self, id: uuid::Uuid) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED_EVENTS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

/// This process's deployment (its database's), waiting for Postgres as long as it takes; `role`
/// names the reader in the log.
pub(crate) async fn deployment_of(db: &Database, role: &str) -> uuid::Uuid {
    let mut backoff = Duration::from_millis(100);
    loop {
        match fishapp_store::outbox::deployment_id(db.pool()).await {
            Ok(id) => return id,
            Err(e) => {
                tracing::warn!(error = %e, "{role}: cannot read this deployment's id; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The consumer loop: (re)creates an ordered consumer on the chat subjects and dispatches every
/// event of this deployment, once, forever.
async fn consume(
    nats: async_nats::Client,
    db: Database,
    settings: LiveSettings,
    chat: &LiveChat,
    reading: IntGauge,
) {
    let deployment = deployment_of(&db, "live chat").await;
    let mut seen = Seen::new();
    let jetstream = async_nats::jetstream::new(nats);
    // The first read starts at this process's start, less a margin for clocks that disagree
    // (ours and the NATS server's): a message published after this process started is
    // delivered even when the stream only appears later; anything older is in Postgres, and
    // subscribers drop what they already have by id.
    let started = time::OffsetDateTime::now_utc() - START_MARGIN;
    let mut next_sequence: Option<u64> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = read(
            &jetstream,
            &settings,
            Feed {
                chat,
                deployment,
                seen: &mut seen,
            },
            &reading,
            started,
            &mut next_sequence,
        )
        .await;
        match result {
            Ok(()) => tracing::warn!("live chat: the stream's consumer ended; starting another"),
            Err(e) => tracing::warn!(error = %e, "live chat: cannot read the stream; retrying"),
        }
        reading.set(0);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Where events go, and which are taken.
struct Feed<'a> {
    chat: &'a LiveChat,
    deployment: uuid::Uuid,
    seen: &'a mut Seen,
}

impl Feed<'_> {
    fn take(&mut self, envelope: &Envelope) {
        if envelope.deployment != self.deployment || !self.seen.first_time(envelope.id) {
            return;
        }
        if let Some((room_id, event)) = room_event(envelope) {
            self.chat.dispatch(room_id, event);
        }
    }
}

async fn read(
    jetstream: &async_nats::jetstream::Context,
    settings: &LiveSettings,
    mut feed: Feed<'_>,
    reading: &IntGauge,
    started: time::OffsetDateTime,
    next_sequence: &mut Option<u64>,
) -> Result<(), async_nats::Error> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let stream = jetstream.get_stream(&settings.stream).await?;
    let deliver_policy = match *next_sequence {
        // Resume right after the last event seen: nothing skipped, nothing twice.
        Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        None => DeliverPolicy::ByStartTime {
            start_time: started,
        },
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: format!("{}.chat.>", settings.subject_prefix),
            deliver_policy,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    reading.set(1);
    tracing::info!(stream = %settings.stream, "live chat: reading chat events");
    while let Some(message) = messages.next().await {
        let message = message?;
        if let Ok(info) = message.info() {
            *next_sequence = Some(info.stream_sequence + 1);
        }
        match serde_json::from_slice::<Envelope>(&message.payload) {
            Ok(envelope) => feed.take(&envelope),
            Err(e) => {
                tracing::warn!(error = %e, "live chat: an event that is no envelope; skipped")
            }
        }
    }
    Ok(())
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

    #[test]
    fn only_this_deployments_events_are_taken_and_each_once() {
        let open = IntGauge::new("open", "open").unwrap();
        let chat = LiveChat {
            rooms: Rooms::new(IntGauge::new("rooms", "rooms").unwrap()),
            open,
        };
        let mut watch = chat.watch(1);
        let mut seen = Seen::new();
        let ours = uuid::Uuid::now_v7();
        let mut feed = Feed {
            chat: &chat,
            deployment: ours,
            seen: &mut seen,
        };
        let message = |deployment| Envelope {
            deployment,
            ..envelope(
                EventType::MessageAdded,
                EventType::MessageAdded.example_data(),
            )
        };
        let mine = message(ours);
        feed.take(&mine);
        feed.take(&mine);
        feed.take(&message(uuid::Uuid::now_v7()));
        let delivered = watch.events.as_mut().unwrap().try_recv();
        assert!(
            matches!(delivered, Ok(RoomEvent::Message(_))),
            "{delivered:?}"
        );
        assert!(
            watch.events.as_mut().unwrap().try_recv().is_err(),
            "neither the copy nor another deployment's event"
        );
    }

    #[test]
    fn a_room_is_held_exactly_while_it_has_subscribers() {
        let open = IntGauge::new("open", "open").unwrap();
        let size = IntGauge::new("rooms", "rooms").unwrap();
        let chat = LiveChat {
            rooms: Rooms::new(size.clone()),
            open: open.clone(),
        };
        let first = chat.watch(3);
        let second = chat.watch(3);
        let other = chat.watch(4);
        let receivers = chat.rooms.lock()[&3].receiver_count();
        assert_eq!((receivers, open.get(), size.get()), (2, 3, 2));
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
        assert!(!chat.rooms.lock().contains_key(&3));
        drop(other);
        assert!(chat.rooms.lock().is_empty());
        assert_eq!(size.get(), 0);
        // An event for a room nobody watches makes no entry.
        chat.dispatch(5, RoomEvent::Deleted);
        assert!(chat.rooms.lock().is_empty());
    }
}
