//! The outbox relay beside raw JetStream publishing, in one run:
//!
//! 1. **Throughput**, interleaved A B A B: the same N envelopes (same bytes, same `Nats-Msg-Id`
//!    headers, same stream limits, same 500-message windows of async publishes) published raw by
//!    this process, then by the relay from the outbox (one `INSERT … SELECT` of N rows, timed
//!    from its commit until the relay has marked every row published).
//! 2. **Offered load** at 1,000 and 5,000 events/s for 5 s: 8 writers, one event per transaction
//!    through `outbox::append`, paced; a core NATS subscriber on the stream's subjects timestamps
//!    each event's arrival, so commit → arrival is measured per event (JetStream stores and
//!    acknowledges a message as it forwards it to subscribers; the relay's own write → ack
//!    histogram is printed beside it).
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench relay
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use async_nats::jetstream::message::PublishMessage;
use common::TestApp;
use fishapp_domain::events::{AggregateRef, Envelope, EventType, subject};
use fishapp_store::outbox::{self, Event};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ms, percentile};

const N: usize = 20_000;
const WINDOW: usize = 500;
const AGGREGATES: usize = 1_000;

/// A post as the board's events carry it (~400 bytes of JSON).
fn payload(seq: usize) -> Value {
    json!({
        "id": seq % AGGREGATES, "seq": seq, "userId": 42, "title": "Sea bass at dawn",
        "content": "Meet at the pier at five; bring waders and a headlamp. Car pooling from the station.",
        "fishingSpotTypeId": 1, "prefectureId": 13,
        "meetingPlaceId": "ChIJ51cu8IcbXWARiRtXIothAS4", "meetingAt": "2026-12-01T05:00:00Z",
        "maxApply": 3, "applyCount": 1, "status": "OPEN",
        "createdAt": "2026-11-28T10:00:00Z", "updatedAt": "2026-11-28T10:00:00Z"
    })
}

/// Raw: the envelopes the relay would send for N events (each with an identity of its own, as
/// the relay's), published in windows of async publishes (send the window, then await its
/// acks), like one relay wave per batch.
async fn raw(js: &async_nats::jetstream::Context, prefix: &str) -> Duration {
    let deployment = uuid::Uuid::now_v7();
    let messages: Vec<(String, String, Vec<u8>)> = (0..N)
        .map(|seq| {
            let id = uuid::Uuid::now_v7();
            let event_type = EventType::PostUpdated.name();
            let envelope = Envelope {
                id,
                deployment,
                event_type: event_type.to_owned(),
                subject: subject(prefix, event_type),
                aggregate: AggregateRef {
                    kind: "post".to_owned(),
                    id: (seq % AGGREGATES).to_string(),
                },
                occurred_at: chrono::Utc::now(),
                version: 1,
                data: payload(seq),
            };
            (
                envelope.subject.clone(),
                id.to_string(),
                serde_json::to_vec(&envelope).unwrap(),
            )
        })
        .collect();
    let started = Instant::now();
    for window in messages.chunks(WINDOW) {
        let mut acks = Vec::with_capacity(window.len());
        for (subject, id, body) in window {
            let message = PublishMessage::build()
                .payload(body.clone().into())
                .message_id(id);
            acks.push(js.send_publish(subject.clone(), message).await.unwrap());
        }
        for ack in acks {
            ack.await.unwrap();
        }
    }
    started.elapsed()
}

/// Relay: N rows committed at once into the outbox, timed until all are marked published.
async fn relayed(app: &TestApp, pool: &sqlx::PgPool) -> Duration {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO outbox.events (event_type, aggregate_type, aggregate_id, payload, event_id)
         SELECT 'board.post.updated', 'post', (s % $2)::text, $3::jsonb, gen_random_uuid()
           FROM generate_series(1, $1) AS s",
    )
    .bind(N as i64)
    .bind(AGGREGATES as i64)
    .bind(payload(0))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let started = Instant::now();
    common::wait_until_drained(app, Duration::from_secs(300)).await;
    started.elapsed()
}

