//! Applying to a trip and withdrawing, end to end: GraphQL over HTTP, the Apply and Withdraw
//! sagas on the real Temporal dev server with a real worker, Postgres. Each test has its own
//! database and task queues.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{TestApp, error_code, post_input, sign_up};
use serde_json::{Value, json};

const CREATE: &str =
    "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }";
const APPLY: &str = "mutation($input: CreateApplyPostInput!) {
  createApplyPost(input: $input) { applyPost { id user { id } post { id applyCount } createdAt updatedAt } }
}";
const WITHDRAW: &str =
    "mutation($input: DeleteApplyPostInput!) { deleteApplyPost(input: $input) { success } }";

/// An OPEN trip of `token`'s with `max_apply` seats; its id.
async fn trip(app: &TestApp, token: &str, max_apply: i64) -> String {
    let mut input = post_input("Trip");
    input["maxApply"] = json!(max_apply);
    let body = app
        .graphql_as(Some(token), CREATE, json!({ "input": input }))
        .await;
    body["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

async fn apply(app: &TestApp, token: &str, post_id: &str) -> Value {
    app.graphql_as(
        Some(token),
        APPLY,
        json!({ "input": { "postId": post_id } }),
    )
    .await
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason in {body}"))
}

/// (applyCount, application rows, room members) of a post: they must always agree.
async fn seats(app: &TestApp, post_id: &str) -> (i32, i64, i64) {
    common::seats(&app.pool().await, post_id.parse().unwrap()).await
}

/// The application and membership events written so far, oldest first.
async fn seat_events(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM outbox.events
          WHERE event_type LIKE 'board.application.%' OR event_type LIKE 'chat.room.member_%'
          ORDER BY id",
    )
    .fetch_all(&app.pool().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_applicant_joins_and_withdraws_and_the_rules_say_why_not() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let (angler, angler_id) = sign_up(&app).await;
    let post = trip(&app, &owner, 2).await;

    let body = apply(&app, &angler, &post).await;
    assert!(body["errors"].is_null(), "{body}");
    let applied = &body["data"]["createApplyPost"]["applyPost"];
    assert_eq!(applied["user"]["id"], angler_id.as_str());
    assert_eq!(applied["post"]["id"], post.as_str());
    assert_eq!(applied["post"]["applyCount"], 1);
    assert_eq!(
        seats(&app, &post).await,
        (1, 1, 2),
        "the owner and the applicant are members"
    );
    let listed = app
        .graphql(&format!(
            "{{ post(id: {post}) {{ applyPosts {{ id user {{ id }} }} }} }}"
        ))
        .await;
    assert_eq!(
        listed["data"]["post"]["applyPosts"],
        json!([{ "id": applied["id"], "user": { "id": angler_id } }])
    );

    // The applicant's and the owner's side.
    let mine = app
        .graphql_as(
            Some(&angler),
            "query($id: ID!) { user(id: $id) { posts { id } applyPosts { id post { id } } } }",
            json!({ "id": angler_id }),
        )
        .await;
    assert_eq!(mine["data"]["user"]["posts"], json!([]), "{mine}");
    assert_eq!(
        mine["data"]["user"]["applyPosts"],
        json!([{ "id": applied["id"], "post": { "id": post } }])
    );
    let theirs = app.graphql("{ currentUser { id } }").await;
    assert_eq!(error_code(&theirs), "UNAUTHENTICATED");

    // Why not, each with its reason.
    let twice = apply(&app, &angler, &post).await;
    assert_eq!(
        (error_code(&twice), reason(&twice)),
        ("CONFLICT", "ALREADY_APPLIED")
    );
    let own = apply(&app, &owner, &post).await;
    assert_eq!((error_code(&own), reason(&own)), ("CONFLICT", "OWN_POST"));
    let missing = apply(&app, &angler, "999999").await;
    assert_eq!(
        (error_code(&missing), reason(&missing)),
        ("NOT_FOUND", "POST_NOT_FOUND")
    );
    let anonymous = app
        .graphql_as(None, APPLY, json!({ "input": { "postId": post } }))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    let bad_id = apply(&app, &angler, "abc").await;
    assert_eq!(error_code(&bad_id), "BAD_USER_INPUT");
    assert_eq!(bad_id["errors"][0]["extensions"]["field"], "input.postId");

    // Only the applicant withdraws; then the seat and the membership are gone.
    let id = applied["id"].clone();
    let (stranger, _) = sign_up(&app).await;
    for (token, code) in [(&stranger, "FORBIDDEN"), (&owner, "FORBIDDEN")] {
        let body = app
            .graphql_as(Some(token), WITHDRAW, json!({ "input": { "id": id } }))
            .await;
        assert_eq!(error_code(&body), code, "{body}");
    }
    let body = app
        .graphql_as(Some(&angler), WITHDRAW, json!({ "input": { "id": id } }))
        .await;
    assert_eq!(body["data"]["deleteApplyPost"]["success"], true, "{body}");
    assert_eq!(seats(&app, &post).await, (0, 0, 1));
    // Applying again after withdrawing is a new application.
    let again = apply(&app, &angler, &post).await;
    assert!(again["errors"].is_null(), "{again}");
    assert_eq!(seats(&app, &post).await, (1, 1, 2));

    let events = seat_events(&app).await;
    assert_eq!(
        events,
        [
            "board.application.created",
            "chat.room.member_joined",
            // A withdrawal gives the seat back first, then leaves the room.
            "board.application.deleted",
            "chat.room.member_left",
            "board.application.created",
            "chat.room.member_joined"
        ]
    );
}

#[tokio::test]
async fn full_and_past_trips_refuse_applicants() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let (first, _) = sign_up(&app).await;
    let (second, _) = sign_up(&app).await;
    let post = trip(&app, &owner, 1).await;
    assert!(apply(&app, &first, &post).await["errors"].is_null());
    let full = apply(&app, &second, &post).await;
    assert_eq!(
        (error_code(&full), reason(&full)),
        ("CONFLICT", "POST_FULL")
    );

    let past = trip(&app, &owner, 3).await;
    sqlx::query("UPDATE board.posts SET meeting_at = now() - interval '1 hour' WHERE id = $1")
        .bind(past.parse::<i64>().unwrap())
        .execute(&app.pool().await)
        .await
        .unwrap();
    let late = apply(&app, &second, &past).await;
    assert_eq!(
        (error_code(&late), reason(&late)),
        ("CONFLICT", "POST_IN_THE_PAST")
    );
    assert_eq!(seats(&app, &post).await, (1, 1, 2));
    assert_eq!(seats(&app, &past).await, (0, 0, 1));
}

/// Twenty applicants at once for three seats: exactly three get one, everyone else hears the trip
/// is full, and the count, the rows and the room agree.
#[tokio::test]
async fn simultaneous_applicants_never_overfill_a_trip() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let post = trip(&app, &owner, 3).await;
    let mut applicants = Vec::new();
    for _ in 0..20 {
        applicants.push(sign_up(&app).await.0);
    }
    let bodies =
        futures::future::join_all(applicants.iter().map(|token| apply(&app, token, &post))).await;
    let applied = bodies.iter().filter(|b| b["errors"].is_null()).count();
    assert_eq!(applied, 3, "{bodies:?}");
    for body in bodies.iter().filter(|b| !b["errors"].is_null()) {
        assert_eq!(
            (error_code(body), reason(body)),
            ("CONFLICT", "POST_FULL"),
            "{body}"
        );
    }
    assert_eq!(seats(&app, &post).await, (3, 3, 4));
}

