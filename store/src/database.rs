//! The connection pool, and creating the database itself when it does not exist yet.

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// How long a request waits for a pooled connection before it gives up: long enough to ride out
/// a burst, short enough that a dead database turns into a quick, clear error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A pooled connection idle longer than this is pinged before it is handed out (see
/// [`Database::connect_lazy_with`]).
pub const DEFAULT_PING_IDLE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("invalid database url: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("database unreachable: {0}")]
    Unreachable(#[source] sqlx::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// A handle to Fishapp's database: a lazily connecting pool. Creating one never touches the
/// network, so the process starts (and serves what it can) while Postgres is still down.
#[derive(Clone, Debug)]
pub struct Database {
    pool: PgPool,
}

impl Database {
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self, DatabaseError> {
        Self::connect_lazy_with(url, max_connections, DEFAULT_PING_IDLE_AFTER)
    }

    /// Like [`Database::connect_lazy`], pinging a connection before it is handed out only when
    /// it sat idle longer than `ping_idle_after` (`ZERO`: before every use, sqlx's default).
    ///
    /// Why not always: sqlx already pings every connection when it is returned (that cannot be
    /// turned off), so one returned a moment ago is known to work; the second ping per request
    /// was a round trip and ~12 % of a busy API's CPU. A connection that sat idle — through a
    /// database restart, a failover, a proxy's idle cut — is still tested before use, as
    /// HikariCP does with its 500 ms bypass window.
    pub fn connect_lazy_with(
        url: &str,
        max_connections: u32,
        ping_idle_after: Duration,
    ) -> Result<Self, DatabaseError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(DatabaseError::InvalidUrl)?
            // Statement logging would put user data into the logs; slow statements still show.
            .log_statements(log::LevelFilter::Trace)
            .log_slow_statements(log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > ping_idle_after || ping_idle_after.is_zero() {
                        // An error discards the connection; the pool opens another.
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A real round trip (`SELECT 1`), bounded by `timeout`: what readiness reports.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DatabaseError> {
        let query = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(timeout, query).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(DatabaseError::Unreachable(e)),
            Err(_) => Err(DatabaseError::Timeout(timeout)),
        }
    }

    /// Closes every pooled connection; waits for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the database named in `url` when it does not exist yet (connecting to the server's
/// maintenance database to do so). Returns whether it had to create it.
pub async fn create_database_if_missing(url: &str) -> Result<bool, DatabaseError> {
    if Postgres::database_exists(url)
        .await
        .map_err(DatabaseError::Unreachable)?
    {
        return Ok(false);
    }
    match Postgres::create_database(url).await {
        Ok(()) => Ok(true),
        // Two processes racing to create it: the loser finds it there, which is what it wanted.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Drops the database named in `url`, disconnecting its sessions first. For tests and tooling.
pub async fn drop_database(url: &str) -> Result<(), DatabaseError> {
    Postgres::force_drop_database(url).await?;
    Ok(())
}
