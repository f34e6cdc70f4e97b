//! Notifications by e-mail, the second channel: off unless a user asks for it and confirms from
//! the mailbox (so nobody can send Fishapp's mail to an address they do not read), then one
//! digest at a time — at most one mail per user per `interval`, sent once its newest news has
//! waited `delay`, listing every unread notification not mailed yet — so a busy room is one line
//! ("12 new messages"), not a mail per message.
//!
//! At least once: a digest is recorded as sent in the transaction that chose it, after the SMTP
//! server took it; a notifier killed in between sends it again. A notification read in the app
//! before its digest goes is not mailed.

use super::Notifications;
use crate::AppError;
use crate::account::tokens::{new_opaque_token, opaque_token_hash};
use crate::cache::WindowLimiter;
use fishapp_domain::board::trip_time_zone;
use fishapp_domain::notify::NotificationKind;
use fishapp_mail::{Mail, MailError, Mailer};
use fishapp_store::Database;
use fishapp_store::notify::{self as store, DigestDue, DigestItem, MailState};
use prometheus::{IntCounterVec, Opts, Registry};
use std::time::Duration;

/// Lines one digest lists; more stay for the next.
const DIGEST_ITEMS: i64 = 50;
/// Digests one pass sends before it sleeps again (each its own short transaction).
const DIGESTS_PER_PASS: usize = 200;

/// What a user's request for the channel needs.
#[derive(Clone)]
pub struct MailChannel {
    pub mailer: Mailer,
    /// Requests per user per day.
    pub requests: WindowLimiter,
    /// The confirmation link (`{token}` is replaced): a front-end page that calls
    /// `confirmNotificationEmail`.
    pub confirm_url: String,
    pub token_ttl: Duration,
}

/// When digests go.
#[derive(Debug, Clone, Copy)]
pub struct DigestSettings {
    pub interval: Duration,
    pub delay: Duration,
    pub poll: Duration,
}

impl Notifications {
    /// Whether `user_id`'s notifications go by mail too.
    pub async fn mail_state(&self, user_id: i64) -> Result<MailState, AppError> {
        Ok(store::mail_state(self.db.pool(), user_id).await?)
    }

    /// Asks for the channel at the account's address: a confirmation mail goes there, and
    /// nothing is mailed until someone reading that mailbox confirms. Limited per user.
    pub async fn request_mail(&self, user_id: i64) -> Result<MailState, AppError> {
        let channel = &self.mail;
        if !channel.mailer.is_on() {
            return Err(AppError::Unavailable(
                "notifications cannot be mailed here: this server sends no mail".to_owned(),
            ));
        }
        channel.requests.check(&user_id.to_string()).await?;
        let user = fishapp_store::account::user_by_id(self.db.pool(), user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("user not found".to_owned()))?;
        let token = new_opaque_token();
        let ttl =
            chrono::Duration::from_std(channel.token_ttl).unwrap_or(chrono::Duration::days(1));
        store::request_mail(
            self.db.pool(),
            user_id,
            &user.email,
            &opaque_token_hash(&token),
            chrono::Utc::now() + ttl,
        )
        .await?;
        let link = channel.confirm_url.replace("{token}", &token);
        channel
            .mailer
            .send(&confirm_channel(&user.email, &user.name, &link, ttl))
            .await
            .map_err(|e| {
                tracing::warn!(user_id, error = %e, "the channel's confirmation mail was not sent");
                AppError::Unavailable(
                    "the confirmation mail could not be sent; try again shortly".to_owned(),
                )
            })?;
        Ok(MailState::Pending)
    }

    /// Turns the channel on for whoever holds the mailed token (the proof of the mailbox; no
    /// sign-in needed).
    pub async fn confirm_mail(&self, token: &str) -> Result<MailState, AppError> {
        let token_hash = crate::account::confirmation_hash(token)?;
        match store::confirm_mail(self.db.pool(), &token_hash).await? {
            Some(user_id) => {
                tracing::info!(user_id, "notifications by mail confirmed");
                Ok(MailState::On)
            }
            None => Err(crate::account::unknown_confirmation()),
        }
    }

    /// Turns the channel off (a pending request included).
    pub async fn disable_mail(&self, user_id: i64) -> Result<MailState, AppError> {
        store::disable_mail(self.db.pool(), user_id).await?;
        Ok(MailState::Off)
    }
}

/// `notify_mails_total{outcome=sent|failed|refused}`.
#[derive(Clone)]
pub struct DigestMetrics {
    mails: IntCounterVec,
}

impl DigestMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let mails = IntCounterVec::new(
            Opts::new(
                "notify_mails_total",
                "notification digests: sent, failed (tried again later) or refused for good",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(mails.clone()))?;
        Ok(Self { mails })
    }
}

/// Sends the digests that are due, every `poll`, forever (the caller ends it).
pub async fn send_digests(
    db: &Database,
    mailer: &Mailer,
    settings: DigestSettings,
    metrics: &DigestMetrics,
) {
    let mut interval = tokio::time::interval(settings.poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        for _ in 0..DIGESTS_PER_PASS {
            match send_next(db, mailer, settings).await {
                Ok(Some(outcome)) => metrics.mails.with_label_values(&[outcome]).inc(),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "notifier: cannot send digests; next time");
                    break;
                }
            }
        }
    }
}

