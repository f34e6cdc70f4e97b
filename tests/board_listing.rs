//! `posts`: every filter, both sorts and orders, cursors — checked against a plain reference
//! computation over a generated data set with many ties; and the statement count of a page.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{TestApp, error_code, sign_up};
use fishapp_domain::board::PostDraft;
use fishapp_store::account::{NewUser, insert_user};
use fishapp_store::board;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

#[derive(Debug, Clone)]
struct Generated {
    id: i64,
    user_id: i64,
    prefecture_id: i16,
    spot: i16,
    fish: Vec<i16>,
    meeting_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    max_apply: i32,
    apply_count: i32,
    status: &'static str,
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn user(pool: &sqlx::PgPool, name: &str) -> i64 {
    insert_user(
        pool,
        &NewUser {
            email: &format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple()),
            password_hash: "not-a-real-hash",
            name,
            sex: "MALE",
            introduction: "generated",
        },
    )
    .await
    .unwrap()
    .id
}

/// `count` posts by `users`, with few distinct times (ties on both sort columns), every status.
async fn generate(pool: &sqlx::PgPool, users: &[i64], count: usize) -> Vec<Generated> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = Utc.with_ymd_and_hms(2030, 6, 1, 5, 0, 0).unwrap();
    let mut posts = Vec::new();
    for _ in 0..count {
        let max_apply = 1 + rng.next(3) as i32;
        let mut fish: Vec<i16> = (1..=5).filter(|_| rng.next(2) == 0).collect();
        if fish.is_empty() {
            fish.push(1 + rng.next(5) as i16);
        }
        let status = match rng.next(10) {
            0 => "PENDING",
            1 => "CLOSED",
            2 => "DELETING",
            _ => "OPEN",
        };
        let g = Generated {
            id: board::reserve_post_id(pool).await.unwrap(),
            user_id: users[rng.next(users.len() as u64) as usize],
            prefecture_id: [1, 13, 47][rng.next(3) as usize],
            spot: 1 + rng.next(4) as i16,
            fish,
            meeting_at: base + Duration::days(rng.next(4) as i64),
            created_at: base - Duration::hours(rng.next(5) as i64),
            max_apply,
            apply_count: rng.next(max_apply as u64 + 1) as i32,
            status,
        };
        // Generated rows, some in the past: recorded as they are, unchecked.
        let fields: PostDraft = serde_json::from_value(json!({
            "title": format!("Trip {}", g.id),
            "content": "generated",
            "fishing_spot_type_id": g.spot,
            "prefecture_id": g.prefecture_id,
            "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
            "meeting_at": g.meeting_at,
            "max_apply": g.max_apply,
            "fish_type_ids": g.fish,
        }))
        .unwrap();
        board::insert_pending(pool, g.id, g.user_id, &fields)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE board.posts SET created_at = $2, apply_count = $3, status = $4 WHERE id = $1",
        )
        .bind(g.id)
        .bind(g.created_at)
        .bind(g.apply_count)
        .bind(g.status)
        .execute(pool)
        .await
        .unwrap();
        posts.push(g);
    }
    posts
}

#[derive(Debug, Clone, Default)]
struct Case {
    prefecture_id: Option<i16>,
    spot: Option<i16>,
    user_id: Option<i64>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    fish: Vec<i16>,
    can_apply: Option<bool>,
}

impl Case {
    fn input(&self, sort: &str, order: &str) -> Value {
        json!({
            "prefectureId": self.prefecture_id,
            "fishingSpotTypeId": self.spot,
            "userId": self.user_id.map(|u| u.to_string()),
            "meetingAtFrom": self.from.map(|t| t.to_rfc3339()),
            "meetingAtTo": self.to.map(|t| t.to_rfc3339()),
            "fishTypeIds": if self.fish.is_empty() { Value::Null } else { json!(self.fish) },
            "canApply": self.can_apply,
            "sortBy": sort,
            "orderBy": order,
        })
    }

