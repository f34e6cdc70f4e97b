//! The outbox relay against real Postgres and NATS JetStream: late commits, kills in the middle
//! of publishing, outages, leadership, a poison event, and compensations racing the relay. Each
//! test has its own database, stream and subjects (see `test_config`).
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{
    Published, TestApp, free_port, published, socket_addr_of, start_proxy, wait_until_drained,
    with_port,
};
use fishapp_domain::events::EventType;
use fishapp_store::outbox::{self, Event};
use serde_json::json;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

const DRAIN: Duration = Duration::from_secs(60);

fn event(aggregate: i64, seq: usize) -> Event {
    Event {
        event_type: EventType::PostUpdated,
        aggregate_id: aggregate.to_string(),
        part_id: None,
        payload: json!({ "seq": seq }),
    }
}

/// One event in a transaction of its own; its id.
async fn append(pool: &PgPool, event: &Event) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let id = outbox::append(&mut tx, event).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn is_published(pool: &PgPool, id: i64) -> bool {
    sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM outbox.pending WHERE id = $1) FROM outbox.events WHERE id = $1",
    )
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The outbox's rows (id, aggregate) in id order.
async fn outbox_rows(pool: &PgPool) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT id, aggregate_type || '/' || aggregate_id FROM outbox.events ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// What a consumer that honours message ids sees: every row exactly once, and within each
/// aggregate in id order. Also no raw duplicate in the stream at all (JetStream's duplicate window
/// covers the whole test).
fn assert_exactly_once_in_order(rows: &[(i64, String)], stream: &[Published]) {
    let mut seen = HashSet::new();
    let mut last_per_aggregate: HashMap<String, i64> = HashMap::new();
    for message in stream {
        // The identity is the message id; order is checked by outbox position.
        assert_eq!(message.message_id, message.envelope.id.to_string());
        let id = message.row();
        if !seen.insert(id) {
            panic!("event {id} is in the stream twice");
        }
        let aggregate = format!(
            "{}/{}",
            message.envelope.aggregate.kind, message.envelope.aggregate.id
        );
        if let Some(previous) = last_per_aggregate.insert(aggregate.clone(), id) {
            assert!(
                previous < id,
                "{aggregate}: event {id} was published after {previous}"
            );
        }
    }
    let expected: HashSet<i64> = rows.iter().map(|r| r.0).collect();
    let lost: Vec<_> = expected.difference(&seen).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let extra: Vec<_> = seen.difference(&expected).collect();
    assert!(
        extra.is_empty(),
        "published but not in the outbox: {extra:?}"
    );
}

