//! The notifications consumer (`fishapp notifier`, also inside `fishapp dev`): a durable
//! JetStream pull consumer on every event subject of this deployment, shared by any number of
//! replicas (JetStream hands each event to one of them).
//!
//! At least once: an event is acknowledged only after its notifications committed; a crash
//! before the acknowledgement makes JetStream deliver it again (after `ack_wait`), and the
//! `notify.handled` record makes that second delivery write nothing. An event that fails is
//! delivered again after `retry_delay`; after `max_attempts` deliveries it goes to
//! `notify.dead_letters` and is acknowledged, so it never blocks the events after it.

use super::rules::{self, Handled, Taken};
use fishapp_store::Database;
use fishapp_store::notify::{self as store, DeadLetter};
use futures::TryStreamExt;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A new consumer starts this long before the process did (clocks of ours and the NATS server
/// that disagree): an event published just before is still handled; handling it twice cannot
/// happen.
const START_MARGIN: Duration = Duration::from_secs(5);
const PRUNE_BATCH: i64 = 1_000;

/// Where the events are and how the consumer treats them.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// The JetStream stream the outbox relay publishes to.
    pub stream: String,
    /// The relay's subject prefix: the consumer reads `<prefix>.>`.
    pub subject_prefix: String,
    /// The durable consumer's name, shared by every replica.
    pub consumer: String,
    /// Deliveries of one event before it goes to the dead letters.
    pub max_attempts: i64,
    /// Events handled at once.
    pub concurrency: usize,
    /// Pause before a failed event is delivered again.
    pub retry_delay: Duration,
    /// How long JetStream waits for an acknowledgement before delivering again.
    pub ack_wait: Duration,
    /// Read notifications are deleted once read this long ago.
    pub retention: Duration,
    /// Notifications kept per user, read or not; a prune deletes the oldest past it.
    pub max_per_user: i64,
    /// How long the outbox keeps published events (`RELAY_RETENTION_SECS`): within it, an
    /// event this database has no row of is one a restore took away, and is not handled.
    pub outbox_retention: Duration,
    /// The record of handled events is kept this long (at least the stream's age limit: an
    /// event cannot be redelivered after it left the stream).
    pub handled_retention: Duration,
    pub prune_interval: Duration,
    /// When notification digests are mailed (when mail is on).
    pub digests: super::DigestSettings,
}

/// The consumer's metrics.
#[derive(Clone)]
pub struct NotifierMetrics {
    /// `notify_events_total{outcome}`: written, duplicate, restored_away, other_deployment,
    /// retried, dead.
    events: IntCounterVec,
    /// `notify_notifications_total`: notifications written (or collapsed into).
    notifications: prometheus::IntCounter,
    /// `notify_pending`: events on the stream not yet delivered to the consumer (its lag).
    pending: IntGauge,
    /// `notify_reading`: 1 while the stream is being read.
    reading: IntGauge,
    /// `notify_mails_total{outcome}`.
    mails: super::mail::DigestMetrics,
}

impl NotifierMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            events: IntCounterVec::new(
                Opts::new(
                    "notify_events_total",
                    "events the notifier handled, by outcome",
                ),
                &["outcome"],
            )?,
            notifications: prometheus::IntCounter::new(
                "notify_notifications_total",
                "notifications written (a collapsed one counts each time it grows)",
            )?,
            pending: IntGauge::new(
                "notify_pending",
                "events on the stream not yet delivered to the notifier (its lag)",
            )?,
            reading: IntGauge::new("notify_reading", "1 while the notifier reads the stream")?,
            mails: super::mail::DigestMetrics::new(registry)?,
        };
        registry.register(Box::new(metrics.events.clone()))?;
        registry.register(Box::new(metrics.notifications.clone()))?;
        registry.register(Box::new(metrics.pending.clone()))?;
        registry.register(Box::new(metrics.reading.clone()))?;
        Ok(metrics)
    }
}

