//! Applying to a trip, measured two ways in one run:
//!
//! 1. createApplyPost end to end (GraphQL mutation → Apply saga → application and membership) at
//!    concurrency 1 and 16, interleaved round by round (A, B, A, B …) with a floor of the same
//!    shape: a workflow on its own workflow queue running two no-op activities, one on a "post"
//!    queue and one on a "chat" queue, as the Apply saga's take_seat and join_room are. The ratio
//!    is what our own work costs over Temporal's round trips.
//! 2. Capacity under fire: 100 users apply at once to a trip with 3 seats, 20 times over; each
//!    round must end with exactly 3 applied, 97 refused with `POST_FULL`, and the seat count,
//!    the application rows and the room's members in agreement.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench applying
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::{TestApp, apply_to, error_code, sign_up};
use fishapp_domain::board::PostDraft;
use fishapp_store::{board, chat};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{floor, load, ms, percentile};

/// An OPEN trip of `owner` with `max_apply` seats and its room, written straight through the
/// store (what the CreatePost saga leaves behind), so that seeding does not dominate the run.
async fn open_trip(pool: &sqlx::PgPool, owner: i64, max_apply: i32) -> i64 {
    let id = board::reserve_post_id(pool).await.unwrap();
    let fields: PostDraft = serde_json::from_value(json!({
        "title": "Bench trip",
        "content": "Seeded for the benchmark.",
        "fishing_spot_type_id": 1,
        "prefecture_id": 13,
        "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
        "meeting_at": chrono::Utc::now() + chrono::Duration::days(7),
        "max_apply": max_apply,
        "fish_type_ids": [3],
    }))
    .unwrap();
    board::insert_pending(pool, id, owner, &fields)
        .await
        .unwrap();
    chat::create_room(pool, id, owner).await.unwrap();
    board::publish(pool, id).await.unwrap();
    id
}

async fn users(app: &TestApp, n: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(sign_up(app).await.0);
    }
    tokens
}

/// Part 1: apply end to end beside the floor, interleaved.
async fn apply_latency(app: &Arc<TestApp>, owner: i64) {
    const APPLICANTS: usize = 16;
    const ROUNDS: usize = 4;
    let pool = app.pool().await;
    let applicants: Arc<Vec<String>> = Arc::new(users(app, APPLICANTS).await);
    // Every (applicant, trip) pair applies once: call k takes applicant k % 16 and trip k / 16.
    let per_round = [(1usize, 10usize), (16, 48)];
    let calls: usize = per_round.iter().map(|(_, n)| n * ROUNDS).sum();
    let mut trips = Vec::new();
    for _ in 0..calls.div_ceil(APPLICANTS) {
        trips.push(open_trip(&pool, owner, APPLICANTS as i32).await);
    }
    let trips = Arc::new(trips);
    let next = Arc::new(AtomicUsize::new(0));

    let prefix = app.config.temporal_task_queue_prefix.clone();
    let [workflows, post, chat] =
        ["workflows", "post", "chat"].map(|q| format!("{prefix}.floor.{q}"));
    floor::start_workers(
        &app.config,
        &[workflows.clone(), post.clone(), chat.clone()],
    );
    let client = floor::client(&app.config).await;
    let steps = Arc::new(vec![post, chat]);

    println!(
        "| concurrency | applies | createApplyPost p50 | p99 | applies/s | floor p50 | floor p99 | floor runs/s | **p50 ratio** | **throughput ratio** |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (concurrency, n) in per_round {
        let (mut applied, mut floored) = (Vec::new(), Vec::new());
        let (mut applied_secs, mut floor_secs) = (0.0, 0.0);
        for round in 0..ROUNDS {
            let (app2, applicants2, trips2, next2) =
                (app.clone(), applicants.clone(), trips.clone(), next.clone());
            let (latencies, rate) = load(n, concurrency, move |_| {
                let (app, applicants, trips) = (app2.clone(), applicants2.clone(), trips2.clone());
                let k = next2.fetch_add(1, Ordering::SeqCst);
                async move {
                    let body = apply_to(
                        &app,
                        &applicants[k % APPLICANTS],
                        &json!(trips[k / APPLICANTS].to_string()),
                    )
                    .await;
                    assert!(body["errors"].is_null(), "{body}");
                }
            })
            .await;
            applied.extend(latencies);
            applied_secs += n as f64 / rate;
            let (client2, workflows2, steps2, prefix2) = (
                client.clone(),
                workflows.clone(),
                steps.clone(),
                prefix.clone(),
            );
            let (latencies, rate) = load(n, concurrency, move |i| {
                let (client, workflows, steps) =
                    (client2.clone(), workflows2.clone(), steps2.clone());
                let id = format!("{prefix2}/floor/{concurrency}/{round}/{i}");
                async move { floor::run(&client, &workflows, id, &steps).await }
            })
            .await;
            floored.extend(latencies);
            floor_secs += n as f64 / rate;
        }
        applied.sort();
        floored.sort();
        let total = (n * ROUNDS) as f64;
        let (rate, floor_rate) = (total / applied_secs, total / floor_secs);
        let (p50, fp50) = (percentile(&applied, 0.5), percentile(&floored, 0.5));
        println!(
            "| {concurrency} | {} | {} | {} | {rate:.1} | {} | {} | {floor_rate:.1} | **{:.2}** | **{:.2}** |",
            n * ROUNDS,
            ms(p50),
            ms(percentile(&applied, 0.99)),
            ms(fp50),
            ms(percentile(&floored, 0.99)),
            p50.as_secs_f64() / fp50.as_secs_f64(),
            floor_rate / rate,
        );
    }
}

