//! Notifications beside live chat, measured in one run, rounds interleaved (A B A B …), both at
//! the same rate and measured the same way: from the commit of the event's transaction to the
//! moment a subscriber's WebSocket delivers what it caused.
//!
//! - **A, notifications:** an applicant's event (`board.application.waitlisted`, written straight
//!   into the outbox as the Apply saga's transaction would) → the relay → JetStream → the
//!   notifier (its notification and `notify.notification.written`, one transaction) → the relay
//!   → JetStream → the API's live feed → the organiser's `notificationAdded`.
//! - **B, chat:** a message written as createMessage's transaction writes it → the relay →
//!   JetStream → the API's live chat → a member's `messageAdded`.
//!
//! The notification path has one more hop through Postgres, the relay and JetStream than chat;
//! the figure says what that hop costs at this rate.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench notify
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::{LiveSubscription, TestApp, sign_up};
use fishapp_domain::board::ApplicationStatus;
use fishapp_domain::events::{ApplicationData, Event, EventType};
use fishapp_store::{board, chat, outbox};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ms, percentile};

const TRIPS: usize = 10;
const RATE: f64 = 500.0;
const ROUNDS: usize = 3;
const SECONDS_PER_ROUND: f64 = 5.0;

struct Trip {
    post: i64,
    room: i64,
    organiser: i64,
    organiser_token: String,
    member: i64,
    member_token: String,
}

type Times<K> = Arc<Mutex<HashMap<K, Instant>>>;

async fn trips(app: &TestApp) -> Vec<Trip> {
    let pool = app.pool().await;
    let mut trips = Vec::new();
    for n in 0..TRIPS {
        let (organiser_token, organiser) = sign_up(app).await;
        let (member_token, member) = sign_up(app).await;
        let (organiser, member) = (organiser.parse().unwrap(), member.parse().unwrap());
        let (post, room) = support::seed::open_post(&pool, organiser, 5, n).await;
        board::take_seat(&pool, post, member, board::SeatWay::default())
            .await
            .unwrap();
        chat::join_room(&pool, post, member).await.unwrap();
        trips.push(Trip {
            post,
            room,
            organiser,
            organiser_token,
            member,
            member_token,
        });
    }
    trips
}

/// Every organiser follows `notificationAdded`, every member the room's `messageAdded`; each
/// delivery's arrival is recorded by notification id and message id.
async fn subscribe_all(app: &TestApp, trips: &[Trip], notified: Times<i64>, messaged: Times<i64>) {
    for trip in trips {
        let mut live = LiveSubscription::open(
            app,
            Some(&trip.organiser_token),
            "subscription { notificationAdded { id } }",
            json!({}),
        )
        .await;
        let arrivals = notified.clone();
        tokio::spawn(async move {
            while let Some(value) = live.next(Duration::from_secs(3_600)).await {
                let at = Instant::now();
                let Some(id) = value["payload"]["data"]["notificationAdded"]["id"].as_str() else {
                    break;
                };
                arrivals.lock().unwrap().insert(id.parse().unwrap(), at);
            }
        });
        let mut live = LiveSubscription::open(
            app,
            Some(&trip.member_token),
            "subscription($input: MessageAddedInput!) { messageAdded(input: $input) { message { id } } }",
            json!({ "input": { "roomId": trip.room.to_string() } }),
        )
        .await;
        let arrivals = messaged.clone();
        tokio::spawn(async move {
            while let Some(value) = live.next(Duration::from_secs(3_600)).await {
                let at = Instant::now();
                let Some(id) = value["payload"]["data"]["messageAdded"]["message"]["id"].as_str()
                else {
                    break;
                };
                arrivals.lock().unwrap().insert(id.parse().unwrap(), at);
            }
        });
    }
    while app.metric("fishapp_notify_live_subscriptions").await < TRIPS as f64
        || app.metric("fishapp_chat_live_subscriptions").await < TRIPS as f64
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A: `RATE` applicant events per second for a round; their commit times by event id.
async fn notification_round(
    pool: &sqlx::PgPool,
    trips: &Arc<Vec<Trip>>,
    round: usize,
    committed: &Times<uuid::Uuid>,
) {
    let total = (RATE * SECONDS_PER_ROUND) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    let mut writes = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let (pool, trips, committed) = (pool.clone(), trips.clone(), committed.clone());
        writes.push(tokio::spawn(async move {
            let trip = &trips[n % TRIPS];
            let data = ApplicationData {
                id: i64::try_from(round * 1_000_000 + n).unwrap(),
                post_id: trip.post,
                user_id: trip.member,
                status: ApplicationStatus::Waitlisted,
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
            };
            let mut tx = pool.begin().await.unwrap();
            let row = outbox::append(
                &mut tx,
                &Event::application(EventType::ApplicationWaitlisted, &data),
            )
            .await
            .unwrap();
            let event_id: uuid::Uuid =
                sqlx::query_scalar("SELECT event_id FROM outbox.events WHERE id = $1")
                    .bind(row)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            tx.commit().await.unwrap();
            committed.lock().unwrap().insert(event_id, Instant::now());
        }));
    }
    for write in writes {
        write.await.unwrap();
    }
}

