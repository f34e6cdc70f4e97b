//! The outbox relay: publishes the events the store wrote in the same transaction as the changes
//! that caused them (`outbox.events`) to NATS JetStream, in order per aggregate, each exactly
//! once as far as a consumer that honours message ids can tell.
//!
//! - **One leader.** Any number of relays may run (`fishapp relay`, `fishapp dev`); the one that
//!   holds a Postgres advisory lock on its own dedicated connection publishes, the others retry
//!   the lock every `standby_retry`. The lock dies with the connection, so a leader that crashes or
//!   loses Postgres is replaced within about one retry interval.
//! - **Nothing skipped.** Each batch reads every unpublished row, lowest id first (no high-water
//!   mark), locked `FOR UPDATE` in one transaction with the marking of what JetStream
//!   acknowledged; see `fishapp_store::outbox` for why ids within one aggregate commit in order.
//!   Under load the next batch is read (on a second connection) while one is being published;
//!   `publisher` says why that keeps every guarantee here.
//! - **Nothing twice, nothing lost.** The event's identity (a UUIDv7 written with the row, never
//!   the row id, which a restored database issues again) is the `Nats-Msg-Id`: a republish after
//!   a crash (published, not yet marked) is dropped by JetStream within the stream's duplicate
//!   window, the id is in the envelope for consumers, and no new event is ever dropped as a
//!   "duplicate" of an old one.
//! - **One deployment per stream.** The stream records the deployment (database) that owns it;
//!   a relay of another one refuses to start, naming both ([`stream::provision`]).
//! - **Never stuck on one row.** A publish that may succeed later is retried with back-off; a row
//!   JetStream refuses for good (too large) is marked failed and holds back only its own
//!   aggregate.
//! - **Prompt.** A trigger on the outbox sends `NOTIFY outbox_events` on commit; the relay wakes
//!   on it, with a slow poll as the safety net for a lost notification.
//!
//! Depends on `fishapp-store` (every SQL statement) and `fishapp-domain` (the event envelope);
//! nothing depends on it but the binary.

mod leadership;
pub mod metrics;
pub mod nats;
mod publisher;
pub mod stream;

pub use metrics::RelayMetrics;
pub use stream::StreamSettings;

use publisher::{Batch, Pipeline, Publisher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The Postgres channel the outbox trigger notifies.
const CHANNEL: &str = "outbox_events";

/// The relay's knobs, from configuration.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub database_url: String,
    pub stream: StreamSettings,
    /// Rows read (and locked) per batch.
    pub batch_size: i64,
    /// The safety-net poll, for a notification lost while the listener reconnected.
    pub poll_interval: Duration,
    /// How often a standby tries to become the leader.
    pub standby_retry: Duration,
    /// Longest pause between retries of a failed publish (the pause doubles from 100 ms).
    pub max_backoff: Duration,
    /// Published rows are deleted once this old.
    pub retention: Duration,
    /// How often the leader prunes published rows.
    pub prune_interval: Duration,
}

/// Why a leader stepped down.
#[derive(Debug, thiserror::Error)]
enum SteppedDown {
    #[error("Postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error("Postgres did not answer within {0:?}")]
    Timeout(Duration),
    /// Not a passing failure: the relay stops (see [`RelayError`]).
    #[error(transparent)]
    Refused(RelayError),
}

/// Why the relay stopped for good: its configuration must change.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    StreamOfAnotherDeployment(stream::ProvisionError),
}

/// Bound on one batch or prune on the leader's connection: a Postgres that hangs must not hold
/// the leadership forever.
const STATEMENT_BUDGET: Duration = Duration::from_secs(30);

/// Runs the relay until `shutdown`: standby until it holds the leadership, then publishes;
/// back to standby whenever Postgres fails it. Returns an error only when it must not go on:
/// the stream belongs to another deployment.
pub async fn run(
    settings: RelaySettings,
    nats: async_nats::Client,
    metrics: RelayMetrics,
    shutdown: CancellationToken,
) -> Result<(), RelayError> {
    let jetstream = async_nats::jetstream::new(nats);
    while let Some(leadership) = leadership::acquire(&settings, &shutdown).await {
        metrics.leader.set(1);
        tracing::info!("outbox relay: this process is the leader");
        // Closing the leader's connection (when `lead` returns) releases the lock for a standby.
        let outcome = lead(
            &settings,
            &jetstream,
            &metrics,
            leadership.into_connection(),
            &shutdown,
        )
        .await;
        metrics.leader.set(0);
        match outcome {
            Ok(()) => break,
            Err(SteppedDown::Refused(e)) => {
                tracing::error!(error = %e, "outbox relay stopped: it must not publish here");
                return Err(e);
            }
            Err(e) => tracing::warn!(error = %e, "outbox relay stepped down; standing by"),
        }
    }
    tracing::info!("outbox relay stopped");
    Ok(())
}

