//! Capacity: the mixed workload a board sees, offered at rising rates until p99 passes 500 ms.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench capacity
//!
//! Starts the real application in-process (release build) with its worker and outbox relay,
//! seeds 300 open trips with two photos each and 50 users who each own a trip (and its room),
//! then offers the mix below open-loop (requests are sent on a fixed schedule whether or not
//! earlier ones have answered, and each latency runs from the request's scheduled time, so a
//! stalled server cannot hide its queue) for `STEP_SECS` at each rate of `RATES`, stopping after
//! the first rate whose p99 passes 500 ms. Each step reports the latency percentiles, errors,
//! and the CPU each process of the stack used (this process — API, worker, relay and load
//! generator —, Temporal, Postgres, NATS, Redis), and the run rewrites
//! docs/capacity.svg (percentiles against offered load).
//!
//! Two such applications run, each with its own database and task queues, one with eager
//! workflow start (`TEMPORAL_EAGER_START=true`, the default) and one without; at every rate the
//! same requests go to one and then the other (A B A B …), so both sides see the same machine.
//! The ramp ends when both have passed the limit.
//!
//! With `CAPACITY_SECOND_TEMPORAL=host:port` the two sides are instead eager start on the stack's
//! Temporal server and eager start on that second server (e.g. a dev server without a database
//! file, to see what the first one's file costs); the plot then goes to the target directory, not
//! docs/.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::svg::{Chart, Series, line_chart};
use support::workload::{Kind, MIX, World, kind_of, request, world_with};
use support::{ms, percentile};

/// Offered loads, requests per second, in order.
const RATES: [u32; 10] = [20, 40, 60, 80, 100, 130, 160, 200, 250, 320];
const STEP_SECS: u64 = 10;
const P99_LIMIT: Duration = Duration::from_millis(500);

/// CPU time (seconds, user + system) used so far by the processes of each part of the stack.
fn cpu_seconds() -> HashMap<&'static str, f64> {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    let me = std::process::id().to_string();
    let mut used = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state …": the fields after the closing parenthesis, utime and stime at
        // 14 and 15 (1-based over the whole line).
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map(|(_, c)| c).unwrap_or_default();
        let part = match comm {
            _ if name == me => "fishapp (API, worker, relay, load)",
            "temporal" => "Temporal",
            "postgres" => "Postgres",
            "nats-server" => "NATS",
            "redis-server" => "Redis",
            _ => continue,
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let secs =
            (utime.parse::<f64>().unwrap_or(0.0) + stime.parse::<f64>().unwrap_or(0.0)) / ticks;
        *used.entry(part).or_insert(0.0) += secs;
    }
    used
}

const PARTS: [&str; 5] = [
    "fishapp (API, worker, relay, load)",
    "Temporal",
    "Postgres",
    "NATS",
    "Redis",
];

struct Step {
    rate: u32,
    /// (kind, latency from the scheduled send, succeeded), sorted by latency.
    results: Vec<(Kind, Duration, bool)>,
    achieved: f64,
    /// Cores used by each part over the step.
    cores: HashMap<&'static str, f64>,
}

impl Step {
    fn latencies(&self, kind: Option<Kind>) -> Vec<Duration> {
        let mut all: Vec<Duration> = self
            .results
            .iter()
            .filter(|(k, _, _)| kind.is_none_or(|kind| *k == kind))
            .map(|(_, d, _)| *d)
            .collect();
        all.sort();
        all
    }
}

/// Offers `rate` requests per second for `STEP_SECS`, open-loop, numbering them from `first`.
async fn offer(world: &Arc<World>, rate: u32, first: u64) -> Step {
    let count = rate as u64 * STEP_SECS;
    let interval = Duration::from_secs(1) / rate;
    let before = cpu_seconds();
    let started = tokio::time::Instant::now();
    let mut sent = tokio::task::JoinSet::new();
    for n in 0..count {
        let scheduled = started + interval * n as u32;
        tokio::time::sleep_until(scheduled).await;
        let world = world.clone();
        let k = first + n;
        sent.spawn(async move {
            let kind = kind_of(k);
            let ok = request(&world, k, kind).await;
            (kind, scheduled.elapsed(), ok)
        });
    }
    let mut results = Vec::with_capacity(count as usize);
    while let Some(done) = sent.join_next().await {
        results.push(done.expect("a request task"));
    }
    let wall = started.elapsed().as_secs_f64();
    let after = cpu_seconds();
    let cores = PARTS
        .iter()
        .map(|part| {
            let used = after.get(part).unwrap_or(&0.0) - before.get(part).unwrap_or(&0.0);
            (*part, used / wall)
        })
        .collect();
    Step {
        rate,
        achieved: count as f64 / wall,
        results,
        cores,
    }
}

fn print_kinds(side: &str, step: &Step) {
    println!();
    println!("{side}, at {} requests/s offered, by kind:", step.rate);
    println!();
    println!("| kind | share | requests | errors | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for (kind, share) in MIX {
        let latencies = step.latencies(Some(kind));
        if latencies.is_empty() {
            continue;
        }
        let errors = step
            .results
            .iter()
            .filter(|(k, _, ok)| *k == kind && !ok)
            .count();
        println!(
            "| {kind:?} | {share} % | {} | {errors} | {} | {} |",
            latencies.len(),
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
        );
    }
}

