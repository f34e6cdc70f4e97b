//! Reviews of a trip that is over, over GraphQL against the real stack (the trip workflow
//! completes the trip): who may review and when, what bad input gets, one review per member
//! (a second replaces the first), the trip's and the organiser's rating, the paged list, the
//! event, the per-user limit, and reviews that outlive their trip in the organiser's rating.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{TestApp, apply_to, error_code, post_input, sign_up};
use serde_json::{Value, json};
use std::time::Duration;

const REVIEW: &str = "mutation($input: ReviewTripInput!) {
  reviewTrip(input: $input) { clientMutationId review { id rating comment user { id } } }
}";

const SHOWN: &str = "query($id: ID!, $first: Int, $after: String) { post(id: $id) {
  status rating { average count } user { organiserRating { average count } }
  reviews(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } nodes { id rating comment user { id } } } } }";

async fn review(app: &TestApp, token: Option<&str>, input: Value) -> Value {
    app.graphql_as(token, REVIEW, json!({ "input": input }))
        .await
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason in {body}"))
}

fn field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no field in {body}"))
}

async fn written(app: &TestApp) -> (i64, i64) {
    let pool = app.pool().await;
    let reviews: i64 = sqlx::query_scalar("SELECT count(*) FROM board.reviews")
        .fetch_one(&pool)
        .await
        .unwrap();
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox.events WHERE event_type = $1")
            .bind("board.post.reviewed")
            .fetch_one(&pool)
            .await
            .unwrap();
    (reviews, events)
}

