//! Helpers the benchmarks share: a load runner, latency percentiles and their formatting, and
//! the no-op saga floor.
#![allow(dead_code)] // each benchmark uses its own part

pub(crate) mod floor;

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
