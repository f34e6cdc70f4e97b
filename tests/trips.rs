//! A trip's life as one workflow, end to end over GraphQL against the real stack (Temporal dev
//! server, a real worker, Postgres, JetStream): the reminder, closing at the meeting time and
//! completing after it (and all three moving with the meeting), the line with promotion in
//! order and never more members than seats, the organiser's approval with its deadline and their
//! removing someone from the trip, a
//! worker killed with timers pending and a promotion under way, and the calendar link.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use chrono::{DateTime, Utc};
use common::{TestApp, error_code, post_input, sign_up};
use serde_json::{Value, json};
use std::time::Duration;

const CREATE: &str = "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id status approvalRequired } } }";
const UPDATE: &str = "mutation($input: UpdatePostInput!) { updatePost(input: $input) { post { id meetingAt maxApply } } }";
const APPLY: &str = "mutation($input: CreateApplyPostInput!) {
  createApplyPost(input: $input) { applyPost { id status waitlistPosition user { id } } }
}";
const WITHDRAW: &str = "mutation($id: ID!) { deleteApplyPost(input: { id: $id }) { success } }";

/// Fields of a trip meeting at `meeting_at` with `max_apply` seats.
fn fields(meeting_at: DateTime<Utc>, max_apply: i64) -> Value {
    let mut input = post_input("Trip");
    input["meetingAt"] = json!(meeting_at.to_rfc3339());
    input["maxApply"] = json!(max_apply);
    input
}

/// An OPEN trip of `token`'s; its id.
async fn trip(app: &TestApp, token: &str, input: Value) -> String {
    let body = app
        .graphql_as(Some(token), CREATE, json!({ "input": input }))
        .await;
    let post = &body["data"]["createPost"]["post"];
    assert_eq!(post["status"], "OPEN", "{body}");
    post["id"].as_str().unwrap().to_owned()
}

async fn update(app: &TestApp, token: &str, post: &str, input: Value) -> Value {
    let mut input = input;
    input["id"] = json!(post);
    let body = app
        .graphql_as(Some(token), UPDATE, json!({ "input": input }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body
}

async fn apply(app: &TestApp, token: &str, post: &str, waitlist: bool) -> Value {
    app.graphql_as(
        Some(token),
        APPLY,
        json!({ "input": { "postId": post, "waitlist": waitlist } }),
    )
    .await
}

/// The application `apply` made.
fn applied(body: &Value) -> &Value {
    let application = &body["data"]["createApplyPost"]["applyPost"];
    assert!(application.is_object(), "{body}");
    application
}

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason in {body}"))
}

fn id(post: &str) -> i64 {
    post.parse().unwrap()
}

/// Room members of a trip, in the order they joined.
async fn members(app: &TestApp, post: &str) -> Vec<String> {
    sqlx::query_scalar::<_, i64>(
        "SELECT m.user_id FROM chat.members m JOIN chat.rooms r ON r.id = m.room_id
          WHERE r.post_id = $1 ORDER BY m.id",
    )
    .bind(id(post))
    .fetch_all(&app.pool().await)
    .await
    .unwrap()
    .into_iter()
    .map(|u| u.to_string())
    .collect()
}

/// Seats as they must always agree: (applyCount, seated applications, room members besides the
/// organiser, maxApply).
async fn seats(app: &TestApp, post: &str) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT p.apply_count::bigint,
                (SELECT count(*) FROM board.applications a
                  WHERE a.post_id = p.id AND a.status = 'APPLIED'),
                (SELECT count(*) - 1 FROM chat.members m JOIN chat.rooms r ON r.id = m.room_id
                  WHERE r.post_id = p.id),
                p.max_apply::bigint
           FROM board.posts p WHERE p.id = $1",
    )
    .bind(id(post))
    .fetch_one(&app.pool().await)
    .await
    .unwrap()
}

/// Panics unless the seats agree and the room never has more members than the trip has seats.
/// `leaving` is how many withdrawals may be under way: a withdrawal gives its seat back before it
/// leaves the room (so that an Apply still joining can never leave a member without a seat), so
/// for a moment a member may still be in the room whose seat is free — and that seat is given to
/// no one until they have left.
async fn assert_seats_hold(app: &TestApp, post: &str, when: &str, leaving: i64) -> i64 {
    let (count, seated, joined, max) = seats(app, post).await;
    assert!(
        count <= max && seated == count && joined <= count + leaving && joined <= max,
        "{when}: applyCount {count}, seated {seated}, members {joined}, maxApply {max}"
    );
    count
}

/// Waits until `user` is a member of `post`'s room; panics with `what` after `within`.
async fn until_member(app: &TestApp, post: &str, user: &str, within: Duration, what: &str) {
    eventually(within, what, || async move {
        members(app, post).await.iter().any(|m| m == user)
    })
    .await;
}

/// Panics unless every event the test's flows wrote reached JetStream once, each aggregate's
/// events in the order they were written (the relay's guarantee: transactions of different
/// aggregates — a saga's step and the notifier's record, say — may commit out of id order), and
/// returns their types in the outbox's order.
async fn every_event_published(app: &TestApp) -> Vec<String> {
    common::wait_until_drained(app, Duration::from_secs(30)).await;
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT id, event_type, aggregate_type, aggregate_id FROM outbox.events ORDER BY id",
    )
    .fetch_all(&app.pool().await)
    .await
    .unwrap();
    let published = common::published(app).await;
    let mut once: Vec<i64> = published.iter().map(|p| p.row()).collect();
    once.sort_unstable();
    assert_eq!(
        once,
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "each event once"
    );
    let by_id: std::collections::HashMap<i64, &(i64, String, String, String)> =
        rows.iter().map(|r| (r.0, r)).collect();
    let mut last: std::collections::HashMap<(&str, &str), i64> = std::collections::HashMap::new();
    for message in &published {
        let (id, kind, aggregate, aggregate_id) = by_id[&message.row()];
        assert_eq!(&message.envelope.event_type, kind);
        let before = last.insert((aggregate, aggregate_id), *id);
        assert!(
            before.is_none_or(|b| b < *id),
            "{aggregate} {aggregate_id}: event {id} published after {before:?}"
        );
    }
    rows.into_iter().map(|r| r.1).collect()
}