async fn lead(
    settings: &RelaySettings,
    jetstream: &async_nats::jetstream::Context,
    metrics: &RelayMetrics,
    mut connection: sqlx::PgConnection,
    shutdown: &CancellationToken,
) -> Result<(), SteppedDown> {
    let deployment = within_budget(fishapp_store::outbox::deployment_id(&mut connection)).await?;
    let publisher = Publisher {
        jetstream: jetstream.clone(),
        deployment,
        subject_prefix: settings.stream.subject_prefix.clone(),
        batch_size: settings.batch_size,
        metrics: metrics.clone(),
    };
    // The second connection reads the next batch while one is being published.
    let second = within_budget(<sqlx::PgConnection as sqlx::Connection>::connect(
        &settings.database_url,
    ))
    .await?;
    let mut pipeline = Pipeline::new(connection, second);
    let mut backoff = Backoff::new(settings.max_backoff);
    // Nothing goes out before the stream exists with the configured limits, and is ours.
    loop {
        match stream::provision(&publisher.jetstream, &settings.stream, deployment).await {
            Ok(()) => break,
            Err(e @ stream::ProvisionError::OwnedByAnother { .. }) => {
                return Err(SteppedDown::Refused(RelayError::StreamOfAnotherDeployment(
                    e,
                )));
            }
            Err(e) => {
                tracing::warn!(error = %e, stream = %settings.stream.name, "cannot provision the JetStream stream; retrying");
                if pause(backoff.next(), shutdown).await {
                    return Ok(());
                }
            }
        }
    }
    backoff.reset();
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(settings.database_url.clone(), wake.clone()));
    let _stop_listener = AbortOnDrop(listener);
    let mut next_prune = tokio::time::Instant::now();
    loop {
        // Drain: batch after batch until the outbox is empty for now.
        loop {
            if shutdown.is_cancelled() {
                within_budget(publisher.flush(&mut pipeline)).await?;
                return Ok(());
            }
            match within_budget(publisher.publish_batch(&mut pipeline)).await? {
                Batch::Full => backoff.reset(),
                Batch::Drained => {
                    backoff.reset();
                    break;
                }
                Batch::Retry(error) => {
                    let pause_for = backoff.next();
                    tracing::warn!(%error, retry_in = ?pause_for, "JetStream did not acknowledge every event; retrying");
                    if pause(pause_for, shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= next_prune {
            let pruned = within_budget(fishapp_store::outbox::prune_published(
                pipeline.idle_connection(),
                settings.retention,
                1_000,
            ))
            .await?;
            if pruned > 0 {
                tracing::info!(
                    pruned,
                    "outbox relay pruned published events past their retention"
                );
            }
            next_prune = tokio::time::Instant::now() + settings.prune_interval;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = wake.notified() => {}
            () = tokio::time::sleep(settings.poll_interval) => {}
        }
    }
}

/// Turns outbox notifications into wake-ups (a `Notify` keeps at most one, so a burst of commits
/// wakes the relay once). Losing the listener's connection also wakes the relay: notifications
/// may have been lost, and Postgres may be gone for the leader's connection too (the next batch
/// then fails and the leader steps down at once instead of at the next poll). A new listener
/// wakes it once more, for what committed while there was none.
async fn listen(database_url: String, wake: Arc<Notify>) {
    loop {
        if let Err(e) = listen_until_lost(&database_url, &wake).await {
            tracing::debug!(error = %e, "outbox listener failed; reconnecting");
        }
        wake.notify_one();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One listener connection, until it is lost.
async fn listen_until_lost(database_url: &str, wake: &Notify) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(database_url).await?;
    // Report a lost connection at once (the default reconnects first, which takes as long as
    // Postgres is away).
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    wake.notify_one();
    // Some: a commit. None: the connection was lost.
    while listener.try_recv().await?.is_some() {
        wake.notify_one();
    }
    Ok(())
}

async fn within_budget<T>(
    work: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, SteppedDown> {
    match tokio::time::timeout(STATEMENT_BUDGET, work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SteppedDown::Timeout(STATEMENT_BUDGET)),
    }
}

/// Sleeps; true when shutdown came first.
async fn pause(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// 100 ms, doubling up to `max`.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Self {
        Self {
            next: Self::FIRST,
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let now = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        now
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(500));
        let pauses: Vec<u128> = (0..5).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(100));
    }
}