/// Part 2: 100 applicants at once for 3 seats, 20 rounds.
async fn capacity_under_fire(app: &Arc<TestApp>, owner: i64) {
    const APPLICANTS: usize = 100;
    const SEATS: i32 = 3;
    const ROUNDS: usize = 20;
    let pool = app.pool().await;
    let applicants = users(app, APPLICANTS).await;
    let mut round_times = Vec::new();
    let (mut applied_total, mut refused_total) = (0, 0);
    for round in 0..ROUNDS {
        let trip = open_trip(&pool, owner, SEATS).await;
        let id = json!(trip.to_string());
        let started = Instant::now();
        let bodies: Vec<Value> =
            futures::future::join_all(applicants.iter().map(|token| apply_to(app, token, &id)))
                .await;
        round_times.push(started.elapsed());
        let applied = bodies.iter().filter(|b| b["errors"].is_null()).count();
        for body in bodies.iter().filter(|b| !b["errors"].is_null()) {
            assert_eq!(error_code(body), "CONFLICT", "round {round}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["reason"], "POST_FULL",
                "round {round}: {body}"
            );
        }
        assert_eq!(applied, SEATS as usize, "round {round}");
        assert_eq!(
            common::seats(&pool, trip).await,
            (SEATS, 3, 4),
            "round {round}"
        );
        applied_total += applied;
        refused_total += APPLICANTS - applied;
    }
    round_times.sort();
    println!();
    println!(
        "| rounds | applicants per round | seats | applied | refused (`POST_FULL`) | applyCount = rows = members − 1 | round p50 | round max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {ROUNDS} | {APPLICANTS} | {SEATS} | {applied_total} | {refused_total} | every round | {} | {} |",
        ms(percentile(&round_times, 0.5)),
        ms(*round_times.last().unwrap_or(&Duration::ZERO)),
    );
}

#[tokio::main]
async fn main() {
    let app = Arc::new(
        TestApp::spawn_with_worker(|c| {
            c.log_filter = "error".into();
            c.database_max_connections = 20;
        })
        .await,
    );
    let owner: i64 = sign_up(&app).await.1.parse().unwrap();
    apply_latency(&app, owner).await;
    capacity_under_fire(&app, owner).await;
}