    /// The reference: what the listing must return, in order.
    fn expect(
        &self,
        posts: &[Generated],
        viewer: Option<i64>,
        sort: &str,
        order: &str,
    ) -> Vec<i64> {
        let own = viewer.is_some() && viewer == self.user_id;
        let mut hits: Vec<&Generated> = posts
            .iter()
            .filter(|p| {
                if own {
                    p.status != "DELETING"
                } else {
                    p.status == "OPEN"
                }
            })
            .filter(|p| self.prefecture_id.is_none_or(|v| p.prefecture_id == v))
            .filter(|p| self.spot.is_none_or(|v| p.spot == v))
            .filter(|p| self.user_id.is_none_or(|v| p.user_id == v))
            .filter(|p| self.from.is_none_or(|v| p.meeting_at >= v))
            .filter(|p| self.to.is_none_or(|v| p.meeting_at <= v))
            .filter(|p| self.fish.iter().all(|f| p.fish.contains(f)))
            .filter(|p| {
                self.can_apply
                    .is_none_or(|can| (p.apply_count < p.max_apply) == can)
            })
            .collect();
        hits.sort_by_key(|p| {
            (
                if sort == "MEETING_AT" {
                    p.meeting_at
                } else {
                    p.created_at
                },
                p.id,
            )
        });
        if order == "DESC" {
            hits.reverse();
        }
        hits.iter().map(|p| p.id).collect()
    }
}

const PAGE: &str = "query($first: Int, $after: String, $input: PostsInput!) {
  posts(first: $first, after: $after, input: $input) {
    pageInfo { hasNextPage endCursor }
    nodes { id }
  }
}";

