//! One batch: read the unpublished rows (locked), publish them to JetStream, mark what was
//! acknowledged — all in one transaction.
//!
//! Order within an aggregate survives failures because a batch is published in *waves*: wave k
//! holds the k-th row of every aggregate in the batch. A wave's messages are all sent before any
//! acknowledgement is awaited (async publishing: one round trip per wave, not per message), and
//! the next wave starts only after every acknowledgement of this one came back. So a row is never
//! sent while an earlier row of its aggregate might still be lost: when one fails, its
//! aggregate's later rows are held back, and the batch stops at the end of the wave.
//!
//! Under load the next batch is read while this one is being published, in a transaction on a
//! second connection that leaves this batch's rows out ([`Pipeline`]). That is safe because:
//! - a later batch's rows of an aggregate always have higher ids than its rows in this batch
//!   (`append` serializes an aggregate's writers, so its ids grow in commit order), and the later
//!   batch is only sent after this one's waves are all acknowledged;
//! - the batch read ahead is kept only when this one went out whole: after any failure it is
//!   rolled back and read again, so a held-back or failed aggregate's later rows are not sent;
//! - the read-ahead waits for nothing of this batch (its rows are excluded by id), and a
//!   compensation that withdraws events locks an aggregate's rows lowest id first, as both
//!   batches do, so the three cannot deadlock.
//!
//! A batch that went out whole is marked (its pending rows deleted, its transaction committed)
//! on its connection while the next batch is published, not before: marking only records what
//! JetStream already holds, so nothing waits for it. A leader that dies in between leaves those
//! rows pending; the next leader republishes them and JetStream drops the copies by message id,
//! as after any crash between acknowledgement and commit. A compensation that withdraws them
//! waits for the commit and then sees them published, as before.

use crate::metrics::RelayMetrics;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use fishapp_domain::events::{AggregateRef, Envelope, subject};
use fishapp_store::outbox::{self, Pending};
use serde_json::value::RawValue;
use sqlx::{Executor, PgConnection};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How a batch ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Fewer rows than a full batch were waiting: the outbox is drained for now.
    Drained,
    /// A full batch went out; more may be waiting.
    Full,
    /// JetStream did not acknowledge some rows (NATS down, a timeout): retry after a back-off.
    /// What was acknowledged is marked.
    Retry(String),
}

/// The leader's two connections, taking turns: one holds the batch being published, the other
/// reads the next one meanwhile.
pub(crate) struct Pipeline {
    connections: [PgConnection; 2],
    /// The connection of the next batch.
    current: usize,
    /// The next batch, already read and locked in an open transaction on `current`.
    ahead: Option<Vec<Pending>>,
    /// The previous batch's acknowledged rows, still locked in an open transaction on the other
    /// connection: they are marked while the next batch is published.
    unmarked: Option<Vec<i64>>,
}

impl Pipeline {
    pub(crate) fn new(leader: PgConnection, second: PgConnection) -> Self {
        Self {
            connections: [leader, second],
            current: 0,
            ahead: None,
            unmarked: None,
        }
    }

    /// A connection for other work, between batches (after a drain nothing is read ahead, so
    /// neither has a transaction open).
    pub(crate) fn idle_connection(&mut self) -> &mut PgConnection {
        debug_assert!(self.ahead.is_none() && self.unmarked.is_none());
        &mut self.connections[self.current]
    }

    /// The current connection and the other one.
    fn split(&mut self) -> (&mut PgConnection, &mut PgConnection) {
        let [first, second] = &mut self.connections;
        if self.current == 0 {
            (first, second)
        } else {
            (second, first)
        }
    }
}

/// What JetStream made of one batch.
#[derive(Default)]
struct Sent {
    acknowledged: Vec<i64>,
    /// Rows JetStream will never take, with its reason.
    refused: Vec<(i64, String)>,
    /// The first error that may pass on a later try.
    retry: Option<String>,
}

pub(crate) struct Publisher {
    pub(crate) jetstream: async_nats::jetstream::Context,
    /// The deployment the events come from (this database's), in every envelope.
    pub(crate) deployment: Uuid,
    pub(crate) subject_prefix: String,
    pub(crate) batch_size: i64,
    pub(crate) metrics: RelayMetrics,
}

