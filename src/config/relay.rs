//! The outbox relay: the stream it publishes to and how it works the outbox.

use super::checks::at_least_one;
use super::keys::{Invalid, config_group};
use std::net::SocketAddr;

config_group! {
    pub struct Relay {
        title: "Outbox relay",
        about: "The JetStream stream every domain event goes to, and how `fishapp relay` (or `dev`) publishes and prunes the outbox.",
        relay_stream: String = "FISHAPP".to_owned(),
            "the JetStream stream every event goes to (created, or updated to the limits below, whenever a relay becomes the leader); owned by one deployment (database): a relay of another refuses it, so deployments sharing a NATS need a stream and prefix each";
        relay_subject_prefix: String = "fishapp".to_owned(),
            "subjects are `<prefix>.<event type>`; the stream takes `<prefix>.>`";
        relay_duplicate_window_secs: u64 = 120,
            "JetStream drops a republished event id within this window (covers a relay crash between publishing and marking; the server keeps the ids of the window in memory)";
        relay_stream_max_age_secs: u64 = 7 * 24 * 3_600,
            "events older than this leave the stream";
        relay_stream_max_bytes: i64 = 1024 * 1024 * 1024,
            "the stream's size; past it the oldest events are discarded";
        relay_stream_max_message_bytes: i32 = 1024 * 1024,
            "largest event; a larger one is refused for good (a failed outbox row, see the runbook)";
        relay_stream_replicas: usize = 1,
            "copies of the stream in a NATS cluster (file storage always)";
        relay_batch_size: i64 = 500,
            "outbox rows read, locked and published per batch (1–5000)";
        relay_poll_interval_ms: u64 = 5_000,
            "safety-net poll; new events wake the relay at once through `NOTIFY outbox_events`";
        relay_standby_retry_ms: u64 = 1_000,
            "how often a standby relay tries to take the leadership (so: how soon it takes over)";
        relay_max_backoff_ms: u64 = 30_000,
            "longest pause between retries of an unacknowledged publish (from 100 ms, doubling)";
        relay_retention_secs: u64 = 7 * 24 * 3_600,
            "published outbox events are deleted once written this long ago (at least a day, and at least the duplicate window); unpublished ones are kept";
        relay_prune_interval_secs: u64 = 300,
            "how often the leader prunes (batches of 1000 rows, no long locks)";
        relay_stall_threshold_secs: u64 = 60,
            "`/readyz` reports the relay `stalled` once an event has waited this long";
        relay_http_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8081)),
            "where `fishapp relay` serves `/healthz` and `/metrics` (`fishapp dev` serves the relay's metrics on the API's `/metrics`)";
    }
}

impl Relay {
    fn check(&self) -> Result<(), Invalid> {
        let name = &self.relay_stream;
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || ".*>/\\".contains(c))
        {
            return Err((
                "relay_stream",
                "must be non-empty, without spaces, '.', '*', '>', '/' or '\\'".to_owned(),
            ));
        }
        let prefix = &self.relay_subject_prefix;
        if prefix.split('.').any(|token| {
            token.is_empty()
                || token
                    .chars()
                    .any(|c| c.is_whitespace() || c == '*' || c == '>')
        }) {
            return Err((
                "relay_subject_prefix",
                "must be dot-separated non-empty tokens without spaces or wildcards".to_owned(),
            ));
        }
        // The JetStream client allows this many acknowledgements in flight; a batch's first
        // wave may be all of it.
        if !(1..=5_000).contains(&self.relay_batch_size) {
            return Err(("relay_batch_size", "must be between 1 and 5000".to_owned()));
        }
        at_least_one(&[
            (
                "relay_duplicate_window_secs",
                self.relay_duplicate_window_secs,
            ),
            ("relay_stream_max_age_secs", self.relay_stream_max_age_secs),
            ("relay_poll_interval_ms", self.relay_poll_interval_ms),
            ("relay_standby_retry_ms", self.relay_standby_retry_ms),
            ("relay_max_backoff_ms", self.relay_max_backoff_ms),
            ("relay_prune_interval_secs", self.relay_prune_interval_secs),
            (
                "relay_stall_threshold_secs",
                self.relay_stall_threshold_secs,
            ),
            ("relay_stream_replicas", self.relay_stream_replicas as u64),
        ])?;
        if self.relay_stream_max_bytes < 1 || self.relay_stream_max_message_bytes < 1 {
            return Err((
                "relay_stream_max_bytes",
                "the stream's limits must be positive".to_owned(),
            ));
        }
        // A compensation decides from the outbox whether its event was already published.
        if self.relay_retention_secs < 24 * 3_600
            || self.relay_retention_secs < self.relay_duplicate_window_secs
        {
            return Err((
                "relay_retention_secs",
                "must be at least a day and at least the duplicate window".to_owned(),
            ));
        }
        Ok(())
    }
}
