//! The notifications consumer role: its settings, and running it with its probes.

use super::{database, mailer, with_probes};
use crate::config::Config;
use anyhow::Context;
use fishapp_api::metrics::{new_registry, probe_router};
use fishapp_store::Database;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The notifications consumer's settings from configuration.
pub fn notifier_settings(config: &Config) -> fishapp_app::notify::NotifierSettings {
    let notify = &config.notify;
    fishapp_app::notify::NotifierSettings {
        stream: config.relay.relay_stream.clone(),
        subject_prefix: config.relay.relay_subject_prefix.clone(),
        consumer: notify.notify_consumer.clone(),
        max_attempts: notify.notify_max_attempts,
        concurrency: notify.notify_concurrency,
        retry_delay: Duration::from_millis(notify.notify_retry_delay_ms),
        ack_wait: Duration::from_secs(notify.notify_ack_wait_secs),
        retention: Duration::from_secs(notify.notify_retention_days.saturating_mul(86_400)),
        max_per_user: i64::from(notify.notify_max_per_user),
        outbox_retention: Duration::from_secs(config.relay.relay_retention_secs),
        // An event cannot come again once it left the stream.
        handled_retention: Duration::from_secs(config.relay.relay_stream_max_age_secs)
            + Duration::from_secs(86_400),
        prune_interval: Duration::from_secs(notify.notify_prune_interval_secs),
        digests: fishapp_app::notify::DigestSettings {
            interval: Duration::from_secs(notify.notify_mail_interval_secs),
            delay: Duration::from_secs(notify.notify_mail_delay_secs),
            poll: Duration::from_secs(notify.notify_mail_poll_secs),
        },
    }
}

/// The notifications consumer until `shutdown`, its metrics in `registry`.
pub async fn run_notifier(
    config: &Config,
    nats: async_nats::Client,
    db: Database,
    registry: &prometheus::Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics =
        fishapp_app::notify::NotifierMetrics::new(registry).context("notifier metrics")?;
    fishapp_app::notify::consumer::run(
        nats,
        db,
        mailer(config)?,
        notifier_settings(config),
        metrics,
        shutdown,
    )
    .await;
    Ok(())
}

/// `fishapp notifier`: the notifications consumer until SIGTERM/SIGINT, with `/healthz` and
/// `/metrics` on `notify_http_addr`.
pub async fn notifier(config: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nats = fishapp_relaylog::nats::connect(&config.connections.nats_url)
        .await
        .context("nats_url")?;
    let db = database(config)?;
    let registry = new_registry();
    let notifier = run_notifier(config, nats, db, &registry, shutdown.clone());
    with_probes(
        "notifier",
        config.notify.notify_http_addr,
        probe_router(registry.clone()),
        &shutdown,
        notifier,
    )
    .await
}

/// `fishapp dead-letters`: the notifier's dead letters, one line each, and with `retry` what
/// handling each again came to. An error when `only` names none, or a retried one still fails.
pub async fn dead_letters(
    config: &Config,
    retry: bool,
    only: Option<i64>,
    limit: i64,
) -> anyhow::Result<()> {
    use fishapp_app::notify::dead_letters::{self, Retried};
    let db = database(config)?;
    let letters = dead_letters::list(&db, only, limit).await?;
    let outbox_retention = notifier_settings(config).outbox_retention;
    if let (Some(id), true) = (only, letters.is_empty()) {
        anyhow::bail!("no dead letter {id}");
    }
    if letters.is_empty() {
        println!("no dead letters");
    }
    let mut failing = 0;
    for letter in &letters {
        println!(
            "dead letter {}: {} (event {}, stream sequence {}), {} attempts since {}: {}",
            letter.id,
            letter.subject,
            letter
                .event_id
                .map_or_else(|| "unreadable".to_owned(), |id| id.to_string()),
            letter.stream_sequence,
            letter.attempts,
            letter.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            letter.error,
        );
        if !retry {
            continue;
        }
        match dead_letters::retry(&db, outbox_retention, letter).await? {
            Retried::Handled(n) => {
                let noun = if n == 1 {
                    "notification"
                } else {
                    "notifications"
                };
                println!("  handled: {n} {noun} written; removed");
            }
            Retried::AlreadyHandled => println!("  handled before; removed"),
            Retried::RestoredAway => {
                println!("  no longer in this database (a restore took it away); removed");
            }
            Retried::Failed(error) => {
                failing += 1;
                println!("  failed again: {error}; kept");
            }
        }
    }
    if failing > 0 {
        anyhow::bail!("{failing} of {} dead letters still fail", letters.len());
    }
    Ok(())
}

/// `fishapp notifier-rewind`: the notifiers' consumer moved to `from` (see
/// `fishapp_app::notify::consumer::rewind`).
pub async fn notifier_rewind(
    config: &Config,
    from: chrono::DateTime<chrono::Utc>,
    force: bool,
) -> anyhow::Result<()> {
    let nats = fishapp_relaylog::nats::connect(&config.connections.nats_url)
        .await
        .context("nats_url")?;
    let settings = notifier_settings(config);
    let rewound = fishapp_app::notify::consumer::rewind(nats, &settings, from, force).await?;
    println!(
        "consumer {} of stream {} now starts at {}: {} events to deliver{}",
        settings.consumer,
        settings.stream,
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        rewound.pending,
        if rewound.replaced {
            " (it replaced the consumer there was)"
        } else {
            ""
        }
    );
    Ok(())
}
