//! Live chat, measured in one run:
//!
//! 1. createMessage → messageAdded at the other members: 20 rooms of 5 members (100
//!    subscribers), one sender per room, 200 messages/s in all. Latency is from the moment the
//!    sender starts its createMessage request to the moment a subscriber's WebSocket delivers
//!    the message — through Postgres, the outbox relay, JetStream and the API's live fan-out.
//!    Beside it, the floor: a raw JetStream publish of a message of the same size to the same
//!    server, received by an ordered consumer in the same process, at the same rate and fan-out
//!    (one consumer per room, five deliveries counted per message); and the committed floor, the
//!    same with a message row and an outbox row committed in Postgres before each publish. The
//!    three alternate in rounds (A, B, C, A, B, C …).
//! 2. Memory: a separate `fishapp serve` process's resident memory before and after 1,000 idle
//!    `messageAdded` subscriptions (from /proc), with the configured WebSocket buffers and with
//!    the library's defaults, in alternating rounds (A B A B), each a fresh process.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench chat
//!
//! `ONLY_MEMORY=1 cargo bench --bench chat` runs part 2 alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::{LiveSubscription, TestApp, sign_up};
use fishapp_domain::board::PostDraft;
use fishapp_store::{board, chat};
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ms, percentile};

const ROOMS: usize = 20;
const MEMBERS: usize = 5;
const RATE: f64 = 200.0;
const ROUNDS: usize = 3;
const SECONDS_PER_ROUND: f64 = 5.0;
const SEND: &str =
    "mutation($input: CreateMessageInput!) { createMessage(input: $input) { message { id } } }";
const FOLLOW: &str = "subscription($input: MessageAddedInput!) {
  messageAdded(input: $input) { message { id body roomId createdAt } } }";

struct Room {
    id: i64,
    /// Members' tokens; the first is the owner, who sends.
    tokens: Vec<String>,
}

/// 20 open trips, each with a room of 5 members, written through the store.
async fn rooms(app: &TestApp) -> Vec<Room> {
    let pool = app.pool().await;
    let mut rooms = Vec::new();
    for _ in 0..ROOMS {
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..MEMBERS {
            let (token, id) = sign_up(app).await;
            tokens.push(token);
            ids.push(id.parse::<i64>().unwrap());
        }
        let post = board::reserve_post_id(&pool).await.unwrap();
        let draft: PostDraft = serde_json::from_value(json!({
            "title": "Bench chat", "content": "A trip.", "fishing_spot_type_id": 1,
            "prefecture_id": 13, "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
            "meeting_at": chrono::Utc::now() + chrono::Duration::days(2),
            "max_apply": 10, "fish_type_ids": [3],
        }))
        .unwrap();
        board::insert_pending(&pool, post, ids[0], &draft)
            .await
            .unwrap();
        let room = chat::create_room(&pool, post, ids[0]).await.unwrap();
        board::publish(&pool, post).await.unwrap();
        for id in &ids[1..] {
            // A member holds a seat first, as the Apply saga does it.
            board::take_seat(&pool, post, *id, board::SeatWay::default())
                .await
                .unwrap();
            chat::join_room(&pool, post, *id).await.unwrap();
        }
        rooms.push(Room {
            id: room.id,
            tokens,
        });
    }
    rooms
}

/// Sends `per_room` messages in each room at `RATE` in all; returns when all are sent, with the
/// start time of each message by body.
async fn send_round(
    app: &Arc<TestApp>,
    rooms: &Arc<Vec<Room>>,
    round: usize,
    started: &Arc<Mutex<HashMap<String, Instant>>>,
    answered: &Arc<Mutex<Vec<Duration>>>,
) {
    let total = (RATE * SECONDS_PER_ROUND) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    let mut sends = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let room = &rooms[n % ROOMS];
        let body = format!("r{round}-m{n}");
        started.lock().unwrap().insert(body.clone(), Instant::now());
        let (app, token, id) = (app.clone(), room.tokens[0].clone(), room.id);
        sends.push(tokio::spawn(async move {
            let t = Instant::now();
            let reply = app
                .graphql_as(
                    Some(&token),
                    SEND,
                    json!({ "input": { "roomId": id.to_string(), "body": body } }),
                )
                .await;
            assert!(reply["errors"].is_null(), "{reply}");
            t.elapsed()
        }));
    }
    let mut took = Vec::with_capacity(total);
    for send in sends {
        took.push(send.await.unwrap());
    }
    took.sort();
    answered.lock().unwrap().extend(took);
}