/// Runs the consumer (reconnecting as needed), the pruning and (when `mailer` is on) the mailed
/// digests until `shutdown`.
pub async fn run(
    nats: async_nats::Client,
    db: Database,
    mailer: fishapp_mail::Mailer,
    settings: NotifierSettings,
    metrics: NotifierMetrics,
    shutdown: CancellationToken,
) {
    let prune = prune_forever(&db, &settings);
    let consume = consume(nats, &db, &settings, &metrics);
    let digests = async {
        if mailer.is_on() {
            super::mail::send_digests(&db, &mailer, settings.digests, &metrics.mails).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = consume => {}
        () = prune => {}
        () = digests => {}
        () = shutdown.cancelled() => {}
    }
    metrics.reading.set(0);
}

async fn prune_forever(db: &Database, settings: &NotifierSettings) {
    let mut interval = tokio::time::interval(settings.prune_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = chrono::Utc::now();
        let ago =
            |d: Duration| now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let keep = store::Keep {
            read_after: ago(settings.retention),
            per_user: settings.max_per_user,
            handled_after: ago(settings.handled_retention),
        };
        match super::prune(db, keep, PRUNE_BATCH).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "notifier: old notifications deleted"),
            Err(e) => tracing::warn!(error = %e, "notifier: cannot prune; next time"),
        }
    }
}

