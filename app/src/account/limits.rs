//! Short-lived security state in Redis: the ID-token denylist and sign-in throttling.
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

/// Sign-in throttling. A client (address) that keeps getting one account's password wrong is
/// slowed down, not the account: after `failures_before_delay` wrong tries each further try
/// from that client waits, one second and doubling up to `max_delay`. Anyone else, the owner
/// included, signs in as usual. A client address that fails on many accounts is stopped by
/// `max_failures_per_ip` per `window`.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub failures_before_delay: u32,
    pub max_delay: Duration,
    pub max_failures_per_ip: u32,
    pub window: Duration,
}

/// Checks and counts in one step (a Redis script), before the password is hashed: an attempt
/// counts as a failure from the start and is taken back when it turns out right, so parallel
/// guesses cannot pass the check together and all be counted after it.
///
/// KEYS: the account+client record (a hash), the client's failure counter. ARGV: failures
/// before the delay, longest delay (ms), failures per client, window (ms). Returns `{0, 0}` when
/// the attempt may go on, else `{1 (this account from this client) | 2 (this client), wait ms}`.
const ATTEMPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local not_before = tonumber(redis.call('HGET', KEYS[1], 'not_before') or '0')
if now < not_before then return {1, not_before - now} end
local client_failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if client_failures >= tonumber(ARGV[3]) then
  return {2, math.max(redis.call('PTTL', KEYS[2]), 1)}
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local free = tonumber(ARGV[1])
local delay = 0
if failures >= free then
  delay = math.floor(math.min(1000 * 2 ^ math.min(failures - free, 40), tonumber(ARGV[2])))
end
redis.call('HSET', KEYS[1], 'not_before', now + delay)
redis.call('PEXPIRE', KEYS[1], delay + tonumber(ARGV[4]))
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return {0, 0}
";

/// A right password: the account+client record goes, and the client's counter gets this
/// attempt back (when the window that counted it still runs; DECR would otherwise create a
/// counter without expiry).
const SUCCEEDED: &str = r"
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
return 0
";

#[derive(Clone)]
pub struct LoginLimiter {
    redis: Redis,
    prefix: String,
    limits: LoginLimits,
}

/// One admitted sign-in attempt: what to take back if the password was right.
#[derive(Debug)]
pub struct Attempt {
    pair_key: String,
    client_key: String,
}

/// Why an attempt was not admitted.
#[derive(Debug)]
pub enum Refused {
    /// Try again in this many seconds.
    Wait(u64),
    Unavailable(redis::RedisError),
}

impl LoginLimiter {
    pub fn new(redis: Redis, prefix: &str, limits: LoginLimits) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            limits,
        }
    }

    /// Keyed on a hash of the normalized email (no addresses in Redis) and the client's
    /// network ([`limit_key`]).
    fn pair_key(&self, account: &str, client: IpAddr) -> String {
        let digest = Sha256::digest(account.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!(
            "{}:login-failures:pair:{hex}:{}",
            self.prefix,
            limit_key(client)
        )
    }

    fn client_key(&self, client: IpAddr) -> String {
        format!("{}:login-failures:ip:{}", self.prefix, limit_key(client))
    }

    /// Admits and counts one attempt, or says how long this client must wait.
    pub async fn attempt(&self, account: &str, client: IpAddr) -> Result<Attempt, Refused> {
        let attempt = Attempt {
            pair_key: self.pair_key(account, client),
            client_key: self.client_key(client),
        };
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self
            .redis
            .connection()
            .await
            .map_err(Refused::Unavailable)?;
        let (verdict, wait_ms): (u8, u64) = redis::cmd("EVAL")
            .arg(ATTEMPT)
            .arg(2)
            .arg(&attempt.pair_key)
            .arg(&attempt.client_key)
            .arg(self.limits.failures_before_delay)
            .arg(millis(self.limits.max_delay))
            .arg(self.limits.max_failures_per_ip)
            .arg(millis(self.limits.window))
            .query_async(&mut connection)
            .await
            .map_err(Refused::Unavailable)?;
        match verdict {
            0 => Ok(attempt),
            _ => Err(Refused::Wait(wait_ms.div_ceil(1000).max(1))),
        }
    }

    /// The password was right: this client starts afresh on this account.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), redis::RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::cmd("EVAL")
            .arg(SUCCEEDED)
            .arg(2)
            .arg(attempt.pair_key)
            .arg(attempt.client_key)
            .query_async::<()>(&mut connection)
            .await
    }
}

/// What per-client limits count by: an IPv4 address, or the /64 network of an IPv6 address (one
/// subscriber's: a client picks any address in it at will).
pub fn limit_key(client: IpAddr) -> String {
    match client.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limit_key(a), "2001:db8:1:2::/64");
        assert_eq!(limit_key(a), limit_key(b));
        assert_ne!(limit_key(a), limit_key(other));
    }

    #[test]
    fn ipv4_clients_count_by_address_even_when_mapped() {
        let plain: IpAddr = "203.0.113.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(limit_key(plain), "203.0.113.7");
        assert_eq!(limit_key(mapped), "203.0.113.7");
    }
}