impl Publisher {
    /// Publishes one batch: the one read ahead, or else a fresh one. A full batch is published
    /// while the next is read on the other connection.
    pub(crate) async fn publish_batch(
        &self,
        pipeline: &mut Pipeline,
    ) -> Result<Batch, sqlx::Error> {
        let started = std::time::Instant::now();
        let ahead = pipeline.ahead.take();
        let unmarked = pipeline.unmarked.take();
        let (this, other) = pipeline.split();
        let rows = match ahead {
            Some(rows) => rows,
            None => {
                begin(this).await?;
                outbox::lock_batch(this, self.batch_size, &[]).await?
            }
        };
        let read = started.elapsed();
        let lag = rows.first().map_or(0, |oldest| {
            (chrono::Utc::now() - oldest.created_at)
                .num_milliseconds()
                .max(0)
        });
        self.metrics.lag_ms.set(lag);
        if !rows.is_empty() {
            self.metrics.batch_size.observe(rows.len() as f64);
        }
        let full = rows.len() as i64 >= self.batch_size;

        // On the other connection, meanwhile: mark the previous batch, then read the next one.
        let other_work = async {
            if let Some(ids) = &unmarked {
                outbox::mark_published(other, ids).await?;
                commit(other).await?;
            }
            if !full {
                return Ok(None);
            }
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            begin(other).await?;
            outbox::lock_batch(other, self.batch_size, &ids)
                .await
                .map(Some)
        };
        let (sent, next) = tokio::join!(self.send_batch(&rows), other_work);
        let published = started.elapsed();
        self.metrics
            .published
            .inc_by(sent.acknowledged.len() as u64);
        // A failed mark or read-ahead fails the leader; what this batch got acknowledged is then
        // republished by the next one, and JetStream drops the copies by message id.
        let next = next?;
        let went_out_whole = sent.retry.is_none() && sent.refused.is_empty();
        match next {
            Some(next) if went_out_whole => {
                // This batch is marked during the next one's publishing.
                pipeline.ahead = Some(next);
                pipeline.unmarked = Some(sent.acknowledged);
                pipeline.current ^= 1;
                tracing::debug!(
                    rows = rows.len(),
                    read_ms = read.as_secs_f64() * 1e3,
                    publish_ms = (published - read).as_secs_f64() * 1e3,
                    "outbox batch (marked with the next)"
                );
                return Ok(Batch::Full);
            }
            Some(_) => rollback(other).await?,
            None => {}
        }
        for (id, error) in &sent.refused {
            outbox::mark_failed(this, *id, error).await?;
        }
        outbox::mark_published(this, &sent.acknowledged).await?;
        commit(this).await?;
        tracing::debug!(
            rows = rows.len(),
            acknowledged = sent.acknowledged.len(),
            read_ms = read.as_secs_f64() * 1e3,
            publish_ms = (published - read).as_secs_f64() * 1e3,
            mark_ms = (started.elapsed() - published).as_secs_f64() * 1e3,
            "outbox batch"
        );
        Ok(match sent.retry {
            Some(error) => Batch::Retry(error),
            None if full => Batch::Full,
            None => Batch::Drained,
        })
    }

    /// Before the leader stops: marks what was acknowledged and not yet marked, and lets go of
    /// the batch read ahead.
    pub(crate) async fn flush(&self, pipeline: &mut Pipeline) -> Result<(), sqlx::Error> {
        let ahead = pipeline.ahead.take();
        let unmarked = pipeline.unmarked.take();
        let (this, other) = pipeline.split();
        if ahead.is_some() {
            rollback(this).await?;
        }
        if let Some(ids) = unmarked {
            outbox::mark_published(other, &ids).await?;
            commit(other).await?;
        }
        Ok(())
    }

    /// Sends a batch wave by wave (see the module's note) and says what JetStream acknowledged.
    async fn send_batch(&self, rows: &[Pending]) -> Sent {
        let mut sent = Sent::default();
        let mut held_back: HashSet<(&str, &str)> = HashSet::new();
        for wave in waves(rows) {
            let mut failures = Vec::new();
            let mut in_flight = Vec::with_capacity(wave.len());
            for row in wave {
                if held_back.contains(&aggregate_of(row)) {
                    continue;
                }
                match self.send(row).await {
                    Ok(ack) => in_flight.push((row, ack)),
                    Err(e) => failures.push((row, e)),
                }
            }
            for (row, ack) in in_flight {
                match ack.await {
                    Ok(_) => {
                        sent.acknowledged.push(row.id);
                        let delay = chrono::Utc::now() - row.created_at;
                        self.metrics
                            .delay
                            .observe(delay.num_microseconds().unwrap_or(0).max(0) as f64 / 1e6);
                    }
                    Err(e) => failures.push((row, e)),
                }
            }
            for (row, error) in failures {
                held_back.insert(aggregate_of(row));
                if refused_for_good(&error) {
                    self.metrics.errors.with_label_values(&["refused"]).inc();
                    tracing::error!(
                        event_id = row.id,
                        event_type = %row.event_type,
                        aggregate = %format_args!("{}/{}", row.aggregate_type, row.aggregate_id),
                        error = %error,
                        "JetStream refused an outbox event for good; its aggregate's later events \
                         wait until an operator deals with it (docs/operations.md, relay runbook)"
                    );
                    sent.refused.push((row.id, error.to_string()));
                } else {
                    self.metrics.errors.with_label_values(&["transient"]).inc();
                    sent.retry
                        .get_or_insert_with(|| format!("event {}: {error}", row.id));
                }
            }
            if sent.retry.is_some() {
                break;
            }
        }
        sent
    }