/// Every page of a listing, following the cursors.
async fn walk(app: &TestApp, token: Option<&str>, input: &Value, first: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    for _ in 0..100 {
        let body = app
            .graphql_as(
                token,
                PAGE,
                json!({ "first": first, "after": after, "input": input }),
            )
            .await;
        assert!(body["errors"].is_null(), "{input}: {body}");
        let page = &body["data"]["posts"];
        ids.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().parse::<i64>().unwrap()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    panic!("more than 100 pages");
}

#[tokio::test]
async fn listing_matches_a_reference_for_every_filter_sort_and_cursor() {
    let app = TestApp::spawn().await;
    let pool = app.pool().await;
    let (token, me) = sign_up(&app).await;
    let me: i64 = me.parse().unwrap();
    let users = [me, user(&pool, "b").await, user(&pool, "c").await];
    let posts = generate(&pool, &users, 90).await;
    let base = Utc.with_ymd_and_hms(2030, 6, 1, 5, 0, 0).unwrap();

    let cases = vec![
        Case::default(),
        Case {
            prefecture_id: Some(13),
            ..Case::default()
        },
        Case {
            spot: Some(2),
            can_apply: Some(true),
            ..Case::default()
        },
        Case {
            can_apply: Some(false),
            ..Case::default()
        },
        Case {
            fish: vec![2, 4],
            ..Case::default()
        },
        Case {
            fish: vec![1],
            prefecture_id: Some(47),
            spot: Some(3),
            ..Case::default()
        },
        Case {
            from: Some(base + Duration::days(1)),
            to: Some(base + Duration::days(2)),
            ..Case::default()
        },
        Case {
            user_id: Some(users[1]),
            ..Case::default()
        },
        Case {
            user_id: Some(me),
            fish: vec![3],
            ..Case::default()
        },
    ];
    for case in &cases {
        for sort in ["CREATED_AT", "MEETING_AT"] {
            for order in ["DESC", "ASC"] {
                let input = case.input(sort, order);
                let expected = case.expect(&posts, None, sort, order);
                assert_eq!(walk(&app, None, &input, 7).await, expected, "{input}");
                // The same listing in one page, and signed in (own posts when userId is mine).
                assert_eq!(walk(&app, None, &input, 30).await.len(), expected.len());
                let mine = case.expect(&posts, Some(me), sort, order);
                assert_eq!(
                    walk(&app, Some(&token), &input, 7).await,
                    mine,
                    "mine: {input}"
                );
            }
        }
    }
    assert!(
        cases[8]
            .expect(&posts, Some(me), "CREATED_AT", "DESC")
            .len()
            > cases[8].expect(&posts, None, "CREATED_AT", "DESC").len(),
        "the data set has unpublished posts of mine"
    );
}

#[tokio::test]
async fn bad_listing_arguments_are_user_errors() {
    let app = TestApp::spawn().await;
    let input = Case::default().input("CREATED_AT", "DESC");
    for (first, field) in [(0, "first"), (31, "first"), (-1, "first")] {
        let body = app
            .graphql_as(None, PAGE, json!({ "first": first, "input": input }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    let body = app
        .graphql_as(
            None,
            PAGE,
            json!({ "after": "not-a-cursor", "input": input }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "after", "{body}");
    let body = app
        .graphql_as(
            None,
            PAGE,
            json!({ "input": { "prefectureId": 48, "fishTypeIds": [1] } }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["field"], "input.prefectureId",
        "{body}"
    );
}

#[tokio::test]
async fn a_page_of_posts_with_authors_images_and_fish_costs_a_constant_number_of_statements() {
    let (app, statements) = TestApp::spawn_counting_statements().await;
    let pool = app.pool().await;
    let users = [
        user(&pool, "a").await,
        user(&pool, "b").await,
        user(&pool, "c").await,
    ];
    let posts = generate(&pool, &users, 45).await;
    for post in &posts {
        for n in 0..2 {
            let id = uuid::Uuid::new_v4();
            let key = format!("images/{id}/display.jpg");
            fishapp_store::media::insert_image(
                &pool,
                &fishapp_store::media::NewImage {
                    id,
                    owner: Some(fishapp_domain::media::ImageOwner::Post(post.id)),
                    display_key: &key,
                    thumbnail_key: &key,
                    content_type: "image/jpeg",
                    width: 10,
                    height: 10,
                    bytes: 10 + n,
                    original_name: "x.jpg",
                    uploader_id: None,
                },
            )
            .await
            .unwrap();
        }
    }
    // Every post has applicants (rows only: the count test is about reading them).
    sqlx::query(
        "INSERT INTO board.applications (post_id, user_id)
         SELECT p.id, u.id FROM board.posts p, unnest($1::bigint[]) AS u(id) WHERE u.id <> p.user_id",
    )
    .bind(users.to_vec())
    .execute(&pool)
    .await
    .unwrap();
    let query = "query($first: Int) { posts(first: $first, input: {}) {
        nodes { id title fishTypeIds user { id name image { id url } } images { id url thumbnailUrl }
                applyPosts(first: 10) { id user { id name } } } } }";
    let mut counts = Vec::new();
    for first in [30, 10, 30] {
        statements.store(0, Ordering::SeqCst);
        let body = app.graphql_as(None, query, json!({ "first": first })).await;
        assert!(body["errors"].is_null(), "{body}");
        let nodes = body["data"]["posts"]["nodes"].as_array().unwrap();
        assert_eq!(
            nodes.len() as i64,
            first.min(posts.iter().filter(|p| p.status == "OPEN").count() as i64)
        );
        assert!(
            nodes
                .iter()
                .all(|n| n["images"].as_array().unwrap().len() == 2)
        );
        counts.push(statements.load(Ordering::SeqCst));
    }
    assert!(
        counts.iter().all(|&c| c == counts[0]),
        "constant: {counts:?}"
    );
    assert!(
        counts[0] <= 8,
        "at most 8 statements for a page: {counts:?}"
    );
    // The page; its authors, images and fish (loaded together by `posts`); applications;
    // applicants; and the avatars of authors and applicants in one batch.
    assert!(
        counts[0] >= 6,
        "the proxy saw the page, its authors, images, fish, applications, applicants and avatars: {counts:?}"
    );
}