/// A fault at an Apply step leaves seats, rows, members and events as they were.
async fn apply_fails_cleanly_at(step: &str) {
    let app =
        TestApp::spawn_with_worker(|c| c.diagnostics.fault_injection = vec![step.to_owned()]).await;
    let (owner, _) = sign_up(&app).await;
    let (angler, _) = sign_up(&app).await;
    let post = trip(&app, &owner, 2).await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox.events")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    let body = apply(&app, &angler, &post).await;
    assert_eq!(error_code(&body), "CONFLICT", "{step}: {body}");
    assert_eq!(seats(&app, &post).await, (0, 0, 1), "{step}");
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox.events")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    assert_eq!(
        events_after, events_before,
        "{step}: unpublished events withdrawn"
    );
}

#[tokio::test]
async fn apply_failing_at_take_seat_changes_nothing() {
    apply_fails_cleanly_at("post.take_seat").await;
}

#[tokio::test]
async fn apply_failing_at_join_room_gives_the_seat_back() {
    apply_fails_cleanly_at("chat.join_room").await;
}

/// Applying while the owner tears the trip down: whatever the order, it ends consistent — no
/// application, member or seat outlives the post.
#[tokio::test]
async fn applying_while_the_post_is_deleted_leaves_no_orphan() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let mut applicants = Vec::new();
    for _ in 0..5 {
        applicants.push(sign_up(&app).await.0);
    }
    let post = trip(&app, &owner, 5).await;
    let delete = "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }";
    let deleting = app.graphql_as(Some(&owner), delete, json!({ "input": { "id": post } }));
    let applying = futures::future::join_all(applicants.iter().map(|t| apply(&app, t, &post)));
    let (deleted, applied) = tokio::join!(deleting, applying);
    assert_eq!(deleted["data"]["deletePost"]["success"], true, "{deleted}");
    for body in &applied {
        // Applied before the teardown hid the post, or refused after: never an internal error.
        if !body["errors"].is_null() {
            let code = error_code(body);
            assert!(code == "NOT_FOUND" || code == "CONFLICT", "{body}");
        }
    }
    let pool = app.pool().await;
    let orphans: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM board.posts), (SELECT count(*) FROM board.applications),
                (SELECT count(*) FROM chat.members)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, (0, 0, 0));
}

