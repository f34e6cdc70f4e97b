//! Login latency, and what a login flood does to a cheap query's tail latency.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench auth
//!
//! Runs the real application in-process (release build) against the local stack, twice — two
//! apps with a database each, their password-hashing threads at nice 10 (the default) and at
//! nice 0 — and measures a cheap query quiet and under a login flood on each, in alternating
//! rounds (A B A B). Then what the sign-in throttling's Redis scripts cost per attempt, beside
//! plain Redis round trips (interleaved). Last, the flood comparison again with nothing shared
//! but the machine: the API a separate `fishapp serve`, the flood a separate process (this
//! benchmark started again with `AUTH_FLOOD_AT`), the cheap queries from this one; rounds
//! alternate between the default API, an API whose hashing threads are on the kernel's idle
//! policy, and the floor: the default API while the flood process only hashes (the app's own
//! hashing, as busy as under the flood, without a request). Prints Markdown tables for
//! docs/benchmarks.md.
//! Bounded: a few thousand requests, all on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::{ServeProcess, TestApp};
use fishapp_app::account::limits::{LoginLimiter, LoginLimits};
use fishapp_app::account::passwords::Passwords;
use fishapp_app::cache::Redis;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{ms, percentile};

const LOGINS: usize = 200;
/// Cheap queries per round and side; four rounds each.
const CHEAP_QUERIES: usize = 500;
const ROUNDS: usize = 4;
const FLOOD: usize = 50;
const PASSWORD: &str = "benchmark-password-42";
const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { tokenPair { idToken } } }";
const CHEAP: &str = "query($id: ID!) { user(id: $id) { name introduction } }";

async fn timed<F: std::future::Future<Output = serde_json::Value>>(f: F) -> Duration {
    let started = Instant::now();
    let body = f.await;
    assert!(body["errors"].is_null(), "{body}");
    started.elapsed()
}

