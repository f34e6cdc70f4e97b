//! Soak: the capacity benchmark's mixed workload at a steady rate for a long time, with live-chat
//! subscribers connecting and leaving, watching what must stay flat.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench soak
//!
//! The workload's world (seed data, worker and outbox relay) lives in this process; the load goes
//! to a separate `fishapp serve` (release build) on the same database, task queues and stream, so
//! what is measured — its resident memory, open descriptors, the live-chat room map — is the API's
//! alone. Requests leave open-loop at `SOAK_RATE` per second for `SOAK_MINUTES` (default 30). The
//! rate's default, 60, is 60 % of the 100/s the capacity run sustained with matched start on the
//! slowest machine measured (2026-12-04): this API starts sagas matched, as its worker is in this
//! process; on another machine set it to 60 % of what `--bench capacity` reports for the matched
//! side there. Meanwhile `SUBSCRIBERS` tasks each open a `messageAdded` subscription to a room of
//! theirs, hold it 5 to 60 s while its messages arrive, close it and open the next. The API's
//! resident memory is sampled every `RSS_EVERY`. Every `SOAK_WINDOW_SECS` (default 300) one row:
//! the window's latency percentiles and errors, the median, mean and highest RSS of its samples,
//! and at its end the API's descriptors, live subscriptions and rooms, and the database's
//! connections. Growth is the last window's median RSS against the median of the window after the
//! first (the first is the warm-up) — the median, because a sample that falls while a login's 19
//! MiB of argon2 memory is resident (in use, or freed less than the allocator's purge delay ago)
//! reads ~20 MiB high and a mean counts it —, with the same by means and the least-squares slope of
//! every sample after the warm-up beside it: one reading at each end would mistake the allocator
//! returning memory in steps for a trend. Each sample also reads where the RSS is (`/proc/<pid>/smaps`
//! by kind of mapping: allocator arenas, thread stacks, C heap, files; see `support::smaps`) and the
//! API's threads; a second table at the end gives each window's medians of those, to say which part
//! moved. The run writes docs/soak.svg (every RSS sample, and p99 per window).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::{LiveSubscription, ServeProcess};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::smaps::{Resident, resident};
use support::svg::{Chart, Series, line_chart};
use support::workload::{World, kind_of, request, world};
use support::{ms, percentile};

const SUBSCRIBERS: usize = 40;
/// How often the API's resident memory is read.
const RSS_EVERY: Duration = Duration::from_secs(5);
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
    /// (minutes since the start, API RSS in MiB), every `RSS_EVERY`.
    rss: Vec<(f64, f64)>,
    /// The same samples' RSS by kind of mapping.
    resident: Vec<Resident>,
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
    let rate = setting("SOAK_RATE", 60).max(1);
    let minutes = setting("SOAK_MINUTES", 30).max(1);
    let window_secs = setting("SOAK_WINDOW_SECS", 300).max(10);
    let mut world = world().await;
    let serve = ServeProcess::start(
        &world.app,
        &[
            ("FISHAPP_DATABASE_MAX_CONNECTIONS", "20"),
            ("FISHAPP_BOARD_MAX_POSTS_PER_HOUR", "4294967295"),
            ("FISHAPP_BOARD_MAX_APPLICATIONS_PER_HOUR", "4294967295"),
            ("FISHAPP_BOARD_MAX_POST_CHANGES_PER_HOUR", "4294967295"),
            ("FISHAPP_CHAT_MAX_MESSAGES", "4294967295"),
            ("FISHAPP_SIGN_IN_MAX_PER_USER", "4294967295"),
        ],
    )
    .await;
    world.aim_at(serve.addr);
    let world = Arc::new(world);
    let serve = Arc::new(serve);

    let total = Duration::from_secs(minutes * 60);
    let window = Duration::from_secs(window_secs);
    let windows = total.as_secs().div_ceil(window_secs) as usize;
    let started = tokio::time::Instant::now();
    let until = started + total;
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|n| tokio::spawn(subscriber(world.clone(), serve.addr, n, until)))
        .collect();
    let seen: Arc<Vec<Mutex<Window>>> = Arc::new((0..windows).map(|_| Mutex::default()).collect());
    let sampler = {
        let (serve, seen) = (serve.clone(), seen.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RSS_EVERY);
            while tokio::time::Instant::now() < until {
                every.tick().await;
                let since = started.elapsed();
                let index = (since.as_secs() / window_secs) as usize;
                if let Some(window) = seen.get(index) {
                    let sample = (since.as_secs_f64() / 60.0, serve.memory_mib().0);
                    let by_kind = resident(serve.pid);
                    let mut window = window.lock().unwrap();
                    window.rss.push(sample);
                    window.resident.push(by_kind);
                }
            }
        })
    };

    println!(
        "Soak: {rate} requests/s for {minutes} min, {SUBSCRIBERS} subscribers coming and going, a row per {window_secs} s."
    );
    println!();
    println!(
        "| minutes | requests | errors | p50 | p99 | API RSS: median / mean (highest) | descriptors | live subscriptions | live rooms | Postgres connections |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let first = sample(&world, &serve).await;
    println!(
        "| 0 | | | | | {:.1} MiB | {} | {} | {} | {} |",
        first.rss_mib, first.descriptors, first.subscriptions, first.rooms, first.db_connections
    );

    let interval = Duration::from_secs(1) / rate as u32;
    let mut sent = tokio::task::JoinSet::new();
    let mut rows: Vec<(f64, f64)> = Vec::new();
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
    sampler.await.unwrap();
    while rows.len() < windows {
        rows.push(report(&world, &serve, &seen, rows.len(), window_secs).await);
    }

    // Flat: the last window's mean RSS against the mean of the first window after the warm-up,
    // and the trend of every sample after the warm-up.
    let rss: Vec<Vec<(f64, f64)>> = seen.iter().map(|w| w.lock().unwrap().rss.clone()).collect();
    let after_warm_up: Vec<(f64, f64)> = rss.iter().skip(1).flatten().copied().collect();
    if rss.len() >= 3 {
        let (first, last) = (&rss[1], &rss[rss.len() - 1]);
        let growth = |base: f64, end: f64| (end - base) / base * 100.0;
        let (base, end) = (median(first), median(last));
        let (base_mean, end_mean) = (mean(first), mean(last));
        println!();
        println!(
            "Median RSS of the window after the warm-up {base:.1} MiB, of the last window {end:.1} MiB: growth **{:+.1} %** (goal ≤ 5 %); by means {base_mean:.1} → {end_mean:.1} MiB, {:+.1} %; trend over every sample after the warm-up **{:+.1} MiB per hour**.",
            growth(base, end),
            growth(base_mean, end_mean),
            slope(&after_warm_up) * 60.0,
        );
    }
    where_resident(&seen, window_secs);
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
                points: rss.iter().flatten().copied().collect(),
            },
            Series {
                name: "p99 (ms)",
                colour: "#ff7f0e",
                points: rows.clone(),
            },
        ],
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/soak.svg");
    std::fs::write(&path, svg).expect("docs/soak.svg");
    println!();
    println!("Plot written to {}", path.display());
}

