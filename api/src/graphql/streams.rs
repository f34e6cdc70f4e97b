//! Caps on live subscriptions. Each one holds server resources for as long as it is open (a
//! task, a JetStream consumer or a Temporal long-poll), so one connection and one user may hold
//! only so many. A subscription past a cap is refused at its start with CONFLICT and
//! `extensions.reason = "TOO_MANY_SUBSCRIPTIONS"`; the connection and its other subscriptions
//! go on.

use crate::error::AppError;
use async_graphql::Context;
use fishapp_app::account::Viewer;
use fishapp_domain::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const REASON: &str = "TOO_MANY_SUBSCRIPTIONS";

/// The caps, and the count of open subscriptions per user (in this API process: a user's
/// connections to several replicas count separately).
#[derive(Clone, Debug)]
pub struct StreamCaps {
    pub per_connection: usize,
    pub per_user: usize,
    open: Arc<Mutex<HashMap<i64, usize>>>,
}

impl StreamCaps {
    pub fn new(per_connection: usize, per_user: usize) -> Self {
        Self {
            per_connection,
            per_user,
            open: Arc::default(),
        }
    }

    /// What one WebSocket connection may hold (put in its connection data).
    pub(crate) fn for_connection(&self) -> ConnectionStreams {
        ConnectionStreams(Arc::new(Semaphore::new(self.per_connection)))
    }

    fn open_for(&self, user_id: i64) -> Result<UserStream, AppError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user_id).or_default();
        if *count >= self.per_user {
            return Err(too_many(format!(
                "you have {} subscriptions open; stop one first",
                self.per_user
            )));
        }
        *count += 1;
        Ok(UserStream {
            open: self.open.clone(),
            user_id,
        })
    }
}

/// One connection's share of subscriptions.
pub(crate) struct ConnectionStreams(Arc<Semaphore>);

/// A subscription's place under the caps, given back when the subscription's stream is dropped
/// (completed, stopped by the client, or its connection closed).
pub(crate) struct StreamPermit {
    _connection: Option<OwnedSemaphorePermit>,
    _user: UserStream,
}

struct UserStream {
    open: Arc<Mutex<HashMap<i64, usize>>>,
    user_id: i64,
}

impl Drop for UserStream {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// Takes the subscription's place under both caps, before it starts any work.
pub(crate) fn open_stream(ctx: &Context<'_>, viewer: &Viewer) -> Result<StreamPermit, AppError> {
    let caps = ctx.data_unchecked::<StreamCaps>();
    let connection = match ctx.data_opt::<ConnectionStreams>() {
        Some(ConnectionStreams(permits)) => {
            Some(permits.clone().try_acquire_owned().map_err(|_| {
                too_many(format!(
                    "this connection has {} subscriptions open; stop one first",
                    caps.per_connection
                ))
            })?)
        }
        None => None,
    };
    Ok(StreamPermit {
        _connection: connection,
        _user: caps.open_for(viewer.user_id)?,
    })
}

fn too_many(message: String) -> AppError {
    AppError::Refused {
        code: ErrorCode::Conflict,
        reason: REASON,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_places_back_when_streams_end() {
        let caps = StreamCaps::new(5, 2);
        let first = caps.open_for(7).expect("first");
        let _second = caps.open_for(7).expect("second");
        assert!(caps.open_for(7).is_err(), "a third is over the cap");
        assert!(
            caps.open_for(8).is_ok(),
            "another user has places of their own"
        );
        drop(first);
        assert!(caps.open_for(7).is_ok(), "a place came back");
    }
}
