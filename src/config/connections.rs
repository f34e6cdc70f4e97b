//! Where the backing services are: Postgres, Redis, NATS.

use super::checks::{at_least_one, check_url, not_blank};
use super::keys::{Invalid, config_group};

config_group! {
    pub struct Connections {
        title: "Connections",
        about: "Postgres (the data and the outbox), Redis (rate limits, the token denylist) and NATS with JetStream (domain events). Every URL may carry credentials: `fishapp config` prints them redacted.",
        database_url: String = "postgres://postgres@127.0.0.1:5432/fishapp".to_owned(),
            "Postgres; the database is created by `fishapp migrate` when missing (secret: password redacted in `config`)";
        database_max_connections: u32 = 10,
            "pool size per process";
        database_ping_idle_after_ms: u64 = 1_000,
            "a pooled connection idle longer than this is pinged before use (every connection is also pinged when returned); `0` pings before every use";
        redis_url: String = "redis://127.0.0.1:6379".to_owned(),
            "Redis (secret)";
        redis_key_prefix: String = "fishapp".to_owned(),
            "prefix of every Redis key Fishapp writes";
        nats_url: String = "nats://127.0.0.1:4222".to_owned(),
            "NATS with JetStream (secret)";
    }
}

impl Connections {
    fn check(&self) -> Result<(), Invalid> {
        check_url(
            "database_url",
            &self.database_url,
            &["postgres", "postgresql"],
        )?;
        check_url(
            "redis_url",
            &self.redis_url,
            &["redis", "rediss", "redis+unix", "unix"],
        )?;
        check_url("nats_url", &self.nats_url, &["nats", "tls", "ws", "wss"])?;
        at_least_one(&[(
            "database_max_connections",
            self.database_max_connections.into(),
        )])?;
        not_blank(&[("redis_key_prefix", &self.redis_key_prefix)])
    }
}
