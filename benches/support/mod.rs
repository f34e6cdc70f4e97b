//! Helpers the benchmarks share: latency percentiles and their formatting.
#![allow(dead_code)] // each benchmark uses its own part

use std::time::Duration;

/// The `p` quantile (0–1) of sorted latencies, nearest rank.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
