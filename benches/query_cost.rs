//! The query-cost guard: how fast a hostile document is refused, and what the largest admissible
//! document costs — and does to a cheap request beside it.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench query_cost
//!
//! Runs the real application in-process (release build, the default limits), all on loopback:
//! 200 sequential requests per hostile document (fragments that each spread the next one twice,
//! 30, 40 and 64 levels), 200 of the largest admissible doubling, and `{ healthCheck }` p99 quiet
//! and while 8 clients send the largest admissible document back to back (A B A B: quiet, loaded,
//! quiet, loaded).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::TestApp;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{ms, percentile};

fn doubling(levels: usize) -> String {
    let mut q = String::from("query { ...F0 }\n");
    for i in 0..levels {
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    q.push_str(&format!("fragment F{levels} on Query {{ healthCheck }}\n"));
    q
}

async fn timings(app: &TestApp, query: &str, n: usize, check: impl Fn(&Value)) -> Vec<Duration> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let body = app.graphql(query).await;
        all.push(started.elapsed());
        check(&body);
    }
    all.sort();
    all
}

fn row(what: &str, sorted: &[Duration]) {
    println!(
        "| {what} | {} | {} |",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99))
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let app = Arc::new(TestApp::spawn_with(|c| c.diagnostics.log_filter = "error".into()).await);
    let refused = |body: &Value| {
        assert_eq!(
            body["errors"][0]["extensions"]["limit"], "maxSelections",
            "{body}"
        );
    };
    println!("| request | p50 | p99 |\n|---|---|---|");
    for levels in [30, 40, 64] {
        let sorted = timings(&app, &doubling(levels), 200, refused).await;
        row(&format!("{levels}-level doubling (refused)"), &sorted);
    }
    let max = fishapp_api::graphql::QueryLimits::default().max_selections;
    let levels = (1..30)
        .take_while(|l| 3 * (1usize << l) - 1 <= max)
        .last()
        .unwrap();
    let worst = doubling(levels);
    let admitted = |body: &Value| {
        assert!(body["errors"][0]["extensions"]["limit"].is_null(), "{body}");
    };
    let sorted = timings(&app, &worst, 200, admitted).await;
    row(
        &format!(
            "largest admissible ({levels} levels, {} selections)",
            3 * (1 << levels) - 1
        ),
        &sorted,
    );

    let cheap = |body: &Value| assert_eq!(body["data"]["healthCheck"], true);
    let mut quiet = Vec::new();
    let mut loaded = Vec::new();
    for _ in 0..2 {
        quiet.extend(timings(&app, "{ healthCheck }", 500, cheap).await);
        let stop = Arc::new(AtomicBool::new(false));
        let flood: Vec<_> = (0..8)
            .map(|_| {
                let (app, stop, worst) = (app.clone(), stop.clone(), worst.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        app.graphql(&worst).await;
                    }
                })
            })
            .collect();
        loaded.extend(timings(&app, "{ healthCheck }", 500, cheap).await);
        stop.store(true, Ordering::Relaxed);
        for f in flood {
            f.await.unwrap();
        }
    }
    quiet.sort();
    loaded.sort();
    row("`{ healthCheck }`, quiet", &quiet);
    row(
        "`{ healthCheck }`, 8 clients sending the largest admissible",
        &loaded,
    );
    println!(
        "p99 ratio, loaded / quiet: {:.2}",
        percentile(&loaded, 0.99).as_secs_f64() / percentile(&quiet, 0.99).as_secs_f64()
    );
}
