//! The notifications consumer: its durable consumer on the event stream, retries, dead letters
//! and retention.

use super::checks::at_least_one;
use super::keys::{Invalid, config_group};
use std::net::SocketAddr;

config_group! {
    pub struct Notify {
        title: "Notifications",
        about: "How `fishapp notifier` (or `dev`) turns the event stream into users' notifications.",
        notify_consumer: String = "notifier".to_owned(),
            "the durable JetStream consumer on the relay's stream that every notifier replica shares (its position survives restarts)";
        notify_max_attempts: i64 = 5,
            "deliveries of one event before it goes to `notify.dead_letters` and the next ones go on";
        notify_concurrency: usize = 8,
            "events one notifier handles at once (each its own transaction: keep it within `database_max_connections`)";
        notify_retry_delay_ms: u64 = 2_000,
            "pause before an event that failed is delivered again";
        notify_ack_wait_secs: u64 = 30,
            "an event not acknowledged this long after delivery (a notifier that died) is delivered again";
        notify_retention_days: u64 = 90,
            "read notifications are deleted this long after they were read";
        notify_max_per_user: u32 = 1_000,
            "notifications kept per user, read or not: past it a prune deletes those changed longest ago (what other people cause cannot grow one user's list without bound)";
        notify_prune_interval_secs: u64 = 3_600,
            "how often a notifier prunes (batches of 1000 rows)";
        notify_mail_confirm_url: String = "http://localhost:3000/confirm-notification-email?token={token}".to_owned(),
            "the link the mail that confirms notifications by e-mail carries (`{token}` is replaced): a front-end page that calls `confirmNotificationEmail`";
        notify_mail_token_ttl_secs: u64 = 24 * 3_600,
            "how long that confirmation can be made";
        notify_mail_requests_per_day: u32 = 5,
            "confirmation mails one user may ask for per day; more is `RATE_LIMITED`";
        notify_mail_interval_secs: u64 = 900,
            "at most one notification mail (a digest of everything unread and not mailed yet) per user this often";
        notify_mail_delay_secs: u64 = 300,
            "a digest goes once its oldest news has waited this long, so a burst (a busy room) is one mail";
        notify_mail_poll_secs: u64 = 30,
            "how often a notifier looks for digests that are due (replicas share the work)";
        notify_http_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8084)),
            "where `fishapp notifier` serves `/healthz` and `/metrics` (`fishapp dev` serves its metrics on the API's `/metrics`)";
    }
}

impl Notify {
    fn check(&self) -> Result<(), Invalid> {
        let name = &self.notify_consumer;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                "notify_consumer",
                "must be 1–64 letters, digits, '-' or '_'".to_owned(),
            ));
        }
        if !(1..=256).contains(&self.notify_concurrency) {
            return Err(("notify_concurrency", "must be 1 to 256".to_owned()));
        }
        if !(1..=100).contains(&self.notify_max_attempts) {
            return Err(("notify_max_attempts", "must be 1 to 100".to_owned()));
        }
        at_least_one(&[
            ("notify_ack_wait_secs", self.notify_ack_wait_secs),
            ("notify_retention_days", self.notify_retention_days),
            ("notify_max_per_user", u64::from(self.notify_max_per_user)),
            (
                "notify_prune_interval_secs",
                self.notify_prune_interval_secs,
            ),
            (
                "notify_mail_token_ttl_secs",
                self.notify_mail_token_ttl_secs,
            ),
            (
                "notify_mail_requests_per_day",
                self.notify_mail_requests_per_day.into(),
            ),
            ("notify_mail_poll_secs", self.notify_mail_poll_secs),
        ])?;
        if !self.notify_mail_confirm_url.contains("{token}") {
            return Err(("notify_mail_confirm_url", "must contain {token}".to_owned()));
        }
        Ok(())
    }
}