    /// Sends one row (its envelope, with the event's identity as `Nats-Msg-Id`); the
    /// acknowledgement is awaited later.
    async fn send(
        &self,
        row: &Pending,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, PublishError> {
        let subject = subject(&self.subject_prefix, &row.event_type);
        // The stored text is JSON (Postgres wrote it from jsonb): forwarded, not re-parsed.
        let data: &RawValue = serde_json::from_str(&row.payload)
            .map_err(|e| PublishError::with_source(PublishErrorKind::Other, e))?;
        let envelope = Envelope {
            id: row.event_id,
            deployment: self.deployment,
            event_type: row.event_type.clone(),
            subject: subject.clone(),
            aggregate: AggregateRef {
                kind: row.aggregate_type.clone(),
                id: row.aggregate_id.clone(),
            },
            occurred_at: row.created_at,
            version: u16::try_from(row.version).unwrap_or_default(),
            data,
        };
        let body = serde_json::to_vec(&envelope)
            .map_err(|e| PublishError::with_source(PublishErrorKind::Other, e))?;
        let message = PublishMessage::build()
            .payload(body.into())
            .message_id(row.event_id.to_string());
        self.jetstream.send_publish(subject, message).await
    }
}

fn aggregate_of(row: &Pending) -> (&str, &str) {
    (&row.aggregate_type, &row.aggregate_id)
}

// The relay's transactions are opened and closed by hand: two are open at once, on two
// connections.
async fn begin(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("BEGIN").await.map(drop)
}

async fn commit(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("COMMIT").await.map(drop)
}

async fn rollback(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute("ROLLBACK").await.map(drop)
}

/// The batch's rows in waves: wave k holds the k-th row of each aggregate, in id order.
fn waves(rows: &[Pending]) -> Vec<Vec<&Pending>> {
    let mut depth: HashMap<(&str, &str), usize> = HashMap::new();
    let mut waves: Vec<Vec<&Pending>> = Vec::new();
    for row in rows {
        let k = depth.entry(aggregate_of(row)).or_default();
        if waves.len() == *k {
            waves.push(Vec::new());
        }
        waves[*k].push(row);
        *k += 1;
    }
    waves
}

/// Whether JetStream will never take this message, however often it is sent: it is larger than
/// the server or the stream allows. Everything else (timeouts, no connection, no stream yet) may
/// pass on a later try.
fn refused_for_good(error: &PublishError) -> bool {
    use async_nats::jetstream::ErrorCode;
    match error.kind() {
        PublishErrorKind::MaxPayloadExceeded => true,
        PublishErrorKind::Other => std::error::Error::source(error)
            .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
            .is_some_and(|e| {
                e.error_code() == ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM
                    || e.error_code() == ErrorCode(10097) // header exceeds maximum
            }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, aggregate: &str) -> Pending {
        Pending {
            id,
            event_id: Uuid::now_v7(),
            event_type: "board.post.updated".to_owned(),
            aggregate_type: "post".to_owned(),
            aggregate_id: aggregate.to_owned(),
            version: 1,
            payload: "null".to_owned(),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn waves_take_one_row_per_aggregate_in_id_order() {
        let rows = [
            row(1, "a"),
            row(2, "b"),
            row(3, "a"),
            row(4, "c"),
            row(5, "a"),
            row(6, "b"),
        ];
        let ids: Vec<Vec<i64>> = waves(&rows)
            .iter()
            .map(|w| w.iter().map(|r| r.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 2, 4], vec![3, 6], vec![5]]);
    }

    #[test]
    fn only_size_refusals_are_for_good() {
        assert!(refused_for_good(&PublishError::new(
            PublishErrorKind::MaxPayloadExceeded
        )));
        for transient in [
            PublishErrorKind::TimedOut,
            PublishErrorKind::BrokenPipe,
            PublishErrorKind::StreamNotFound,
            PublishErrorKind::Other,
        ] {
            assert!(!refused_for_good(&PublishError::new(transient)));
        }
    }
}