/// Sends one due digest, if there is one; returns its outcome.
async fn send_next(
    db: &Database,
    mailer: &Mailer,
    settings: DigestSettings,
) -> Result<Option<&'static str>, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let Some(due) = store::next_digest(&mut tx, settings.interval, settings.delay).await? else {
        return Ok(None);
    };
    let items = store::digest_items(&mut tx, due.user_id, DIGEST_ITEMS).await?;
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let outcome = match mailer.send(&digest(&due, &items)).await {
        Ok(()) => "sent",
        // The address or the mail is refused for good: recorded as sent, or it would be tried
        // at every pass.
        Err(e @ (MailError::Refused(_) | MailError::Address(_))) => {
            tracing::warn!(user_id = due.user_id, error = %e, "notifier: a digest was refused");
            "refused"
        }
        Err(e) => {
            tracing::warn!(user_id = due.user_id, error = %e, "notifier: a digest was not sent");
            // Leaves it due; the next pass tries again (the other users go first: it is locked
            // until this transaction ends, and the pass ends here).
            tx.rollback().await?;
            return Ok(Some("failed"));
        }
    };
    store::digest_sent(&mut tx, due.user_id, &ids).await?;
    tx.commit().await?;
    Ok(Some(outcome))
}

/// To the account's address: the link that turns the channel on.
fn confirm_channel(to: &str, name: &str, link: &str, valid_for: chrono::Duration) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Confirm Fishapp notifications by e-mail".to_owned(),
        text: format!(
            "Hello {name},\n\n\
             someone (we hope you) asked for Fishapp's notifications to be mailed to this \
             address. Open this link to confirm; until then nothing is mailed:\n\n\
             {link}\n\n\
             The link works once, for {hours} hours. If you did not ask for this, ignore this \
             mail: nothing changes.\n",
            hours = valid_for.num_hours().max(1)
        ),
    }
}

/// One mail listing `items` (oldest first).
fn digest(due: &DigestDue, items: &[DigestItem]) -> Mail {
    let lines: Vec<String> = items.iter().map(line).collect();
    let subject = match items {
        [one] => format!("Fishapp: {}", line(one)),
        _ => format!("Fishapp: {} updates on your trips", items.len()),
    };
    Mail {
        to: due.address.clone(),
        subject,
        text: format!(
            "Hello {name},\n\nsince we last wrote:\n\n{lines}\n\n\
             Open Fishapp to read them. To stop these mails, turn e-mail off in your \
             notification settings.\n",
            name = due.name,
            lines = lines
                .iter()
                .map(|l| format!("- {l}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

/// A notification in words, with its trip's title and (where known) time.
fn line(item: &DigestItem) -> String {
    let trip = match item.meeting_at {
        Some(at) => format!(
            "\"{}\" ({})",
            item.title,
            at.with_timezone(&trip_time_zone())
                .format("%a %-d %b %Y, %H:%M Japan time")
        ),
        None => format!("\"{}\"", item.title),
    };
    match item.kind {
        NotificationKind::Applied => format!("someone applied to your trip {trip}"),
        NotificationKind::Withdrew => format!("someone withdrew from your trip {trip}"),
        NotificationKind::RequestAccepted => format!("your request to join {trip} was accepted"),
        NotificationKind::RequestDeclined => format!("your request to join {trip} was declined"),
        NotificationKind::RequestExpired => {
            format!("your request to join {trip} expired unanswered")
        }
        NotificationKind::Promoted => format!("a seat freed up: you are now on {trip}"),
        NotificationKind::Removed => format!("the organiser removed you from {trip}"),
        NotificationKind::TripReminder => format!("reminder: {trip} is soon"),
        NotificationKind::TripChanged => format!("{trip} changed its time or place"),
        NotificationKind::TripCancelled => format!("{trip} was cancelled"),
        NotificationKind::TripCompleted => format!("{trip} is over: its members may now review it"),
        NotificationKind::TripReviewed => format!("a member reviewed your trip {trip}"),
        NotificationKind::NewMessages if item.count == 1 => format!("a new message in {trip}"),
        NotificationKind::NewMessages => format!("{} new messages in {trip}", item.count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn item(kind: NotificationKind, count: i32) -> DigestItem {
        DigestItem {
            id: 1,
            kind,
            title: "Sea bass at dawn".to_owned(),
            count,
            meeting_at: Utc.with_ymd_and_hms(2026, 12, 5, 21, 30, 0).single(),
        }
    }

    #[test]
    fn a_digest_names_the_trip_and_its_time_in_japan() {
        let due = DigestDue {
            user_id: 1,
            address: "angler@example.com".to_owned(),
            name: "Aki".to_owned(),
        };
        let one = digest(&due, &[item(NotificationKind::NewMessages, 12)]);
        assert_eq!(
            one.subject,
            "Fishapp: 12 new messages in \"Sea bass at dawn\" (Sun 6 Dec 2026, 06:30 Japan time)"
        );
        let two = digest(
            &due,
            &[
                item(NotificationKind::Applied, 1),
                item(NotificationKind::NewMessages, 1),
            ],
        );
        assert_eq!(two.subject, "Fishapp: 2 updates on your trips");
        assert!(two.text.contains("Hello Aki"), "{}", two.text);
        assert!(
            two.text
                .contains("- someone applied to your trip \"Sea bass at dawn\""),
            "{}",
            two.text
        );
        assert!(two.text.contains("- a new message in"), "{}", two.text);
        let gone = DigestItem {
            meeting_at: None,
            ..item(NotificationKind::TripCancelled, 1)
        };
        assert_eq!(line(&gone), "\"Sea bass at dawn\" was cancelled");
    }
}
