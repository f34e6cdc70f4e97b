//! The board's two hot paths, each beside a floor measured in the same run:
//!
//! 1. createPost end to end (GraphQL mutation → CreatePost saga → OPEN post), without photos at
//!    concurrency 1, 8 and 32 and with two photos at 1 and 8, interleaved round by round (A, B,
//!    A, B …) with a floor of the saga's own steps as no-ops (`create_post_floor`): the ratio is
//!    what our own work (HTTP, GraphQL, validation, image processing, Postgres) costs over
//!    Temporal's.
//! 2. `posts(first: 30)` with each post's user, images and fish types, interleaved with a plain
//!    axum handler behind the API's middleware that takes the same JSON POST, runs the same
//!    four SQL statements and returns the same JSON: the ratio is GraphQL's (and the
//!    dataloaders') cost. Then the same listing over GET against POST, and the plain handler
//!    on a pool that pings every connection before use against the app's, both interleaved.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench board
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use axum::Json;
use axum::extract::State;
use axum::serve::ListenerExt;
use common::{TestApp, sign_up};
use fishapp_domain::media::OwnerType;
use fishapp_store::board::{self, Order, PostFilter, SortBy};
use fishapp_store::media;
use serde_json::{Value, json};
use std::sync::Arc;
use support::{Side, floor, interleaved, ms, seed};

const CREATE: &str = "mutation($input: CreatePostInput!) {
  createPost(input: $input) { sagaId post { id status } } }";

const LIST: &str = "{ posts(first: 30, input: {}) { pageInfo { hasNextPage endCursor }
  nodes { id title content fishingSpotTypeId prefectureId meetingAt maxApply fishTypeIds
          user { id name } images { id url thumbnailUrl width height } } } }";

fn post_input(i: usize) -> Value {
    json!({ "input": {
        "title": format!("Bench {i}"),
        "content": "A benchmark trip.",
        "fishingSpotTypeId": 1 + (i % 4) as i64,
        "fishTypeIds": [1 + (i % 95) as i64],
        "prefectureId": 1 + (i % 47) as i64,
        "meetingPlaceId": "ChIJN1t_tDeuEmsRUsoyG83frY4",
        "meetingAt": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
        "maxApply": 4,
        "images": null,
        "clientMutationId": null,
    } })
}

/// Photos per createPost in the runs with photos.
const PHOTOS: usize = 2;

/// One createPost as the front end sends it: JSON without photos, or the multipart request
/// with `PHOTOS` small JPEGs (320×240, ~4 KB each).
async fn create_post(app: &TestApp, token: &str, i: usize, photos: &[Vec<u8>]) {
    let body = if photos.is_empty() {
        app.graphql_as(Some(token), CREATE, post_input(i)).await
    } else {
        let mut variables = post_input(i);
        variables["input"]["images"] = json!(vec![Value::Null; photos.len()]);
        let paths: Vec<String> = (0..photos.len())
            .map(|n| format!("variables.input.images.{n}"))
            .collect();
        let files = paths
            .iter()
            .zip(photos)
            .map(|(path, bytes)| (path.as_str(), "photo.jpg", bytes.clone()))
            .collect();
        app.graphql_multipart(Some(token), CREATE, variables, files)
            .await
    };
    assert_eq!(
        body["data"]["createPost"]["post"]["status"], "OPEN",
        "{body}"
    );
}

/// The CreatePost saga's forward steps as floor steps: the three database steps as local
/// activities with the saga's own inputs (the draft as the API builds it), and with photos the
/// image step as a regular activity on the media queue.
fn create_post_floor(media_queue: &str, photos: usize) -> Vec<floor::Step> {
    let fields = json!({
        "title": "Bench 1", "content": "A benchmark trip.", "fishing_spot_type_id": 1,
        "prefecture_id": 13, "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
        "meeting_at": chrono::Utc::now() + chrono::Duration::days(7), "max_apply": 4,
        "fish_type_ids": [12],
    });
    let mut steps = vec![
        floor::Step::local(json!({ "post_id": 1, "user_id": 1, "fields": fields })),
        floor::Step::local(json!({ "post_id": 1, "owner_id": 1 })),
    ];
    if photos > 0 {
        let ids: Vec<uuid::Uuid> = (0..photos).map(|_| uuid::Uuid::new_v4()).collect();
        steps.push(floor::Step::on(
            media_queue,
            json!({ "owner": { "Post": 1 }, "image_ids": ids }),
        ));
    }
    steps.push(floor::Step::local(json!(1)));
    steps
}

