//! Soak: the capacity benchmark's mixed workload at a steady rate for a long time, with live-chat
//! subscribers connecting and leaving, watching what must stay flat.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench soak
//!
//! The workload's world (seed data, worker and outbox relay) lives in this process; the load goes
//! to a separate `fishapp serve` (release build) on the same database, task queues and stream, so
//! what is measured — its resident memory, open descriptors, the live-chat room map — is the
//! API's alone. Requests leave open-loop at `SOAK_RATE` per second (default 96: 60 % of the
//! 160/s the capacity run sustained) for `SOAK_MINUTES` (default 30); meanwhile `SUBSCRIBERS`
//! tasks each open a `messageAdded` subscription to a room of theirs, hold it 5 to 60 s while its
//! messages arrive, close it and open the next. Every `SOAK_WINDOW_SECS` (default 300) one row:
//! the window's latency percentiles and errors, and at its end the API's RSS, descriptors and
//! live subscriptions and rooms, and the database's connections. The run writes docs/soak.svg
//! (RSS and p99 per window).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::{LiveSubscription, ServeProcess};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::svg::{Chart, Series, line_chart};
use support::workload::{World, kind_of, request, world};
use support::{ms, percentile};

const SUBSCRIBERS: usize = 40;
/// How long after a window ends its row is printed.
const LATE: Duration = Duration::from_secs(10);
const FOLLOW: &str = "subscription($input: MessageAddedInput!) {
  messageAdded(input: $input) { message { id } } }";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a window saw: each request's latency from its scheduled time, and whether it succeeded.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    errors: usize,
}

/// The API process's state at a moment.
struct Sample {
    rss_mib: f64,
    descriptors: usize,
    subscriptions: f64,
    rooms: f64,
    db_connections: i64,
}

async fn sample(world: &World, serve: &ServeProcess) -> Sample {
    let pool = world.app.pool().await;
    let db_connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    Sample {
        rss_mib: serve.memory_mib().0,
        descriptors: serve.open_descriptors(),
        subscriptions: common::metric_at(serve.metrics_addr, "fishapp_chat_live_subscriptions")
            .await,
        rooms: common::metric_at(serve.metrics_addr, "fishapp_chat_live_rooms").await,
        db_connections,
    }
}

/// One subscriber's life until `until`: a subscription to a room of a user's, held 5 to 60 s
/// while its messages arrive, then the next user's.
async fn subscriber(
    world: Arc<World>,
    serve: std::net::SocketAddr,
    n: usize,
    until: tokio::time::Instant,
) {
    let mut turn = n;
    while tokio::time::Instant::now() < until {
        let user = &world.users[turn % world.users.len()];
        let mut live = LiveSubscription::open_at(
            serve,
            Some(&user.token),
            FOLLOW,
            json!({ "input": { "roomId": user.own_room.to_string() } }),
        )
        .await;
        let hold = Duration::from_secs(5 + (turn as u64 * 7919) % 56);
        let leave = (tokio::time::Instant::now() + hold).min(until);
        while let Some(left) = leave.checked_duration_since(tokio::time::Instant::now()) {
            if left.is_zero() || live.next(left).await.is_none() {
                break;
            }
        }
        drop(live);
        turn += SUBSCRIBERS;
    }
}

