//! The transactional outbox: events are rows written in the transaction of the change that
//! caused them, so that a change is never published without having happened, nor happens
//! without being published. The relay (relaylog) publishes them; this module holds every
//! statement either side runs.
//!
//! Identity. Every event has an `event_id`, a UUIDv7 made when it is written: the relay
//! publishes it as the `Nats-Msg-Id` and consumers deduplicate by it. The row id is only this
//! database's position (a restored database issues row ids again; an event id never repeats).
//!
//! Ordering. Row ids come from an identity sequence, taken at insert, not at commit, so a
//! transaction can commit a lower id after a higher one was already published. Two rules make
//! that harmless:
//! - [`append`] first takes a transaction-scoped advisory lock on the event's aggregate, so two
//!   transactions that write events of the same aggregate run one after the other: within an
//!   aggregate, ids grow in commit order, and the visible events of an aggregate are always a
//!   prefix of its events.
//! - The relay keeps no high-water mark: each batch reads *every* unpublished row, lowest id
//!   first, so a late-committed lower id of another aggregate is simply picked up next time.
//!
//! Unpublished events are listed in `outbox.pending` (a trigger adds every inserted event);
//! publishing deletes the event's row there. `outbox.events` is written once and never updated:
//! marking a row published used to rewrite the row and its index entries, most of the relay's
//! work.

use chrono::{DateTime, Utc};
use fishapp_domain::events::Aggregate;
pub use fishapp_domain::events::Event;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::time::Duration;
use uuid::Uuid;

/// The advisory-lock class of outbox aggregates (the two-key form: its key space never overlaps
/// the single-key locks of the migrations and of the relay's leadership).
const AGGREGATE_LOCK_CLASS: i32 = 0x0075_7462; // "utb"

/// Takes the aggregate's lock (the one [`append`] takes) until the transaction ends, for a change
/// whose own row ids must grow in commit order too: a room's messages take it before they are
/// inserted, so message ids, event ids and delivery order agree.
pub async fn lock_aggregate(
    tx: &mut Transaction<'_, Postgres>,
    aggregate: Aggregate,
    id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))")
        .bind(AGGREGATE_LOCK_CLASS)
        .bind(aggregate.as_str())
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Appends an event inside the caller's transaction, after taking the aggregate's lock (see the
/// module's note on ordering; the lock is held until the transaction ends). The event's
/// identity is made here, a UUIDv7: unique across databases, restores and deployments, unlike
/// the row id (a sequence a restored database issues again). Returns the row id.
pub async fn append(tx: &mut Transaction<'_, Postgres>, event: &Event) -> Result<i64, sqlx::Error> {
    let aggregate = event.event_type.aggregate().as_str();
    sqlx::query_scalar(
        "WITH serialized AS (SELECT pg_advisory_xact_lock($1, hashtext($3 || '/' || $4)))
         INSERT INTO outbox.events (event_type, aggregate_type, aggregate_id, version, payload, event_id)
         SELECT $2, $3, $4, $5, $6, $7 FROM serialized
         RETURNING id",
    )
    .bind(AGGREGATE_LOCK_CLASS)
    .bind(event.event_type.name())
    .bind(aggregate)
    .bind(&event.aggregate_id)
    .bind(i16::try_from(event.event_type.version()).unwrap_or(i16::MAX))
    .bind(&event.payload)
    .bind(Uuid::now_v7())
    .fetch_one(&mut **tx)
    .await
}

/// This database's deployment (`outbox.deployment`, made by the migrations; kept by a restore).
pub async fn deployment_id(db: impl sqlx::PgExecutor<'_>) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM outbox.deployment")
        .fetch_one(db)
        .await
}

/// Whether the event `event_id`, written at `occurred_at`, is one this database no longer has
/// although the outbox would still keep it (written less than `retention` ago, less an hour for
/// clocks): a restore from a backup or a failover took its change away. An older event cannot be
/// told apart (its row may have been pruned): `false`.
pub async fn restored_away(
    conn: &mut PgConnection,
    event_id: Uuid,
    occurred_at: DateTime<Utc>,
    retention: Duration,
) -> Result<bool, sqlx::Error> {
    let window = retention.as_secs_f64() - 3_600.0;
    if window <= 0.0 {
        return Ok(false);
    }
    sqlx::query_scalar(
        "SELECT $2 > now() - make_interval(secs => $3)
                AND NOT EXISTS (SELECT 1 FROM outbox.events WHERE event_id = $1)",
    )
    .bind(event_id)
    .bind(occurred_at)
    .bind(window)
    .fetch_one(conn)
    .await
}

/// Takes back an aggregate's events that the relay has not published yet (a compensation of
/// something nobody saw) — all of them, or with `part` only those about that part of it (one
/// member of a room). Returns whether some were already published: then the world must be told
/// about the undo with an event of its own.
///
/// Never races the relay: the relay holds its batch's pending rows locked (`FOR UPDATE`) from
/// reading them until it has deleted those JetStream acknowledged, and this locks the
/// aggregate's pending rows (lowest id first, as the relay does, so the two cannot deadlock)
/// before deciding. So each event is either withdrawn before the relay sees it, or published
/// and then reported here as published.
pub async fn withdraw_unpublished(
    tx: &mut Transaction<'_, Postgres>,
    aggregate_type: &str,
    aggregate_id: i64,
    part: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let aggregate_id = aggregate_id.to_string();
    // The whole aggregate's pending rows are locked (lowest id first, as the relay locks them),
    // whichever of them are withdrawn.
    sqlx::query(
        "SELECT id FROM outbox.pending
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY id FOR UPDATE",
    )
    .bind(aggregate_type)
    .bind(&aggregate_id)
    .execute(&mut **tx)
    .await?;
    // A fresh snapshot: what the relay published while this waited is gone from pending. The
    // part an event is about is its payload's `id`.
    let published: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM outbox.events e
                         WHERE e.aggregate_type = $1 AND e.aggregate_id = $2
                           AND ($3::bigint IS NULL OR (e.payload->>'id')::bigint = $3)
                           AND NOT EXISTS (SELECT 1 FROM outbox.pending p WHERE p.id = e.id))",
    )
    .bind(aggregate_type)
    .bind(&aggregate_id)
    .bind(part)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM outbox.events e
          WHERE e.id IN (SELECT id FROM outbox.pending
                          WHERE aggregate_type = $1 AND aggregate_id = $2)
            AND ($3::bigint IS NULL OR (e.payload->>'id')::bigint = $3)",
    )
    .bind(aggregate_type)
    .bind(&aggregate_id)
    .bind(part)
    .execute(&mut **tx)
    .await?;
    Ok(published)
}