async fn create_posts(app: &Arc<TestApp>, token: &Arc<str>) {
    const ROUNDS: usize = 4;
    let prefix = app.config.temporal.temporal_task_queue_prefix.clone();
    // The floor's worker polls the same four kinds of queue as the app's.
    let queues = ["workflows", "post", "chat", "media"].map(|q| format!("{prefix}.floor.{q}"));
    floor::start_workers(&app.config, &queues);
    let client = floor::client(&app.config).await;
    let photo_bytes: Arc<Vec<Vec<u8>>> =
        Arc::new((0..PHOTOS).map(|n| common::jpeg(n as u8)).collect());

    println!(
        "| photos | concurrency | posts | createPost p50 | p99 | posts/s | floor p50 | floor p99 | floor runs/s | **p50 ratio** | **throughput ratio** |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut done = 0;
    for (photos, concurrency, per_round) in [
        (0, 1, 8),
        (0, 8, 24),
        (0, 32, 48),
        (PHOTOS, 1, 8),
        (PHOTOS, 8, 24),
    ] {
        let steps = Arc::new(create_post_floor(&queues[3], photos));
        let photo_bytes = Arc::new(photo_bytes[..photos].to_vec());
        let (app2, token2) = (app.clone(), token.clone());
        let (client2, workflows, prefix2) = (client.clone(), queues[0].clone(), prefix.clone());
        let (created, floored) = interleaved(
            ROUNDS,
            per_round,
            concurrency,
            move |i| {
                let (app, token, photos) = (app2.clone(), token2.clone(), photo_bytes.clone());
                async move { create_post(&app, &token, done + i, &photos).await }
            },
            move |i| {
                let (client, workflows, steps) =
                    (client2.clone(), workflows.clone(), steps.clone());
                let id = format!("{prefix2}/floor/{}", done + i);
                async move { floor::run(&client, &workflows, id, &steps).await }
            },
        )
        .await;
        done += ROUNDS * per_round;
        let (p50, fp50) = (created.p(0.5), floored.p(0.5));
        println!(
            "| {photos} | {concurrency} | {} | {} | {} | {:.1} | {} | {} | {:.1} | **{:.2}** | **{:.2}** |",
            ROUNDS * per_round,
            ms(p50),
            ms(created.p(0.99)),
            created.rate,
            ms(fp50),
            ms(floored.p(0.99)),
            floored.rate,
            p50.as_secs_f64() / fp50.as_secs_f64(),
            floored.rate / created.rate,
        );
    }
}

// --- the listing, and a plain handler with the same SQL -------------------------------------

/// 300 OPEN posts of `authors`, two images each.
async fn seed_posts(pool: &sqlx::PgPool, authors: &[i64]) {
    for n in 0..300 {
        let (post, _) = seed::open_post(pool, authors[n % authors.len()], 4, n).await;
        seed::post_images(pool, post, 2).await;
    }
}

/// The request body both sides take: a GraphQL request as JSON (the plain handler reads it and
/// ignores the query, which it knows).
#[derive(serde::Deserialize)]
struct JsonRequest {
    #[allow(dead_code)] // read, as the GraphQL side reads it
    query: String,
    #[allow(dead_code)]
    variables: Option<Value>,
}

/// The same four statements the GraphQL listing runs, as one plain handler.
async fn plain_posts(
    State(pool): State<sqlx::PgPool>,
    Json(_request): Json<JsonRequest>,
) -> Json<Value> {
    let posts = board::list_posts(
        &pool,
        &PostFilter::default(),
        SortBy::CreatedAt,
        Order::Desc,
        None,
        31,
    )
    .await
    .unwrap();
    let ids: Vec<i64> = posts.iter().take(30).map(|p| p.id).collect();
    let mut authors: Vec<i64> = posts.iter().map(|p| p.user_id).collect();
    authors.sort_unstable();
    authors.dedup();
    let (users, images, fish) = tokio::join!(
        fishapp_store::account::users_by_ids(&pool, &authors),
        media::images_of_owners(&pool, OwnerType::Post, &ids),
        board::fish_types_of(&pool, &ids),
    );
    let (users, images, fish) = (users.unwrap(), images.unwrap(), fish.unwrap());
    let nodes: Vec<Value> = posts
        .iter()
        .take(30)
        .map(|p| {
            let user = users.iter().find(|u| u.id == p.user_id).unwrap();
            json!({
                "id": p.id.to_string(), "title": p.title, "content": p.content,
                "fishingSpotTypeId": p.fishing_spot_type_id, "prefectureId": p.prefecture_id,
                "meetingAt": p.meeting_at, "maxApply": p.max_apply,
                "fishTypeIds": fish.iter().filter(|(post, _)| *post == p.id).map(|(_, f)| *f).collect::<Vec<_>>(),
                "user": { "id": user.id.to_string(), "name": user.name },
                "images": images.iter().filter(|i| i.owner_id == Some(p.id)).map(|i| json!({
                    "id": i.id, "url": format!("/media/{}", i.display_key),
                    "thumbnailUrl": format!("/media/{}", i.thumbnail_key),
                    "width": i.width, "height": i.height,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(
        json!({ "data": { "posts": { "pageInfo": { "hasNextPage": posts.len() > 30 }, "nodes": nodes } } }),
    )
}

/// The plain handler of the listing's SQL on `db`, behind the API's own middleware (request
/// id, trace span, CORS, body limit, metrics, panic catcher), served the way the API is; its URL.
async fn plain_server(app: &TestApp, db: fishapp_store::Database) -> String {
    let routes = axum::Router::new()
        .route("/graphql", axum::routing::post(plain_posts))
        .with_state(db.pool().clone());
    let settings = fishapp::app::http_settings(&app.config, prometheus::Registry::new()).unwrap();
    let router = fishapp_api::with_middleware(routes, &settings).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let listener = listener.tap_io(|socket| socket.set_nodelay(true).unwrap());
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap()
    });
    url
}

/// The same plain listing on two pools, interleaved: one that pings a connection before use only
/// when it sat idle over a second (the app's), one that pings before every use (sqlx's default).
/// Process CPU per request is read from /proc over each side's rounds.
async fn pings(app: &Arc<TestApp>) {
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 500;
    const CONCURRENCY: usize = 8;
    let url = &app.config.connections.database_url;
    let max = app.config.connections.database_max_connections;
    let idle_only = plain_server(
        app,
        fishapp_store::Database::connect_lazy(url, max).unwrap(),
    )
    .await;
    let always = plain_server(
        app,
        fishapp_store::Database::connect_lazy_with(url, max, std::time::Duration::ZERO).unwrap(),
    )
    .await;
    let http = reqwest::Client::new();
    let call = move |url: String| {
        let http = http.clone();
        move |_| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let request = json!({ "query": LIST, "variables": {} });
                let body = common::send(http.post(&url).json(&request), None).await;
                assert_eq!(body["data"]["posts"]["nodes"].as_array().unwrap().len(), 30);
            }
        }
    };
    let (a, b) = interleaved(
        ROUNDS,
        PER_ROUND,
        CONCURRENCY,
        call(idle_only),
        call(always),
    )
    .await;
    let title = format!(
        "plain listing, {} requests each, {ROUNDS} rounds interleaved, concurrency {CONCURRENCY}",
        ROUNDS * PER_ROUND
    );
    comparison(
        &title,
        (
            "ping only a connection idle > 1 s (`DATABASE_PING_IDLE_AFTER_MS=1000`)",
            &a,
        ),
        ("ping before every use (`0`, sqlx's default)", &b),
        "idle-only / every use: throughput; p99",
    );
}

/// Two interleaved sides as a table: requests/s, p50, p99, and their ratios (a / b).
fn comparison(title: &str, a: (&str, &Side), b: (&str, &Side), ratio: &str) {
    println!();
    println!("| {title} | requests/s | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, side) in [a, b] {
        println!(
            "| {name} | {:.0} | {} | {} |",
            side.rate,
            ms(side.p(0.5)),
            ms(side.p(0.99))
        );
    }
    println!(
        "| **ratio** ({ratio}) | **{:.2}** | | **{:.2}** |",
        a.1.rate / b.1.rate,
        a.1.p(0.99).as_secs_f64() / b.1.p(0.99).as_secs_f64()
    );
}

/// The GraphQL listing over GET and over POST, interleaved: the same document, kept parsed for
/// both (a GET was parsed again each time before 2026-12-04, to check that it was a query).
async fn get_and_post(app: &Arc<TestApp>) {
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 500;
    const CONCURRENCY: usize = 8;
    let url = app.url("/graphql");
    let mut with_query = url::Url::parse(&url).unwrap();
    with_query.query_pairs_mut().append_pair("query", LIST);
    let with_query = with_query.to_string();
    let http = reqwest::Client::new();
    let call = move |over_get: bool| {
        let (http, url, with_query) = (http.clone(), url.clone(), with_query.clone());
        move |_| {
            let request = if over_get {
                http.get(&with_query)
            } else {
                http.post(&url)
                    .json(&json!({ "query": LIST, "variables": {} }))
            };
            async move {
                let body = common::send(request, None).await;
                assert_eq!(body["data"]["posts"]["nodes"].as_array().unwrap().len(), 30);
            }
        }
    };
    let (get, post) = interleaved(ROUNDS, PER_ROUND, CONCURRENCY, call(true), call(false)).await;
    let title = format!(
        "GraphQL `posts(first: 30)`, {} requests each, {ROUNDS} rounds interleaved, concurrency {CONCURRENCY}",
        ROUNDS * PER_ROUND
    );
    comparison(
        &title,
        ("over GET (`?query=…`)", &get),
        ("over POST (JSON body)", &post),
        "GET / POST: throughput; p99",
    );
}

async fn list_posts(app: &Arc<TestApp>) {
    let pool = app.pool().await;
    let authors = [
        sign_up(app).await.1.parse::<i64>().unwrap(),
        sign_up(app).await.1.parse::<i64>().unwrap(),
        sign_up(app).await.1.parse::<i64>().unwrap(),
    ];
    seed_posts(&pool, &authors).await;
    // A pool of its own, built the way the app builds its pool.
    let plain = plain_server(
        app,
        fishapp_store::Database::connect_lazy(
            &app.config.connections.database_url,
            app.config.connections.database_max_connections,
        )
        .unwrap(),
    )
    .await;

    // Eight rounds: one round is about half a second a side here, and the ratio of four rounds
    // still moved by ±0.04 between runs.
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 500;
    const CONCURRENCY: usize = 8;
    let app2 = app.clone();
    let http = reqwest::Client::new();
    let (graphql, baseline) = interleaved(
        ROUNDS,
        PER_ROUND,
        CONCURRENCY,
        move |_| {
            let app = app2.clone();
            async move {
                let body = app.graphql(LIST).await;
                assert_eq!(
                    body["data"]["posts"]["nodes"].as_array().unwrap().len(),
                    30,
                    "{body}"
                );
            }
        },
        move |_| {
            let (http, plain) = (http.clone(), plain.clone());
            async move {
                let request = json!({ "query": LIST, "variables": {} });
                let body = common::send(http.post(&plain).json(&request), None).await;
                assert_eq!(body["data"]["posts"]["nodes"].as_array().unwrap().len(), 30);
            }
        },
    )
    .await;
    let title = format!(
        "posts(first: 30), nested user, images, fish types; {} requests each, {ROUNDS} rounds interleaved, concurrency {CONCURRENCY}",
        ROUNDS * PER_ROUND
    );
    comparison(
        &title,
        ("GraphQL (`posts`)", &graphql),
        (
            "plain axum handler, same SQL, same middleware and request",
            &baseline,
        ),
        "GraphQL / plain throughput; GraphQL / plain p99",
    );
}

#[tokio::main]
async fn main() {
    let app = Arc::new(
        TestApp::spawn_with_worker(|c| {
            c.diagnostics.log_filter = "error".into();
            c.connections.database_max_connections = 20;
            c.board.board_max_posts_per_hour = u32::MAX;
        })
        .await,
    );
    let (token, _) = sign_up(&app).await;
    let token: Arc<str> = token.into();
    if std::env::var("ONLY_LISTING").is_err() {
        create_posts(&app, &token).await;
    }
    list_posts(&app).await;
    get_and_post(&app).await;
    pings(&app).await;
}