/// A trip of `owner`'s meeting `meeting_in` seconds from now, with `members` on it: its id.
async fn trip_with_members(
    app: &TestApp,
    owner: &str,
    meeting_in: i64,
    members: &[&String],
) -> Value {
    let mut input = post_input("Reviewed");
    input["meetingAt"] =
        json!((chrono::Utc::now() + chrono::Duration::seconds(meeting_in)).to_rfc3339());
    let created = app
        .graphql_as(
            Some(owner),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
            json!({ "input": input }),
        )
        .await;
    let post = created["data"]["createPost"]["post"]["id"].clone();
    assert!(post.is_string(), "{created}");
    for token in members {
        let body = apply_to(app, token, &post).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    post
}

/// The trip's `fields` as `token` sees them once its workflow has completed it.
async fn once_completed(app: &TestApp, token: &str, post: &Value, fields: &str) -> Value {
    let query = format!("query($id: ID!) {{ post(id: $id) {{ status {fields} }} }}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = app
            .graphql_as(Some(token), &query, json!({ "id": post }))
            .await;
        if body["data"]["post"]["status"] == "COMPLETED" {
            return body["data"]["post"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never completed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn members_review_a_trip_once_it_is_over_and_its_organiser_is_rated() {
    let app = TestApp::spawn_with_worker(|c| {
        c.trip.trip_completed_after_secs = 1;
        c.board.board_max_reviews_per_hour = 4;
    })
    .await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, owner_id) = sign_up(&app).await;
    let (a, a_id) = sign_up(&app).await;
    let (b, b_id) = sign_up(&app).await;
    let (stranger, _) = sign_up(&app).await;
    let post = trip_with_members(&app, &owner, 6, &[&a, &b]).await;
    let rated = |rating: i64, comment: Value| json!({ "postId": post, "rating": rating, "comment": comment });

    // Not over yet (a's first of four calls this hour).
    let early = review(&app, Some(&a), rated(5, Value::Null)).await;
    assert_eq!(error_code(&early), "CONFLICT", "{early}");
    assert_eq!(reason(&early), "TRIP_NOT_OVER");

    let shown = |first: Option<i64>, after: Value| {
        let (app, post, owner) = (&app, post.clone(), owner.clone());
        async move {
            app.graphql_as(
                Some(&owner),
                SHOWN,
                json!({ "id": post, "first": first, "after": after }),
            )
            .await
        }
    };
    once_completed(&app, &owner, &post, "status").await;
    let before = shown(None, Value::Null).await;
    assert_eq!(before["data"]["post"]["rating"], Value::Null, "{before}");
    assert_eq!(
        before["data"]["post"]["user"]["organiserRating"],
        Value::Null
    );

    // Bad input: the field at fault, nothing written, nothing counted.
    let too_long = "魚".repeat(1001);
    for (input, at) in [
        (rated(0, Value::Null), "input.rating"),
        (rated(6, Value::Null), "input.rating"),
        (rated(-2_147_483_648, Value::Null), "input.rating"),
        (rated(3, json!(too_long)), "input.comment"),
        (
            json!({ "postId": "not-an-id", "rating": 3 }),
            "input.postId",
        ),
        (
            json!({ "postId": post, "rating": 3, "clientMutationId": "has space" }),
            "input.clientMutationId",
        ),
    ] {
        let body = review(&app, Some(&a), input).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), at, "{body}");
    }
    // Who may not.
    let anonymous = review(&app, None, rated(5, Value::Null)).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    let theirs = review(&app, Some(&stranger), rated(5, Value::Null)).await;
    assert_eq!(error_code(&theirs), "FORBIDDEN", "{theirs}");
    assert_eq!(reason(&theirs), "NOT_A_MEMBER");
    let own = review(&app, Some(&owner), rated(5, Value::Null)).await;
    assert_eq!(error_code(&own), "FORBIDDEN", "{own}");
    assert_eq!(reason(&own), "OWN_TRIP");
    let none = review(
        &app,
        Some(&a),
        json!({ "postId": "987654321", "rating": 5 }),
    )
    .await;
    assert_eq!(error_code(&none), "NOT_FOUND", "{none}");
    assert_eq!(written(&app).await, (0, 0));

    // a says 5, b says 2, then a says 4 after all, without a comment: still two reviews.
    let first = review(
        &app,
        Some(&a),
        json!({ "postId": post, "rating": 5, "comment": "  Seven ayu before noon ", "clientMutationId": "r-1" }),
    )
    .await;
    assert_eq!(first["data"]["reviewTrip"]["clientMutationId"], "r-1");
    let first = &first["data"]["reviewTrip"]["review"];
    assert_eq!(first["comment"], "Seven ayu before noon", "{first}");
    assert_eq!(first["user"]["id"], a_id.as_str());
    let b_review = review(&app, Some(&b), rated(2, json!("Windy"))).await;
    assert!(b_review["errors"].is_null(), "{b_review}");
    let again = review(&app, Some(&a), rated(4, json!("   "))).await;
    let again = &again["data"]["reviewTrip"]["review"];
    assert_eq!(again["id"], first["id"], "the same review, replaced");
    assert_eq!(again["rating"], 4);
    assert_eq!(again["comment"], Value::Null);
    assert_eq!(written(&app).await, (2, 3), "two reviews, three events");
    // Each sees their own review on the trip; the organiser, who wrote none, none.
    let own = "query($id: ID!) { post(id: $id) { viewerReview { id rating } } }";
    for (token, expected) in [
        (Some(&a), json!({ "id": first["id"], "rating": 4 })),
        (Some(&owner), Value::Null),
        (None, Value::Null),
    ] {
        let body = app
            .graphql_as(token.map(String::as_str), own, json!({ "id": post }))
            .await;
        assert_eq!(body["data"]["post"]["viewerReview"], expected, "{body}");
    }

    // The trip's and its organiser's rating; the list, newest first, one per page.
    let page = shown(Some(1), Value::Null).await;
    let trip = &page["data"]["post"];
    assert_eq!(
        trip["rating"],
        json!({ "average": 3.0, "count": 2 }),
        "{page}"
    );
    assert_eq!(
        trip["user"]["organiserRating"],
        json!({ "average": 3.0, "count": 2 })
    );
    let nodes = &trip["reviews"]["nodes"];
    assert_eq!(nodes[0]["user"]["id"], b_id.as_str(), "{page}");
    assert_eq!(trip["reviews"]["pageInfo"]["hasNextPage"], true);
    let next = shown(Some(1), trip["reviews"]["pageInfo"]["endCursor"].clone()).await;
    let rest = &next["data"]["post"]["reviews"];
    assert_eq!(rest["nodes"][0]["id"], first["id"], "{next}");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    for (first, after, at) in [
        (Some(51), Value::Null, "first"),
        (None, json!("x"), "after"),
    ] {
        let body = shown(first, after).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(field(&body), at, "{body}");
    }

    // The trip that is over stays on its organiser's list, for anyone, with its rating.
    let listed = app
        .graphql_as(
            Some(&stranger),
            "query($id: ID!) { user(id: $id) { organiserRating { count } posts { id status rating { count } } } }",
            json!({ "id": owner_id }),
        )
        .await;
    let user = &listed["data"]["user"];
    assert_eq!(user["organiserRating"]["count"], 2, "{listed}");
    assert_eq!(
        user["posts"],
        json!([{ "id": post, "status": "COMPLETED", "rating": { "count": 2 } }])
    );

    // The organiser hears of each review (a's second too), the reviewers of none.
    let told = "{ notifications { nodes { kind postId actor { id } } } }";
    let reviewed = |token: String| {
        let app = &app;
        async move {
            let body = app.graphql_as(Some(&token), told, json!({})).await;
            body["data"]["notifications"]["nodes"]
                .as_array()
                .unwrap_or_else(|| panic!("{body}"))
                .iter()
                .filter(|n| n["kind"] == "TRIP_REVIEWED")
                .map(|n| (n["actor"]["id"].clone(), n["postId"].clone()))
                .collect::<Vec<_>>()
        }
    };
    let expected = [&a_id, &b_id, &a_id].map(|actor| (json!(actor), post.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut got = reviewed(owner.clone()).await;
        got.reverse();
        if got == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the organiser was told {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(reviewed(a.clone()).await.is_empty());

    // a's fifth call this hour (the unknown trip's counted too: the limit comes first).
    let limited = review(&app, Some(&a), rated(1, Value::Null)).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    assert_eq!(written(&app).await, (2, 3));

    // Deleting the trip does not take its reviews out of the organiser's rating.
    let deleted = app
        .graphql_as(
            Some(&owner),
            "mutation($id: ID!) { deletePost(input: { id: $id }) { success } }",
            json!({ "id": post }),
        )
        .await;
    assert_eq!(deleted["data"]["deletePost"]["success"], true, "{deleted}");
    let pool = app.pool().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM board.posts WHERE id = $1")
            .bind(post.as_str().unwrap().parse::<i64>().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trip was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = app
        .graphql_as(
            Some(&stranger),
            "query($id: ID!) { user(id: $id) { organiserRating { average count } } }",
            json!({ "id": owner_id }),
        )
        .await;
    assert_eq!(
        body["data"]["user"]["organiserRating"],
        json!({ "average": 3.0, "count": 2 }),
        "{body}"
    );
}

#[tokio::test]
async fn reviews_close_a_configured_time_after_the_meeting() {
    // Reviews open when the trip completes (2 s after the meeting) and close 1 s after it: by
    // the time it is COMPLETED, its window has passed.
    let app = TestApp::spawn_with_worker(|c| {
        c.trip.trip_completed_after_secs = 2;
        c.board.board_review_window_secs = 1;
    })
    .await;
    let (owner, _) = sign_up(&app).await;
    let (member, _) = sign_up(&app).await;
    let post = trip_with_members(&app, &owner, 4, &[&member]).await;
    let trip = once_completed(&app, &member, &post, "meetingAt reviewsCloseAt").await;
    let at =
        |field: &str| chrono::DateTime::parse_from_rfc3339(trip[field].as_str().unwrap()).unwrap();
    assert_eq!(
        at("reviewsCloseAt") - at("meetingAt"),
        chrono::Duration::seconds(1),
        "{trip}"
    );

    let late = review(&app, Some(&member), json!({ "postId": post, "rating": 4 })).await;
    assert_eq!(error_code(&late), "CONFLICT", "{late}");
    assert_eq!(reason(&late), "REVIEWS_CLOSED");
    assert_eq!(written(&app).await, (0, 0), "nothing written");
}
