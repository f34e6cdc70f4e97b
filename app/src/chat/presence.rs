//! Who reads which room live, shared with the other processes through `chat.watching`: the
//! notifications consumer counts a room's new messages only for members who are not reading it.
//!
//! Per process, a count per (user, room) of open `messageAdded` subscriptions: the first writes
//! a row, the last one ending deletes it, and a refresher makes the process's rows exactly its
//! counts every third of [`WATCHING_TTL_SECS`] (repairing a start and an end that raced). A
//! process that dies stops refreshing; its rows stop counting after the TTL.

use fishapp_store::Database;
use fishapp_store::chat::{self as store, WATCHING_TTL_SECS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// This process's live readers. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    db: Database,
    instance: Uuid,
    counts: Arc<Mutex<HashMap<(i64, i64), u32>>>,
    /// Whether the process had readers since its last refresh: an idle process writes nothing.
    active: Arc<AtomicBool>,
}

/// One subscription's presence in its room, until dropped.
pub struct Present {
    presence: Presence,
    key: (i64, i64),
}

impl Presence {
    /// Starts the refresher; at `shutdown` the process's rows are deleted.
    pub fn start(db: Database, shutdown: CancellationToken) -> Self {
        let presence = Self {
            db,
            instance: Uuid::new_v4(),
            counts: Arc::default(),
            active: Arc::default(),
        };
        let refresher = presence.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(u64::from(WATCHING_TTL_SECS.unsigned_abs()) / 3);
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => refresher.refresh(false).await,
                    () = shutdown.cancelled() => break,
                }
            }
            refresher.refresh(true).await;
        });
        presence
    }

    /// `user_id` now reads `room_id` live (a member: the caller checked).
    pub async fn enter(&self, user_id: i64, room_id: i64) -> Result<Present, sqlx::Error> {
        let key = (user_id, room_id);
        self.active.store(true, Ordering::Relaxed);
        let first = {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let count = counts.entry(key).or_insert(0);
            *count += 1;
            *count == 1
        };
        // The guard first: an error below still takes the count back.
        let present = Present {
            presence: self.clone(),
            key,
        };
        if first {
            store::watching_started(self.db.pool(), self.instance, user_id, room_id).await?;
        }
        Ok(present)
    }

    /// Pairs this process has readers for now.
    fn pairs(&self) -> Vec<(i64, i64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.keys().copied().collect()
    }

    async fn refresh(&self, last: bool) {
        let pairs = if last { Vec::new() } else { self.pairs() };
        // Readers now, or since the last refresh (whose rows this one clears): write.
        let had_readers = self.active.swap(!pairs.is_empty(), Ordering::Relaxed);
        if pairs.is_empty() && !had_readers {
            return;
        }
        if let Err(e) = store::watching_now(self.db.pool(), self.instance, &pairs).await {
            tracing::warn!(error = %e, "live chat: cannot refresh who reads which room");
        }
    }
}

impl Drop for Present {
    fn drop(&mut self) {
        let last = {
            let mut counts = self
                .presence
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match counts.get_mut(&self.key) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                _ => {
                    counts.remove(&self.key);
                    true
                }
            }
        };
        if last && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (db, instance, (user_id, room_id)) =
                (self.presence.db.clone(), self.presence.instance, self.key);
            runtime.spawn(async move {
                // A failure is repaired by the next refresh.
                store::watching_ended(db.pool(), instance, user_id, room_id)
                    .await
                    .ok();
            });
        }
    }
}