/// B: `RATE` chat messages per second for a round; their commit times by message id.
async fn chat_round(
    pool: &sqlx::PgPool,
    trips: &Arc<Vec<Trip>>,
    round: usize,
    committed: &Times<i64>,
) {
    let total = (RATE * SECONDS_PER_ROUND) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    let mut writes = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let (pool, trips, committed) = (pool.clone(), trips.clone(), committed.clone());
        writes.push(tokio::spawn(async move {
            let trip = &trips[n % TRIPS];
            let body = format!("r{round}-m{n}");
            let sent = chat::add_message(
                &pool,
                chat::NewMessage {
                    room_id: trip.room,
                    user_id: trip.organiser,
                    body: Some(&body),
                    image: None,
                    client_mutation_id: None,
                },
            )
            .await
            .unwrap();
            let chat::Sent::New(message) = sent else {
                panic!("the message was written")
            };
            committed.lock().unwrap().insert(message.id, Instant::now());
        }));
    }
    for write in writes {
        write.await.unwrap();
    }
}

/// Sorted latencies from commit to arrival, and how many arrived.
fn latencies<K: std::hash::Hash + Eq>(
    committed: &HashMap<K, Instant>,
    arrived: &HashMap<K, Instant>,
) -> Vec<Duration> {
    let mut all: Vec<Duration> = committed
        .iter()
        .filter_map(|(key, at)| Some(arrived.get(key)?.saturating_duration_since(*at)))
        .collect();
    all.sort();
    all
}

fn row(what: &str, all: &[Duration], expected: usize) {
    println!(
        "| {what} | {} of {expected} | {} | {} | {} |",
        all.len(),
        ms(percentile(all, 0.5)),
        ms(percentile(all, 0.99)),
        ms(*all.last().unwrap()),
    );
}

#[tokio::main]
async fn main() {
    {
        let app = Arc::new(
            TestApp::spawn_with(|c| {
                c.diagnostics.log_filter = "error".into();
                c.connections.database_max_connections = 20;
            })
            .await,
        );
        app.start_relay().await;
        app.start_notifier().await;
        let pool = app.pool().await;
        let trips = Arc::new(trips(&app).await);
        let notified: Times<i64> = Arc::default();
        let messaged: Times<i64> = Arc::default();
        subscribe_all(&app, &trips, notified.clone(), messaged.clone()).await;
        let events: Times<uuid::Uuid> = Arc::default();
        let messages: Times<i64> = Arc::default();
        for round in 0..ROUNDS {
            notification_round(&pool, &trips, round, &events).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            chat_round(&pool, &trips, round, &messages).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        // Which event each delivered notification came from.
        let sources: Vec<(i64, uuid::Uuid)> =
            sqlx::query_as("SELECT id, event_id FROM notify.notifications WHERE kind = 'APPLIED'")
                .fetch_all(&pool)
                .await
                .unwrap();
        let arrived: HashMap<uuid::Uuid, Instant> = {
            let notified = notified.lock().unwrap();
            sources
                .into_iter()
                .filter_map(|(id, event)| Some((event, *notified.get(&id)?)))
                .collect()
        };
        let notifications = latencies(&events.lock().unwrap(), &arrived);
        let chats = latencies(&messages.lock().unwrap(), &messaged.lock().unwrap());
        let expected = ROUNDS * (RATE * SECONDS_PER_ROUND) as usize;
        println!(
            "| {RATE} events/s, {TRIPS} trips, {ROUNDS} rounds of {SECONDS_PER_ROUND} s each, interleaved | delivered | p50 | p99 | max |"
        );
        println!("|---|---|---|---|---|");
        row(
            "A: applicant's event committed → organiser's `notificationAdded` (relay → notifier → relay → live feed)",
            &notifications,
            expected,
        );
        row(
            "B: chat message committed → member's `messageAdded` (relay → live chat)",
            &chats,
            expected,
        );
        println!(
            "| **A / B** | | **{:.1}** | **{:.1}** | |",
            percentile(&notifications, 0.5).as_secs_f64() / percentile(&chats, 0.5).as_secs_f64(),
            percentile(&notifications, 0.99).as_secs_f64() / percentile(&chats, 0.99).as_secs_f64(),
        );
    }
}
