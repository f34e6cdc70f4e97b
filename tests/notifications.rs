//! Notifications end to end against the real stack: the sagas and the trip workflow write
//! events, the relay publishes them to JetStream, the notifier (in process, or `fishapp
//! notifier` processes) writes notifications, and users read and mark them over GraphQL. Each
//! kind reaches exactly the right users; a killed notifier, a NATS restart and redelivered events
//! write each notification once; a poison event goes to the dead letters without blocking the rest.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use chrono::{DateTime, Utc};
use common::{TestApp, error_code, post_input, sign_up};
use serde_json::{Value, json};
use std::time::Duration;

const CREATE: &str =
    "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id status } } }";
const UPDATE: &str =
    "mutation($input: UpdatePostInput!) { updatePost(input: $input) { post { id } } }";
const APPLY: &str = "mutation($input: CreateApplyPostInput!) {
  createApplyPost(input: $input) { applyPost { id status } } }";
const WITHDRAW: &str = "mutation($id: ID!) { deleteApplyPost(input: { id: $id }) { success } }";
const NOTIFICATIONS: &str = "{ notifications(first: 50) {
  pageInfo { hasNextPage endCursor }
  nodes { id kind postId roomId title count read actor { id } } }
  unreadNotificationCount }";

/// A trip's fields: meeting at `meeting_at`, `max_apply` seats.
fn fields(title: &str, meeting_at: DateTime<Utc>, max_apply: i64) -> Value {
    let mut input = post_input(title);
    input["meetingAt"] = json!(meeting_at.to_rfc3339());
    input["maxApply"] = json!(max_apply);
    input
}

async fn ok(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let body = app.graphql_as(Some(token), query, variables).await;
    assert!(body["errors"].is_null(), "{query}: {body}");
    body
}