/// One side of the comparison: its application and what it measured.
struct Side {
    name: &'static str,
    world: Arc<World>,
    steps: Vec<Step>,
    /// Whether a step passed the limit (the side is offered nothing more).
    done: bool,
}

impl Side {
    /// The highest rate whose p99 stayed within the limit, with every request answered.
    fn sustainable(&self) -> Option<&Step> {
        self.steps.iter().rev().find(|s| {
            percentile(&s.latencies(None), 0.99) <= P99_LIMIT && s.results.iter().all(|r| r.2)
        })
    }

    fn curve(&self, q: f64) -> Vec<(f64, f64)> {
        self.steps
            .iter()
            .map(|s| {
                let latencies = s.latencies(None);
                (s.rate as f64, percentile(&latencies, q).as_secs_f64() * 1e3)
            })
            .collect()
    }
}

fn print_step(side: &str, step: &Step) {
    let all = step.latencies(None);
    let errors = step.results.iter().filter(|r| !r.2).count();
    let cores: Vec<String> = PARTS
        .iter()
        .map(|p| format!("{:.2}", step.cores[p]))
        .collect();
    println!(
        "| {} | {side} | {:.1} | {} | {errors} | {} | {} | {} | {} | {} |",
        step.rate,
        step.achieved,
        all.len(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.9)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap()),
        cores.join(" / "),
    );
}

/// The sides compared, by name: eager start on the stack's Temporal server or on `second`, or
/// matched start.
fn sides_compared(second: Option<&str>) -> [(&'static str, bool, Option<url::Url>); 2] {
    match second {
        None => [("eager start", true, None), ("matched start", false, None)],
        Some(address) => {
            let url = url::Url::parse(&format!("http://{address}"))
                .expect("CAPACITY_SECOND_TEMPORAL is host:port");
            [
                ("eager start, the stack's Temporal", true, None),
                ("eager start, the second Temporal", true, Some(url)),
            ]
        }
    }
}

#[tokio::main]
async fn main() {
    let second = std::env::var("CAPACITY_SECOND_TEMPORAL").ok();
    let mut sides = Vec::new();
    for (name, eager, temporal) in sides_compared(second.as_deref()) {
        let world = Arc::new(
            world_with(|c| {
                c.temporal.temporal_eager_start = eager;
                if let Some(address) = temporal {
                    c.temporal.temporal_address = address;
                }
            })
            .await,
        );
        // Warm up connections, caches and the sagas' first workflow tasks.
        offer(&world, 10, 1_000_000).await;
        sides.push(Side {
            name,
            world,
            steps: Vec::new(),
            done: false,
        });
    }

    println!(
        "| offered /s | side | completed /s | requests | errors | p50 | p90 | p99 | max | CPU cores: {} |",
        PARTS.join(" / ")
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut first = 0;
    for rate in RATES {
        if sides.iter().all(|s| s.done) {
            break;
        }
        let mut offered = 0;
        for side in sides.iter_mut().filter(|s| !s.done) {
            // Both sides get the same requests: the same kinds in the same order.
            let step = offer(&side.world, rate, first).await;
            offered = step.results.len() as u64;
            print_step(side.name, &step);
            side.done = percentile(&step.latencies(None), 0.99) > P99_LIMIT;
            side.steps.push(step);
        }
        first += offered;
    }

    println!();
    for side in &sides {
        match side.sustainable() {
            Some(step) => println!(
                "{}: sustainable **{} requests/s** (p99 within {} ms, no errors).",
                side.name,
                step.rate,
                P99_LIMIT.as_millis()
            ),
            None => println!("{}: no rate was sustainable.", side.name),
        }
    }
    for side in &sides {
        let sustainable = side.sustainable();
        if let Some(step) = sustainable {
            print_kinds(side.name, step);
        }
        if let Some(last) = side
            .steps
            .last()
            .filter(|s| Some(s.rate) != sustainable.map(|s| s.rate))
        {
            print_kinds(side.name, last);
        }
    }

    let [a, b] = &sides[..] else {
        unreachable!("two sides")
    };
    let names = [a.name, b.name].map(|side| (format!("p50, {side}"), format!("p99, {side}")));
    let svg = line_chart(
        &Chart {
            title: &format!(
                "Mixed board workload, {} ({} s per step)",
                chrono::Utc::now().format("%Y-%m-%d"),
                STEP_SECS
            ),
            x_label: "offered load, requests/s",
            y_label: "latency, ms (log scale)",
            threshold: Some((P99_LIMIT.as_secs_f64() * 1e3, "p99 limit")),
        },
        &[
            Series {
                name: &names[0].0,
                colour: "#1f77b4",
                points: a.curve(0.5),
            },
            Series {
                name: &names[0].1,
                colour: "#ff7f0e",
                points: a.curve(0.99),
            },
            Series {
                name: &names[1].0,
                colour: "#9ecae1",
                points: b.curve(0.5),
            },
            Series {
                name: &names[1].1,
                colour: "#fdae6b",
                points: b.curve(0.99),
            },
        ],
    );
    // docs/ holds the plot of the standard comparison only.
    let path = match second {
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/capacity.svg"),
        Some(_) => {
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("capacity-second-temporal.svg")
        }
    };
    std::fs::write(&path, svg).expect("the plot is written");
    println!();
    println!("Plot written to {}", path.display());
}
