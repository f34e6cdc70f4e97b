//! Redis, for short-lived shared state (rate limits, token denylist).

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily connecting Redis handle. The first use connects; after that redis-rs's connection
/// manager reconnects by itself when the server comes back. Creating one never touches the
/// network, so the API starts while Redis is down.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: Arc<Mutex<Option<ConnectionManager>>>,
}

impl Redis {
    /// Parses the URL; does not connect.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            manager: Arc::default(),
        })
    }

    /// A multiplexed connection (cheap to clone; share it rather than holding the lock).
    pub async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let manager = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    /// A real round trip (`PING`), bounded by `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), String> {
        let round_trip = async {
            let mut connection = self.connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        match tokio::time::timeout(timeout, round_trip).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

/// A fixed-window counter per key in Redis: at most `max` takes per `window`. Counting comes
/// first (`INCR`), the verdict after, so parallel requests cannot slip past the limit together.
#[derive(Clone)]
pub struct WindowLimiter {
    redis: Redis,
    prefix: String,
    max: u32,
    window: Duration,
}

impl WindowLimiter {
    /// `prefix` names the limit in Redis (e.g. `<deployment>:chat-messages`).
    pub fn new(redis: Redis, prefix: String, max: u32, window: Duration) -> Self {
        Self {
            redis,
            prefix,
            max,
            window,
        }
    }

    /// Counts one take for `key`: `RATE_LIMITED` (with the seconds until the window ends) when it
    /// is over the limit, `UNAVAILABLE` when Redis does not answer (the limit fails closed).
    pub async fn check(&self, key: &str) -> Result<(), crate::error::AppError> {
        self.check_n(key, 1).await
    }

    /// Like [`WindowLimiter::check`], counting `n` takes at once (a request with `n` images).
    pub async fn check_n(&self, key: &str, n: u32) -> Result<(), crate::error::AppError> {
        match self.take_n(key, n).await {
            Ok(None) => Ok(()),
            Ok(Some(retry_after_seconds)) => Err(crate::error::AppError::RateLimited {
                retry_after_seconds,
            }),
            Err(e) => Err(crate::error::AppError::unavailable("the rate limiter", e)),
        }
    }

    /// Counts one take for `key`; `Some(seconds until the window ends)` when it is over the limit.
    pub async fn take(&self, key: &str) -> Result<Option<u64>, redis::RedisError> {
        self.take_n(key, 1).await
    }

    /// Counts `n` takes for `key`; `Some(seconds until the window ends)` when that puts it over
    /// the limit.
    pub async fn take_n(&self, key: &str, n: u32) -> Result<Option<u64>, redis::RedisError> {
        let key = format!("{}:{key}", self.prefix);
        let window = self.window.as_secs().max(1);
        let mut connection = self.connection().await?;
        // SET NX EX starts the window with the first take; INCR then counts this one.
        let (count, ttl): (u32, i64) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(0)
            .arg("EX")
            .arg(window)
            .arg("NX")
            .ignore()
            .incr(&key, n)
            .ttl(&key)
            .query_async(&mut connection)
            .await?;
        Ok((count > self.max).then(|| u64::try_from(ttl.max(1)).unwrap_or(1)))
    }

    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        self.redis.connection().await
    }
}