#[tokio::main]
async fn main() {
    let rate = setting("SOAK_RATE", 96).max(1);
    let minutes = setting("SOAK_MINUTES", 30).max(1);
    let window_secs = setting("SOAK_WINDOW_SECS", 300).max(10);
    let mut world = world().await;
    let serve = ServeProcess::start(
        &world.app,
        &[
            ("FISHAPP_DATABASE_MAX_CONNECTIONS", "20"),
            ("FISHAPP_BOARD_MAX_POSTS_PER_HOUR", "4294967295"),
            ("FISHAPP_CHAT_MAX_MESSAGES", "4294967295"),
        ],
    )
    .await;
    world.aim_at(serve.addr);
    let world = Arc::new(world);

    let total = Duration::from_secs(minutes * 60);
    let window = Duration::from_secs(window_secs);
    let windows = total.as_secs().div_ceil(window_secs) as usize;
    let started = tokio::time::Instant::now();
    let until = started + total;
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|n| tokio::spawn(subscriber(world.clone(), serve.addr, n, until)))
        .collect();
    let seen: Arc<Vec<Mutex<Window>>> = Arc::new((0..windows).map(|_| Mutex::default()).collect());

    println!(
        "Soak: {rate} requests/s for {minutes} min, {SUBSCRIBERS} subscribers coming and going, a row per {window_secs} s."
    );
    println!();
    println!(
        "| minutes | requests | errors | p50 | p99 | API RSS | descriptors | live subscriptions | live rooms | Postgres connections |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let first = sample(&world, &serve).await;
    println!(
        "| 0 | | | | | {:.1} MiB | {} | {} | {} | {} |",
        first.rss_mib, first.descriptors, first.subscriptions, first.rooms, first.db_connections
    );

    let interval = Duration::from_secs(1) / rate as u32;
    let mut sent = tokio::task::JoinSet::new();
    let mut rows: Vec<(f64, f64, f64)> = Vec::new();
    let mut next_report = started + window + LATE;
    let mut k: u64 = 0;
    loop {
        let scheduled = started + interval * k as u32;
        if scheduled >= until {
            break;
        }
        while scheduled >= next_report {
            rows.push(report(&world, &serve, &seen, rows.len(), window_secs).await);
            next_report += window;
        }
        tokio::time::sleep_until(scheduled).await;
        let (world, seen) = (world.clone(), seen.clone());
        let index = ((scheduled - started).as_secs() / window_secs) as usize;
        sent.spawn(async move {
            let ok = request(&world, k, kind_of(k)).await;
            let mut w = seen[index].lock().unwrap();
            w.latencies.push(scheduled.elapsed());
            w.errors += usize::from(!ok);
        });
        // Finished requests are reaped as the run goes: the set holds only those in flight.
        while sent.try_join_next().is_some() {}
        k += 1;
    }
    while sent.join_next().await.is_some() {}
    for s in subscribers {
        s.await.unwrap();
    }
    while rows.len() < windows {
        rows.push(report(&world, &serve, &seen, rows.len(), window_secs).await);
    }

    // Flat: RSS at the end against the end of the first window (the warm-up).
    let (warm, last) = (rows[0].1, rows[rows.len() - 1].1);
    println!();
    println!(
        "RSS after the first window {warm:.1} MiB, at the end {last:.1} MiB: growth **{:+.1} %** (goal ≤ 5 %).",
        (last - warm) / warm * 100.0
    );
    let svg = line_chart(
        &Chart {
            title: &format!(
                "Soak at {rate} requests/s, {} ({window_secs} s windows)",
                chrono::Utc::now().format("%Y-%m-%d")
            ),
            x_label: "minutes",
            y_label: "RSS, MiB / p99, ms (log scale)",
            threshold: None,
        },
        &[
            Series {
                name: "API RSS (MiB)",
                colour: "#1f77b4",
                points: rows.iter().map(|r| (r.0, r.1)).collect(),
            },
            Series {
                name: "p99 (ms)",
                colour: "#ff7f0e",
                points: rows.iter().map(|r| (r.0, r.2)).collect(),
            },
        ],
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/soak.svg");
    std::fs::write(&path, svg).expect("docs/soak.svg");
    println!();
    println!("Plot written to {}", path.display());
}

/// Prints window `index`'s row, `LATE` after the window ended (so its last requests have
/// answered; one slower than that would be left out of the row); returns (minutes, RSS, p99 ms).
async fn report(
    world: &World,
    serve: &ServeProcess,
    seen: &[Mutex<Window>],
    index: usize,
    window_secs: u64,
) -> (f64, f64, f64) {
    let now = sample(world, serve).await;
    let (mut latencies, errors) = {
        let w = seen[index].lock().unwrap();
        (w.latencies.clone(), w.errors)
    };
    latencies.sort();
    let minutes = ((index as u64 + 1) * window_secs) as f64 / 60.0;
    let (p50, p99) = if latencies.is_empty() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (percentile(&latencies, 0.5), percentile(&latencies, 0.99))
    };
    println!(
        "| {minutes:.0} | {} | {errors} | {} | {} | {:.1} MiB | {} | {} | {} | {} |",
        latencies.len(),
        ms(p50),
        ms(p99),
        now.rss_mib,
        now.descriptors,
        now.subscriptions,
        now.rooms,
        now.db_connections
    );
    (minutes, now.rss_mib, p99.as_secs_f64() * 1e3)
}
