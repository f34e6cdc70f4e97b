//! Notifications: what each user must know, written from the event stream by the consumer
//! ([`consumer`], the rules of who is told what in [`rules`]) and read, marked and muted by
//! their user here.

pub mod consumer;
pub mod dead_letters;
pub mod live;
pub mod mail;
pub mod rules;

use crate::AppError;
use fishapp_domain::events::{Event, NotificationsReadData};
use fishapp_domain::notify::NotificationKind;
use fishapp_store::Database;
use fishapp_store::notify::{self as store, NotificationRow};

pub use consumer::{NotifierMetrics, NotifierSettings};
pub use live::{Change, LiveNotifications};
pub use mail::{DigestSettings, MailChannel};

/// Ids one `markNotificationsRead` may name.
pub const MAX_MARKED_IDS: usize = 100;

/// A user's notifications.
#[derive(Clone)]
pub struct Notifications {
    db: Database,
    live: LiveNotifications,
    mail: MailChannel,
}

impl Notifications {
    pub fn new(db: Database, live: LiveNotifications, mail: MailChannel) -> Self {
        Self { db, live, mail }
    }

    /// The user's notifications as they are written or grow (a NEW_MESSAGES again with its new
    /// count), from now on. A subscriber that falls far behind misses some live; they stay
    /// readable with [`Notifications::page`].
    pub fn follow(
        &self,
        user_id: i64,
    ) -> impl futures::Stream<Item = Result<NotificationRow, AppError>> + use<> {
        let state = (self.live.watch(user_id), self.db.clone(), Vec::new());
        futures::stream::unfold(state, move |(mut watch, db, mut ready)| async move {
            loop {
                if let Some(row) = ready.pop() {
                    return Some((Ok(row), (watch, db, ready)));
                }
                let ids = match watch.recv().await {
                    Ok(Change::Written(ids)) => ids,
                    Ok(Change::FewerUnread) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a notificationAdded subscriber fell behind");
                        continue;
                    }
                    // The process is shutting down.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                };
                match store::by_ids(db.pool(), user_id, &ids).await {
                    Ok(mut rows) => {
                        rows.reverse();
                        ready = rows;
                    }
                    Err(e) => return Some((Err(e.into()), (watch, db, ready))),
                }
            }
        })
    }

    /// The user's unread count now, then again each time it changes: a notification written
    /// or grown, or some read (on any device, through any API process). Changes that come in a
    /// burst are one read; a subscriber that falls behind reads the count afresh, so only the
    /// steps in between are missed, never the latest.
    pub fn follow_unread(
        &self,
        user_id: i64,
    ) -> impl futures::Stream<Item = Result<i64, AppError>> + use<> {
        struct State {
            watch: live::NotificationWatch,
            db: Database,
            last: Option<i64>,
            started: bool,
        }
        let state = State {
            watch: self.live.watch(user_id),
            db: self.db.clone(),
            last: None,
            started: false,
        };
        futures::stream::unfold(state, move |mut state| async move {
            loop {
                if state.started {
                    match state.watch.recv().await {
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        // The process is shutting down.
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                    state.watch.skip_waiting();
                }
                state.started = true;
                match store::unread_count(state.db.pool(), user_id).await {
                    Ok(count) if state.last == Some(count) => {}
                    Ok(count) => {
                        state.last = Some(count);
                        return Some((Ok(count), state));
                    }
                    Err(e) => return Some((Err(e.into()), state)),
                }
            }
        })
    }

    /// A page of `user_id`'s notifications, newest first by their last change, after `after` (the
    /// `recency` of the last one of an earlier page); one more than `limit` is read to tell
    /// whether a next page exists.
    pub async fn page(
        &self,
        user_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<NotificationRow>, bool), AppError> {
        let mut rows = store::page(self.db.pool(), user_id, after, limit + 1).await?;
        let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        Ok((rows, more))
    }

    pub async fn unread_count(&self, user_id: i64) -> Result<i64, AppError> {
        Ok(store::unread_count(self.db.pool(), user_id).await?)
    }

    /// Refuses more ids than one [`Notifications::mark_read`] takes (`field` names them); a
    /// transport asks before it parses them.
    pub fn check_marked_count(field: &str, count: usize) -> Result<(), AppError> {
        if count > MAX_MARKED_IDS {
            return Err(AppError::over_limit(
                field,
                "maxNotificationIds",
                format!("at most {MAX_MARKED_IDS} ids at once (or all: true)"),
            ));
        }
        Ok(())
    }

    /// Marks the user's notifications of `ids` read (ids of others' select nothing), or all of
    /// them. Returns how many changed.
    pub async fn mark_read(&self, user_id: i64, ids: Option<&[i64]>) -> Result<u64, AppError> {
        if let Some(ids) = ids {
            Self::check_marked_count("ids", ids.len())?;
        }
        let mut tx = self.db.pool().begin().await?;
        let marked = store::mark_read(&mut tx, user_id, ids).await?;
        announce_read(&mut tx, user_id, marked).await?;
        tx.commit().await?;
        Ok(marked)
    }

    pub async fn muted(&self, user_id: i64) -> Result<Vec<NotificationKind>, AppError> {
        Ok(store::muted(self.db.pool(), user_id).await?)
    }

    /// Mutes (or unmutes) a kind for the user; returns the kinds muted now.
    pub async fn set_muted(
        &self,
        user_id: i64,
        kind: NotificationKind,
        muted: bool,
    ) -> Result<Vec<NotificationKind>, AppError> {
        store::set_muted(self.db.pool(), user_id, kind, muted).await?;
        self.muted(user_id).await
    }
}

/// `user_id` opened `room_id` live (`messageAdded`): the room's unread NEW_MESSAGES, if any, is
/// read now — they are reading the messages it counts.
pub(crate) async fn room_opened(db: &Database, user_id: i64, room_id: i64) -> Result<(), AppError> {
    let mut tx = db.pool().begin().await?;
    let marked = store::room_opened(&mut tx, user_id, room_id).await?;
    announce_read(&mut tx, user_id, marked).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the notifications `keep` does not keep (at most `batch` rows, or users over their
/// cap, per kind of deletion) and, in the same transaction, tells the API processes whose
/// unread count dropped with them. Returns how many notifications went.
pub async fn prune(db: &Database, keep: store::Keep, batch: i64) -> Result<u64, AppError> {
    let mut tx = db.pool().begin().await?;
    let pruned = store::prune(&mut tx, keep, batch).await?;
    for &(user_id, count) in &pruned.unread_by_user {
        let data = NotificationsReadData { user_id, count };
        fishapp_store::outbox::append(&mut tx, &Event::notifications_pruned(&data)).await?;
    }
    tx.commit().await?;
    Ok(pruned.deleted)
}

/// Tells the API processes (through the outbox, in the marking's transaction) that `marked` of
/// the user's notifications became read, so their other devices' unread counts follow. Nothing
/// when none did: a repeated mark costs no event.
async fn announce_read(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: i64,
    marked: u64,
) -> Result<(), sqlx::Error> {
    if marked == 0 {
        return Ok(());
    }
    let data = NotificationsReadData {
        user_id,
        count: i64::try_from(marked).unwrap_or(i64::MAX),
    };
    fishapp_store::outbox::append(tx, &Event::notifications_read(&data)).await?;
    Ok(())
}
