//! Live feeds from the event stream, as every API process runs them: one JetStream consumer per
//! process and feed ([`follow_events`]: an ordered consumer — nothing kept on the server — that
//! resumes right after the last event it saw), this deployment's events only, each once by its
//! identity; and a fan-out by key ([`Fanout`]: a room's subscribers, a user's) that holds a key
//! only while someone watches it.
//!
//! Why one consumer per process and not per subscription: a thousand idle subscriptions then cost
//! a thousand channel receivers, not a thousand server-side consumers. Why from JetStream and not
//! from the request that wrote: what is written through another replica must reach this
//! replica's subscribers too.

use fishapp_domain::events::Envelope;
use fishapp_store::Database;
use futures::StreamExt;
use prometheus::IntGauge;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast;

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The first read starts this long before the process did (clocks of ours and the NATS server
/// that disagree): an event published after the process started is delivered even when the
/// stream only appears later; anything older is in Postgres.
const START_MARGIN: Duration = Duration::from_secs(5);
/// Event identities remembered for dropping a second copy: far more than arrive within a
/// republish's reach (a relay republishes what it had not marked, moments after a crash).
const REMEMBERED_EVENTS: usize = 10_000;

/// Where a feed reads: the relay's stream and the subjects it wants.
#[derive(Debug, Clone)]
pub struct FeedSource {
    pub stream: String,
    /// e.g. `<prefix>.chat.>`.
    pub filter_subject: String,
    /// Names the feed in logs.
    pub role: &'static str,
}

/// Hands every event of this deployment on `source` to `take`, once, forever (reconnecting as
/// needed); `reading` is 1 while the stream is being read.
pub(crate) async fn follow_events(
    nats: async_nats::Client,
    db: &Database,
    source: &FeedSource,
    reading: &IntGauge,
    mut take: impl FnMut(&Envelope),
) {
    let deployment = deployment_of(db, source.role).await;
    let mut seen = Seen::new();
    let jetstream = async_nats::jetstream::new(nats);
    let started = time::OffsetDateTime::now_utc() - START_MARGIN;
    let mut next_sequence: Option<u64> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut ours = |envelope: &Envelope| {
            if envelope.deployment == deployment && seen.first_time(envelope.id) {
                take(envelope);
            }
        };
        let result = read(
            &jetstream,
            source,
            reading,
            started,
            &mut next_sequence,
            &mut ours,
        )
        .await;
        match result {
            Ok(()) => tracing::warn!(
                role = source.role,
                "the stream's consumer ended; starting another"
            ),
            Err(e) => {
                tracing::warn!(role = source.role, error = %e, "cannot read the stream; retrying")
            }
        }
        reading.set(0);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn read(
    jetstream: &async_nats::jetstream::Context,
    source: &FeedSource,
    reading: &IntGauge,
    started: time::OffsetDateTime,
    next_sequence: &mut Option<u64>,
    take: &mut impl FnMut(&Envelope),
) -> Result<(), async_nats::Error> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let stream = jetstream.get_stream(&source.stream).await?;
    let deliver_policy = match *next_sequence {
        // Resume right after the last event seen: nothing skipped, nothing twice.
        Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        None => DeliverPolicy::ByStartTime {
            start_time: started,
        },
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: source.filter_subject.clone(),
            deliver_policy,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    reading.set(1);
    tracing::info!(stream = %source.stream, role = source.role, "reading events");
    while let Some(message) = messages.next().await {
        let message = message?;
        if let Ok(info) = message.info() {
            *next_sequence = Some(info.stream_sequence + 1);
        }
        match serde_json::from_slice::<Envelope>(&message.payload) {
            Ok(envelope) => take(&envelope),
            Err(e) => {
                tracing::warn!(role = source.role, error = %e, "an event that is no envelope; skipped")
            }
        }
    }
    Ok(())
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

/// The last event identities seen, for dropping a second copy.
pub(crate) struct Seen {
    ids: HashSet<uuid::Uuid>,
    order: VecDeque<uuid::Uuid>,
}

impl Seen {
    pub(crate) fn new() -> Self {
        Self {
            ids: HashSet::with_capacity(REMEMBERED_EVENTS),
            order: VecDeque::with_capacity(REMEMBERED_EVENTS),
        }
    }

    /// Whether `id` is new (and remembers it).
    pub(crate) fn first_time(&mut self, id: uuid::Uuid) -> bool {
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

/// A fan-out by key (a room, a user): a bounded broadcast channel per key that someone
/// watches. The map holds a key only while it has watchers: an entry is made by the first
/// [`FanoutWatch`] of a key (after the caller was checked) and removed by the last one when it
/// is dropped, so it never grows with what clients ask for, only with what they hold open.
pub(crate) struct Fanout<T> {
    map: Arc<Mutex<HashMap<i64, broadcast::Sender<T>>>>,
    /// Keys held, as a metric.
    size: IntGauge,
    /// Watches open, as a metric.
    open: IntGauge,
    buffer: usize,
}

impl<T> Clone for Fanout<T> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
            size: self.size.clone(),
            open: self.open.clone(),
            buffer: self.buffer,
        }
    }
}

impl<T: Clone> Fanout<T> {
    pub(crate) fn new(size: IntGauge, open: IntGauge, buffer: usize) -> Self {
        Self {
            map: Arc::default(),
            size,
            open,
            buffer,
        }
    }

    fn locked<R>(&self, work: impl FnOnce(&mut HashMap<i64, broadcast::Sender<T>>) -> R) -> R {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let result = work(&mut map);
        self.size.set(i64::try_from(map.len()).unwrap_or(i64::MAX));
        result
    }

    /// The key's items from now on; counted in `open` until dropped.
    pub(crate) fn watch(&self, key: i64) -> FanoutWatch<T> {
        let buffer = self.buffer;
        let items = self.locked(|map| {
            map.entry(key)
                .or_insert_with(|| broadcast::channel(buffer).0)
                .subscribe()
        });
        self.open.inc();
        FanoutWatch {
            items: Some(items),
            key,
            fanout: self.clone(),
        }
    }

    /// Hands `item` to the key's watchers, if any.
    pub(crate) fn dispatch(&self, key: i64, item: T) {
        self.locked(|map| {
            if let Some(sender) = map.get(&key)
                && sender.send(item).is_err()
            {
                // No receivers left (the process is shutting down): forget the key.
                map.remove(&key);
            }
        });
    }

    /// Ends every watch (their channels close).
    pub(crate) fn clear(&self) {
        self.locked(HashMap::clear);
    }

    #[cfg(test)]
    pub(crate) fn receivers(&self, key: i64) -> Option<usize> {
        self.locked(|map| map.get(&key).map(broadcast::Sender::receiver_count))
    }
}

/// One watcher's view of its key's items.
pub struct FanoutWatch<T: Clone> {
    /// Always `Some` until dropped (taken out to be dropped under the map's lock).
    items: Option<broadcast::Receiver<T>>,
    key: i64,
    fanout: Fanout<T>,
}

impl<T: Clone> FanoutWatch<T> {
    /// The next item (see [`broadcast::Receiver::recv`]).
    pub async fn recv(&mut self) -> Result<T, broadcast::error::RecvError> {
        match self.items.as_mut() {
            Some(items) => items.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }

    /// Drops the items already waiting: for a watcher that re-reads its state on any item, a
    /// burst is one read.
    pub(crate) fn skip_waiting(&mut self) {
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = self.try_recv() {}
    }

    pub(crate) fn try_recv(&mut self) -> Result<T, broadcast::error::TryRecvError> {
        match self.items.as_mut() {
            Some(items) => items.try_recv(),
            None => Err(broadcast::error::TryRecvError::Closed),
        }
    }
}

impl<T: Clone> Drop for FanoutWatch<T> {
    fn drop(&mut self) {
        self.fanout.open.dec();
        // Under the lock, so that no new watch of the key subscribes in between: the receiver
        // goes, and with the last one the key's entry.
        let items = &mut self.items;
        let key = self.key;
        self.fanout.locked(|map| {
            drop(items.take());
            if map
                .get(&key)
                .is_some_and(|sender| sender.receiver_count() == 0)
            {
                map.remove(&key);
            }
        });
    }
}