/// Where the API's resident memory was, window by window: the median of each kind's samples.
fn where_resident(seen: &[Mutex<Window>], window_secs: u64) {
    println!();
    println!(
        "| minutes | allocator arenas | thread stacks | C heap | other anonymous | files | of which lazily freed | of which huge pages | threads |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (index, window) in seen.iter().enumerate() {
        let samples = window.lock().unwrap().resident.clone();
        let kind = |of: fn(&Resident) -> f64| {
            median(&samples.iter().map(|r| (0.0, of(r))).collect::<Vec<_>>())
        };
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} |",
            (index as u64 + 1) * window_secs / 60,
            kind(|r| r.arenas),
            kind(|r| r.stacks),
            kind(|r| r.c_heap),
            kind(|r| r.other_anonymous),
            kind(|r| r.files),
            kind(|r| r.lazy_free),
            kind(|r| r.huge_pages),
            kind(|r| r.threads),
        );
    }
}

/// The mean of the samples' RSS (0 with none).
fn mean(samples: &[(f64, f64)]) -> f64 {
    samples.iter().map(|s| s.1).sum::<f64>() / samples.len().max(1) as f64
}

/// The median of the samples' RSS (0 with none).
fn median(samples: &[(f64, f64)]) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The least-squares slope of `points` (y per unit of x); 0 with fewer than two.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if variance == 0.0 {
        0.0
    } else {
        covariance / variance
    }
}

/// Prints window `index`'s row, `LATE` after the window ended (so its last requests have
/// answered; one slower than that would be left out of the row); returns (minutes, p99 ms).
async fn report(
    world: &World,
    serve: &ServeProcess,
    seen: &[Mutex<Window>],
    index: usize,
    window_secs: u64,
) -> (f64, f64) {
    let now = sample(world, serve).await;
    let (mut latencies, errors, rss) = {
        let w = seen[index].lock().unwrap();
        (w.latencies.clone(), w.errors, w.rss.clone())
    };
    latencies.sort();
    let minutes = ((index as u64 + 1) * window_secs) as f64 / 60.0;
    let (p50, p99) = if latencies.is_empty() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (percentile(&latencies, 0.5), percentile(&latencies, 0.99))
    };
    let (median, mean) = (median(&rss), mean(&rss));
    let highest = rss.iter().map(|s| s.1).fold(0.0, f64::max);
    println!(
        "| {minutes:.0} | {} | {errors} | {} | {} | {median:.1} / {mean:.1} ({highest:.1}) MiB | {} | {} | {} | {} |",
        latencies.len(),
        ms(p50),
        ms(p99),
        now.descriptors,
        now.subscriptions,
        now.rooms,
        now.db_connections
    );
    (minutes, p99.as_secs_f64() * 1e3)
}