async fn consume(
    nats: async_nats::Client,
    db: &Database,
    settings: &NotifierSettings,
    metrics: &NotifierMetrics,
) {
    let ours = rules::Ours {
        deployment: crate::feed::deployment_of(db, "notifier").await,
        outbox_retention: settings.outbox_retention,
    };
    let jetstream = async_nats::jetstream::new(nats);
    let started = time::OffsetDateTime::now_utc() - START_MARGIN;
    let mut backoff = Duration::from_millis(100);
    loop {
        match read(&jetstream, db, settings, metrics, ours, started).await {
            Ok(()) => tracing::warn!("notifier: the stream's messages ended; reading again"),
            Err(e) => tracing::warn!(error = %e, "notifier: cannot read the stream; retrying"),
        }
        metrics.reading.set(0);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn read(
    jetstream: &async_nats::jetstream::Context,
    db: &Database,
    settings: &NotifierSettings,
    metrics: &NotifierMetrics,
    ours: rules::Ours,
    started: time::OffsetDateTime,
) -> Result<(), async_nats::Error> {
    let stream = jetstream.get_stream(&settings.stream).await?;
    // The first replica ever creates it; everyone after (and every restart) finds it with its
    // position kept by the server.
    let consumer = stream
        .get_or_create_consumer(&settings.consumer, consumer_config(settings, started))
        .await?;
    let messages = consumer.messages().await?;
    metrics.reading.set(1);
    tracing::info!(stream = %settings.stream, consumer = %settings.consumer, "notifier: reading events");
    // Events are independent here (each its own transaction; a redelivery of one being handled
    // waits on its `notify.handled` row), so several are handled at once: one at a time, a
    // notifier kept up with only a few hundred events a second (docs/benchmarks.md).
    messages
        .map_err(async_nats::Error::from)
        .try_for_each_concurrent(settings.concurrency, |message| async move {
            take(db, settings, metrics, ours, &message).await
        })
        .await
}

/// The durable consumer as the notifiers create it, delivering from `start_time` on.
fn consumer_config(
    settings: &NotifierSettings,
    start_time: time::OffsetDateTime,
) -> async_nats::jetstream::consumer::pull::Config {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    pull::Config {
        durable_name: Some(settings.consumer.clone()),
        filter_subject: format!("{}.>", settings.subject_prefix),
        ack_policy: AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        // Deliveries are counted and ended here (dead letters), not by the server.
        max_deliver: -1,
        deliver_policy: DeliverPolicy::ByStartTime { start_time },
        ..Default::default()
    }
}

/// What [`rewind`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewound {
    /// Whether a consumer was there before (its position is gone).
    pub replaced: bool,
    /// Events on the stream from the new start on, to be delivered (again).
    pub pending: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RewindError {
    #[error(
        "notifiers are still reading consumer {consumer} ({waiting} pull requests waiting): stop \
         them first and wait for their requests to expire (30 s), or pass --force"
    )]
    StillReading { consumer: String, waiting: usize },
    #[error("JetStream: {0}")]
    JetStream(#[from] async_nats::Error),
}

/// Moves the notifiers' durable consumer to `from`: deleted and created again, delivering every
/// event published since then, with the settings the notifiers create it with. Events the
/// database records as handled are skipped when they come again; the rest are written once.
/// The notifiers must be stopped (unless `force`): one still reading would create the consumer
/// afresh at its own start time if it came first.
pub async fn rewind(
    nats: async_nats::Client,
    settings: &NotifierSettings,
    from: chrono::DateTime<chrono::Utc>,
    force: bool,
) -> Result<Rewound, RewindError> {
    let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(
        from.timestamp_nanos_opt().map_or(0, i128::from),
    )
    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let jetstream = async_nats::jetstream::new(nats);
    let stream = jetstream
        .get_stream(&settings.stream)
        .await
        .map_err(async_nats::Error::from)?;
    let replaced = match stream.consumer_info(&settings.consumer).await {
        Ok(info) if info.num_waiting > 0 && !force => {
            return Err(RewindError::StillReading {
                consumer: settings.consumer.clone(),
                waiting: info.num_waiting,
            });
        }
        Ok(_) => {
            stream
                .delete_consumer(&settings.consumer)
                .await
                .map_err(async_nats::Error::from)?;
            true
        }
        Err(e) if e.kind() == async_nats::jetstream::context::ConsumerInfoErrorKind::NotFound => {
            false
        }
        Err(e) => return Err(async_nats::Error::from(e).into()),
    };
    let mut consumer = stream
        .create_consumer(consumer_config(settings, start_time))
        .await
        .map_err(async_nats::Error::from)?;
    let pending = consumer
        .info()
        .await
        .map_err(async_nats::Error::from)?
        .num_pending;
    Ok(Rewound { replaced, pending })
}

/// Handles one delivery and acknowledges it (or asks for it again later).
async fn take(
    db: &Database,
    settings: &NotifierSettings,
    metrics: &NotifierMetrics,
    ours: rules::Ours,
    message: &async_nats::jetstream::Message,
) -> Result<(), async_nats::Error> {
    use async_nats::jetstream::AckKind;
    let (attempt, sequence) = match message.info() {
        Ok(info) => {
            metrics
                .pending
                .set(i64::try_from(info.pending).unwrap_or(i64::MAX));
            (info.delivered, info.stream_sequence)
        }
        Err(_) => (1, 0),
    };
    let (event_id, outcome) = rules::handle_payload(db.pool(), ours, &message.payload).await;
    match outcome {
        Ok(Taken::OtherDeployment) => {
            metrics
                .events
                .with_label_values(&["other_deployment"])
                .inc();
            message.ack().await
        }
        Ok(Taken::Handled(Handled::Written(n))) => {
            metrics.events.with_label_values(&["written"]).inc();
            metrics.notifications.inc_by(n);
            message.ack().await
        }
        Ok(Taken::Handled(Handled::Duplicate)) => {
            metrics.events.with_label_values(&["duplicate"]).inc();
            message.ack().await
        }
        Ok(Taken::Handled(Handled::RestoredAway)) => {
            metrics.events.with_label_values(&["restored_away"]).inc();
            message.ack().await
        }
        Err(error) if attempt >= settings.max_attempts => {
            let letter = DeadLetter {
                event_id,
                subject: message.subject.as_str(),
                stream_sequence: sequence,
                attempts: attempt,
                error: &error.to_string(),
                payload: &String::from_utf8_lossy(&message.payload),
            };
            match store::dead_letter(db.pool(), &letter).await {
                Ok(()) => {
                    tracing::error!(%error, sequence, attempt, subject = %message.subject,
                        "notifier: an event failed every attempt; it is in notify.dead_letters");
                    metrics.events.with_label_values(&["dead"]).inc();
                    message.ack().await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notifier: cannot record a dead letter; retrying");
                    message
                        .ack_with(AckKind::Nak(Some(settings.retry_delay)))
                        .await
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, sequence, attempt, "notifier: an event failed; it comes again");
            metrics.events.with_label_values(&["retried"]).inc();
            message
                .ack_with(AckKind::Nak(Some(settings.retry_delay)))
                .await
        }
    }
}
