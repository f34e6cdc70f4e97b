//! Short-lived security state in Redis: the ID-token denylist and the failed-login counters.
//! Both fail closed: when Redis cannot answer, the request gets UNAVAILABLE rather than a pass.

use crate::cache::Redis;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::time::Duration;
use uuid::Uuid;

/// ID tokens that must stop working before they expire: one token (`jti`, on logout) or every
/// token of a sign-in (`fid`, when its refresh-token family is revoked). Entries live as long as
/// an ID token can, then vanish by themselves.
#[derive(Clone)]
pub struct Denylist {
    redis: Redis,
    prefix: String,
    ttl: Duration,
}

impl Denylist {
    pub fn new(redis: Redis, prefix: &str, id_token_ttl: Duration) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            ttl: id_token_ttl,
        }
    }

    fn token_key(&self, jti: Uuid) -> String {
        format!("{}:deny:jti:{jti}", self.prefix)
    }

    fn family_key(&self, fid: Uuid) -> String {
        format!("{}:deny:fid:{fid}", self.prefix)
    }

    pub async fn deny(
        &self,
        jti: Option<Uuid>,
        families: &[Uuid],
    ) -> Result<(), redis::RedisError> {
        let mut pipe = redis::pipe();
        let ttl = self.ttl.as_secs().max(1);
        for key in jti
            .iter()
            .map(|j| self.token_key(*j))
            .chain(families.iter().map(|f| self.family_key(*f)))
        {
            pipe.set_ex(key, 1, ttl).ignore();
        }
        let mut connection = self.redis.connection().await?;
        pipe.query_async::<()>(&mut connection).await
    }

    pub async fn is_denied(&self, jti: Uuid, fid: Uuid) -> Result<bool, redis::RedisError> {
        let mut connection = self.redis.connection().await?;
        let found: u32 = redis::cmd("EXISTS")
            .arg(self.token_key(jti))
            .arg(self.family_key(fid))
            .query_async(&mut connection)
            .await?;
        Ok(found > 0)
    }
}

/// Failed-login limits, per account and per client address, in fixed windows.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub max_failures_per_account: u32,
    pub max_failures_per_ip: u32,
    pub window: Duration,
}

#[derive(Clone)]
pub struct LoginLimiter {
    redis: Redis,
    prefix: String,
    limits: LoginLimits,
}

impl LoginLimiter {
    pub fn new(redis: Redis, prefix: &str, limits: LoginLimits) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            limits,
        }
    }

    /// Keyed on a hash of the normalized email: no addresses in Redis.
    fn account_key(&self, account: &str) -> String {
        let digest = Sha256::digest(account.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{}:login-failures:account:{hex}", self.prefix)
    }

    fn ip_key(&self, ip: IpAddr) -> String {
        format!("{}:login-failures:ip:{ip}", self.prefix)
    }

    /// `Some(seconds to wait)` when either limit is reached.
    pub async fn blocked_for(
        &self,
        account: &str,
        ip: IpAddr,
    ) -> Result<Option<u64>, redis::RedisError> {
        let mut connection = self.redis.connection().await?;
        let (account_failures, account_ttl, ip_failures, ip_ttl): (
            Option<u32>,
            i64,
            Option<u32>,
            i64,
        ) = redis::pipe()
            .get(self.account_key(account))
            .ttl(self.account_key(account))
            .get(self.ip_key(ip))
            .ttl(self.ip_key(ip))
            .query_async(&mut connection)
            .await?;
        let wait = |failures: Option<u32>, max: u32, ttl: i64| {
            (failures.unwrap_or(0) >= max).then(|| u64::try_from(ttl.max(1)).unwrap_or(1))
        };
        Ok(wait(
            account_failures,
            self.limits.max_failures_per_account,
            account_ttl,
        )
        .max(wait(ip_failures, self.limits.max_failures_per_ip, ip_ttl)))
    }

    pub async fn record_failure(&self, account: &str, ip: IpAddr) -> Result<(), redis::RedisError> {
        let window = self.limits.window.as_secs().max(1);
        let mut pipe = redis::pipe();
        for key in [self.account_key(account), self.ip_key(ip)] {
            // The window starts at the first failure: SET … NX EX creates the counter with its
            // expiry only when absent (works on every Redis version, unlike EXPIRE … NX).
            pipe.cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("EX")
                .arg(window)
                .arg("NX")
                .ignore();
            pipe.incr(&key, 1).ignore();
        }
        let mut connection = self.redis.connection().await?;
        pipe.query_async::<()>(&mut connection).await
    }

    pub async fn clear_account(&self, account: &str) -> Result<(), redis::RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::cmd("DEL")
            .arg(self.account_key(account))
            .query_async::<()>(&mut connection)
            .await
    }
}