/// Applicants racing the owner lowering maxApply: maxApply never ends below the applicants, and
/// the count, the rows and the room agree.
#[tokio::test]
async fn lowering_max_apply_while_people_apply_stays_consistent() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let mut applicants = Vec::new();
    for _ in 0..4 {
        applicants.push(sign_up(&app).await.0);
    }
    let post = trip(&app, &owner, 4).await;
    let mut input = post_input("Smaller");
    input["id"] = json!(post);
    input["maxApply"] = json!(1);
    let update =
        "mutation($input: UpdatePostInput!) { updatePost(input: $input) { post { maxApply } } }";
    let updating = app.graphql_as(Some(&owner), update, json!({ "input": input }));
    let applying = futures::future::join_all(applicants.iter().map(|t| apply(&app, t, &post)));
    let (updated, applied) = tokio::join!(updating, applying);
    for body in applied.iter().chain([&updated]) {
        if !body["errors"].is_null() {
            let code = error_code(body);
            assert!(code == "CONFLICT" || code == "BAD_USER_INPUT", "{body}");
        }
    }
    let (count, rows, members) = seats(&app, &post).await;
    assert_eq!((i64::from(count), members), (rows, rows + 1));
    let max_apply: i32 = sqlx::query_scalar("SELECT max_apply FROM board.posts WHERE id = $1")
        .bind(post.parse::<i64>().unwrap())
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    assert!(
        count <= max_apply,
        "{count} applicants, maxApply {max_apply}"
    );
}

/// Withdrawing is forward only: a step that fails its first attempts is retried until it is done,
/// and the withdrawal ends whole — seat, row, membership and one event per change.
async fn withdraw_retries_until_done_at(step: &str) {
    let fault = format!("WithdrawWorkflow/{step}@2");
    let app = TestApp::spawn_with_worker(|c| c.diagnostics.fault_injection = vec![fault]).await;
    let (owner, _) = sign_up(&app).await;
    let (angler, _) = sign_up(&app).await;
    let post = trip(&app, &owner, 2).await;
    let applied = apply(&app, &angler, &post).await;
    let id = applied["data"]["createApplyPost"]["applyPost"]["id"].clone();
    assert!(id.is_string(), "{applied}");
    let body = app
        .graphql_as(Some(&angler), WITHDRAW, json!({ "input": { "id": id } }))
        .await;
    assert_eq!(
        body["data"]["deleteApplyPost"]["success"], true,
        "{step}: {body}"
    );
    assert_eq!(seats(&app, &post).await, (0, 0, 1), "{step}");
    let events = seat_events(&app).await;
    assert_eq!(
        events,
        [
            "board.application.created",
            "chat.room.member_joined",
            "board.application.deleted",
            "chat.room.member_left"
        ],
        "{step}: each change announced once"
    );
}

#[tokio::test]
async fn withdraw_failing_at_leave_room_is_retried_until_done() {
    withdraw_retries_until_done_at("chat.leave_room").await;
}

#[tokio::test]
async fn withdraw_failing_at_give_back_seat_is_retried_until_done() {
    withdraw_retries_until_done_at("post.give_back_seat").await;
}

