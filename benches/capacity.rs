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
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use common::{TestApp, apply_to, sign_up_session};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::svg::{Chart, Series, line_chart};
use support::{ms, percentile, seed};

/// Offered loads, requests per second, in order.
const RATES: [u32; 10] = [20, 40, 60, 80, 100, 130, 160, 200, 250, 320];
const STEP_SECS: u64 = 10;
const P99_LIMIT: Duration = Duration::from_millis(500);
const USERS: usize = 50;
const TRIPS: usize = 300;
const PASSWORD: &str = "a-long-enough-secret";

/// What a request does, with its share of the mix (out of 100): mostly reading, some writing,
/// a few sagas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// `posts(first: 30)` with users, images and fish types, anonymous.
    List,
    /// `post(id)` with its user and images, signed in.
    View,
    /// The last 30 messages of the user's own room.
    Room,
    /// `createMessage` in the user's own room.
    Send,
    /// `login` with the right password (argon2id).
    Login,
    /// `createApplyPost` (the Apply saga).
    Apply,
    /// `createPost` without photos (the CreatePost saga).
    Create,
}

const MIX: [(Kind, u32); 7] = [
    (Kind::List, 40),
    (Kind::View, 26),
    (Kind::Room, 12),
    (Kind::Send, 12),
    (Kind::Login, 3),
    (Kind::Apply, 5),
    (Kind::Create, 2),
];

/// The kind of the `k`-th request of a run: a fixed pseudo-random sequence, so every run
/// offers the same mix in the same order.
fn kind_of(k: u64) -> Kind {
    // SplitMix64: cheap and well spread.
    let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let mut roll = ((z ^ (z >> 31)) % 100) as u32;
    for (kind, share) in MIX {
        if roll < share {
            return kind;
        }
        roll -= share;
    }
    Kind::List
}

const LIST: &str = "{ posts(first: 30, input: {}) { pageInfo { hasNextPage endCursor }
  nodes { id title content fishingSpotTypeId prefectureId meetingAt maxApply fishTypeIds
          user { id name } images { id url thumbnailUrl width height } } } }";
const VIEW: &str = "query($id: ID!) { post(id: $id) { id title content meetingAt maxApply
  fishTypeIds applyCount user { id name } images { url thumbnailUrl } } }";
const ROOM: &str = "query($post: ID!) { room(post_id: $post) {
  messages(limit: 30) { id body user { id name } } } }";
const SEND: &str = "mutation($input: CreateMessageInput!) {
  createMessage(input: $input) { message { id } } }";
const LOGIN: &str = "mutation($e: String!, $p: String!) {
  login(input: { email: $e, password: $p }) { tokenPair { idToken } } }";
const CREATE: &str = "mutation($input: CreatePostInput!) {
  createPost(input: $input) { post { id status } } }";

/// A user of the run: signed in, owning one trip (and so a member of its room).
struct User {
    token: String,
    email: String,
    own_post: i64,
    own_room: i64,
}

struct World {
    app: TestApp,
    _relay: common::RunningRelay,
    users: Vec<User>,
    /// Trips of three other authors, with seats for every user.
    trips: Vec<i64>,
}

async fn sign_up_with_email(app: &TestApp) -> (String, String, i64) {
    let email = format!("cap-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = app
        .graphql_as(
            None,
            "mutation($input: CreateUserInput!) {
               createUser(input: $input) { user { id } tokenPair { idToken } } }",
            json!({ "input": { "email": email, "password": PASSWORD, "name": "angler",
                    "sex": "MALE", "introduction": "I fish", "image": null } }),
        )
        .await;
    let created = &body["data"]["createUser"];
    let id = created["user"]["id"]
        .as_str()
        .expect("a user")
        .parse()
        .unwrap();
    (
        created["tokenPair"]["idToken"].as_str().unwrap().to_owned(),
        email,
        id,
    )
}

async fn world() -> World {
    let app = TestApp::spawn_with_worker(|c| {
        c.diagnostics.log_filter = "error".into();
        c.connections.database_max_connections = 20;
        // Writers are many users here; the per-user windows stay out of the way.
        c.board.board_max_posts_per_hour = u32::MAX;
        c.chat.chat_max_messages = u32::MAX;
    })
    .await;
    let relay = app.start_relay().await;
    let pool = app.pool().await;
    let mut authors = Vec::new();
    for _ in 0..3 {
        authors.push(sign_up_session(&app).await.user_id.parse::<i64>().unwrap());
    }
    let mut trips = Vec::with_capacity(TRIPS);
    for n in 0..TRIPS {
        let (post, _) = seed::open_post(&pool, authors[n % 3], USERS as i32, n).await;
        seed::post_images(&pool, post, 2).await;
        trips.push(post);
    }
    let mut users = Vec::with_capacity(USERS);
    for n in 0..USERS {
        let (token, email, id) = sign_up_with_email(&app).await;
        let (own_post, own_room) = seed::open_post(&pool, id, 4, TRIPS + n).await;
        users.push(User {
            token,
            email,
            own_post,
            own_room,
        });
    }
    World {
        app,
        _relay: relay,
        users,
        trips,
    }
}

