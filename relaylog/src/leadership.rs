//! One active relay per database: the leader holds a session-level advisory lock on a dedicated
//! connection (not from a pool, which could hand the session to someone else or drop it). The
//! leader runs its batches on that same connection, so losing the connection — and with it the
//! lock — fails the next statement and the leader steps down; Postgres releases the lock the
//! moment the session ends, and a standby takes it on its next try.

use crate::RelaySettings;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The relay leader's advisory lock (single-key form): "fishrela".
const LEADER_LOCK: i64 = 0x6669_7368_7265_6c61;

/// `application_name` of the leader's connection (find it in `pg_stat_activity`).
pub(crate) const APPLICATION_NAME: &str = "fishapp-relay";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Proof of leadership: the connection that holds the lock.
pub(crate) struct Leadership(PgConnection);

impl Leadership {
    pub(crate) fn into_connection(self) -> PgConnection {
        self.0
    }
}

/// Waits until this process holds the leadership, or `None` on shutdown. A standby keeps its
/// connection between tries; a failed connection is made again on the next try.
pub(crate) async fn acquire(
    settings: &RelaySettings,
    shutdown: &CancellationToken,
) -> Option<Leadership> {
    let mut connection: Option<PgConnection> = None;
    let mut said_standby = false;
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        match try_lock(&settings.database_url, &mut connection).await {
            Ok(true) => return connection.take().map(Leadership),
            Ok(false) => {
                if !said_standby {
                    tracing::info!("outbox relay: another process is the leader; standing by");
                    said_standby = true;
                }
            }
            Err(e) => {
                connection = None;
                tracing::warn!(error = %e, "outbox relay cannot reach Postgres; retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(settings.standby_retry) => {}
        }
    }
}

async fn try_lock(url: &str, connection: &mut Option<PgConnection>) -> Result<bool, sqlx::Error> {
    if connection.is_none() {
        let options = PgConnectOptions::from_str(url)?.application_name(APPLICATION_NAME);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        *connection = Some(connected);
    }
    let Some(conn) = connection.as_mut() else {
        return Ok(false);
    };
    let locked = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(conn);
    tokio::time::timeout(CONNECT_TIMEOUT, locked)
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}