/// Applicants withdrawing while the owner tears the trip down: whatever the order, every
/// withdrawal answers cleanly and nothing outlives the post.
#[tokio::test]
async fn withdrawing_while_the_post_is_deleted_leaves_no_orphan() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let post = trip(&app, &owner, 4).await;
    let mut applicants = Vec::new();
    for _ in 0..4 {
        let (token, _) = sign_up(&app).await;
        let body = apply(&app, &token, &post).await;
        let id = body["data"]["createApplyPost"]["applyPost"]["id"].clone();
        assert!(id.is_string(), "{body}");
        applicants.push((token, id));
    }
    assert_eq!(seats(&app, &post).await, (4, 4, 5));
    let delete = "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }";
    let deleting = app.graphql_as(Some(&owner), delete, json!({ "input": { "id": post } }));
    let withdrawing = futures::future::join_all(applicants.iter().map(|(token, id)| {
        app.graphql_as(Some(token), WITHDRAW, json!({ "input": { "id": id } }))
    }));
    let (deleted, withdrawn) = tokio::join!(deleting, withdrawing);
    assert_eq!(deleted["data"]["deletePost"]["success"], true, "{deleted}");
    for body in &withdrawn {
        // Withdrawn before the teardown removed the application, or told it is gone after.
        if body["errors"].is_null() {
            assert_eq!(body["data"]["deleteApplyPost"]["success"], true, "{body}");
        } else {
            assert_eq!(error_code(body), "NOT_FOUND", "{body}");
        }
    }
    let orphans: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM board.posts), (SELECT count(*) FROM board.applications),
                (SELECT count(*) FROM chat.rooms), (SELECT count(*) FROM chat.members)",
    )
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(orphans, (0, 0, 0, 0));
}

/// An Apply saga whose worker is killed after the seat is taken, inside the join step (a local
/// activity, failing and retrying on that worker), finishes once on another worker: one
/// application, one membership, one event per step.
#[tokio::test]
async fn an_apply_interrupted_by_a_worker_kill_finishes_once_on_another_worker() {
    use fishapp::worker::Queue;
    use std::time::Duration;
    let app = TestApp::spawn_with(|c| c.board.board_saga_wait_ms = 200).await;
    let setup = tokio_util::sync::CancellationToken::new();
    let setup_worker = app.start_worker(setup.clone(), &Queue::ALL);
    app.wait_for_readiness(200, Duration::from_secs(30)).await;
    let (owner, _) = sign_up(&app).await;
    let (angler, _) = sign_up(&app).await;
    let post = trip(&app, &owner, 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = "SELECT status FROM board.posts WHERE id = $1";
    while sqlx::query_scalar::<_, String>(status)
        .bind(post.parse::<i64>().unwrap())
        .fetch_optional(&app.pool().await)
        .await
        .unwrap()
        .as_deref()
        != Some("OPEN")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trip never opened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // From here on only a worker process whose join step fails its first four attempts runs.
    TestApp::stop_worker(setup, setup_worker).await;
    let mut first = common::worker_process(&app, "ApplyWorkflow/chat.join_room@4");
    let body = apply(&app, &angler, &post).await;
    assert_eq!(error_code(&body), "UNAVAILABLE", "still running: {body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seats(&app, &post).await.0 == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the seat was never taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert_eq!(
        seats(&app, &post).await,
        (1, 1, 1),
        "seat taken, not joined yet"
    );

    let second = tokio_util::sync::CancellationToken::new();
    let _second_worker = app.start_worker(second.clone(), &Queue::ALL);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while seats(&app, &post).await.2 < 2 {
        assert!(tokio::time::Instant::now() < deadline, "never joined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Asking again afterwards finds the finished application, not a second one.
    let again = apply(&app, &angler, &post).await;
    assert_eq!(
        (error_code(&again), reason(&again)),
        ("CONFLICT", "ALREADY_APPLIED")
    );
    second.cancel();
    assert_eq!(seats(&app, &post).await, (1, 1, 2));
    let events = seat_events(&app).await;
    assert_eq!(
        events,
        ["board.application.created", "chat.room.member_joined"]
    );
}

/// One applicant double-clicking: both requests join the same saga (its id is the post and the
/// user), so one seat is taken and both answers are clean.
#[tokio::test]
async fn applying_twice_at_once_takes_one_seat() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let (angler, _) = sign_up(&app).await;
    let post = trip(&app, &owner, 3).await;
    let (first, second) = tokio::join!(apply(&app, &angler, &post), apply(&app, &angler, &post));
    let mut applied = Vec::new();
    for body in [&first, &second] {
        if body["errors"].is_null() {
            applied.push(body["data"]["createApplyPost"]["applyPost"]["id"].clone());
        } else {
            assert_eq!(
                (error_code(body), reason(body)),
                ("CONFLICT", "ALREADY_APPLIED"),
                "{body}"
            );
        }
    }
    assert!(!applied.is_empty(), "{first} {second}");
    assert!(
        applied.iter().all(|id| *id == applied[0]),
        "the same application"
    );
    assert_eq!(seats(&app, &post).await, (1, 1, 2));
}