/// Part 1, the app's side: every member of every room follows it; latencies per delivery.
async fn open_followers(
    app: &TestApp,
    rooms: &[Room],
    started: Arc<Mutex<HashMap<String, Instant>>>,
    latencies: Arc<Mutex<Vec<Duration>>>,
) {
    for room in rooms {
        for token in &room.tokens {
            let mut live = LiveSubscription::open(
                app,
                Some(token),
                FOLLOW,
                json!({ "input": { "roomId": room.id.to_string() } }),
            )
            .await;
            let (started, latencies) = (started.clone(), latencies.clone());
            tokio::spawn(async move {
                while let Some(value) = live.next(Duration::from_secs(3_600)).await {
                    let arrived = Instant::now();
                    // The end of the run (the app shuts down) ends every subscription.
                    let Some(body) = value["payload"]["data"]["messageAdded"]["message"]["body"]
                        .as_str()
                        .map(str::to_owned)
                    else {
                        break;
                    };
                    let sent = started.lock().unwrap().get(&body).copied();
                    if let Some(sent) = sent {
                        latencies.lock().unwrap().push(arrived - sent);
                    }
                }
            });
        }
    }
    let want = (ROOMS * MEMBERS) as f64;
    while app.metric("fishapp_chat_live_subscriptions").await < want {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a floor's message goes through before it is published.
#[derive(Clone)]
enum Floor {
    /// Straight to JetStream: the goal's floor.
    Raw,
    /// First a message row and an outbox row committed in one Postgres transaction, as the app
    /// writes them, then the publish: what any chat pays that stores a message durably before it
    /// announces it (the design's rule). Tables of the benchmark's own in the app's database.
    Committed(sqlx::PgPool),
}

const FLOOR_TABLES: &str = "
CREATE TABLE bench_chat_floor_message (
    id bigserial PRIMARY KEY, room_id bigint NOT NULL, body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_chat_floor_outbox (
    id bigserial PRIMARY KEY, event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    subject text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());";

/// Latencies of one floor: per delivery, and (committed floor) from the start to the commit.
#[derive(Default)]
struct FloorTimes {
    deliveries: Mutex<Vec<Duration>>,
    committed: Mutex<Vec<Duration>>,
}

/// Part 1, a floor: one ordered consumer per room on a stream of our own; each message counts
/// as `MEMBERS` deliveries, as the app's fan-out delivers it to five sockets.
async fn floor_round(
    jetstream: &async_nats::jetstream::Context,
    subject_prefix: &str,
    round: usize,
    floor: &Floor,
    times: &Arc<FloorTimes>,
) {
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = (RATE * SECONDS_PER_ROUND) as usize;
    let stream = jetstream.get_stream("BENCH_CHAT_FLOOR").await.unwrap();
    let mut readers = Vec::new();
    for room in 0..ROOMS {
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("{subject_prefix}.{room}"),
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let (started, times) = (started.clone(), times.clone());
        let expected = total / ROOMS;
        readers.push(tokio::spawn(async move {
            for _ in 0..expected {
                let message = messages.next().await.unwrap().unwrap();
                let arrived = Instant::now();
                let envelope: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
                let sent = started.lock().unwrap()[envelope["data"]["body"].as_str().unwrap()];
                let mut all = times.deliveries.lock().unwrap();
                for _ in 0..MEMBERS {
                    all.push(arrived - sent);
                }
            }
        }));
    }
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    let mut publishes = Vec::new();
    for n in 0..total {
        ticker.tick().await;
        let room = n % ROOMS;
        let body = format!("f{round}-m{n}");
        let subject = format!("{subject_prefix}.{room}");
        // The size of a relay envelope of a short message.
        let envelope = json!({ "id": n, "type": "chat.room.message_added",
            "subject": subject, "aggregate": { "type": "room", "id": room.to_string() },
            "occurredAt": chrono::Utc::now(), "version": 1,
            "data": { "id": n, "roomId": room, "userId": 1, "body": body, "hasImage": false,
                      "createdAt": chrono::Utc::now(), "updatedAt": chrono::Utc::now() } });
        let t = Instant::now();
        started.lock().unwrap().insert(body.clone(), t);
        let (jetstream, floor, times) = (jetstream.clone(), floor.clone(), times.clone());
        publishes.push(tokio::spawn(async move {
            let envelope = envelope.to_string();
            if let Floor::Committed(pool) = &floor {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO bench_chat_floor_message (room_id, body) VALUES ($1, $2)")
                    .bind(room as i64)
                    .bind(&body)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query(
                    "INSERT INTO bench_chat_floor_outbox (subject, payload) VALUES ($1, $2::jsonb)",
                )
                .bind(&subject)
                .bind(&envelope)
                .execute(&mut *tx)
                .await
                .unwrap();
                tx.commit().await.unwrap();
                times.committed.lock().unwrap().push(t.elapsed());
            }
            jetstream
                .publish(subject, envelope.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }));
    }
    for publish in publishes {
        publish.await.unwrap();
    }
    for reader in readers {
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn latency_under_load(app: &Arc<TestApp>, rooms: Arc<Vec<Room>>) {
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let app_latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    open_followers(app, &rooms, started.clone(), app_latencies.clone()).await;
    let jetstream = app.jetstream().await;
    let floor_prefix = format!("{}-floor", app.config.relay.relay_subject_prefix);
    let _ = jetstream.delete_stream("BENCH_CHAT_FLOOR").await;
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "BENCH_CHAT_FLOOR".to_owned(),
            subjects: vec![format!("{floor_prefix}.>")],
            storage: async_nats::jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .unwrap();
    let pool = app.pool().await;
    sqlx::raw_sql(FLOOR_TABLES).execute(&pool).await.unwrap();
    let committed_floor = Floor::Committed(pool);
    let raw: Arc<FloorTimes> = Arc::default();
    let committed: Arc<FloorTimes> = Arc::default();
    let answered: Arc<Mutex<Vec<Duration>>> = Arc::default();
    for round in 0..ROUNDS {
        send_round(app, &rooms, round, &started, &answered).await;
        // Let the last deliveries land before the next side's round starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        floor_round(&jetstream, &floor_prefix, round, &Floor::Raw, &raw).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        floor_round(
            &jetstream,
            &floor_prefix,
            ROUNDS + round,
            &committed_floor,
            &committed,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = jetstream.delete_stream("BENCH_CHAT_FLOOR").await;
    let sorted = |v: &Mutex<Vec<Duration>>| {
        let mut v = v.lock().unwrap().clone();
        v.sort();
        v
    };
    let app_all = sorted(&app_latencies);
    let raw_all = sorted(&raw.deliveries);
    let committed_all = sorted(&committed.deliveries);
    let commits = sorted(&committed.committed);
    let answered = sorted(&answered);
    let expected = ROUNDS * (RATE * SECONDS_PER_ROUND) as usize * MEMBERS;
    let row = |what: &str, count: String, v: &[Duration]| {
        println!(
            "| {what} | {count} | {} | {} | {} |",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(*v.last().unwrap()),
        )
    };
    println!(
        "| {RATE} messages/s, {ROOMS} rooms × {MEMBERS} subscribers, {ROUNDS} rounds of {SECONDS_PER_ROUND} s each side | deliveries | p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|");
    let deliveries = |v: &[Duration]| format!("{} of {expected}", v.len());
    for (what, count, v) in [
        (
            "createMessage → messageAdded (API → Postgres → relay → JetStream → fan-out → WebSocket)",
            deliveries(&app_all),
            &app_all,
        ),
        (
            "of which: createMessage answered (HTTP → Postgres commit → response)",
            format!("{} requests", answered.len()),
            &answered,
        ),
        (
            "raw floor: JetStream publish → ordered consumer, same rate and size",
            deliveries(&raw_all),
            &raw_all,
        ),
        (
            "committed floor: message and outbox rows committed in Postgres, then the raw floor",
            deliveries(&committed_all),
            &committed_all,
        ),
        (
            "of which: the commit",
            format!("{} transactions", commits.len()),
            &commits,
        ),
    ] {
        row(what, count, v);
    }
    let ratio = |a: &[Duration], b: &[Duration], p: f64| {
        percentile(a, p).as_secs_f64() / percentile(b, p).as_secs_f64()
    };
    println!(
        "| **ratio app / raw floor** (the goal's) | | **{:.1}** | **{:.1}** | |",
        ratio(&app_all, &raw_all, 0.5),
        ratio(&app_all, &raw_all, 0.99),
    );
    println!(
        "| **ratio app / committed floor** | | **{:.1}** | **{:.1}** | |",
        ratio(&app_all, &committed_all, 0.5),
        ratio(&app_all, &committed_all, 0.99),
    );
    println!(
        "| ratio committed floor / raw floor | | {:.1} | {:.1} | |",
        ratio(&committed_all, &raw_all, 0.5),
        ratio(&committed_all, &raw_all, 0.99),
    );
}

/// One `fishapp serve` process's resident memory with `IDLE` idle subscriptions (each on its own
/// socket), with `extra` configuration: (before, after, per subscription in KiB).
async fn idle_memory(app: &TestApp, rooms: &[Room], extra: &[(&str, &str)]) -> (f64, f64, f64) {
    let serve = common::ServeProcess::start(app, extra).await;
    let open = || common::metric_at(serve.metrics_addr, "fishapp_chat_live_subscriptions");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, _) = serve.memory_mib();
    let socket = serve.addr;
    let mut held = Vec::with_capacity(IDLE);
    for n in 0..IDLE {
        let room = &rooms[n % ROOMS];
        let token = &room.tokens[(n / ROOMS) % MEMBERS];
        held.push(
            LiveSubscription::open_at(
                socket,
                Some(token),
                FOLLOW,
                json!({ "input": { "roomId": room.id.to_string() } }),
            )
            .await,
        );
    }
    while open().await < IDLE as f64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, _) = serve.memory_mib();
    drop(held);
    drop(serve);
    (before, after, (after - before) * 1024.0 / IDLE as f64)
}

const IDLE: usize = 1_000;

/// Idle subscriptions' memory with the configured WebSocket buffers (A) and the library's
/// defaults, 128 KiB each (B), in alternating rounds, each a fresh process.
async fn idle_subscriptions(app: &TestApp, rooms: &[Room]) {
    const LIBRARY_DEFAULTS: &[(&str, &str)] = &[
        ("FISHAPP_GRAPHQL_WS_READ_BUFFER_BYTES", "131072"),
        ("FISHAPP_GRAPHQL_WS_WRITE_BUFFER_BYTES", "131072"),
    ];
    println!();
    println!(
        "| round | WebSocket buffers | started | with {IDLE} idle `messageAdded` subscriptions | per subscription |"
    );
    println!("|---|---|---|---|---|");
    let mut per = (Vec::new(), Vec::new());
    for round in 1..=2 {
        for (name, extra) in [
            ("configured (4 KiB)", &[][..]),
            ("library defaults (128 KiB)", LIBRARY_DEFAULTS),
        ] {
            let (before, after, kib) = idle_memory(app, rooms, extra).await;
            println!("| {round} | {name} | {before:.1} MiB | {after:.1} MiB | {kib:.1} KiB |");
            if extra.is_empty() {
                per.0.push(kib)
            } else {
                per.1.push(kib)
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "| **mean** | configured {:.1} KiB, library defaults {:.1} KiB | | | **ratio {:.2}** |",
        mean(&per.0),
        mean(&per.1),
        mean(&per.0) / mean(&per.1)
    );
}

#[tokio::main]
async fn main() {
    let app = Arc::new(
        TestApp::spawn_with_worker(|c| {
            c.diagnostics.log_filter = "error".into();
            c.connections.database_max_connections = 20;
            c.chat.chat_max_messages = 1_000_000;
        })
        .await,
    );
    let _relay = app.start_relay().await;
    let rooms = Arc::new(rooms(&app).await);
    // `ONLY_MEMORY=1`: part 2 alone.
    if std::env::var("ONLY_MEMORY").is_err() {
        latency_under_load(&app, rooms.clone()).await;
    }

    idle_subscriptions(&app, &rooms).await;
}