async fn trip(app: &TestApp, token: &str, input: Value) -> String {
    let body = ok(app, token, CREATE, json!({ "input": input })).await;
    body["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn apply(app: &TestApp, token: &str, post: &str, waitlist: bool) -> Value {
    let body = ok(
        app,
        token,
        APPLY,
        json!({ "input": { "postId": post, "waitlist": waitlist } }),
    )
    .await;
    body["data"]["createApplyPost"]["applyPost"].clone()
}

/// The user's notifications as (kind, post id, actor id, count), newest first.
async fn seen(app: &TestApp, token: &str) -> Vec<(String, String, Option<String>, i64)> {
    let body = ok(app, token, NOTIFICATIONS, json!({})).await;
    body["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_owned(),
                n["postId"].as_str().unwrap_or_default().to_owned(),
                n["actor"]["id"].as_str().map(str::to_owned),
                n["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Waits until every event written so far has been handled by the notifier (nothing left in
/// the outbox to publish, and every published event recorded as handled).
async fn settled(app: &TestApp) {
    common::wait_until_drained(app, Duration::from_secs(30)).await;
    let pool = app.pool().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (events, handled): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox.events),
                    (SELECT count(*) FROM notify.handled h
                      WHERE EXISTS (SELECT 1 FROM outbox.events e WHERE e.event_id = h.event_id))",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if events == handled {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{handled} of {events} events handled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kinds(list: &[(String, String, Option<String>, i64)]) -> Vec<&str> {
    list.iter().map(|(kind, ..)| kind.as_str()).collect()
}

#[tokio::test]
async fn each_kind_reaches_exactly_the_right_users_once() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, owner_id) = sign_up(&app).await;
    let (a, a_id) = sign_up(&app).await;
    let (b, b_id) = sign_up(&app).await;
    let (d, d_id) = sign_up(&app).await;
    let (stranger, _) = sign_up(&app).await;
    let meeting = Utc::now() + chrono::Duration::days(3);
    let post = trip(&app, &owner, fields("Harbour", meeting, 2)).await;

    // Applying: the organiser hears of each applicant, the applicants of nothing.
    let seat_a = apply(&app, &a, &post, false).await["id"].clone();
    apply(&app, &b, &post, false).await;
    assert_eq!(apply(&app, &d, &post, true).await["status"], "WAITLISTED");
    settled(&app).await;
    let organiser = seen(&app, &owner).await;
    assert_eq!(kinds(&organiser), ["APPLIED", "APPLIED", "APPLIED"]);
    let actors: Vec<_> = organiser.iter().map(|n| n.2.clone().unwrap()).collect();
    assert_eq!(actors, [d_id.clone(), b_id.clone(), a_id.clone()]);
    assert!(organiser.iter().all(|n| n.1 == post));
    for token in [&a, &b, &d, &stranger] {
        assert!(seen(&app, token).await.is_empty(), "an applicant told");
    }

    // A withdrawal: the organiser hears of it; the first in line is told they moved up.
    ok(&app, &a, WITHDRAW, json!({ "id": seat_a })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while kinds(&seen(&app, &d).await) != ["PROMOTED"] {
        assert!(tokio::time::Instant::now() < deadline, "never promoted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settled(&app).await;
    assert_eq!(kinds(&seen(&app, &owner).await)[0], "WITHDREW");
    assert_eq!(seen(&app, &owner).await[0].2, Some(a_id.clone()));

    // A title changed: nobody is told; the time changed: the members are, not the organiser,
    // not the one who withdrew.
    let mut change = fields("Harbour at dawn", meeting, 2);
    change["id"] = json!(post);
    ok(&app, &owner, UPDATE, json!({ "input": change })).await;
    let mut change = fields("Harbour at dawn", meeting + chrono::Duration::hours(2), 2);
    change["id"] = json!(post);
    ok(&app, &owner, UPDATE, json!({ "input": change })).await;
    settled(&app).await;
    for token in [&b, &d] {
        let theirs = seen(&app, token).await;
        assert_eq!(theirs[0].0, "TRIP_CHANGED", "{theirs:?}");
        assert_eq!(
            kinds(&theirs)
                .iter()
                .filter(|k| **k == "TRIP_CHANGED")
                .count(),
            1,
            "the title change told nobody"
        );
        assert_eq!(theirs[0].2, Some(owner_id.clone()));
    }
    assert!(!kinds(&seen(&app, &a).await).contains(&"TRIP_CHANGED"));
    assert!(!kinds(&seen(&app, &owner).await).contains(&"TRIP_CHANGED"));

    // Messages: one notification per room until read, counting; never to the writer.
    let room = common::room_of(&app, &owner, &post).await;
    let say =
        "mutation($input: CreateMessageInput!) { createMessage(input: $input) { message { id } } }";
    for body in ["Bring bait", "And coffee"] {
        ok(
            &app,
            &b,
            say,
            json!({ "input": { "roomId": room, "body": body } }),
        )
        .await;
    }
    settled(&app).await;
    for token in [&owner, &d] {
        let theirs = seen(&app, token).await;
        assert_eq!(
            (theirs[0].0.as_str(), theirs[0].3),
            ("NEW_MESSAGES", 2),
            "{theirs:?}"
        );
    }
    assert!(!kinds(&seen(&app, &b).await).contains(&"NEW_MESSAGES"));
    assert!(!kinds(&seen(&app, &a).await).contains(&"NEW_MESSAGES"));

    // Read: the unread count drops; the next message is a new notification.
    let read = ok(
        &app,
        &owner,
        "mutation { markNotificationsRead(input: { all: true }) { count unreadCount } }",
        json!({}),
    )
    .await;
    assert_eq!(read["data"]["markNotificationsRead"]["unreadCount"], 0);
    ok(
        &app,
        &d,
        say,
        json!({ "input": { "roomId": room, "body": "On my way" } }),
    )
    .await;
    settled(&app).await;
    let body = ok(&app, &owner, NOTIFICATIONS, json!({})).await;
    assert_eq!(body["data"]["unreadNotificationCount"], 1, "{body}");
    let newest = &body["data"]["notifications"]["nodes"][0];
    assert_eq!(
        (
            newest["kind"].as_str(),
            newest["count"].as_i64(),
            newest["read"].as_bool()
        ),
        (Some("NEW_MESSAGES"), Some(1), Some(false))
    );
    assert_eq!(newest["roomId"], room);

    // The organiser's answers and a cancellation.
    let mut input = fields("Approved only", meeting, 3);
    input["approvalRequired"] = json!(true);
    let approving = trip(&app, &owner, input).await;
    let (e, _) = sign_up(&app).await;
    let (f, _) = sign_up(&app).await;
    let request_e = apply(&app, &e, &approving, false).await["id"].clone();
    let request_f = apply(&app, &f, &approving, false).await["id"].clone();
    ok(
        &app,
        &owner,
        "mutation($id: ID!) { acceptApplyPost(input: { id: $id }) { applyPost { id } } }",
        json!({ "id": request_e }),
    )
    .await;
    ok(
        &app,
        &owner,
        "mutation($id: ID!) { declineApplyPost(input: { id: $id }) { success } }",
        json!({ "id": request_f }),
    )
    .await;
    settled(&app).await;
    assert_eq!(kinds(&seen(&app, &e).await), ["REQUEST_ACCEPTED"]);
    assert_eq!(kinds(&seen(&app, &f).await), ["REQUEST_DECLINED"]);
    assert_eq!(seen(&app, &e).await[0].2, Some(owner_id.clone()));
    ok(
        &app,
        &owner,
        "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }",
        json!({ "input": { "id": approving } }),
    )
    .await;
    settled(&app).await;
    let theirs = seen(&app, &e).await;
    assert_eq!(kinds(&theirs), ["TRIP_CANCELLED", "REQUEST_ACCEPTED"]);
    assert_eq!(theirs[0].1, approving, "the trip's id stays");
    assert_eq!(kinds(&seen(&app, &f).await), ["REQUEST_DECLINED"]);
    assert!(!kinds(&seen(&app, &owner).await).contains(&"TRIP_CANCELLED"));

    assert!(seen(&app, &stranger).await.is_empty());
    // Each handled event wrote its notifications once.
    let duplicates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM notify.notifications
          GROUP BY user_id, event_id HAVING count(*) > 1) d",
    )
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(duplicates, 0);
}

#[tokio::test]
async fn the_trips_moments_and_an_expired_request_are_told_to_their_members() {
    let app = TestApp::spawn_with_worker(|c| {
        c.trip.trip_reminder_before_secs = Some(5);
        c.trip.trip_completed_after_secs = 2;
        c.trip.trip_requests_expire_before_secs = 8;
    })
    .await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, _) = sign_up(&app).await;
    let (member, _) = sign_up(&app).await;
    let (asking, _) = sign_up(&app).await;
    let (stranger, _) = sign_up(&app).await;
    // Posted, applied to and asked for days ahead, then moved to 12 s from now: the request is
    // there before its deadline however slowly the sagas run (a request made after it would be
    // refused), and a deadline or reminder already past when the move lands comes at once.
    let later = Utc::now() + chrono::Duration::days(3);
    let post = trip(&app, &owner, fields("Soon", later, 2)).await;
    apply(&app, &member, &post, false).await;
    let mut input = fields("Asked", later, 2);
    input["approvalRequired"] = json!(true);
    let approving = trip(&app, &owner, input).await;
    apply(&app, &asking, &approving, false).await;
    let soon = Utc::now() + chrono::Duration::seconds(12);
    for (trip, title) in [(&post, "Soon"), (&approving, "Asked")] {
        let mut change = fields(title, soon, 2);
        change["id"] = json!(trip);
        ok(&app, &owner, UPDATE, json!({ "input": change })).await;
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let theirs = kinds(&seen(&app, &member).await)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        if theirs == ["TRIP_COMPLETED", "TRIP_REMINDER", "TRIP_CHANGED"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the member saw {theirs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    settled(&app).await;
    // The organiser is a member of their own trips' moments too (of both trips).
    let organiser = seen(&app, &owner).await;
    for trip in [&post, &approving] {
        let moments: Vec<&str> = organiser
            .iter()
            .filter(|n| &n.1 == trip && n.0.starts_with("TRIP_"))
            .map(|n| n.0.as_str())
            .collect();
        assert_eq!(
            moments,
            ["TRIP_COMPLETED", "TRIP_REMINDER"],
            "{organiser:?}"
        );
    }
    assert!(organiser.iter().all(|n| n.0 == "APPLIED" || n.2.is_none()));
    assert_eq!(kinds(&seen(&app, &asking).await), ["REQUEST_EXPIRED"]);
    assert!(seen(&app, &stranger).await.is_empty());
}

/// An OPEN trip of `owner` written straight into the board (the events of the tests that use it
/// are written by hand; its sagas are not what they test).
async fn bare_trip(app: &TestApp, owner: &str, title: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO board.posts (user_id, title, content, fishing_spot_type_id, prefecture_id,
                                  meeting_place_id, meeting_at, max_apply, status)
         VALUES ($1, $2, 'x', 1, 13, 'ChIJN1t_tDeuEmsRUsoyG83frY4', now() + interval '3 days', 3,
                 'OPEN')
         RETURNING id",
    )
    .bind(owner.parse::<i64>().unwrap())
    .bind(title)
    .fetch_one(&app.pool().await)
    .await
    .unwrap()
}

/// Writes `n` events (a place in the line each, by `applicant`, on `post`) straight into the
/// outbox, as `n` applications would.
async fn burst(app: &TestApp, post: i64, applicant: i64, n: usize) {
    use fishapp_domain::board::ApplicationStatus;
    use fishapp_domain::events::{ApplicationData, EventType};
    use fishapp_store::outbox::{self, Event};
    let pool = app.pool().await;
    for i in 0..n {
        let mut tx = pool.begin().await.unwrap();
        let data = ApplicationData {
            id: 1_000_000 + i64::try_from(i).unwrap(),
            post_id: post,
            user_id: applicant,
            status: ApplicationStatus::Waitlisted,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        outbox::append(
            &mut tx,
            &Event::application(EventType::ApplicationWaitlisted, &data),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

/// Writes `event` into the app's outbox, as a change's transaction would, and returns its
/// envelope as the relay publishes it.
async fn outboxed(app: &TestApp, event: &fishapp_store::outbox::Event) -> Value {
    let pool = app.pool().await;
    let mut tx = pool.begin().await.unwrap();
    let id = fishapp_store::outbox::append(&mut tx, event).await.unwrap();
    tx.commit().await.unwrap();
    let (event_id, event_type, aggregate_type, aggregate_id, version, data, at): (
        uuid::Uuid,
        String,
        String,
        String,
        i16,
        Value,
        DateTime<Utc>,
    ) = sqlx::query_as(
        "SELECT event_id, event_type, aggregate_type, aggregate_id, version, payload, created_at
           FROM outbox.events WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    json!({
        "id": event_id,
        "deployment": fishapp_store::outbox::deployment_id(&pool).await.unwrap(),
        "type": event_type,
        "subject": format!("{}.{event_type}", app.config.relay.relay_subject_prefix),
        "aggregate": { "type": aggregate_type, "id": aggregate_id },
        "occurredAt": at,
        "version": version,
        "data": data
    })
}

/// An event whose data is not what its type says (a producer's bug), in the outbox.
async fn poison(app: &TestApp) -> Value {
    use fishapp_domain::events::EventType;
    let event = fishapp_store::outbox::Event {
        event_type: EventType::ApplicationCreated,
        aggregate_id: "1".to_owned(),
        part_id: None,
        payload: json!({ "nonsense": true }),
    };
    outboxed(app, &event).await
}

async fn notifications_of(app: &TestApp, user: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notify.notifications WHERE user_id = $1")
        .bind(user.parse::<i64>().unwrap())
        .fetch_one(&app.pool().await)
        .await
        .unwrap()
}

/// A NATS server with JetStream of this test's own (the shared one serves every other test), to
/// restart.
struct PrivateNats {
    port: u16,
    dir: tempfile::TempDir,
    server: tokio::process::Child,
}

impl PrivateNats {
    async fn start() -> Self {
        let port = common::free_port().await;
        let dir = tempfile::tempdir().unwrap();
        let server = Self::spawn(port, &dir).await;
        Self { port, dir, server }
    }

    async fn spawn(port: u16, dir: &tempfile::TempDir) -> tokio::process::Child {
        let server = tokio::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server (scripts/stack installs it)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server answers"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and storage.
    async fn restart(&mut self) {
        self.server.start_kill().unwrap();
        self.server.wait().await.unwrap();
        self.server = Self::spawn(self.port, &self.dir).await;
    }
}

#[tokio::test]
async fn a_killed_notifier_a_nats_restart_and_redelivered_events_write_each_notification_once() {
    let mut nats = PrivateNats::start().await;
    let url = nats.url();
    let app = TestApp::spawn_with(|c| {
        c.notify.notify_ack_wait_secs = 2;
        c.connections.nats_url = url;
    })
    .await;
    app.start_relay().await;
    let (_, owner_id) = sign_up(&app).await;
    let (_, applicant_id) = sign_up(&app).await;
    let pool = app.pool().await;
    let post = bare_trip(&app, &owner_id, "Burst").await;
    let mut first = common::notifier_process(&app);
    let writing = burst(&app, post, applicant_id.parse().unwrap(), 1000);
    // While the burst is still being written: SIGKILL the notifier partway through, let two
    // others share the consumer, then restart NATS itself under them.
    let (app_ref, owner, nats_ref) = (&app, &owner_id, &mut nats);
    let disrupting = async move {
        loop {
            let n = notifications_of(app_ref, owner).await;
            if n >= 150 {
                first.start_kill().unwrap();
                first.wait().await.unwrap();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at_kill = notifications_of(app_ref, owner).await;
        let others = [
            common::notifier_process(app_ref),
            common::notifier_process(app_ref),
        ];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while notifications_of(app_ref, owner).await < at_kill + 100 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the notifiers took over"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at_restart = notifications_of(app_ref, owner).await;
        nats_ref.restart().await;
        (at_kill, at_restart, others)
    };
    let ((), (at_kill, at_restart, _others)) = tokio::join!(writing, disrupting);
    assert!(
        at_kill < 1000 && at_restart < 1000,
        "killed at {at_kill}, restarted at {at_restart}: too late to mean anything"
    );
    // Some events again, as JetStream would redeliver them, under new message ids (so the
    // stream's own duplicate window does not drop them): each is recognised by its event id.
    let js = app.jetstream().await;
    let replayed = common::published(&app).await;
    for message in replayed.iter().take(20) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
        js.publish_with_headers(
            message.subject.clone(),
            headers,
            serde_json::to_vec(&message.envelope).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while notifications_of(&app, &owner_id).await < 1000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of 1000",
            notifications_of(&app, &owner_id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past the acknowledgement wait: anything delivered twice has had its chance to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(notifications_of(&app, &owner_id).await, 1000, "each once");
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT event_id) FROM notify.notifications")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(distinct, 1000);
}

#[tokio::test]
async fn a_poison_event_goes_to_the_dead_letters_and_blocks_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.notify.notify_max_attempts = 3;
        c.notify.notify_retry_delay_ms = 100;
    })
    .await;
    app.start_relay().await;
    app.start_notifier().await;
    let (_, owner_id) = sign_up(&app).await;
    let (_, applicant_id) = sign_up(&app).await;
    let pool = app.pool().await;
    let post = bare_trip(&app, &owner_id, "Poisoned").await;
    // An event of this deployment whose data is not what its type says, then a good one.
    let poison_id: uuid::Uuid = serde_json::from_value(poison(&app).await["id"].clone()).unwrap();
    burst(&app, post, applicant_id.parse().unwrap(), 1).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let letters: Vec<(Option<uuid::Uuid>, i32, String)> =
            sqlx::query_as("SELECT event_id, attempts, error FROM notify.dead_letters ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        if let Some((event_id, attempts, error)) = letters.first() {
            assert_eq!(letters.len(), 1);
            assert_eq!(*event_id, Some(poison_id));
            assert_eq!(*attempts, 3, "after the configured attempts");
            assert!(error.contains("unreadable"), "{error}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        notifications_of(&app, &owner_id).await,
        1,
        "the good event behind it was handled"
    );
    let handled: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notify.handled WHERE event_id = $1)")
            .bind(poison_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!handled, "a failed event records nothing");
}

#[tokio::test]
async fn users_read_only_their_own_notifications_and_bad_input_is_refused() {
    let app = TestApp::spawn().await;
    let (owner, owner_id) = sign_up(&app).await;
    let (other, _) = sign_up(&app).await;
    let pool = app.pool().await;
    for i in 0..25 {
        sqlx::query(
            "INSERT INTO notify.notifications (user_id, kind, event_id, post_id, title)
             VALUES ($1, 'TRIP_REMINDER', $2, $3, 'Paged')",
        )
        .bind(owner_id.parse::<i64>().unwrap())
        .bind(uuid::Uuid::now_v7())
        .bind(i64::from(i + 1))
        .execute(&pool)
        .await
        .unwrap();
    }
    // Pages: newest first, no repeats, no gaps.
    let page = "query($after: String) { notifications(first: 10, after: $after) {
      pageInfo { hasNextPage endCursor } nodes { id postId } } }";
    let mut after = Value::Null;
    let mut posts = Vec::new();
    loop {
        let body = ok(&app, &owner, page, json!({ "after": after })).await;
        let list = &body["data"]["notifications"];
        for n in list["nodes"].as_array().unwrap() {
            posts.push(n["postId"].as_str().unwrap().parse::<i64>().unwrap());
        }
        if list["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = list["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(posts, (1..=25).rev().collect::<Vec<i64>>());

    // Someone else's ids change nothing; the owner's do.
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM notify.notifications ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mark = "mutation($input: MarkNotificationsReadInput!) {
      markNotificationsRead(input: $input) { count unreadCount } }";
    let theirs = ok(
        &app,
        &other,
        mark,
        json!({ "input": { "ids": ids[..3].iter().map(i64::to_string).collect::<Vec<_>>() } }),
    )
    .await;
    assert_eq!(theirs["data"]["markNotificationsRead"]["count"], 0);
    let mine = ok(
        &app,
        &owner,
        mark,
        json!({ "input": { "ids": ids[..3].iter().map(i64::to_string).collect::<Vec<_>>() } }),
    )
    .await;
    assert_eq!(
        mine["data"]["markNotificationsRead"],
        json!({ "count": 3, "unreadCount": 22 })
    );
    assert!(seen(&app, &other).await.is_empty());

    // Bad input: a clear error naming the field; nothing changes.
    let too_many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
    let body = app
        .graphql_as(Some(&owner), mark, json!({ "input": { "ids": too_many } }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "input.ids");
    let body = app
        .graphql_as(Some(&owner), mark, json!({ "input": {} }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = app
        .graphql_as(Some(&owner), page, json!({ "after": "not a cursor" }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "after", "{body}");
    let body = app
        .graphql_as(
            Some(&owner),
            "{ notifications(first: 51) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = app.graphql("{ unreadNotificationCount }").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let unread = ok(&app, &owner, "{ unreadNotificationCount }", json!({})).await;
    assert_eq!(unread["data"]["unreadNotificationCount"], 22);

    // Muting a kind: kept per user, and listed.
    let mute = "mutation($input: MuteNotificationKindInput!) {
      muteNotificationKind(input: $input) { mutedKinds } }";
    let body = ok(
        &app,
        &owner,
        mute,
        json!({ "input": { "kind": "NEW_MESSAGES", "muted": true } }),
    )
    .await;
    assert_eq!(
        body["data"]["muteNotificationKind"]["mutedKinds"],
        json!(["NEW_MESSAGES"])
    );
    let listed = ok(&app, &other, "{ mutedNotificationKinds }", json!({})).await;
    assert_eq!(listed["data"]["mutedNotificationKinds"], json!([]));
}

/// A prune keeps each user's newest notifications up to the cap (what other people cause cannot
/// grow one user's list without bound) and deletes read ones past their retention.
#[tokio::test]
async fn pruning_keeps_each_users_newest_up_to_the_cap_and_drops_old_read_ones() {
    let app = TestApp::spawn_with_worker(|c| {
        c.notify.notify_max_per_user = 3;
        c.notify.notify_prune_interval_secs = 1;
        // One event at a time: notifications are written (and numbered) in the events' order.
        c.notify.notify_concurrency = 1;
    })
    .await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, _) = sign_up(&app).await;
    let post = trip(
        &app,
        &owner,
        fields("Crowded", Utc::now() + chrono::Duration::days(3), 6),
    )
    .await;
    let mut applicants = Vec::new();
    for _ in 0..5 {
        let (token, id) = sign_up(&app).await;
        apply(&app, &token, &post, false).await;
        applicants.push((token, id));
    }
    settled(&app).await;
    let pool = app.pool().await;
    let post_id: i64 = post.parse().unwrap();
    // The actors of the owner's notifications, oldest first.
    let owners = |pool: sqlx::PgPool| async move {
        let actors: Vec<Option<i64>> = sqlx::query_scalar(
            "SELECT actor_id FROM notify.notifications n JOIN board.posts p ON p.user_id = n.user_id
              WHERE p.id = $1 ORDER BY n.id",
        )
        .bind(post_id)
        .fetch_all(&pool)
        .await
        .unwrap();
        actors
    };
    let newest: Vec<Option<i64>> = applicants[2..]
        .iter()
        .map(|(_, id)| Some(id.parse().unwrap()))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while owners(pool.clone()).await != newest {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner keeps {:?}, not the newest three {newest:?}",
            owners(pool.clone()).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen(&app, &owner).await.len(), 3);

    // Read long ago: past the retention (90 days by default), it goes; the unread stay.
    ok(
        &app,
        &owner,
        "mutation { markNotificationsRead(input: { all: true }) { count } }",
        json!({}),
    )
    .await;
    sqlx::query(
        "UPDATE notify.notifications SET read_at = now() - interval '100 days'
          WHERE id = (SELECT min(n.id) FROM notify.notifications n
                       JOIN board.posts p ON p.user_id = n.user_id WHERE p.id = $1)",
    )
    .bind(post_id)
    .execute(&pool)
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while owners(pool.clone()).await.len() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old read one stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(owners(pool.clone()).await, newest[1..]);
}

#[tokio::test]
async fn a_muted_kind_is_not_written() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, _) = sign_up(&app).await;
    let (a, _) = sign_up(&app).await;
    let (b, _) = sign_up(&app).await;
    ok(
        &app,
        &owner,
        "mutation { muteNotificationKind(input: { kind: APPLIED, muted: true }) { mutedKinds } }",
        json!({}),
    )
    .await;
    let post = trip(
        &app,
        &owner,
        fields("Quiet", Utc::now() + chrono::Duration::days(2), 3),
    )
    .await;
    apply(&app, &a, &post, false).await;
    settled(&app).await;
    assert!(seen(&app, &owner).await.is_empty(), "muted");
    ok(
        &app,
        &owner,
        "mutation { muteNotificationKind(input: { kind: APPLIED, muted: false }) { mutedKinds } }",
        json!({}),
    )
    .await;
    apply(&app, &b, &post, false).await;
    settled(&app).await;
    assert_eq!(kinds(&seen(&app, &owner).await), ["APPLIED"]);
}

/// The next `notificationAdded` item of `live` (kind, actor id, count, id), failing after 20 s.
async fn next_live(live: &mut common::LiveSubscription) -> (String, Option<String>, i64, String) {
    let message = live
        .next(Duration::from_secs(20))
        .await
        .expect("a notification arrives live");
    let n = &message["payload"]["data"]["notificationAdded"];
    assert!(n.is_object(), "{message}");
    (
        n["kind"].as_str().unwrap().to_owned(),
        n["actor"]["id"].as_str().map(str::to_owned),
        n["count"].as_i64().unwrap(),
        n["id"].as_str().unwrap().to_owned(),
    )
}

/// The stage of the live tests: the whole stack with a relay and a notifier, an organiser (with
/// both tokens), an applicant to be, a stranger, and the organiser's trip.
struct Live {
    app: TestApp,
    owner: common::Session,
    applicant: (String, String),
    stranger: String,
    post: String,
}

impl Live {
    async fn start(title: &str) -> Self {
        let app = TestApp::spawn_with_worker(|_| {}).await;
        app.start_relay().await;
        app.start_notifier().await;
        let owner = common::sign_up_session(&app).await;
        let applicant = sign_up(&app).await;
        let (stranger, _) = sign_up(&app).await;
        let post = trip(
            &app,
            &owner.id_token,
            fields(title, Utc::now() + chrono::Duration::days(2), 3),
        )
        .await;
        Self {
            app,
            owner,
            applicant,
            stranger,
            post,
        }
    }
}

/// Logs `owner` out and sees `live` (a subscription of theirs) end with UNAUTHENTICATED.
async fn logging_out_ends(
    app: &TestApp,
    owner: &common::Session,
    live: &mut common::LiveSubscription,
) {
    let out = app
        .graphql_as(
            Some(&owner.id_token),
            "mutation($r: String) { logout(refreshToken: $r) { success } }",
            json!({ "r": owner.refresh_token }),
        )
        .await;
    assert_eq!(out["data"]["logout"]["success"], true, "{out}");
    let ended = live
        .next(Duration::from_secs(15))
        .await
        .expect("the stream ends");
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{ended}"
    );
}

#[tokio::test]
async fn notifications_arrive_live_for_their_user_alone_until_the_sign_in_ends() {
    let Live {
        app,
        owner,
        applicant: (a, a_id),
        stranger,
        post,
    } = Live::start("Live").await;
    let added = "subscription { notificationAdded { id kind count actor { id } } }";
    let mut mine =
        common::LiveSubscription::open(&app, Some(&owner.id_token), added, json!({})).await;
    let mut theirs = common::LiveSubscription::open(&app, Some(&stranger), added, json!({})).await;
    // Both subscriptions are registered before anything happens.
    tokio::time::sleep(Duration::from_millis(500)).await;

    apply(&app, &a, &post, false).await;
    let (kind, actor, ..) = next_live(&mut mine).await;
    assert_eq!((kind.as_str(), actor), ("APPLIED", Some(a_id.clone())));

    // A NEW_MESSAGES arrives again each time it grows: the same notification, counting.
    let room = common::room_of(&app, &owner.id_token, &post).await;
    let say =
        "mutation($input: CreateMessageInput!) { createMessage(input: $input) { message { id } } }";
    ok(
        &app,
        &a,
        say,
        json!({ "input": { "roomId": room, "body": "one" } }),
    )
    .await;
    let first = next_live(&mut mine).await;
    ok(
        &app,
        &a,
        say,
        json!({ "input": { "roomId": room, "body": "two" } }),
    )
    .await;
    let second = next_live(&mut mine).await;
    assert_eq!((first.0.as_str(), first.2), ("NEW_MESSAGES", 1));
    assert_eq!((second.0.as_str(), second.2), ("NEW_MESSAGES", 2));
    assert_eq!(first.3, second.3, "the same notification");

    // Nothing reached the stranger's subscription.
    assert!(
        theirs.next(Duration::from_millis(500)).await.is_none(),
        "a stranger heard of it"
    );
    // Logging out ends the owner's subscription (within the revocation check).
    logging_out_ends(&app, &owner, &mut mine).await;
}

/// The next count an `unreadNotificationCount` subscription sends.
async fn next_count(live: &mut common::LiveSubscription) -> i64 {
    let message = live
        .next(Duration::from_secs(20))
        .await
        .expect("a count arrives live");
    message["payload"]["data"]["unreadNotificationCount"]
        .as_i64()
        .unwrap_or_else(|| panic!("not a count: {message}"))
}

#[tokio::test]
async fn the_unread_count_follows_every_device_live_until_the_sign_in_ends() {
    let Live {
        app,
        owner,
        applicant: (a, _),
        stranger,
        post,
    } = Live::start("Badge").await;
    let count = "subscription { unreadNotificationCount }";
    let mut badge =
        common::LiveSubscription::open(&app, Some(&owner.id_token), count, json!({})).await;
    let mut theirs = common::LiveSubscription::open(&app, Some(&stranger), count, json!({})).await;
    // Each starts with the count as it is.
    assert_eq!(next_count(&mut badge).await, 0);
    assert_eq!(next_count(&mut theirs).await, 0);

    // Written: an application, then a room's first message; the second message grows the same
    // NEW_MESSAGES and changes no count, so nothing is sent for it.
    apply(&app, &a, &post, false).await;
    assert_eq!(next_count(&mut badge).await, 1);
    let room = common::room_of(&app, &owner.id_token, &post).await;
    say(&app, &a, &room, "one").await;
    assert_eq!(next_count(&mut badge).await, 2);
    say(&app, &a, &room, "two").await;
    settled(&app).await;

    // Read on another device (over HTTP): the APPLIED one.
    let applied: Vec<String> = ok(
        &app,
        &owner.id_token,
        "{ notifications { nodes { id kind } } }",
        json!({}),
    )
    .await["data"]["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "APPLIED")
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(applied.len(), 1);
    let mark = "mutation($input: MarkNotificationsReadInput!) {
      markNotificationsRead(input: $input) { count unreadCount } }";
    ok(
        &app,
        &owner.id_token,
        mark,
        json!({ "input": { "ids": applied } }),
    )
    .await;
    assert_eq!(
        next_count(&mut badge).await,
        1,
        "the grown NEW_MESSAGES is one"
    );
    // Marking what is read already changes nothing and sends nothing.
    ok(
        &app,
        &owner.id_token,
        mark,
        json!({ "input": { "ids": applied } }),
    )
    .await;
    // Opening the room live reads its NEW_MESSAGES.
    let follow = "subscription($input: MessageAddedInput!) { messageAdded(input: $input) { message { id } } }";
    let _reading = common::LiveSubscription::open(
        &app,
        Some(&owner.id_token),
        follow,
        json!({ "input": { "roomId": room } }),
    )
    .await;
    assert_eq!(next_count(&mut badge).await, 0);
    settled(&app).await;
    assert!(
        badge.next(Duration::from_millis(500)).await.is_none(),
        "a count was sent that did not change"
    );
    assert!(
        theirs.next(Duration::from_millis(500)).await.is_none(),
        "a stranger's count moved"
    );
    // Two markings changed something (the ids, the room); the repeated one wrote no event.
    let reads: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox.events WHERE event_type = $1")
        .bind("notify.inbox.read")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    assert_eq!(reads, 2);

    logging_out_ends(&app, &owner, &mut badge).await;
}

/// The rows of `chat.watching` for `user` (a user id), waiting up to 10 s for `count` of them.
async fn watching(app: &TestApp, user: &str, count: i64) {
    let pool = app.pool().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM chat.watching WHERE user_id = $1")
            .bind(user.parse::<i64>().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
        if rows == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{rows} rows of chat.watching, not {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SAY: &str =
    "mutation($input: CreateMessageInput!) { createMessage(input: $input) { message { id } } }";

async fn say(app: &TestApp, token: &str, room: &str, body: &str) {
    ok(
        app,
        token,
        SAY,
        json!({ "input": { "roomId": room, "body": body } }),
    )
    .await;
}

/// The unread NEW_MESSAGES count of `token`'s user (0: none).
async fn unread_messages(app: &TestApp, token: &str) -> i64 {
    seen(app, token)
        .await
        .iter()
        .find(|(kind, ..)| kind == "NEW_MESSAGES")
        .map_or(0, |(.., count)| *count)
}

#[tokio::test]
async fn new_messages_count_only_while_the_member_is_not_reading_the_room_live() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, _) = sign_up(&app).await;
    let (member, member_id) = sign_up(&app).await;
    let post = trip(
        &app,
        &owner,
        fields("Reading", Utc::now() + chrono::Duration::days(2), 3),
    )
    .await;
    apply(&app, &member, &post, false).await;
    let room = common::room_of(&app, &owner, &post).await;

    // Two subscriptions of the member to the room: one presence row; both must end.
    let follow = "subscription($input: MessageAddedInput!) { messageAdded(input: $input) { message { id } } }";
    let input = json!({ "input": { "roomId": room } });
    let mut first =
        common::LiveSubscription::open(&app, Some(&member), follow, input.clone()).await;
    let second = common::LiveSubscription::open(&app, Some(&member), follow, input).await;
    watching(&app, &member_id, 1).await;
    for body in ["one", "two", "three"] {
        say(&app, &owner, &room, body).await;
    }
    for _ in 0..3 {
        assert!(
            first.next(Duration::from_secs(20)).await.is_some(),
            "read live"
        );
    }
    settled(&app).await;
    assert_eq!(
        unread_messages(&app, &member).await,
        0,
        "read live: not counted"
    );

    drop(second);
    tokio::time::sleep(Duration::from_millis(300)).await;
    watching(&app, &member_id, 1).await;
    drop(first);
    watching(&app, &member_id, 0).await;
    say(&app, &owner, &room, "four").await;
    say(&app, &owner, &room, "five").await;
    settled(&app).await;
    assert_eq!(
        unread_messages(&app, &member).await,
        2,
        "not reading: counted"
    );
    let unread = || async {
        ok(&app, &member, "{ unreadNotificationCount }", json!({})).await["data"]
            ["unreadNotificationCount"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(unread().await, 1);

    // Opening the room again: the notification of what they missed is read.
    let again = common::LiveSubscription::open(
        &app,
        Some(&member),
        follow,
        json!({ "input": { "roomId": room } }),
    )
    .await;
    watching(&app, &member_id, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while unread().await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "opening the room left its notification unread"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Closed again: the next message is a new notification, counting from one.
    drop(again);
    watching(&app, &member_id, 0).await;
    say(&app, &owner, &room, "six").await;
    settled(&app).await;
    assert_eq!(unread().await, 1);
    assert_eq!(unread_messages(&app, &member).await, 1);
}

/// Notifications by e-mail: nothing before the address's mailbox confirms; then one digest per
/// interval with the trip's title and time, a busy room as one line; never to a user who did
/// not confirm.
#[tokio::test]
async fn notifications_are_mailed_as_one_digest_to_a_confirmed_address_only() {
    let smtp = common::SmtpServer::start().await;
    let app = TestApp::spawn_with_worker(|c| {
        c.mail.mail_transport = Some(fishapp::config::MailTransportKind::Smtp);
        c.mail.mail_smtp_url = Some(smtp.url());
        c.notify.notify_mail_delay_secs = 8;
        c.notify.notify_mail_interval_secs = 3_600;
        c.notify.notify_mail_poll_secs = 1;
    })
    .await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, _) = sign_up(&app).await;
    let (member, _) = sign_up(&app).await;
    let (waiting, _) = sign_up(&app).await;
    let address = |token: String| {
        let app = &app;
        async move {
            let body = ok(app, &token, "{ currentUser { email } }", json!({})).await;
            body["data"]["currentUser"]["email"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (owner_address, member_address, waiting_address) = (
        address(owner.clone()).await,
        address(member.clone()).await,
        address(waiting.clone()).await,
    );
    let state = "{ notificationEmail }";
    let request = "mutation { requestNotificationEmail }";
    let confirm = "mutation($t: String!) { confirmNotificationEmail(input: { token: $t }) }";
    assert_eq!(
        ok(&app, &owner, state, json!({})).await["data"]["notificationEmail"],
        "OFF"
    );
    for token in [&owner, &waiting] {
        let body = ok(&app, token, request, json!({})).await;
        assert_eq!(body["data"]["requestNotificationEmail"], "PENDING");
    }
    let asked = smtp
        .mails_to(&owner_address, 1, Duration::from_secs(10))
        .await;
    assert_eq!(asked.len(), 1);
    let text = common::mail_text(&asked[0]);
    let token = text
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("a confirmation link in {text}"))
        .to_owned();
    let wrong = app
        .graphql_as(None, confirm, json!({ "t": "not-the-token" }))
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    assert_eq!(wrong["errors"][0]["extensions"]["field"], "input.token");
    // The mailbox confirms (no sign-in needed: the token is the proof).
    let confirmed = app.graphql_as(None, confirm, json!({ "t": token })).await;
    assert_eq!(
        confirmed["data"]["confirmNotificationEmail"], "ON",
        "{confirmed}"
    );
    assert_eq!(
        ok(&app, &owner, state, json!({})).await["data"]["notificationEmail"],
        "ON"
    );
    let again = app.graphql_as(None, confirm, json!({ "t": token })).await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT", "used once: {again}");

    // An application and a busy room, well within the digest's delay.
    let meeting_at = Utc::now() + chrono::Duration::days(3);
    let post = trip(&app, &owner, fields("Dawn bass", meeting_at, 3)).await;
    apply(&app, &member, &post, false).await;
    apply(&app, &waiting, &post, false).await;
    let room = common::room_of(&app, &owner, &post).await;
    for n in 0..12 {
        say(&app, &member, &room, &format!("message {n}")).await;
    }
    settled(&app).await;

    let mails = smtp
        .mails_to(&owner_address, 2, Duration::from_secs(30))
        .await;
    assert_eq!(mails.len(), 2, "the confirmation and one digest");
    let digest = mails
        .iter()
        .map(|m| common::mail_text(m))
        .find(|t| !t.contains("token="))
        .unwrap();
    let when = meeting_at
        .with_timezone(&fishapp_domain::board::trip_time_zone())
        .format("%a %-d %b %Y, %H:%M Japan time")
        .to_string();
    assert!(
        digest.contains(&format!(
            "- someone applied to your trip \"Dawn bass\" ({when})"
        )),
        "{digest}"
    );
    assert!(
        digest.contains(&format!("- 12 new messages in \"Dawn bass\" ({when})")),
        "{digest}"
    );
    assert_eq!(
        digest.matches("- someone applied").count(),
        2,
        "both applicants: {digest}"
    );

    // More news within the interval waits for the next digest; the unconfirmed and the
    // never-asked get nothing but the confirmation.
    say(&app, &member, &room, "one more").await;
    settled(&app).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        smtp.mails_to(&owner_address, 3, Duration::ZERO).await.len(),
        2
    );
    assert_eq!(
        smtp.mails_to(&waiting_address, 2, Duration::ZERO)
            .await
            .len(),
        1
    );
    assert!(
        smtp.mails_to(&member_address, 1, Duration::ZERO)
            .await
            .is_empty()
    );

    // Turned off: OFF.
    let off = ok(
        &app,
        &owner,
        "mutation { disableNotificationEmail }",
        json!({}),
    )
    .await;
    assert_eq!(off["data"]["disableNotificationEmail"], "OFF");
}

/// A NEW_MESSAGES that grows keeps its id but moves to the top of its user's list: pages follow
/// the last change, never repeat or skip, and the per-user cap keeps what changed last.
#[tokio::test]
async fn a_growing_new_messages_moves_to_the_top_and_the_cap_keeps_what_changed_last() {
    let app = TestApp::spawn_with_worker(|c| {
        // One event at a time, in the events' order.
        c.notify.notify_concurrency = 1;
    })
    .await;
    app.start_relay().await;
    app.start_notifier().await;
    let (owner, owner_id) = sign_up(&app).await;
    let (a, a_id) = sign_up(&app).await;
    let post = trip(
        &app,
        &owner,
        fields("Talkative", Utc::now() + chrono::Duration::days(2), 4),
    )
    .await;
    apply(&app, &a, &post, false).await;
    let room = common::room_of(&app, &owner, &post).await;
    say(&app, &a, &room, "one").await;
    settled(&app).await;
    let mut applicants = Vec::new();
    for _ in 0..2 {
        let (token, id) = sign_up(&app).await;
        apply(&app, &token, &post, false).await;
        settled(&app).await;
        applicants.push(Some(id));
    }
    let messages_id = |list: &Value| {
        list["data"]["notifications"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "NEW_MESSAGES")
            .map(|n| n["id"].clone())
    };
    let before = ok(&app, &owner, NOTIFICATIONS, json!({})).await;
    say(&app, &a, &room, "two").await;
    settled(&app).await;

    let listed = seen(&app, &owner).await;
    let order: Vec<(&str, Option<&str>, i64)> = listed
        .iter()
        .map(|(kind, _, actor, count)| (kind.as_str(), actor.as_deref(), *count))
        .collect();
    assert_eq!(
        order,
        [
            ("NEW_MESSAGES", Some(a_id.as_str()), 2),
            ("APPLIED", applicants[1].as_deref(), 1),
            ("APPLIED", applicants[0].as_deref(), 1),
            ("APPLIED", Some(a_id.as_str()), 1),
        ]
    );
    let after = ok(&app, &owner, NOTIFICATIONS, json!({})).await;
    assert_eq!(
        messages_id(&before),
        messages_id(&after),
        "the same notification"
    );

    // One at a time: the same order, no repeats, no gaps.
    let page = "query($after: String) { notifications(first: 1, after: $after) {
      pageInfo { hasNextPage endCursor } nodes { kind count } } }";
    let mut cursor = Value::Null;
    let mut paged = Vec::new();
    loop {
        let body = ok(&app, &owner, page, json!({ "after": cursor })).await;
        let list = &body["data"]["notifications"];
        for n in list["nodes"].as_array().unwrap() {
            paged.push((
                n["kind"].as_str().unwrap().to_owned(),
                n["count"].as_i64().unwrap(),
            ));
        }
        if list["pageInfo"]["hasNextPage"] != true {
            break;
        }
        cursor = list["pageInfo"]["endCursor"].clone();
    }
    let expected: Vec<(String, i64)> = listed
        .iter()
        .map(|(kind, .., count)| (kind.clone(), *count))
        .collect();
    assert_eq!(paged, expected);

    // A cap of two keeps the room that is still talking and the latest application (by id it
    // would keep the two applications written last). The two it deletes were unread: the
    // owner's live count drops with them.
    let mut badge = common::LiveSubscription::open(
        &app,
        Some(&owner),
        "subscription { unreadNotificationCount }",
        json!({}),
    )
    .await;
    assert_eq!(next_count(&mut badge).await, 4);
    let pool = app.pool().await;
    let far = Utc::now() - chrono::Duration::days(3650);
    let deleted = fishapp_app::notify::prune(
        &fishapp_store::Database::connect_lazy(&app.config.connections.database_url, 1).unwrap(),
        fishapp_store::notify::Keep {
            read_after: far,
            per_user: 2,
            handled_after: far,
        },
        100,
    )
    .await
    .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(next_count(&mut badge).await, 2, "the count follows the cap");
    let kept: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT kind, actor_id FROM notify.notifications WHERE user_id = $1 ORDER BY recency DESC",
    )
    .bind(owner_id.parse::<i64>().unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    let id = |s: &Option<String>| s.as_deref().map(|s| s.parse::<i64>().unwrap());
    assert_eq!(
        kept,
        [
            ("NEW_MESSAGES".to_owned(), id(&Some(a_id.clone()))),
            ("APPLIED".to_owned(), id(&applicants[1])),
        ]
    );
}

/// `fishapp dead-letters` as an operator runs it: lists what the consumer gave up on, and with
/// `--retry` handles each again by the consumer's rules — removed once handled (now or before),
/// kept with one attempt more when it fails again.
#[tokio::test]
async fn an_operator_lists_and_retries_dead_letters_with_the_command() {
    use fishapp_domain::board::ApplicationStatus;
    use fishapp_domain::events::ApplicationData;
    let app = TestApp::spawn().await;
    let (_, owner_id) = sign_up(&app).await;
    let (_, applicant_id) = sign_up(&app).await;
    let pool = app.pool().await;
    let post = bare_trip(&app, &owner_id, "Retried").await;
    let subject = format!(
        "{}.board.application.created",
        app.config.relay.relay_subject_prefix
    );
    // Written as an application would write it (no relay runs here: nothing handles it).
    let good = outboxed(
        &app,
        &fishapp_store::outbox::Event::application(
            fishapp_domain::events::EventType::ApplicationCreated,
            &ApplicationData {
                id: 77,
                post_id: post,
                user_id: applicant_id.parse().unwrap(),
                status: ApplicationStatus::Applied,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
        ),
    )
    .await;
    let good_id = good["id"].as_str().unwrap().to_owned();
    let poison = poison(&app).await;
    let letter = |payload: Value, sequence: i64, error: &'static str| {
        let (pool, subject) = (pool.clone(), subject.clone());
        async move {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO notify.dead_letters
                        (event_id, subject, stream_sequence, attempts, error, payload)
                 VALUES ($1, $2, $3, 5, $4, $5) RETURNING id",
            )
            .bind(
                payload["id"]
                    .as_str()
                    .unwrap()
                    .parse::<uuid::Uuid>()
                    .unwrap(),
            )
            .bind(subject)
            .bind(sequence)
            .bind(error)
            .bind(payload.to_string())
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let good_letter = letter(good.clone(), 1, "database: pool timed out").await;
    let poison_letter = letter(poison, 2, "unreadable event").await;
    let run = |args: &'static [&'static str], id: Option<i64>| {
        let id = id.map(|id| id.to_string());
        let app = &app;
        async move {
            let mut all = vec!["dead-letters"];
            all.extend_from_slice(args);
            if let Some(id) = &id {
                all.extend(["--id", id.as_str()]);
            }
            common::run_fishapp(app, &all).await
        }
    };

    // Listed, oldest first; nothing changes.
    let (code, out, err) = run(&[], None).await;
    assert_eq!(code, Some(0), "{err}");
    let good_line = format!("dead letter {good_letter}: {subject} (event {good_id}");
    assert!(out.contains(&good_line), "{out}");
    assert!(
        out.contains(&format!("dead letter {poison_letter}: ")),
        "{out}"
    );
    assert!(out.contains("5 attempts"), "{out}");

    // Retried: the good one is handled and goes; the poison stays, one attempt more.
    let (code, out, err) = run(&["--retry"], None).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("handled: 1 notification written; removed"),
        "{out}"
    );
    assert!(out.contains("failed again: unreadable event"), "{out}");
    assert!(err.contains("1 of 2 dead letters still fail"), "{err}");
    let left: Vec<(i64, i32)> =
        sqlx::query_as("SELECT id, attempts FROM notify.dead_letters ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, [(poison_letter, 6)]);
    let owner_user: i64 = owner_id.parse().unwrap();
    let owner = || {
        let pool = pool.clone();
        async move {
            let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
                "SELECT kind, actor_id FROM notify.notifications WHERE user_id = $1",
            )
            .bind(owner_user)
            .fetch_all(&pool)
            .await
            .unwrap();
            rows
        }
    };
    let applied = vec![("APPLIED".to_owned(), Some(applicant_id.parse().unwrap()))];
    assert_eq!(owner().await, applied);

    // The same event once more (a second dead letter of it): handled before, so nothing twice.
    let again = letter(good.clone(), 3, "database: pool timed out").await;
    let (code, out, err) = run(&["--retry"], Some(again)).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("handled before; removed"), "{out}");
    assert!(
        !out.contains(&format!("dead letter {poison_letter}")),
        "only the one named: {out}"
    );
    assert_eq!(owner().await, applied);

    // An event this database no longer has (a restore took its change away): nothing to tell.
    let mut gone = good.clone();
    gone["id"] = json!(uuid::Uuid::now_v7());
    let gone_letter = letter(gone, 4, "database: pool timed out").await;
    let (code, out, err) = run(&["--retry"], Some(gone_letter)).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("no longer in this database"), "{out}");
    assert_eq!(owner().await, applied);

    // An id that is not there, a limit out of range.
    let (code, _, err) = run(&[], Some(i64::MAX)).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no dead letter"), "{err}");
    let (code, _, err) = run(&["--limit", "0"], None).await;
    assert_eq!(code, Some(2), "{err}");
}

/// After a restore that lost notifications (and the record of their events), `fishapp
/// notifier-rewind` moves the consumer back: every event since then is delivered again and
/// written once — but one whose change the restore took away tells nobody. It refuses while a
/// notifier still reads.
#[tokio::test]
async fn a_rewound_notifier_writes_what_a_restore_lost_once() {
    let app = TestApp::spawn().await;
    app.start_relay().await;
    let notifier = app.start_notifier().await;
    let (_, owner_id) = sign_up(&app).await;
    let (_, applicant_id) = sign_up(&app).await;
    let post = bare_trip(&app, &owner_id, "Restored").await;
    let since = (Utc::now() - chrono::Duration::seconds(2)).to_rfc3339();
    burst(&app, post, applicant_id.parse().unwrap(), 3).await;
    settled(&app).await;
    assert_eq!(notifications_of(&app, &owner_id).await, 3);

    // The database as a backup taken during the burst left it: the last event's change is
    // gone with its outbox row, and so are the notifications and their record.
    let pool = app.pool().await;
    sqlx::query(
        "DELETE FROM outbox.events
          WHERE id = (SELECT max(id) FROM outbox.events WHERE event_type LIKE 'board.%')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM notify.notifications")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM notify.handled")
        .execute(&pool)
        .await
        .unwrap();

    let rewind = ["notifier-rewind", "--from", since.as_str()];
    let (code, out, err) = common::run_fishapp(&app, &rewind).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("still reading"), "{err}");

    notifier.cancel();
    let forced = [&rewind[..], &["--force"]].concat();
    let (code, out, err) = common::run_fishapp(&app, &forced).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("events to deliver (it replaced"), "{out}");

    app.start_notifier().await;
    settled(&app).await;
    assert_eq!(
        notifications_of(&app, &owner_id).await,
        2,
        "each once, and none of what the restore took away"
    );
}
