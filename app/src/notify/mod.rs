//! Notifications: what each user must know, written from the event stream by the consumer
//! ([`consumer`], the rules of who is told what in [`rules`]) and read, marked and muted by
//! their user here.

pub mod consumer;
pub mod dead_letters;
pub mod live;
pub mod mail;
pub mod rules;

use crate::AppError;
use fishapp_domain::notify::NotificationKind;
use fishapp_store::Database;
use fishapp_store::notify::{self as store, NotificationRow};

pub use consumer::{NotifierMetrics, NotifierSettings};
pub use live::LiveNotifications;
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
                    Ok(ids) => ids,
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
        Ok(store::mark_read(self.db.pool(), user_id, ids).await?)
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
