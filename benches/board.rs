//! The board's two hot paths, each beside a floor measured in the same run:
//!
//! 1. createPost end to end (GraphQL mutation → CreatePost saga → OPEN post) at concurrency 1, 8
//!    and 32, beside a workflow of four no-op activities on the same Temporal server, started and
//!    awaited by the same process: the ratio is what our own work (HTTP, GraphQL, validation,
//!    Postgres, four real activities) costs over Temporal's own round trips.
//! 2. `posts(first: 30)` with each post's user, images and fish types, beside a plain axum
//!    handler that runs the same four SQL statements and returns JSON: the ratio is GraphQL's
//!    (and the dataloaders') cost.
//!
//!     ./scripts/stack up && eval "$(scripts/stack env)" && cargo bench --bench board
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's failure is its panic

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use axum::Json;
use axum::extract::State;
use common::{TestApp, sign_up};
use fishapp_domain::board::PostDraft;
use fishapp_domain::media::{ImageOwner, OwnerType};
use fishapp_store::board::{self, Order, PostFilter, SortBy};
use fishapp_store::media::{self, NewImage};
use serde_json::{Value, json};
use std::sync::Arc;
use support::{floor, load, ms, percentile};

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

async fn create_posts(app: &Arc<TestApp>, token: &Arc<str>) {
    let prefix = app.config.temporal_task_queue_prefix.clone();
    // Four no-op steps on one queue (the shared floor, as this benchmark has always measured it).
    let floor_queue = format!("{prefix}.floor");
    let floor_steps = vec![floor_queue.clone(); 4];
    floor::start_workers(&app.config, std::slice::from_ref(&floor_queue));
    let client = floor::client(&app.config).await;

    println!(
        "| concurrency | createPost p50 | p99 | posts/s | floor p50 | floor p99 | floor runs/s | **p50 ratio** | **throughput ratio** |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (concurrency, total) in [(1, 30), (8, 80), (32, 160)] {
        let (app2, token2) = (app.clone(), token.clone());
        let (created, created_rate) = load(total, concurrency, move |i| {
            let (app, token) = (app2.clone(), token2.clone());
            async move {
                let body = app.graphql_as(Some(&token), CREATE, post_input(i)).await;
                assert_eq!(
                    body["data"]["createPost"]["post"]["status"], "OPEN",
                    "{body}"
                );
            }
        })
        .await;
        let (client2, queue2, prefix2) = (client.clone(), floor_queue.clone(), prefix.clone());
        let steps = floor_steps.clone();
        let (floor, floor_rate) = load(total, concurrency, move |i| {
            let (client, queue, steps) = (client2.clone(), queue2.clone(), steps.clone());
            let id = format!("{prefix2}/floor/{concurrency}/{i}");
            async move { floor::run(&client, &queue, id, &steps).await }
        })
        .await;
        let (p50, fp50) = (percentile(&created, 0.5), percentile(&floor, 0.5));
        println!(
            "| {concurrency} | {} | {} | {created_rate:.1} | {} | {} | {floor_rate:.1} | **{:.2}** | **{:.2}** |",
            ms(p50),
            ms(percentile(&created, 0.99)),
            ms(fp50),
            ms(percentile(&floor, 0.99)),
            p50.as_secs_f64() / fp50.as_secs_f64(),
            floor_rate / created_rate,
        );
    }
}

// --- the listing, and a plain handler with the same SQL -------------------------------------