/// An application with hashing threads at `nice`, and its one user: (app, login variables,
/// cheap query variables).
async fn side(nice: i32) -> (Arc<TestApp>, serde_json::Value, serde_json::Value) {
    let app = TestApp::spawn_with(|c| {
        c.diagnostics.log_filter = "error".into();
        // The flood is 50 clients logging into one account from one address: sign-in throttling
        // counts each attempt in flight and would refuse most of them before any hashing. This
        // benchmark measures the hashing pool's isolation, so every login must hash.
        c.accounts.login_failures_before_delay = u32::MAX;
        c.accounts.password_hashing_nice = nice;
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
    // Warm up connections and caches.
    for _ in 0..20 {
        timed(app.graphql_as(None, CHEAP, json!({ "id": user_id }))).await;
    }
    (
        Arc::new(app),
        json!({ "e": email, "p": PASSWORD }),
        json!({ "id": user_id }),
    )
}

/// What one side measured over its rounds.
#[derive(Default)]
struct Measured {
    quiet: Vec<Duration>,
    flooded: Vec<Duration>,
    logins: usize,
    flood_secs: f64,
}

/// One round on one side: `CHEAP_QUERIES` cheap queries quiet, then as many while `FLOOD`
/// clients log in back to back.
async fn round(
    app: &Arc<TestApp>,
    login: &serde_json::Value,
    cheap: &serde_json::Value,
    into: &mut Measured,
) {
    for _ in 0..CHEAP_QUERIES {
        into.quiet
            .push(timed(app.graphql_as(None, CHEAP, cheap.clone())).await);
    }
    let stop = tokio_util::sync::CancellationToken::new();
    // Logins are counted only when they finish inside the measured window.
    let flood_logins = Arc::new(AtomicUsize::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..FLOOD)
        .map(|_| {
            let (app, stop, count, measuring, vars) = (
                app.clone(),
                stop.clone(),
                flood_logins.clone(),
                measuring.clone(),
                login.clone(),
            );
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    timed(app.graphql_as(None, LOGIN, vars.clone())).await;
                    if measuring.load(Ordering::SeqCst) {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flood_started = Instant::now();
    measuring.store(true, Ordering::SeqCst);
    for _ in 0..CHEAP_QUERIES {
        into.flooded
            .push(timed(app.graphql_as(None, CHEAP, cheap.clone())).await);
    }
    measuring.store(false, Ordering::SeqCst);
    into.flood_secs += flood_started.elapsed().as_secs_f64();
    stop.cancel();
    for flooder in flooders {
        flooder.await.unwrap();
    }
    into.logins += flood_logins.load(Ordering::Relaxed);
}

/// Throttling passes per round and side, and the concurrency of the flooded variant.
const PASSES: usize = 2_000;

/// Redis's own count of calls and microseconds per command (`INFO commandstats`).
async fn command_stats(redis: &Redis) -> HashMap<String, (u64, u64)> {
    let mut connection = redis.connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect()
}

/// Microseconds Redis spent per call of `command` between two readings.
fn server_usec(
    before: &HashMap<String, (u64, u64)>,
    after: &HashMap<String, (u64, u64)>,
    command: &str,
) -> (u64, f64) {
    let (c0, u0) = before.get(command).copied().unwrap_or_default();
    let (c1, u1) = after[command];
    (c1 - c0, (u1 - u0) as f64 / (c1 - c0).max(1) as f64)
}

/// Part 3: the sign-in throttling's cost per attempt. A pass is what a login with the right
/// password does around its hash: the admitting script, then the one that takes the attempt
/// back (two EVALs). The floor is two PINGs on the same kind of connection: the round trips
/// without the scripts' work. Each runs `PASSES` times by one client and by `FLOOD` clients at
/// once on one account from one address (as the flood does), the two sides alternating per round.
async fn throttling(app: &TestApp) {
    let redis = Redis::new(&app.config.connections.redis_url).unwrap();
    let limiter = LoginLimiter::new(
        redis.clone(),
        &format!("bench-throttle-{}", uuid::Uuid::new_v4().simple()),
        LoginLimits {
            failures_before_delay: u32::MAX,
            max_delay: Duration::from_secs(1),
            max_failures_per_ip: u32::MAX,
            window: Duration::from_secs(60),
        },
    );
    let client: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let pass = move |limiter: LoginLimiter| async move {
        let attempt = limiter
            .attempt("bench@example.com", client)
            .await
            .unwrap_or_else(|_| panic!("the throttling refused a benchmark attempt"));
        limiter.succeeded(attempt).await.unwrap();
    };
    let pings = |redis: Redis| async move {
        let mut connection = redis.connection().await.unwrap();
        for _ in 0..2 {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .unwrap();
        }
    };
    println!();
    println!(
        "| {ROUNDS} rounds interleaved, {PASSES} passes each | clients | p50 | p99 | passes/s | Redis time per call (server) |"
    );
    println!("|---|---|---|---|---|---|");
    for clients in [1, FLOOD] {
        // Per side: latencies, seconds of running time, and Redis's calls and microseconds.
        let mut sides = [(Vec::new(), 0.0, 0, 0.0), (Vec::new(), 0.0, 0, 0.0)];
        for _ in 0..ROUNDS {
            let start = command_stats(&redis).await;
            let on = limiter.clone();
            let (latencies, rate) = support::load(PASSES, clients, move |_| pass(on.clone())).await;
            let middle = command_stats(&redis).await;
            let on = redis.clone();
            let (floor, floor_rate) =
                support::load(PASSES, clients, move |_| pings(on.clone())).await;
            let end = command_stats(&redis).await;
            let measured = [
                (latencies, rate, server_usec(&start, &middle, "eval")),
                (floor, floor_rate, server_usec(&middle, &end, "ping")),
            ];
            for (side, (latencies, rate, (calls, usec))) in sides.iter_mut().zip(measured) {
                side.0.extend(latencies);
                side.1 += PASSES as f64 / rate;
                side.2 += calls;
                side.3 += usec * calls as f64;
            }
        }
        let names = [
            "throttling: admit, then take back (2 EVALs)",
            "floor: 2 PINGs",
        ];
        for (name, side) in names.into_iter().zip(sides.iter_mut()) {
            side.0.sort();
            println!(
                "| {name} | {clients} | {} | {} | {:.0} | {:.1} µs ({} calls) |",
                ms(percentile(&side.0, 0.5)),
                ms(percentile(&side.0, 0.99)),
                side.0.len() as f64 / side.1,
                side.3 / side.2.max(1) as f64,
                side.2,
            );
        }
    }
}

/// Part 4: quiet against flooded again, each side in a process of its own. Two APIs, each a
/// `fishapp serve` (release build, default configuration but for the throttling's limits, set out
/// of the flood's way as in part 1) on `app`'s database: A as configured by default, B with its
/// hashing threads moved to the kernel's idle policy (`chrt --idle`, from outside, once it
/// answers). In each of `ROUNDS` rounds per API, alternating A B A B, this process sends
/// `CHEAP_QUERIES` cheap queries quiet, then starts the flood process, waits for its first login,
/// sends as many again, and kills it.
async fn independent(app: &TestApp, login: &serde_json::Value, cheap: &serde_json::Value) {
    // The flood is killed mid-login at each round's end: the server counts an attempt whose
    // client went away before it finished as a failure (it was never taken back), so the
    // per-address limit is lifted too, or the third round would be refused.
    let unlimited = u32::MAX.to_string();
    let limits = [
        ("FISHAPP_LOGIN_FAILURES_BEFORE_DELAY", unlimited.as_str()),
        ("FISHAPP_LOGIN_MAX_FAILURES_PER_IP", unlimited.as_str()),
    ];
    let a = ServeProcess::start(app, &limits).await;
    let b = ServeProcess::start(app, &limits).await;
    idle_policy(b.pid, "argon2-");
    let http = reqwest::Client::new();
    let mut measured = [(); 3].map(|_| Measured::default());
    for _ in 0..ROUNDS {
        let [for_a, for_b, for_floor] = &mut measured;
        flooded_round(&http, &a, login, cheap, Flood::Logins, for_a).await;
        flooded_round(&http, &b, login, cheap, Flood::Logins, for_b).await;
        flooded_round(&http, &a, login, cheap, Flood::HashesOnly, for_floor).await;
    }
    let [measured_a, measured_b, measured_floor] = &mut measured;
    println!();
    println!(
        "| {ROUNDS} rounds per API interleaved, {} cheap queries each quiet and during a {FLOOD}-client login flood, API, flood and queries in three processes | quiet p50 / p99 | flood p50 / p99 | logins/s in the flood | **p99 ratio, flood / quiet** |",
        ROUNDS * CHEAP_QUERIES
    );
    println!("|---|---|---|---|---|");
    print_flood_row(
        "`fishapp serve`, defaults (hashing threads at nice 10)",
        measured_a,
    );
    print_flood_row(
        "`fishapp serve`, hashing threads on the idle policy (`chrt --idle`)",
        measured_b,
    );
    print_flood_row(
        "floor: `fishapp serve` (defaults) while another process hashes without pause on the app's hashing pool (one thread at nice 10), no requests",
        measured_floor,
    );
}

/// What the flood process does.
#[derive(Clone, Copy)]
enum Flood {
    /// `FLOOD` clients logging in to the API back to back.
    Logins,
    /// The floor: the app's password hashing (its `Passwords` on a pool of its own: as many
    /// threads as the API's, at nice 10) hashing back to back in the flood process, without a
    /// request: the CPU a login flood takes, and nothing else.
    HashesOnly,
}

/// Moves the threads of `pid` whose names start with `prefix` to the kernel's idle policy.
fn idle_policy(pid: u32, prefix: &str) {
    let mut moved = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            let tid = task.file_name().to_string_lossy().into_owned();
            let status = std::process::Command::new("chrt")
                .args(["--idle", "-p", "0", &tid])
                .status()
                .expect("chrt runs");
            assert!(status.success(), "chrt --idle on thread {tid}");
            moved += 1;
        }
    }
    assert!(moved > 0, "no thread named {prefix}* in {pid}");
}

/// One round of part 4 against `serve`.
async fn flooded_round(
    http: &reqwest::Client,
    serve: &ServeProcess,
    login: &serde_json::Value,
    cheap: &serde_json::Value,
    kind: Flood,
    measured: &mut Measured,
) {
    let target = format!("http://{}/graphql", serve.addr);
    let query = || {
        common::send(
            http.post(&target)
                .json(&json!({ "query": CHEAP, "variables": cheap })),
            None,
        )
    };
    for _ in 0..20 {
        timed(query()).await;
    }
    for _ in 0..CHEAP_QUERIES {
        measured.quiet.push(timed(query()).await);
    }
    let mut flood = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env("AUTH_FLOOD_AT", &target)
        .env("AUTH_FLOOD_LOGIN", login.to_string())
        .env(
            "AUTH_FLOOD_HASHES_ONLY",
            if matches!(kind, Flood::HashesOnly) {
                "1"
            } else {
                ""
            },
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The flood prints a line per login; count those that end inside the measured window.
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(flood.stdout.take().unwrap()));
    lines.next_line().await.unwrap().expect("the flood logs in");
    let measuring = Arc::new(AtomicBool::new(true));
    let counted = {
        let measuring = measuring.clone();
        tokio::spawn(async move {
            let mut logins = 0;
            while let Ok(Some(_)) = lines.next_line().await {
                if measuring.load(Ordering::SeqCst) {
                    logins += 1;
                }
            }
            logins
        })
    };
    let flood_started = Instant::now();
    for _ in 0..CHEAP_QUERIES {
        measured.flooded.push(timed(query()).await);
    }
    measuring.store(false, Ordering::SeqCst);
    measured.flood_secs += flood_started.elapsed().as_secs_f64();
    assert!(
        flood.try_wait().unwrap().is_none(),
        "the flood process ended during the round: a login failed (its stderr says how)"
    );
    flood.kill().await.unwrap();
    measured.logins += counted.await.unwrap();
}

/// The flood process of part 4: `FLOOD` clients logging in to `target` back to back until the
/// process is killed, a line on stdout per login. A login that fails ends the whole process (the
/// benchmark checks it is still running when a round ends).
async fn flood(target: String, login: serde_json::Value) {
    if std::env::var("AUTH_FLOOD_HASHES_ONLY").is_ok_and(|v| !v.is_empty()) {
        let passwords = Passwords::new(0, 10).await.unwrap();
        loop {
            passwords.hash(PASSWORD).await.unwrap();
            println!("hash");
        }
    }
    let http = reqwest::Client::new();
    let mut flooders = tokio::task::JoinSet::new();
    for _ in 0..FLOOD {
        let (http, target, login) = (http.clone(), target.clone(), login.clone());
        flooders.spawn(async move {
            loop {
                let request = http
                    .post(&target)
                    .json(&json!({ "query": LOGIN, "variables": login }));
                timed(common::send(request, None)).await;
                println!("login");
            }
        });
    }
    // A flooder ends only by failing (its panic is on stderr).
    if let Some(failed) = flooders.join_next().await {
        eprintln!("a flooder failed: {failed:?}");
        std::process::exit(1);
    }
}

/// One row of a flood table: quiet and flooded percentiles, logins per second, the p99 ratio.
fn print_flood_row(name: &str, m: &mut Measured) {
    m.quiet.sort();
    m.flooded.sort();
    println!(
        "| {name} | {} / {} | {} / {} | {:.1} | **{:.2}** |",
        ms(percentile(&m.quiet, 0.5)),
        ms(percentile(&m.quiet, 0.99)),
        ms(percentile(&m.flooded, 0.5)),
        ms(percentile(&m.flooded, 0.99)),
        m.logins as f64 / m.flood_secs,
        percentile(&m.flooded, 0.99).as_secs_f64() / percentile(&m.quiet, 0.99).as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    if let Ok(target) = std::env::var("AUTH_FLOOD_AT") {
        let login = std::env::var("AUTH_FLOOD_LOGIN").expect("AUTH_FLOOD_LOGIN with AUTH_FLOOD_AT");
        return flood(target, serde_json::from_str(&login).unwrap()).await;
    }
    // A: the default, hashing threads at nice 10. B: at the process's own priority.
    let (a_app, a_login, a_cheap) = side(10).await;
    let (b_app, b_login, b_cheap) = side(0).await;

    let mut logins = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        logins.push(timed(a_app.graphql_as(None, LOGIN, a_login.clone())).await);
    }
    logins.sort();

    let (mut a, mut b) = (Measured::default(), Measured::default());
    for _ in 0..ROUNDS {
        round(&a_app, &a_login, &a_cheap, &mut a).await;
        round(&b_app, &b_login, &b_cheap, &mut b).await;
    }

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| login p50 (sequential, {LOGINS} logins) | {} |",
        ms(percentile(&logins, 0.50))
    );
    println!("| login p99 | {} |", ms(percentile(&logins, 0.99)));
    println!();
    println!(
        "| {ROUNDS} rounds interleaved, {} cheap queries each quiet and during a {FLOOD}-client login flood | quiet p50 / p99 | flood p50 / p99 | logins/s in the flood | **p99 ratio, flood / quiet** |",
        ROUNDS * CHEAP_QUERIES
    );
    println!("|---|---|---|---|---|");
    for (name, m) in [
        ("hashing threads at nice 10 (the default)", &mut a),
        (
            "hashing threads at nice 0 (`PASSWORD_HASHING_NICE=0`)",
            &mut b,
        ),
    ] {
        print_flood_row(name, m);
    }
    throttling(&a_app).await;
    independent(&a_app, &a_login, &a_cheap).await;
}