#[tokio::test]
async fn late_commits_with_lower_ids_are_published_not_skipped() {
    let app = TestApp::spawn().await;
    let pool = app.pool().await;
    let _relay = app.start_relay().await;

    // Two aggregates: the lower id commits after the higher one was published.
    let mut slow = pool.begin().await.unwrap();
    let low = outbox::append(&mut slow, &event(1, 0)).await.unwrap();
    let high = append(&pool, &event(2, 0)).await;
    assert!(low < high);
    wait_for("the higher id is published", DRAIN, async || {
        is_published(&pool, high).await
    })
    .await;
    slow.commit().await.unwrap();
    wait_for("the late lower id is published", DRAIN, async || {
        is_published(&pool, low).await
    })
    .await;

    // One aggregate: its second writer waits for the first, so ids follow commit order.
    let mut first = pool.begin().await.unwrap();
    let earlier = outbox::append(&mut first, &event(3, 0)).await.unwrap();
    let second = {
        let pool = pool.clone();
        tokio::spawn(async move { append(&pool, &event(3, 1)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "a second writer of the same aggregate waits for the first to commit"
    );
    first.commit().await.unwrap();
    let later = second.await.unwrap();
    assert!(earlier < later);

    wait_until_drained(&app, DRAIN).await;
    let stream = published(&app).await;
    assert_exactly_once_in_order(&outbox_rows(&pool).await, &stream);
    let position = |id: i64| stream.iter().position(|m| m.row() == id).unwrap();
    assert!(position(high) < position(low), "the late commit came after");
    assert!(position(earlier) < position(later));
}

/// A `fishapp relay` process on the app's database and stream.
fn relay_process(app: &TestApp) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fishapp"))
        .arg("relay")
        .env("FISHAPP_DATABASE_URL", &app.config.connections.database_url)
        .env("FISHAPP_NATS_URL", &app.config.connections.nats_url)
        .env("FISHAPP_RELAY_STREAM", &app.config.relay.relay_stream)
        .env(
            "FISHAPP_RELAY_SUBJECT_PREFIX",
            &app.config.relay.relay_subject_prefix,
        )
        .env("FISHAPP_RELAY_HTTP_ADDR", "127.0.0.1:0")
        .env("FISHAPP_RELAY_STANDBY_RETRY_MS", "100")
        .env("FISHAPP_LOG_FILTER", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("fishapp relay starts")
}

/// Ends the leader's Postgres session from the outside (as a network cut or a restarted
/// database would); the relay that held it must step down and lead again.
async fn drop_leader_connection(pool: &PgPool) {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = 'fishapp-relay' AND datname = current_database()",
    )
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn killing_the_relay_mid_publish_loses_duplicates_and_reorders_nothing() {
    // Batches of 4, smaller than a burst: many are full, so the next batch is read ahead on the
    // second connection while one is published, and kills land in both.
    let app = TestApp::spawn_with(|c| {
        c.relay.relay_standby_retry_ms = 100;
        c.relay.relay_batch_size = 4;
    })
    .await;
    let pool = app.pool().await;
    let stop = tokio_util::sync::CancellationToken::new();
    // A steady stream of events over 8 aggregates, in bursts, while the relay is killed.
    let producer = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seq = 0;
            while !stop.is_cancelled() {
                for _ in 0..25 {
                    append(&pool, &event((seq % 8) as i64, seq)).await;
                    seq += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seq
        })
    };
    let mut kills = HashMap::new();
    for round in 0..20usize {
        let pause = Duration::from_millis(60 + (round as u64 * 37) % 90);
        let how = match round % 3 {
            0 => {
                let relay = app.start_relay().await;
                tokio::time::sleep(pause).await;
                relay.abort();
                "task aborted"
            }
            1 => {
                let relay = app.start_relay().await;
                tokio::time::sleep(pause).await;
                drop_leader_connection(&pool).await;
                tokio::time::sleep(pause).await;
                relay.abort();
                "connection dropped, then task aborted"
            }
            _ => {
                let mut process = relay_process(&app);
                tokio::time::sleep(pause * 4).await;
                process.start_kill().unwrap(); // SIGKILL
                process.wait().await.unwrap();
                "kill -9 of a fishapp relay process"
            }
        };
        *kills.entry(how).or_insert(0) += 1;
    }
    stop.cancel();
    let produced = producer.await.unwrap();
    let _relay = app.start_relay().await;
    wait_until_drained(&app, DRAIN).await;
    let rows = outbox_rows(&pool).await;
    assert_eq!(rows.len(), produced);
    assert_exactly_once_in_order(&rows, &published(&app).await);
    eprintln!("{produced} events, kills: {kills:?}");
}

#[tokio::test]
async fn nats_down_then_back_the_relay_resumes_by_itself() {
    let real = socket_addr_of(&common::test_config().connections.nats_url);
    let port = free_port().await;
    let proxy = start_proxy(port, real).await;
    let app = TestApp::spawn_with(|c| {
        c.connections.nats_url = with_port(&c.connections.nats_url, port);
        c.relay.relay_max_backoff_ms = 500;
    })
    .await;
    let pool = app.pool().await;
    let _relay = app.start_relay().await;
    for seq in 0..10 {
        append(&pool, &event(seq as i64 % 3, seq)).await;
    }
    wait_until_drained(&app, DRAIN).await;

    proxy.abort();
    for seq in 10..20 {
        append(&pool, &event(seq as i64 % 3, seq)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox.pending")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        waiting, 10,
        "nothing is marked published while NATS is away"
    );

    let _proxy = start_proxy(port, real).await;
    wait_until_drained(&app, DRAIN).await;
    assert_exactly_once_in_order(&outbox_rows(&pool).await, &published(&app).await);
}

#[tokio::test]
async fn postgres_down_then_back_the_relay_resumes_by_itself() {
    let real = common::test_config().connections.database_url;
    let port = free_port().await;
    let proxy = start_proxy(port, socket_addr_of(&real)).await;
    // The relay reaches Postgres through the proxy; the test writes through the real port.
    let app = TestApp::spawn_with(|c| {
        c.connections.database_url = with_port(&c.connections.database_url, port);
        c.relay.relay_standby_retry_ms = 100;
    })
    .await;
    let pool = app.pool().await;
    let relay = app.start_relay().await;
    append(&pool, &event(1, 0)).await;
    wait_until_drained(&app, DRAIN).await;

    proxy.abort();
    for seq in 1..10 {
        append(&pool, &event(1, seq)).await;
    }
    // The leader finds out at its next statement; on a loaded machine that can take a while.
    wait_for(
        "no leader without Postgres",
        Duration::from_secs(15),
        async || relay.metric("fishapp_relay_leader") == 0.0,
    )
    .await;

    let _proxy = start_proxy(port, socket_addr_of(&real)).await;
    wait_until_drained(&app, DRAIN).await;
    assert_eq!(relay.metric("fishapp_relay_leader"), 1.0);
    assert_exactly_once_in_order(&outbox_rows(&pool).await, &published(&app).await);
}

#[tokio::test]
async fn one_relay_leads_and_a_standby_takes_over_when_it_dies() {
    let app = TestApp::spawn_with(|c| c.relay.relay_standby_retry_ms = 200).await;
    let pool = app.pool().await;
    let first = app.start_relay().await;
    wait_for("the first relay leads", DRAIN, async || {
        first.metric("fishapp_relay_leader") == 1.0
    })
    .await;
    let second = app.start_relay().await;
    for seq in 0..20 {
        append(&pool, &event(seq as i64 % 4, seq)).await;
    }
    wait_until_drained(&app, DRAIN).await;
    assert_eq!(second.metric("fishapp_relay_leader"), 0.0);
    assert_eq!(first.metric("fishapp_relay_published_total"), 20.0);
    assert_eq!(second.metric("fishapp_relay_published_total"), 0.0);

    first.abort();
    wait_for(
        "the standby takes over",
        Duration::from_secs(5),
        async || second.metric("fishapp_relay_leader") == 1.0,
    )
    .await;
    for seq in 20..30 {
        append(&pool, &event(seq as i64 % 4, seq)).await;
    }
    wait_until_drained(&app, DRAIN).await;
    assert_eq!(second.metric("fishapp_relay_published_total"), 10.0);
    assert_exactly_once_in_order(&outbox_rows(&pool).await, &published(&app).await);
}

#[tokio::test]
async fn a_poison_event_holds_back_only_its_aggregate_and_is_reported() {
    let app = TestApp::spawn_with(|c| {
        c.relay.relay_stream_max_message_bytes = 4096;
        c.relay.relay_poll_interval_ms = 200;
        c.relay.relay_stall_threshold_secs = 1;
        // Full batches: a refusal must also drop the batch read ahead behind it.
        c.relay.relay_batch_size = 4;
    })
    .await;
    let pool = app.pool().await;
    let poison = append(
        &pool,
        &Event {
            payload: json!({ "blob": "x".repeat(10_000) }),
            ..event(1, 0)
        },
    )
    .await;
    let behind = append(&pool, &event(1, 1)).await;
    let other = append(&pool, &event(2, 0)).await;

    // No relay yet: the outbox waits past the threshold, and readiness says so.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, body) = app.readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["outbox"]["status"], "stalled", "{body}");

    let relay = app.start_relay().await;
    wait_for("the other aggregate is published", DRAIN, async || {
        is_published(&pool, other).await
    })
    .await;
    let (failed, error): (bool, Option<String>) = sqlx::query_as(
        "SELECT failed_at IS NOT NULL, last_error FROM outbox.pending WHERE id = $1",
    )
    .bind(poison)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(failed, "the poison row is marked failed");
    assert!(error.is_some_and(|e| !e.is_empty()));
    assert!(
        !is_published(&pool, behind).await,
        "its aggregate waits behind it"
    );
    let refused = relay
        .registry
        .gather()
        .iter()
        .find(|f| f.name() == "fishapp_relay_errors_total")
        .and_then(|f| {
            f.get_metric().iter().find(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "kind" && l.value() == "refused")
            })
        })
        .map(|m| m.get_counter().get_value());
    assert_eq!(refused, Some(1.0));
    let (status, body) = app.readyz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["outbox"]["status"], "failed", "{body}");

    // The runbook's way out when the event can be dropped: delete it; the aggregate resumes.
    sqlx::query("DELETE FROM outbox.events WHERE id = $1")
        .bind(poison)
        .execute(&pool)
        .await
        .unwrap();
    wait_for("the held-back event follows", DRAIN, async || {
        is_published(&pool, behind).await
    })
    .await;
    let (_, body) = app.readyz().await;
    assert_eq!(body["checks"]["outbox"]["status"], "up", "{body}");
    assert_exactly_once_in_order(&outbox_rows(&pool).await, &published(&app).await);
}

