//! Login latency, and what a login flood does to a cheap query's tail latency.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench auth
//!
//! Runs the real application in-process (release build) against the local stack, with a
//! database of its own. Prints a Markdown table for docs/benchmarks.md. Bounded: a few thousand
//! requests, all on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::TestApp;
use serde_json::json;
use std::time::{Duration, Instant};
use support::{ms, percentile};

const LOGINS: usize = 200;
const CHEAP_QUERIES: usize = 2_000;
const FLOOD: usize = 50;
const PASSWORD: &str = "benchmark-password-42";

async fn timed<F: std::future::Future<Output = serde_json::Value>>(f: F) -> Duration {
    let started = Instant::now();
    let body = f.await;
    assert!(body["errors"].is_null(), "{body}");
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let app = TestApp::spawn_with(|c| {
        c.diagnostics.log_filter = "error".into();
        // The flood is 50 clients logging into one account from one address: sign-in throttling
        // counts each attempt in flight and would refuse most of them before any hashing. This
        // benchmark measures the hashing pool's isolation, so every login must hash.
        c.accounts.login_failures_before_delay = u32::MAX;
    })
    .await;
    let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = app
        .graphql_as(
            None,
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } } }",
            json!({ "i": { "email": email, "password": PASSWORD, "name": "bench", "sex": "MALE", "introduction": "bench" } }),
        )
        .await;
    let user_id = body["data"]["createUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { tokenPair { idToken } } }";
    let login_vars = json!({ "e": email, "p": PASSWORD });
    let cheap = "query($id: ID!) { user(id: $id) { name introduction } }";
    let cheap_vars = json!({ "id": user_id });

    // Warm up connections and caches.
    for _ in 0..20 {
        timed(app.graphql_as(None, cheap, cheap_vars.clone())).await;
    }

    let mut logins = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        logins.push(timed(app.graphql_as(None, login, login_vars.clone())).await);
    }
    logins.sort();

    let mut quiet = Vec::with_capacity(CHEAP_QUERIES);
    for _ in 0..CHEAP_QUERIES {
        quiet.push(timed(app.graphql_as(None, cheap, cheap_vars.clone())).await);
    }
    quiet.sort();

    // The flood: FLOOD clients logging in back to back until the measurement is done.
    let stop = tokio_util::sync::CancellationToken::new();
    // Logins are counted only when they finish inside the measured window.
    let flood_logins = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let measuring = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = std::sync::Arc::new(app);
    let flooders: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (app, stop, count, measuring, vars) = (
                app.clone(),
                stop.clone(),
                flood_logins.clone(),
                measuring.clone(),
                login_vars.clone(),
            );
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    timed(app.graphql_as(None, login, vars.clone())).await;
                    if measuring.load(std::sync::atomic::Ordering::SeqCst) {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flood_started = Instant::now();
    measuring.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut flooded = Vec::with_capacity(CHEAP_QUERIES);
    for _ in 0..CHEAP_QUERIES {
        flooded.push(timed(app.graphql_as(None, cheap, cheap_vars.clone())).await);
    }
    measuring.store(false, std::sync::atomic::Ordering::SeqCst);
    let flood_secs = flood_started.elapsed().as_secs_f64();
    stop.cancel();
    for flooder in flooders {
        flooder.await.unwrap();
    }
    flooded.sort();
    let logins_per_sec =
        flood_logins.load(std::sync::atomic::Ordering::Relaxed) as f64 / flood_secs;

    let ratio = percentile(&flooded, 0.99).as_secs_f64() / percentile(&quiet, 0.99).as_secs_f64();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| login p50 (sequential, {LOGINS} logins) | {} |",
        ms(percentile(&logins, 0.50))
    );
    println!("| login p99 | {} |", ms(percentile(&logins, 0.99)));
    println!(
        "| cheap query p50 / p99, quiet ({CHEAP_QUERIES} queries) | {} / {} |",
        ms(percentile(&quiet, 0.50)),
        ms(percentile(&quiet, 0.99))
    );
    println!(
        "| cheap query p50 / p99, during a {FLOOD}-client login flood | {} / {} |",
        ms(percentile(&flooded, 0.50)),
        ms(percentile(&flooded, 0.99))
    );
    println!("| logins finished inside the measured window | {logins_per_sec:.1} /s |");
    println!("| **p99 ratio, flood / quiet** | **{ratio:.2}** |");
}
