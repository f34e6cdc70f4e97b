//! Applying to a trip, measured two ways in one run:
//!
//! 1. createApplyPost end to end (GraphQL mutation → Apply saga → application and membership) at
//!    concurrency 1 and 16, interleaved round by round (A, B, A, B …) with a floor of the same
//!    shape: a workflow on its own workflow queue running two no-op local activities with inputs
//!    of the same size, as the Apply saga's take_seat and join_room are (since the
//!    `local-db-steps` patch reached Apply). The ratio is what our own work costs over Temporal's.
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
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{floor, interleaved, ms, percentile, seed};

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
        trips.push(
            seed::open_post(&pool, owner, APPLICANTS as i32, trips.len())
                .await
                .0,
        );
    }
    let trips = Arc::new(trips);

    let prefix = app.config.temporal.temporal_task_queue_prefix.clone();
    let [workflows, post, chat] =
        ["workflows", "post", "chat"].map(|q| format!("{prefix}.floor.{q}"));
    floor::start_workers(
        &app.config,
        &[workflows.clone(), post.clone(), chat.clone()],
    );
    let client = floor::client(&app.config).await;
    // take_seat and join_room: local activities on the workflow's worker, two ids each.
    let steps = Arc::new(vec![
        floor::Step::local(json!({ "post_id": 1, "user_id": 1 })),
        floor::Step::local(json!({ "post_id": 1, "user_id": 1 })),
    ]);

    println!(
        "| concurrency | applies | createApplyPost p50 | p99 | applies/s | floor p50 | floor p99 | floor runs/s | **p50 ratio** | **throughput ratio** |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut done = 0;
    for (concurrency, n) in per_round {
        let (app2, applicants2, trips2) = (app.clone(), applicants.clone(), trips.clone());
        let (client2, workflows2, steps2, prefix2) = (
            client.clone(),
            workflows.clone(),
            steps.clone(),
            prefix.clone(),
        );
        let (applied, floored) = interleaved(
            ROUNDS,
            n,
            concurrency,
            move |i| {
                let (app, applicants, trips) = (app2.clone(), applicants2.clone(), trips2.clone());
                let k = done + i;
                async move {
                    let body = apply_to(
                        &app,
                        &applicants[k % APPLICANTS],
                        &json!(trips[k / APPLICANTS].to_string()),
                    )
                    .await;
                    assert!(body["errors"].is_null(), "{body}");
                }
            },
            move |i| {
                let (client, workflows, steps) =
                    (client2.clone(), workflows2.clone(), steps2.clone());
                let id = format!("{prefix2}/floor/{concurrency}/{i}");
                async move { floor::run(&client, &workflows, id, &steps).await }
            },
        )
        .await;
        done += n * ROUNDS;
        let (p50, fp50) = (applied.p(0.5), floored.p(0.5));
        println!(
            "| {concurrency} | {} | {} | {} | {:.1} | {} | {} | {:.1} | **{:.2}** | **{:.2}** |",
            n * ROUNDS,
            ms(p50),
            ms(applied.p(0.99)),
            applied.rate,
            ms(fp50),
            ms(floored.p(0.99)),
            floored.rate,
            p50.as_secs_f64() / fp50.as_secs_f64(),
            floored.rate / applied.rate,
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
        let trip = seed::open_post(&pool, owner, SEATS, round).await.0;
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
            c.diagnostics.log_filter = "error".into();
            c.connections.database_max_connections = 20;
        })
        .await,
    );
    let owner: i64 = sign_up(&app).await.1.parse().unwrap();
    apply_latency(&app, owner).await;
    capacity_under_fire(&app, owner).await;
}