/// A compensation withdrawing an aggregate's unpublished events while the relay publishes: each
/// event ends either withdrawn (and never published) or published (and the withdrawal says so,
/// so the undo is announced) — never both, never neither.
#[tokio::test]
async fn withdrawing_never_races_publishing() {
    let app = TestApp::spawn().await;
    let pool = app.pool().await;
    let _relay = app.start_relay().await;
    let mut outcomes = Vec::new();
    for room in 0..60i64 {
        let id = append(
            &pool,
            &Event {
                event_type: EventType::RoomCreated,
                aggregate_id: room.to_string(),
                part_id: None,
                payload: json!({}),
            },
        )
        .await;
        // Spread the withdrawals over the relay's batch: before, during and after it.
        tokio::time::sleep(Duration::from_micros((room as u64 * 397) % 3_000)).await;
        let mut tx = pool.begin().await.unwrap();
        let announced = outbox::withdraw_unpublished(&mut tx, "room", room, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        outcomes.push((id, announced));
    }
    wait_until_drained(&app, DRAIN).await;
    let stream: HashSet<i64> = published(&app).await.iter().map(|m| m.row()).collect();
    let remaining: HashSet<i64> = outbox_rows(&pool).await.iter().map(|r| r.0).collect();
    for (id, announced) in &outcomes {
        assert_eq!(
            stream.contains(id),
            *announced,
            "event {id}: published = {}, withdrawal said published = {announced}",
            stream.contains(id)
        );
        assert_eq!(remaining.contains(id), *announced, "event {id}");
    }
    let published_first = outcomes.iter().filter(|(_, a)| *a).count();
    eprintln!(
        "{published_first} published before their withdrawal, {} withdrawn unseen",
        outcomes.len() - published_first
    );
}

#[tokio::test]
async fn published_events_past_their_retention_are_pruned() {
    let app = TestApp::spawn_with(|c| {
        c.relay.relay_prune_interval_secs = 1;
        c.relay.relay_poll_interval_ms = 200;
    })
    .await;
    let pool = app.pool().await;
    let _relay = app.start_relay().await;
    let mut ids = Vec::new();
    for seq in 0..5 {
        ids.push(append(&pool, &event(1, seq)).await);
    }
    wait_until_drained(&app, DRAIN).await;
    // Three of them were written longer ago than the retention (7 days by default).
    sqlx::query(
        "UPDATE outbox.events SET created_at = now() - interval '8 days' WHERE id = ANY($1)",
    )
    .bind(&ids[..3])
    .execute(&pool)
    .await
    .unwrap();
    wait_for("old published events are pruned", DRAIN, async || {
        outbox_rows(&pool).await.len() == 2
    })
    .await;
    let left: Vec<i64> = outbox_rows(&pool).await.iter().map(|r| r.0).collect();
    assert_eq!(left, ids[3..]);
}