/// Polls `check` every 50 ms until it is true; panics with `what` after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (event type, payload, when it was written) of a post's trip events (reminder, close,
/// completion), oldest first.
async fn trip_events(app: &TestApp, post: &str) -> Vec<(String, Value, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT event_type, payload::jsonb, created_at FROM outbox.events
          WHERE aggregate_type = 'post' AND aggregate_id = $1
            AND event_type IN ('board.post.reminder_due', 'board.post.closed',
                               'board.post.completed')
          ORDER BY id",
    )
    .bind(post)
    .fetch_all(&app.pool().await)
    .await
    .unwrap()
}

async fn post_status(app: &TestApp, post: &str) -> String {
    sqlx::query_scalar("SELECT status FROM board.posts WHERE id = $1")
        .bind(id(post))
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

async fn application_exists(app: &TestApp, application: i64) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM board.applications WHERE id = $1")
        .bind(application)
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
        == 1
}

/// User ids of the applications promoted on a trip, in the order they were.
async fn promoted(app: &TestApp, post: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT payload::jsonb->>'userId' FROM outbox.events
          WHERE event_type = 'board.application.promoted'
            AND (payload::jsonb->>'postId')::bigint = $1
          ORDER BY id",
    )
    .bind(id(post))
    .fetch_all(&app.pool().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_trip_reminds_closes_and_completes_on_time_and_moves_with_its_meeting() {
    let app = TestApp::spawn_with_worker(|c| {
        c.trip.trip_reminder_before_secs = Some(4);
        c.trip.trip_completed_after_secs = 3;
    })
    .await;
    app.start_relay().await;
    let (owner, owner_id) = sign_up(&app).await;
    let (angler, angler_id) = sign_up(&app).await;
    // The old moments are far enough ahead that none is due before the move lands, on a busy
    // machine too: the old reminder 16 s from now.
    let first = Utc::now() + chrono::Duration::seconds(20);
    let post = trip(&app, &owner, fields(first, 3)).await;
    assert!(apply(&app, &angler, &post, false).await["errors"].is_null());
    // Moved later before anything was due: the reminder, the closing and the completion move.
    let meeting = Utc::now() + chrono::Duration::seconds(28);
    update(&app, &owner, &post, fields(meeting, 3)).await;

    // The reminder reaches the stream before the meeting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let published = common::published(&app).await;
        if published
            .iter()
            .any(|p| p.envelope.event_type == "board.post.reminder_due")
        {
            let seen = Utc::now();
            assert!(
                seen < meeting,
                "published by {seen}, after the meeting at {meeting}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reminder was published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(Duration::from_secs(40), "never completed", || async {
        post_status(&app, &post).await == "COMPLETED"
    })
    .await;

    let events = trip_events(&app, &post).await;
    let kinds: Vec<&str> = events.iter().map(|(kind, ..)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "board.post.reminder_due",
            "board.post.closed",
            "board.post.completed"
        ],
        "each moment once, in order"
    );
    let at = |i: usize| events[i].2;
    let seconds = chrono::Duration::seconds;
    let millis = chrono::Duration::milliseconds;
    // Each moment at its time for the new meeting (the reminder 4 s before it; the old ones
    // would have been 8 s earlier), closing within a second of the meeting.
    assert!(
        at(0) >= meeting - seconds(4) - millis(200) && at(0) < meeting,
        "reminded at {}, meeting at {meeting}",
        at(0)
    );
    assert!(
        at(1) >= meeting - millis(200) && at(1) <= meeting + seconds(1),
        "closed at {}, meeting at {meeting}: not within a second",
        at(1)
    );
    assert!(
        at(2) >= meeting + seconds(3) - millis(200) && at(2) <= meeting + seconds(5),
        "completed at {}, meeting at {meeting}",
        at(2)
    );
    for (kind, payload, _) in [&events[0], &events[2]] {
        assert_eq!(
            payload["memberIds"],
            json!([
                owner_id.parse::<i64>().unwrap(),
                angler_id.parse::<i64>().unwrap()
            ]),
            "{kind}: the organiser and the applicant"
        );
    }
    let shown = app
        .graphql(&format!("{{ post(id: {post}) {{ status }} }}"))
        .await;
    assert_eq!(shown["data"]["post"]["status"], "COMPLETED", "{shown}");
    let kinds = every_event_published(&app).await;
    assert!(
        kinds.iter().any(|k| k == "board.post.completed"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn the_line_moves_up_in_order_when_seats_free() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    app.start_relay().await;
    let (owner, _) = sign_up(&app).await;
    let meeting = Utc::now() + chrono::Duration::days(3);
    let post = trip(&app, &owner, fields(meeting, 2)).await;
    let mut seated = Vec::new();
    for _ in 0..2 {
        let (token, user) = sign_up(&app).await;
        let body = apply(&app, &token, &post, false).await;
        assert_eq!(applied(&body)["status"], "APPLIED");
        seated.push((token, user, applied(&body)["id"].clone()));
    }
    // The original front end's behaviour is unchanged: a full trip refuses.
    let (stranger, _) = sign_up(&app).await;
    let full = apply(&app, &stranger, &post, false).await;
    assert_eq!(
        (error_code(&full), reason(&full)),
        ("CONFLICT", "POST_FULL")
    );
    let mut line = Vec::new();
    for position in 1..=3 {
        let (token, user) = sign_up(&app).await;
        let body = apply(&app, &token, &post, true).await;
        let application = applied(&body);
        assert_eq!(application["status"], "WAITLISTED", "{body}");
        assert_eq!(application["waitlistPosition"], position, "{body}");
        line.push((token, user));
    }
    let again = apply(&app, &line[0].0, &post, true).await;
    assert_eq!(reason(&again), "ALREADY_APPLIED");

    // The line: the organiser and those in it see it; anyone else gets null.
    let query =
        format!("{{ post(id: {post}) {{ waitlist {{ user {{ id }} waitlistPosition }} }} }}");
    let users = |body: &Value| -> Vec<String> {
        body["data"]["post"]["waitlist"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|a| a["user"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected: Vec<String> = line.iter().map(|(_, u)| u.clone()).collect();
    let by_owner = app.graphql_as(Some(&owner), &query, json!({})).await;
    assert_eq!(users(&by_owner), expected);
    let by_queued = app.graphql_as(Some(&line[2].0), &query, json!({})).await;
    assert_eq!(users(&by_queued), expected);
    let by_stranger = app.graphql_as(Some(&stranger), &query, json!({})).await;
    assert!(
        by_stranger["data"]["post"]["waitlist"].is_null(),
        "{by_stranger}"
    );
    let by_nobody = app.graphql(&query).await;
    assert!(
        by_nobody["data"]["post"]["waitlist"].is_null(),
        "{by_nobody}"
    );

    // A seat frees: the first in line is a member of the room within 2 s.
    let (token, _, application) = &seated[0];
    let body = app
        .graphql_as(Some(token), WITHDRAW, json!({ "id": application }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let first = line[0].1.clone();
    until_member(
        &app,
        &post,
        &first,
        Duration::from_secs(2),
        "the first in line did not move up within 2 s",
    )
    .await;
    assert_seats_hold(&app, &post, "after the withdrawal", 0).await;

    // Two more seats: the next two, in their order.
    let mut input = fields(meeting, 4);
    input["clientMutationId"] = json!("more-seats");
    update(&app, &owner, &post, input).await;
    let rest: Vec<String> = line[1..].iter().map(|(_, u)| u.clone()).collect();
    eventually(
        Duration::from_secs(2),
        "the rest of the line did not move up within 2 s",
        || {
            let (app, post, rest) = (&app, &post, &rest);
            async move {
                let now = members(app, post).await;
                rest.iter().all(|u| now.contains(u))
            }
        },
    )
    .await;
    assert_eq!(
        promoted(&app, &post).await,
        expected,
        "first come, first served"
    );
    assert_eq!(
        assert_seats_hold(&app, &post, "after raising maxApply", 0).await,
        4
    );
    let mine = app
        .graphql_as(
            Some(&line[2].0),
            "{ currentUser { applyPosts { status waitlistPosition post { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["data"]["currentUser"]["applyPosts"],
        json!([{ "status": "APPLIED", "waitlistPosition": null, "post": { "id": post } }]),
        "{mine}"
    );
    let kinds = every_event_published(&app).await;
    let count = |kind: &str| kinds.iter().filter(|k| k.as_str() == kind).count();
    assert_eq!(
        (
            count("board.application.waitlisted"),
            count("board.application.promoted")
        ),
        (3, 3),
        "{kinds:?}"
    );
}

const REMOVE: &str = "mutation($id: ID!) { removeApplyPost(input: { id: $id }) { success } }";

#[tokio::test]
async fn the_organiser_removes_someone_who_then_may_not_apply_again() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, owner_id) = sign_up(&app).await;
    let post = trip(
        &app,
        &owner,
        fields(Utc::now() + chrono::Duration::days(3), 1),
    )
    .await;
    let (member, member_id) = sign_up(&app).await;
    let seat = applied(&apply(&app, &member, &post, false).await)["id"].clone();
    let (first, first_id) = sign_up(&app).await;
    applied(&apply(&app, &first, &post, true).await);
    let (second, second_id) = sign_up(&app).await;
    let queued = applied(&apply(&app, &second, &post, true).await)["id"].clone();
    // Each sees their own application on the trip; the organiser and a stranger have none.
    let mine = |token: Option<&str>| {
        let (app, token, post) = (&app, token.map(str::to_owned), post.clone());
        async move {
            let body = app
                .graphql_as(
                    token.as_deref(),
                    "query($id: ID!) { post(id: $id) { viewerApplication { id status waitlistPosition } } }",
                    json!({ "id": post }),
                )
                .await;
            body["data"]["post"]["viewerApplication"].clone()
        }
    };
    assert_eq!(
        mine(Some(&member)).await,
        json!({ "id": seat, "status": "APPLIED", "waitlistPosition": null })
    );
    assert_eq!(
        mine(Some(&second)).await,
        json!({ "id": queued, "status": "WAITLISTED", "waitlistPosition": 2 })
    );
    for nobody in [Some(owner.as_str()), None] {
        assert_eq!(mine(nobody).await, Value::Null);
    }
    let remove = |token: Option<&str>, application: &Value| {
        let (app, token, application) = (&app, token.map(str::to_owned), application.clone());
        async move {
            app.graphql_as(token.as_deref(), REMOVE, json!({ "id": application }))
                .await
        }
    };

    // Nobody but the organiser: not the member themself, not a stranger, not anonymously; a
    // bad id names its field. Nothing changes.
    let (stranger, _) = sign_up(&app).await;
    for token in [&member, &stranger] {
        let body = remove(Some(token), &seat).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }
    let anonymous = remove(None, &seat).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    let bad = remove(Some(&owner), &json!("not-an-id")).await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "input.id", "{bad}");
    assert_eq!(
        members(&app, &post).await,
        [owner_id.clone(), member_id.clone()]
    );

    // The member goes: their seat to the first in line, who joins the room.
    let body = remove(Some(&owner), &seat).await;
    assert_eq!(body["data"]["removeApplyPost"]["success"], true, "{body}");
    until_member(
        &app,
        &post,
        &first_id,
        Duration::from_secs(2),
        "the first in line did not move up within 2 s of the removal",
    )
    .await;
    assert_eq!(members(&app, &post).await, [owner_id.clone(), first_id]);
    assert_seats_hold(&app, &post, "after the removal", 0).await;
    // One in line goes as well.
    let body = remove(Some(&owner), &queued).await;
    assert_eq!(body["data"]["removeApplyPost"]["success"], true, "{body}");
    assert!(!application_exists(&app, queued.as_str().unwrap().parse().unwrap()).await);
    assert_eq!(mine(Some(&member)).await, Value::Null, "removed: none");
    // Gone is gone: the same application again is NOT_FOUND.
    let again = remove(Some(&owner), &seat).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");

    // Neither may apply again, in any way; anyone else still may (in line).
    for (token, waitlist) in [(&member, false), (&member, true), (&second, true)] {
        let body = apply(&app, token, &post, waitlist).await;
        assert_eq!(
            (error_code(&body), reason(&body)),
            ("FORBIDDEN", "REMOVED_FROM_TRIP"),
            "{body}"
        );
    }
    assert_eq!(
        applied(&apply(&app, &stranger, &post, true).await)["status"],
        "WAITLISTED"
    );
    // The seat step itself refuses too (an application that passed the check up front while
    // the removal committed).
    let seat = fishapp_store::board::take_seat(
        &app.pool().await,
        id(&post),
        member_id.parse().unwrap(),
        fishapp_store::board::SeatWay::Apply { waitlist: true },
    )
    .await
    .unwrap();
    assert_eq!(
        seat,
        fishapp_store::board::Seat::Refused(fishapp_domain::board::ApplyRefusal::Removed)
    );

    // The organiser sees whom they removed, newest first; nobody else does.
    let removals = "query($id: ID!) { post(id: $id) { removals { user { id } removedAt } } }";
    let seen = |token: Option<&str>| {
        let (app, token, post) = (&app, token.map(str::to_owned), post.clone());
        async move {
            let body = app
                .graphql_as(token.as_deref(), removals, json!({ "id": post }))
                .await;
            body["data"]["post"]["removals"].clone()
        }
    };
    let listed = seen(Some(&owner)).await;
    let users: Vec<&str> = listed
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|r| r["user"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(users, [second_id.as_str(), member_id.as_str()], "{listed}");
    for nobody in [Some(member.as_str()), Some(stranger.as_str()), None] {
        assert_eq!(seen(nobody).await, Value::Null);
    }
    // Lifting a removal: the organiser's alone; then the member may apply again (in line: the
    // seat went to the first in line), and it is gone from the list.
    let lift = "mutation($input: LiftRemovalInput!) { liftRemoval(input: $input) { success } }";
    let lifting = json!({ "input": { "postId": post, "userId": member_id } });
    let theirs = app.graphql_as(Some(&stranger), lift, lifting.clone()).await;
    assert_eq!(error_code(&theirs), "FORBIDDEN", "{theirs}");
    let lifted = app.graphql_as(Some(&owner), lift, lifting.clone()).await;
    assert_eq!(lifted["data"]["liftRemoval"]["success"], true, "{lifted}");
    let again = app.graphql_as(Some(&owner), lift, lifting).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");
    assert_eq!(
        applied(&apply(&app, &member, &post, true).await)["status"],
        "WAITLISTED"
    );
    assert_eq!(seen(Some(&owner)).await.as_array().map(Vec::len), Some(1));

    // Each removal is announced as one, and the removed are told who did it; the organiser
    // hears of no withdrawal.
    let kinds = every_event_published(&app).await;
    let count = |kind: &str| kinds.iter().filter(|k| k.as_str() == kind).count();
    assert_eq!(
        (
            count("board.application.removed"),
            count("board.application.deleted")
        ),
        (2, 0),
        "{kinds:?}"
    );
    let told = "{ notifications(first: 10) { nodes { kind postId actor { id } } } }";
    for token in [&member, &second] {
        eventually(
            Duration::from_secs(10),
            "the removed were not told",
            || async {
                let body = app.graphql_as(Some(token), told, json!({})).await;
                body["data"]["notifications"]["nodes"]
                    == json!([{ "kind": "REMOVED", "postId": post, "actor": { "id": owner_id } }])
            },
        )
        .await;
    }
    let organiser = app.graphql_as(Some(&owner), told, json!({})).await;
    let organiser_kinds: Vec<&str> = organiser["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(!organiser_kinds.contains(&"WITHDREW"), "{organiser}");

    // Once the trip is not OPEN any more, nobody is removed from it.
    let seated: i64 = sqlx::query_scalar(
        "SELECT id FROM board.applications WHERE post_id = $1 AND status = 'APPLIED'",
    )
    .bind(id(&post))
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    sqlx::query("UPDATE board.posts SET status = 'CLOSED' WHERE id = $1")
        .bind(id(&post))
        .execute(&app.pool().await)
        .await
        .unwrap();
    let closed = remove(Some(&owner), &json!(seated.to_string())).await;
    assert_eq!(
        (error_code(&closed), reason(&closed)),
        ("CONFLICT", "POST_NOT_OPEN"),
        "{closed}"
    );
    assert!(application_exists(&app, seated).await);
}

#[tokio::test]
async fn a_rush_on_the_line_and_withdrawals_at_once_never_seat_more_than_there_are_seats() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let post = trip(
        &app,
        &owner,
        fields(Utc::now() + chrono::Duration::days(3), 5),
    )
    .await;
    let mut seated = Vec::new();
    for _ in 0..5 {
        let (token, _) = sign_up(&app).await;
        let body = apply(&app, &token, &post, false).await;
        seated.push((token, applied(&body)["id"].clone()));
    }
    let mut rush = Vec::new();
    for _ in 0..50 {
        rush.push(sign_up(&app).await);
    }
    // Checked every 20 ms while things happen: `leaving` withdrawals may be under way.
    let watch = |when: &'static str, leaving: i64| {
        let (app, post) = (&app, &post);
        async move {
            for _ in 0..150 {
                assert_seats_hold(app, post, when, leaving).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let (joins, ()) = tokio::join!(
        futures::future::join_all(
            rush.iter()
                .map(|(token, _)| apply(&app, token, &post, true)),
        ),
        watch("while 50 joined the line", 0)
    );
    let mut line = Vec::new();
    for (body, (token, user)) in joins.iter().zip(&rush) {
        let application = applied(body);
        assert_eq!(application["status"], "WAITLISTED", "{body}");
        line.push((
            application["id"].as_str().unwrap().parse::<i64>().unwrap(),
            user.clone(),
            token.clone(),
            application["id"].clone(),
        ));
    }
    assert_eq!(
        assert_seats_hold(&app, &post, "after 50 joined the line", 0).await,
        5
    );

    // Five seats given back and five of the line leaving, all at once.
    line.sort_by_key(|(application, ..)| *application);
    let leaving: Vec<_> = line[1..=9].iter().step_by(2).cloned().collect();
    let withdrawals = seated
        .iter()
        .map(|(token, application)| (token.clone(), application.clone()))
        .chain(
            leaving
                .iter()
                .map(|(_, _, token, application)| (token.clone(), application.clone())),
        )
        .collect::<Vec<_>>();
    assert_eq!(withdrawals.len(), 10);
    let withdrawing = futures::future::join_all(withdrawals.iter().map(|(token, application)| {
        app.graphql_as(Some(token), WITHDRAW, json!({ "id": application }))
    }));
    let (results, ()) = tokio::join!(withdrawing, watch("while the seats turned over", 5));
    for body in &results {
        assert!(body["errors"].is_null(), "{body}");
    }
    // The five who move up are the first five still in line, in order.
    let staying: Vec<String> = line
        .iter()
        .filter(|(_, user, ..)| !leaving.iter().any(|(_, left, ..)| left == user))
        .map(|(_, user, ..)| user.clone())
        .collect();
    let expected: Vec<String> = staying[..5].to_vec();
    eventually(
        Duration::from_secs(20),
        "the seats were not refilled",
        || {
            let (app, post) = (&app, &post);
            async move { promoted(app, post).await.len() >= 5 && seats(app, post).await.2 == 5 }
        },
    )
    .await;
    assert_eq!(promoted(&app, &post).await, expected, "in the line's order");
    assert_eq!(
        assert_seats_hold(&app, &post, "after the turnover", 0).await,
        5
    );
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM board.applications WHERE post_id = $1 AND status = 'WAITLISTED'",
    )
    .bind(id(&post))
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(waiting, 50 - 5 - 5);
}

#[tokio::test]
async fn the_organiser_accepts_declines_and_unanswered_requests_expire() {
    // Requests expire 25 s before a meeting 40 s ahead: about 15 s from now.
    let app = TestApp::spawn_with_worker(|c| c.trip.trip_requests_expire_before_secs = 25).await;
    app.start_relay().await;
    let (owner, _) = sign_up(&app).await;
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(sign_up(&app).await);
    }
    let meeting = Utc::now() + chrono::Duration::seconds(40);
    let mut input = fields(meeting, 3);
    input["approvalRequired"] = json!(true);
    let post = trip(&app, &owner, input.clone()).await;
    let mut requests = Vec::new();
    for (token, _) in &users[..3] {
        let body = apply(&app, token, &post, false).await;
        assert_eq!(applied(&body)["status"], "PENDING_APPROVAL", "{body}");
        requests.push(applied(&body)["id"].clone());
    }
    assert_eq!(
        members(&app, &post).await.len(),
        1,
        "a request holds no seat"
    );
    let listed = app
        .graphql_as(
            Some(&owner),
            &format!("{{ post(id: {post}) {{ approvalRequired applyRequests {{ id }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(listed["data"]["post"]["approvalRequired"], true);
    assert_eq!(
        listed["data"]["post"]["applyRequests"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{listed}"
    );
    let theirs = app
        .graphql_as(
            Some(&users[0].0),
            &format!("{{ post(id: {post}) {{ applyRequests {{ id }} }} }}"),
            json!({}),
        )
        .await;
    assert!(
        theirs["data"]["post"]["applyRequests"].is_null(),
        "{theirs}"
    );

    const ACCEPT: &str =
        "mutation($id: ID!) { acceptApplyPost(input: { id: $id }) { applyPost { status } } }";
    const DECLINE: &str = "mutation($id: ID!) { declineApplyPost(input: { id: $id }) { success } }";
    // The owner alone decides.
    for (token, _) in &users {
        let body = app
            .graphql_as(Some(token), ACCEPT, json!({ "id": requests[0] }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
        let body = app
            .graphql_as(Some(token), DECLINE, json!({ "id": requests[1] }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }
    let accepted = app
        .graphql_as(Some(&owner), ACCEPT, json!({ "id": requests[0] }))
        .await;
    assert_eq!(
        accepted["data"]["acceptApplyPost"]["applyPost"]["status"], "APPLIED",
        "{accepted}"
    );
    assert!(members(&app, &post).await.contains(&users[0].1));
    let declined = app
        .graphql_as(Some(&owner), DECLINE, json!({ "id": requests[1] }))
        .await;
    assert_eq!(
        declined["data"]["declineApplyPost"]["success"], true,
        "{declined}"
    );
    assert!(!members(&app, &post).await.contains(&users[1].1));
    let twice = app
        .graphql_as(Some(&owner), DECLINE, json!({ "id": requests[1] }))
        .await;
    assert_eq!(
        error_code(&twice),
        "NOT_FOUND",
        "a declined request is gone: {twice}"
    );

    // The third is never answered: it expires at the deadline, not before.
    let deadline = meeting - chrono::Duration::seconds(25);
    let request: i64 = requests[2].as_str().unwrap().parse().unwrap();
    assert!(application_exists(&app, request).await, "expired early");
    eventually(
        Duration::from_secs(30),
        "the request never expired",
        || async { !application_exists(&app, request).await },
    )
    .await;
    let expired_at: DateTime<Utc> = sqlx::query_scalar(
        "SELECT created_at FROM outbox.events WHERE event_type = 'board.application.expired'",
    )
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert!(
        expired_at >= deadline - chrono::Duration::milliseconds(200)
            && expired_at <= deadline + chrono::Duration::seconds(2),
        "expired at {expired_at}, the deadline was {deadline}"
    );
    assert_eq!(
        members(&app, &post).await.len(),
        2,
        "the owner and the accepted one"
    );
    let kinds = every_event_published(&app).await;
    let count = |kind: &str| kinds.iter().filter(|k| k.as_str() == kind).count();
    assert_eq!(
        (
            count("board.application.requested"),
            count("board.application.accepted"),
            count("board.application.declined"),
            count("board.application.expired")
        ),
        (3, 1, 1, 1),
        "{kinds:?}"
    );

    // Past the deadline a new request would never be answered: it is refused. A meeting moved
    // later has a deadline of its own, and requests are taken again until then.
    let late = apply(&app, &users[3].0, &post, false).await;
    assert_eq!(
        (error_code(&late), reason(&late)),
        ("CONFLICT", "REQUESTS_CLOSED"),
        "{late}"
    );
    input["meetingAt"] = json!((meeting + chrono::Duration::days(2)).to_rfc3339());
    update(&app, &owner, &post, input).await;
    let body = apply(&app, &users[3].0, &post, false).await;
    assert_eq!(applied(&body)["status"], "PENDING_APPROVAL", "{body}");
}

/// The trip workflow's moments before the meeting are for one meeting time: an update that moved
/// the meeting reaches the database before its signal reaches the workflow, and a timer for the
/// old time that fires in between must neither remind nor expire requests (the workflow re-arms
/// both for the new time when the signal arrives). The activities' store steps, called as a
/// timer in that window would.
#[tokio::test]
async fn a_moment_for_a_meeting_time_the_trip_no_longer_has_does_nothing() {
    use fishapp_store::board::{expire_requests, remind};
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let (asking, _) = sign_up(&app).await;
    let (late, _) = sign_up(&app).await;
    let mut input = fields(Utc::now() + chrono::Duration::days(3), 2);
    input["approvalRequired"] = json!(true);
    let post = trip(&app, &owner, input).await;
    let request = applied(&apply(&app, &asking, &post, false).await)["id"].clone();
    let request: i64 = request.as_str().unwrap().parse().unwrap();
    let pool = app.pool().await;
    let meeting: DateTime<Utc> =
        sqlx::query_scalar("SELECT meeting_at FROM board.posts WHERE id = $1")
            .bind(id(&post))
            .fetch_one(&pool)
            .await
            .unwrap();
    let before = Some(meeting - chrono::Duration::hours(1));

    assert!(!remind(&pool, id(&post), before).await.unwrap());
    assert_eq!(expire_requests(&pool, id(&post), before).await.unwrap(), 0);
    assert!(
        application_exists(&app, request).await,
        "expired for a stale time"
    );
    let body = apply(&app, &late, &post, false).await;
    assert_eq!(applied(&body)["status"], "PENDING_APPROVAL", "{body}");

    // For the trip's own meeting time both happen.
    assert!(remind(&pool, id(&post), Some(meeting)).await.unwrap());
    assert_eq!(
        expire_requests(&pool, id(&post), Some(meeting))
            .await
            .unwrap(),
        2
    );
    assert!(!application_exists(&app, request).await);
    let (third, _) = sign_up(&app).await;
    let refused = apply(&app, &third, &post, false).await;
    assert_eq!(
        (error_code(&refused), reason(&refused)),
        ("CONFLICT", "REQUESTS_CLOSED"),
        "{refused}"
    );
}

/// A worker killed (SIGKILL) while a trip's timers are pending and a promotion is inside its
/// join step: on a new worker every timer fires once and the promotion completes once.
#[tokio::test]
async fn timers_and_a_promotion_survive_a_killed_worker_and_happen_once() {
    use fishapp::worker::Queue;
    let app = TestApp::spawn_with(|c| {
        c.trip.trip_reminder_before_secs = Some(20);
        c.trip.trip_completed_after_secs = 2;
        c.board.board_saga_wait_ms = 30_000;
    })
    .await;
    let setup = tokio_util::sync::CancellationToken::new();
    let setup_worker = app.start_worker(setup.clone(), &Queue::ALL);
    app.wait_for_readiness(200, Duration::from_secs(30)).await;
    let (owner, _) = sign_up(&app).await;
    let (seated, _) = sign_up(&app).await;
    let (waiting, waiting_id) = sign_up(&app).await;
    // The reminder is due 30 s from now: well after the kill.
    let meeting = Utc::now() + chrono::Duration::seconds(50);
    let post = trip(&app, &owner, fields(meeting, 1)).await;
    let seat = apply(&app, &seated, &post, false).await;
    let seat = applied(&seat)["id"].clone();
    assert_eq!(
        applied(&apply(&app, &waiting, &post, true).await)["status"],
        "WAITLISTED"
    );
    // From here on only a worker process whose join step fails its first four attempts runs.
    TestApp::stop_worker(setup, setup_worker).await;
    let mut first = common::worker_process(&app, "ApplyWorkflow/chat.join_room@4");
    let body = app
        .graphql_as(Some(&seated), WITHDRAW, json!({ "id": seat }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    // The promotion has taken the seat and is retrying its join when the worker dies.
    eventually(
        Duration::from_secs(30),
        "the promotion never took the seat",
        || {
            let (app, post) = (&app, &post);
            async move { !promoted(app, post).await.is_empty() }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert!(
        !members(&app, &post).await.contains(&waiting_id),
        "killed before the join"
    );
    assert!(
        trip_events(&app, &post).await.is_empty(),
        "the timers were still pending"
    );

    let second = tokio_util::sync::CancellationToken::new();
    let _second_worker = app.start_worker(second.clone(), &Queue::ALL);
    until_member(
        &app,
        &post,
        &waiting_id,
        Duration::from_secs(60),
        "the promotion never finished",
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "the trip never completed",
        || async { post_status(&app, &post).await == "COMPLETED" },
    )
    .await;
    // A moment for any second firing to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.cancel();
    let kinds: Vec<String> = trip_events(&app, &post)
        .await
        .into_iter()
        .map(|(kind, ..)| kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "board.post.reminder_due",
            "board.post.closed",
            "board.post.completed"
        ]
    );
    assert_eq!(
        promoted(&app, &post).await,
        std::slice::from_ref(&waiting_id)
    );
    let joined: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox.events WHERE event_type = 'chat.room.member_joined'
           AND (payload::jsonb->>'userId') = $1",
    )
    .bind(&waiting_id)
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(joined, 1, "joined once");
    assert_eq!(
        assert_seats_hold(&app, &post, "after the restart", 0).await,
        1
    );
}

#[tokio::test]
async fn members_get_a_calendar_link_that_works_while_they_are_members() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (owner, _) = sign_up(&app).await;
    let (angler, _) = sign_up(&app).await;
    let (stranger, _) = sign_up(&app).await;
    let meeting = Utc::now() + chrono::Duration::days(3);
    let post = trip(&app, &owner, fields(meeting, 3)).await;
    let application = applied(&apply(&app, &angler, &post, false).await)["id"].clone();
    let query = format!("{{ post(id: {post}) {{ calendarUrl }} }}");
    let link = |body: &Value| {
        body["data"]["post"]["calendarUrl"]
            .as_str()
            .map(str::to_owned)
    };
    let owners = link(&app.graphql_as(Some(&owner), &query, json!({})).await).unwrap();
    let anglers = link(&app.graphql_as(Some(&angler), &query, json!({})).await).unwrap();
    assert_eq!(
        link(&app.graphql_as(Some(&stranger), &query, json!({})).await),
        None
    );
    assert_eq!(link(&app.graphql(&query).await), None);

    // The link is the API's public address; here the test's own port serves it.
    let local = |url: &str| {
        let path = &url[url.find("/trips/").unwrap()..];
        app.url(path)
    };
    let fetch = |url: String| async move {
        let response = reqwest::get(url).await.unwrap();
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, kind, response.text().await.unwrap())
    };
    for url in [&owners, &anglers] {
        let (status, kind, body) = fetch(local(url)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(kind.as_deref(), Some("text/calendar; charset=utf-8"));
        let unfolded = body.replace("\r\n ", "");
        assert!(unfolded.contains("BEGIN:VEVENT"), "{body}");
        assert!(
            unfolded.contains(&format!("DTSTART:{}", meeting.format("%Y%m%dT%H%M%SZ"))),
            "{body}"
        );
        assert!(unfolded.contains(&format!("UID:trip-{post}@")), "{body}");
        assert!(unfolded.contains("SUMMARY:Trip"), "{body}");
    }
    // Another trip's number, a forged token, no token: nothing.
    let other = local(&anglers).replacen(
        &format!("/trips/{post}.ics"),
        &format!("/trips/{}.ics", id(&post) + 1),
        1,
    );
    assert_eq!(fetch(other).await.0, 404);
    let forged = format!("{}x", local(&anglers));
    assert_eq!(fetch(forged).await.0, 401);
    assert_eq!(fetch(app.url(&format!("/trips/{post}.ics"))).await.0, 401);
    // Not a trip's number, and a token far over any real one's size: refused before any work.
    let token_of = |url: &str| url[url.find("token=").unwrap() + 6..].to_owned();
    let anglers_token = token_of(&anglers);
    assert_eq!(
        fetch(app.url(&format!("/trips/abc.ics?token={anglers_token}")))
            .await
            .0,
        404
    );
    let huge = "x".repeat(5_000);
    assert_eq!(
        fetch(app.url(&format!("/trips/{post}.ics?token={huge}")))
            .await
            .0,
        401
    );
    // A member who withdrew gets nothing more from the old link.
    let body = app
        .graphql_as(Some(&angler), WITHDRAW, json!({ "id": application }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(fetch(local(&anglers)).await.0, 404);
    assert_eq!(fetch(local(&owners)).await.0, 200);
}

/// Records the trip's histories for tests/histories.rs (run by `scripts/record-histories`):
/// CreatePost starting the trip, an Apply that joined the line, UpdatePost and Withdraw telling the
/// trip, the promotion's Apply, an accepted request's Apply, and two trips' whole lives — one
/// reminded, re-armed by a new meeting time, promoting, closing and completing; one whose
/// unanswered request expired before it was deleted.
#[tokio::test]
#[ignore = "records histories; run by scripts/record-histories"]
async fn record_trip_histories() {
    let app = TestApp::spawn_with_worker(|c| {
        c.trip.trip_reminder_before_secs = Some(4);
        c.trip.trip_completed_after_secs = 2;
        c.trip.trip_requests_expire_before_secs = 20;
    })
    .await;
    let prefix = app.config.temporal.temporal_task_queue_prefix.clone();
    let (owner, owner_id) = sign_up(&app).await;
    let (seated, _) = sign_up(&app).await;
    let (waiting, waiting_id) = sign_up(&app).await;
    let mut input = fields(Utc::now() + chrono::Duration::seconds(15), 1);
    input["clientMutationId"] = json!("record");
    let post = trip(&app, &owner, input).await;
    app.save_history(
        &format!("{prefix}/post-create/{owner_id}/record"),
        "create_post_trip",
    )
    .await;
    let seat = applied(&apply(&app, &seated, &post, false).await)["id"].clone();
    assert_eq!(
        applied(&apply(&app, &waiting, &post, true).await)["status"],
        "WAITLISTED"
    );
    let applying = format!("{prefix}/apply/{post}/{waiting_id}");
    app.save_history(&applying, "apply_waitlisted").await;
    let meeting = Utc::now() + chrono::Duration::seconds(20);
    let mut input = fields(meeting, 1);
    input["clientMutationId"] = json!("record");
    update(&app, &owner, &post, input).await;
    app.save_history(
        &format!("{prefix}/post-update/{post}/record"),
        "update_post_trip",
    )
    .await;
    let body = app
        .graphql_as(Some(&seated), WITHDRAW, json!({ "id": seat }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    app.save_history(
        &format!("{prefix}/withdraw/{}", seat.as_str().unwrap()),
        "withdraw_trip",
    )
    .await;
    until_member(
        &app,
        &post,
        &waiting_id,
        Duration::from_secs(10),
        "no promotion",
    )
    .await;
    app.save_history(&applying, "apply_promoted").await;

    // A trip with the organiser's approval: one request accepted, one left to expire.
    let (asked, asked_id) = sign_up(&app).await;
    let (forgotten, _) = sign_up(&app).await;
    let mut input = fields(Utc::now() + chrono::Duration::seconds(30), 3);
    input["approvalRequired"] = json!(true);
    let approving = trip(&app, &owner, input).await;
    let request = applied(&apply(&app, &asked, &approving, false).await)["id"].clone();
    let left = applied(&apply(&app, &forgotten, &approving, false).await)["id"].clone();
    let accepted = app
        .graphql_as(
            Some(&owner),
            "mutation($id: ID!) { acceptApplyPost(input: { id: $id }) { applyPost { status } } }",
            json!({ "id": request }),
        )
        .await;
    assert!(accepted["errors"].is_null(), "{accepted}");
    app.save_history(
        &format!("{prefix}/apply/{approving}/{asked_id}"),
        "apply_accepted",
    )
    .await;
    // The organiser removes the member they accepted.
    let removed = app
        .graphql_as(Some(&owner), REMOVE, json!({ "id": request }))
        .await;
    assert!(removed["errors"].is_null(), "{removed}");
    app.save_history(
        &format!("{prefix}/remove/{}", request.as_str().unwrap()),
        "withdraw_removed",
    )
    .await;
    let left: i64 = left.as_str().unwrap().parse().unwrap();
    eventually(Duration::from_secs(20), "the request never expired", || {
        let app = &app;
        async move { !application_exists(app, left).await }
    })
    .await;
    let body = app
        .graphql_as(
            Some(&owner),
            "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }",
            json!({ "input": { "id": approving } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");

    eventually(Duration::from_secs(40), "never completed", || async {
        post_status(&app, &post).await == "COMPLETED"
    })
    .await;
    // Each trip's workflow has ended (completed; told by the teardown) before it is saved.
    let (_temporal, client) = app.temporal().await;
    for (trip, name) in [(&post, "trip_life"), (&approving, "trip_requests_expired")] {
        let workflow_id = fishapp_workflows::trip::trip_workflow_id(&prefix, id(trip));
        client
            .get_workflow_handle::<temporalio_client::UntypedWorkflow>(workflow_id.clone())
            .get_result(Default::default())
            .await
            .unwrap();
        app.save_history(&workflow_id, name).await;
    }
}