async fn seed(pool: &sqlx::PgPool, authors: &[i64]) {
    for i in 0..300usize {
        let id = board::reserve_post_id(pool).await.unwrap();
        let fields: PostDraft = serde_json::from_value(json!({
            "title": format!("Seeded {i}"),
            "content": "Seeded for the benchmark.",
            "fishing_spot_type_id": 1 + (i % 4) as i16,
            "prefecture_id": 1 + (i % 47) as i16,
            "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
            "meeting_at": chrono::Utc::now() + chrono::Duration::days(1 + (i % 30) as i64),
            "max_apply": 4,
            "fish_type_ids": [1 + (i % 40) as i16, 50 + (i % 40) as i16],
        }))
        .unwrap();
        board::insert_pending(pool, id, authors[i % authors.len()], &fields)
            .await
            .unwrap();
        board::publish(pool, id).await.unwrap();
        for n in 0..2 {
            let image = uuid::Uuid::new_v4();
            let key = format!("images/{image}/display.jpg");
            media::insert_image(
                pool,
                &NewImage {
                    id: image,
                    owner: Some(ImageOwner::Post(id)),
                    display_key: &key,
                    thumbnail_key: &key,
                    content_type: "image/jpeg",
                    width: 600,
                    height: 450,
                    bytes: 50_000 + n,
                    original_name: "seed.jpg",
                    uploader_id: None,
                },
            )
            .await
            .unwrap();
        }
    }
}

/// The same four statements the GraphQL listing runs, as one plain handler.
async fn plain_posts(State(pool): State<sqlx::PgPool>) -> Json<Value> {
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

async fn list_posts(app: &Arc<TestApp>) {
    let pool = app.pool().await;
    let authors = [
        sign_up(app).await.1.parse::<i64>().unwrap(),
        sign_up(app).await.1.parse::<i64>().unwrap(),
        sign_up(app).await.1.parse::<i64>().unwrap(),
    ];
    seed(&pool, &authors).await;
    let plain_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(app.config.database_max_connections)
        .connect(&app.config.database_url)
        .await
        .unwrap();
    let router = axum::Router::new()
        .route("/posts", axum::routing::get(plain_posts))
        .with_state(plain_pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain = format!("http://{}/posts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    const REQUESTS: usize = 2_000;
    const CONCURRENCY: usize = 8;
    let app2 = app.clone();
    let (graphql, graphql_rate) = load(REQUESTS, CONCURRENCY, move |_| {
        let app = app2.clone();
        async move {
            let body = app.graphql(LIST).await;
            assert_eq!(
                body["data"]["posts"]["nodes"].as_array().unwrap().len(),
                30,
                "{body}"
            );
        }
    })
    .await;
    let http = reqwest::Client::new();
    let (baseline, baseline_rate) = load(REQUESTS, CONCURRENCY, move |_| {
        let (http, plain) = (http.clone(), plain.clone());
        async move {
            let body: Value = http.get(&plain).send().await.unwrap().json().await.unwrap();
            assert_eq!(body["data"]["posts"]["nodes"].as_array().unwrap().len(), 30);
        }
    })
    .await;
    println!();
    println!(
        "| posts(first: 30), nested user, images, fish types; {REQUESTS} requests, concurrency {CONCURRENCY} | requests/s | p50 | p99 |"
    );
    println!("|---|---|---|---|");
    println!(
        "| GraphQL (`posts`) | {graphql_rate:.0} | {} | {} |",
        ms(percentile(&graphql, 0.5)),
        ms(percentile(&graphql, 0.99))
    );
    println!(
        "| plain axum handler, same SQL | {baseline_rate:.0} | {} | {} |",
        ms(percentile(&baseline, 0.5)),
        ms(percentile(&baseline, 0.99))
    );
    println!(
        "| **ratio** (plain / GraphQL throughput; GraphQL / plain p99) | **{:.2}** | | **{:.2}** |",
        baseline_rate / graphql_rate,
        percentile(&graphql, 0.99).as_secs_f64() / percentile(&baseline, 0.99).as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let app = Arc::new(
        TestApp::spawn_with_worker(|c| {
            c.log_filter = "error".into();
            c.database_max_connections = 20;
        })
        .await,
    );
    let (token, _) = sign_up(&app).await;
    let token: Arc<str> = token.into();
    create_posts(&app, &token).await;
    list_posts(&app).await;
}