/// The event of an undo (a room, a seat, a membership taken back). A teardown or withdrawal
/// (`announce`) always tells the world. A compensation withdraws the aggregate's unpublished
/// events instead — nobody saw them — and tells the world only if one already went out.
pub async fn append_undo(
    tx: &mut Transaction<'_, Postgres>,
    event: &Event,
    announce: bool,
) -> Result<(), sqlx::Error> {
    let aggregate = event.event_type.aggregate().as_str();
    let id = event.aggregate_id.parse::<i64>().unwrap_or_default();
    if announce || withdraw_unpublished(tx, aggregate, id, event.part_id).await? {
        append(tx, event).await?;
    }
    Ok(())
}

/// An unpublished row, as the relay reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    /// The event's identity: its `Nats-Msg-Id` and the envelope's `id`.
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: i16,
    /// The payload's JSON text, as stored: the relay forwards it without parsing it.
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// The next batch to publish, locked until the caller's transaction ends: unpublished rows,
/// lowest id first, leaving out every aggregate that has a failed row (its later events wait
/// behind it, so the aggregate's order holds while other aggregates go on) and the rows of
/// `exclude` (the batch another of the relay's transactions holds while this one is read ahead).
///
/// Takes the connection of a transaction the caller opened: the relay keeps two open at once,
/// on two connections, which sqlx's borrowing `Transaction` cannot express.
pub async fn lock_batch(
    conn: &mut PgConnection,
    limit: i64,
    exclude: &[i64],
) -> Result<Vec<Pending>, sqlx::Error> {
    sqlx::query_as(
        // The batch is chosen (and locked) among the pending rows first, then its events are
        // fetched by id: joining the two tables directly let the planner merge-join from the
        // first event ever written.
        "WITH batch AS (
             SELECT p.id FROM outbox.pending p
              WHERE NOT EXISTS (SELECT 1 FROM outbox.pending f
                                 WHERE f.failed_at IS NOT NULL
                                   AND f.aggregate_type = p.aggregate_type
                                   AND f.aggregate_id = p.aggregate_id)
                -- A hashed subplan: one probe per row, whatever the plan (`<> ALL` compares
                -- each row with every excluded id under a generic plan).
                AND p.id NOT IN (SELECT unnest($2::bigint[]))
              ORDER BY p.id
              LIMIT $1
              FOR UPDATE OF p)
         SELECT e.id, e.event_id, e.event_type, e.aggregate_type, e.aggregate_id, e.version,
                e.payload::text AS payload, e.created_at
           FROM outbox.events e
          WHERE e.id = ANY (ARRAY(SELECT id FROM batch))
          ORDER BY e.id",
    )
    .bind(limit)
    .bind(exclude)
    .fetch_all(conn)
    .await
}

/// Marks rows JetStream acknowledged: they leave `outbox.pending`.
pub async fn mark_published(conn: &mut PgConnection, ids: &[i64]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM outbox.pending WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a row JetStream refused for good; its aggregate waits until an operator clears
/// `failed_at` (to retry) or deletes the event.
pub async fn mark_failed(conn: &mut PgConnection, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox.pending SET failed_at = now(), last_error = $2 WHERE id = $1")
        .bind(id)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes published events written longer than `retention` ago, `batch` rows per statement
/// (short transactions, no long locks), until none is left. Returns how many.
pub async fn prune_published(
    conn: &mut PgConnection,
    retention: Duration,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM outbox.events WHERE id IN (
                SELECT e.id FROM outbox.events e
                 WHERE e.created_at < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM outbox.pending p WHERE p.id = e.id)
                 ORDER BY e.created_at LIMIT $2)",
        )
        .bind(retention.as_secs_f64())
        .bind(batch)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        total += deleted;
        if deleted < u64::try_from(batch).unwrap_or(u64::MAX) {
            return Ok(total);
        }
    }
}

/// What is waiting in the outbox: for readiness and metrics, from any process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Unpublished rows that are not failed.
    pub waiting: i64,
    /// Age of the oldest of them (zero when none waits).
    pub oldest: Duration,
    /// Rows JetStream refused for good.
    pub failed: i64,
}

pub async fn backlog(db: &PgPool) -> Result<Backlog, sqlx::Error> {
    let (waiting, oldest_secs, failed): (i64, Option<f64>, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE p.failed_at IS NULL),
                extract(epoch FROM now() - min(e.created_at) FILTER (WHERE p.failed_at IS NULL))::float8,
                count(*) FILTER (WHERE p.failed_at IS NOT NULL)
           FROM outbox.pending p JOIN outbox.events e ON e.id = p.id",
    )
    .fetch_one(db)
    .await?;
    Ok(Backlog {
        waiting,
        oldest: Duration::from_secs_f64(oldest_secs.unwrap_or(0.0).max(0.0)),
        failed,
    })
}
