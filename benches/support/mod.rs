//! Helpers the benchmarks share: a load runner, latency percentiles and their formatting, and
//! the no-op saga floor, interleaved comparisons and seed data.
#![allow(dead_code)] // each benchmark uses its own part

pub(crate) mod floor;
pub(crate) mod seed;
pub(crate) mod smaps;
pub(crate) mod svg;
pub(crate) mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs `total` calls of `call` (given 0..total) with `concurrency` callers; the latencies
/// (sorted) and the throughput in calls per second.
pub(crate) async fn load<F, Fut>(total: usize, concurrency: usize, call: F) -> (Vec<Duration>, f64)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, call) = (next.clone(), call.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return latencies;
                    }
                    let t = Instant::now();
                    call(i).await;
                    latencies.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for caller in callers {
        all.extend(caller.await.expect("a load caller"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    (all, total as f64 / elapsed)
}

/// The `p` quantile (0–1) of sorted latencies, nearest rank.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Latencies (sorted) and throughput of one side of a comparison.
pub(crate) struct Side {
    pub(crate) latencies: Vec<Duration>,
    /// Calls per second of the side's own running time (its rounds' wall times summed).
    pub(crate) rate: f64,
}

impl Side {
    pub(crate) fn p(&self, quantile: f64) -> Duration {
        percentile(&self.latencies, quantile)
    }
}

/// Runs `a` and `b` alternately, A, B, A, B …: `rounds` rounds of `per_round` calls each at
/// `concurrency`, so that both sides see the same machine, caches and server state over the run.
/// Each call gets a number unique over the run (round × per_round + i).
pub(crate) async fn interleaved<FA, FutA, FB, FutB>(
    rounds: usize,
    per_round: usize,
    concurrency: usize,
    a: FA,
    b: FB,
) -> (Side, Side)
where
    FA: Fn(usize) -> FutA + Clone + Send + Sync + 'static,
    FutA: std::future::Future<Output = ()> + Send,
    FB: Fn(usize) -> FutB + Clone + Send + Sync + 'static,
    FutB: std::future::Future<Output = ()> + Send,
{
    let mut sides = [(Vec::new(), 0.0), (Vec::new(), 0.0)];
    for round in 0..rounds {
        let offset = round * per_round;
        let a = a.clone();
        let (latencies, rate) = load(per_round, concurrency, move |i| a(offset + i)).await;
        sides[0].0.extend(latencies);
        sides[0].1 += per_round as f64 / rate;
        let b = b.clone();
        let (latencies, rate) = load(per_round, concurrency, move |i| b(offset + i)).await;
        sides[1].0.extend(latencies);
        sides[1].1 += per_round as f64 / rate;
    }
    let total = (rounds * per_round) as f64;
    let [a, b] = sides.map(|(mut latencies, secs)| {
        latencies.sort();
        Side {
            latencies,
            rate: total / secs,
        }
    });
    (a, b)
}