/// Applies handed out so far: the `n`-th goes to trip n / USERS as user n % USERS, so no user
/// applies to a trip twice and no trip runs out of seats.
static APPLIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sends the `k`-th request; whether it succeeded.
async fn request(world: &World, k: u64, kind: Kind) -> bool {
    let app = &world.app;
    let user = &world.users[(k % USERS as u64) as usize];
    let body = match kind {
        Kind::List => app.graphql(LIST).await,
        Kind::View => {
            let post = world.trips[(k % TRIPS as u64) as usize];
            app.graphql_as(Some(&user.token), VIEW, json!({ "id": post.to_string() }))
                .await
        }
        Kind::Room => {
            app.graphql_as(
                Some(&user.token),
                ROOM,
                json!({ "post": user.own_post.to_string() }),
            )
            .await
        }
        Kind::Send => {
            let input =
                json!({ "roomId": user.own_room.to_string(), "body": format!("message {k}") });
            app.graphql_as(Some(&user.token), SEND, json!({ "input": input }))
                .await
        }
        Kind::Login => {
            app.graphql_as(None, LOGIN, json!({ "e": user.email, "p": PASSWORD }))
                .await
        }
        Kind::Apply => {
            let n = APPLIES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let applicant = &world.users[n % USERS];
            let trip = world.trips[(n / USERS) % TRIPS];
            apply_to(app, &applicant.token, &json!(trip.to_string())).await
        }
        Kind::Create => {
            let input = json!({
                "title": format!("Capacity {k}"), "content": "A trip.", "fishingSpotTypeId": 1,
                "fishTypeIds": [3], "prefectureId": 13,
                "meetingPlaceId": "ChIJN1t_tDeuEmsRUsoyG83frY4",
                "meetingAt": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
                "maxApply": 4, "images": null, "clientMutationId": null,
            });
            app.graphql_as(Some(&user.token), CREATE, json!({ "input": input }))
                .await
        }
    };
    let ok = body["errors"].is_null();
    if !ok {
        eprintln!("{kind:?} failed: {body}");
    }
    ok
}

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

fn print_kinds(step: &Step) {
    println!();
    println!("At {} requests/s offered, by kind:", step.rate);
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

#[tokio::main]
async fn main() {
    let world = Arc::new(world().await);
    // Warm up connections, caches and the sagas' first workflow tasks.
    offer(&world, 10, 1_000_000).await;

    println!(
        "| offered /s | completed /s | requests | errors | p50 | p90 | p99 | max | CPU cores: {} |",
        PARTS.join(" / ")
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut steps: Vec<Step> = Vec::new();
    let mut first = 0;
    for rate in RATES {
        let step = offer(&world, rate, first).await;
        first += step.results.len() as u64;
        let all = step.latencies(None);
        let errors = step.results.iter().filter(|r| !r.2).count();
        let cores: Vec<String> = PARTS
            .iter()
            .map(|p| format!("{:.2}", step.cores[p]))
            .collect();
        println!(
            "| {rate} | {:.1} | {} | {errors} | {} | {} | {} | {} | {} |",
            step.achieved,
            all.len(),
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.9)),
            ms(percentile(&all, 0.99)),
            ms(*all.last().unwrap()),
            cores.join(" / "),
        );
        let over = percentile(&all, 0.99) > P99_LIMIT;
        steps.push(step);
        if over {
            break;
        }
    }

    // The highest rate whose p99 stayed within the limit, with every request answered.
    let sustainable = steps.iter().rev().find(|s| {
        percentile(&s.latencies(None), 0.99) <= P99_LIMIT && s.results.iter().all(|r| r.2)
    });
    println!();
    match sustainable {
        Some(step) => println!(
            "Sustainable: **{} requests/s** (p99 within {} ms, no errors).",
            step.rate,
            P99_LIMIT.as_millis()
        ),
        None => println!("No rate was sustainable."),
    }
    if let Some(step) = sustainable {
        print_kinds(step);
    }
    if let Some(last) = steps
        .last()
        .filter(|s| Some(s.rate) != sustainable.map(|s| s.rate))
    {
        print_kinds(last);
    }

    let curve = |q: f64| -> Vec<(f64, f64)> {
        steps
            .iter()
            .map(|s| {
                let latencies = s.latencies(None);
                (s.rate as f64, percentile(&latencies, q).as_secs_f64() * 1e3)
            })
            .collect()
    };
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
                name: "p50",
                colour: "#1f77b4",
                points: curve(0.5),
            },
            Series {
                name: "p90",
                colour: "#2ca02c",
                points: curve(0.9),
            },
            Series {
                name: "p99",
                colour: "#ff7f0e",
                points: curve(0.99),
            },
        ],
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/capacity.svg");
    std::fs::write(&path, svg).expect("docs/capacity.svg");
    println!();
    println!("Plot written to {}", path.display());
}