/// Offered load: `rate` events/s for `seconds`, one per transaction, commit → arrival per event.
async fn offered(
    app: &TestApp,
    pool: &sqlx::PgPool,
    rate: usize,
    seconds: u64,
) -> (f64, f64, Duration, Duration) {
    let client = async_nats::connect(&app.config.connections.nats_url)
        .await
        .unwrap();
    let mut subscriber = client
        .subscribe(format!("{}.>", app.config.relay.relay_subject_prefix))
        .await
        .unwrap();
    // Events are told apart by the `seq` of their payload.
    let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let collector = {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let envelope: Envelope = serde_json::from_slice(&message.payload).unwrap();
                let seq = envelope.data["seq"].as_i64().unwrap();
                arrivals.lock().unwrap().insert(seq, Instant::now());
            }
        })
    };
    let writers = 8;
    let interval = Duration::from_secs_f64(writers as f64 / rate as f64);
    let commits: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (pool, commits) = (pool.clone(), commits.clone());
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let mut seq = w;
                while Instant::now() < deadline {
                    ticker.tick().await;
                    let event = Event {
                        event_type: EventType::PostUpdated,
                        aggregate_id: (seq % AGGREGATES).to_string(),
                        part_id: None,
                        payload: payload(seq),
                    };
                    let mut tx = pool.begin().await.unwrap();
                    outbox::append(&mut tx, &event).await.unwrap();
                    tx.commit().await.unwrap();
                    commits.lock().unwrap().insert(seq as i64, Instant::now());
                    seq += writers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let written_in = started.elapsed();
    common::wait_until_drained(app, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    collector.abort();
    let commits = commits.lock().unwrap();
    let arrivals = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = commits
        .iter()
        .map(|(id, committed)| arrivals[id].saturating_duration_since(*committed))
        .collect();
    latencies.sort();
    let last_arrival = arrivals.values().max().copied().unwrap();
    let offered_rate = commits.len() as f64 / written_in.as_secs_f64();
    let delivered_rate = commits.len() as f64 / (last_arrival - started).as_secs_f64();
    (
        offered_rate,
        delivered_rate,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = TestApp::spawn_with(|c| c.diagnostics.log_filter = "error".to_owned()).await;
        let pool = app.pool().await;
        let relay = app.start_relay().await;
        let js = app.jetstream().await;
        // The raw side gets a stream of its own with the relay's limits.
        let raw_prefix = format!("{}-raw", app.config.relay.relay_subject_prefix);
        let raw_settings = fishapp_relaylog::StreamSettings {
            name: format!("{}_RAW", app.config.relay.relay_stream),
            subject_prefix: raw_prefix.clone(),
            ..fishapp::app::relay_settings(&app.config).stream
        };
        fishapp_relaylog::stream::provision(&js, &raw_settings, uuid::Uuid::now_v7())
            .await
            .unwrap();
        common::wait_until_drained(&app, Duration::from_secs(30)).await;

        println!("relay throughput beside raw JetStream publishing, {N} events, {AGGREGATES} aggregates, interleaved");
        let (mut raw_rates, mut relay_rates) = (Vec::new(), Vec::new());
        for round in 0..2 {
            let took = raw(&js, &raw_prefix).await;
            raw_rates.push(N as f64 / took.as_secs_f64());
            let took = relayed(&app, &pool).await;
            relay_rates.push(N as f64 / took.as_secs_f64());
            println!(
                "  round {round}: raw {:.0} /s, relay {:.0} /s",
                raw_rates[round], relay_rates[round]
            );
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "  mean: raw {:.0} /s, relay {:.0} /s, ratio relay/raw {:.2}",
            mean(&raw_rates),
            mean(&relay_rates),
            mean(&relay_rates) / mean(&raw_rates)
        );

        for rate in [1_000, 5_000] {
            let (offered_rate, delivered_rate, p50, p99) = offered(&app, &pool, rate, 5).await;
            println!(
                "offered {rate} /s: achieved {offered_rate:.0} /s written, {delivered_rate:.0} /s delivered; commit → arrival p50 {} p99 {}",
                ms(p50),
                ms(p99)
            );
        }
        let delay = relay
            .registry
            .gather()
            .into_iter()
            .find(|f| f.name() == "fishapp_relay_delay_seconds")
            .unwrap();
        let histogram = delay.get_metric()[0].get_histogram();
        println!(
            "relay write → ack, all events of the run: {} events, mean {}",
            histogram.get_sample_count(),
            ms(Duration::from_secs_f64(
                histogram.get_sample_sum() / histogram.get_sample_count().max(1) as f64
            ))
        );
        let _ = js.delete_stream(&raw_settings.name).await;
    });
}
