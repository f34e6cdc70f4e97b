//! Events keep their identity across what a database goes through — a restore from a backup, a
//! second deployment on the same NATS — and a member who left hears of it before any message
//! written after the leave. Each test does what an operator (or bad luck) does, against the real
//! stack.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{LiveSubscription, Session, TestApp, post_input, sign_up_session, wait_until_drained};
use serde_json::{Value, json};
use std::time::Duration;

const FOLLOW: &str =
    "subscription($room: ID!) { messageAdded(input: { roomId: $room }) { message { id body } } }";
const SEND: &str = "mutation($room: ID!, $body: String!) { createMessage(input: { roomId: $room, body: $body }) { message { id } } }";
const DRAIN: Duration = Duration::from_secs(60);

/// A trip of `owner`'s that `angler` joined; its post and room ids.
async fn trip(app: &TestApp, owner: &Session, angler: &Session) -> (Value, Value) {
    let created = app
        .graphql_as(
            Some(&owner.id_token),
            "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
            json!({ "input": post_input("Identity") }),
        )
        .await;
    let post = created["data"]["createPost"]["post"]["id"].clone();
    let applied = common::apply_to(app, &angler.id_token, &post).await;
    assert!(applied["errors"].is_null(), "{applied}");
    let room = common::room_of(app, &owner.id_token, &post).await;
    (post, json!(room))
}

async fn send(app: &TestApp, token: &str, room: &Value, body: &str) {
    let sent = app
        .graphql_as(Some(token), SEND, json!({ "room": room, "body": body }))
        .await;
    assert!(sent["errors"].is_null(), "{sent}");
}

/// The bodies a subscription delivers within `within` of quiet.
async fn bodies(subscription: &mut LiveSubscription, within: Duration) -> Vec<String> {
    let mut bodies = Vec::new();
    while let Some(message) = subscription.next(within).await {
        match message["payload"]["data"]["messageAdded"]["message"]["body"].as_str() {
            Some(body) => bodies.push(body.to_owned()),
            None => break,
        }
    }
    bodies
}

async fn deployment_of(app: &TestApp) -> uuid::Uuid {
    fishapp_store::outbox::deployment_id(&app.pool().await)
        .await
        .unwrap()
}

/// Drops every connection to `database_url`'s database (as a restart of Postgres would).
async fn disconnect_everyone(database_url: &str) {
    let mut admin = url::Url::parse(database_url).unwrap();
    let name = admin.path().trim_start_matches('/').to_owned();
    admin.set_path("/postgres");
    let pool = sqlx::PgPool::connect(admin.as_str()).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// What the operator did: a backup, five messages published, the database restored from the
/// backup and the app restarted on the same stream, then five new messages — every one of which
/// must reach JetStream and the live subscriber (row ids were issued again after the restore,
/// and JetStream dropped the new events as duplicates of the old ones).
#[tokio::test]
async fn after_a_restore_from_a_backup_new_events_reach_the_stream_and_subscribers() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let relay = app.start_relay().await;
    let (owner, angler) = (sign_up_session(&app).await, sign_up_session(&app).await);
    let (_post, room) = trip(&app, &owner, &angler).await;
    wait_until_drained(&app, DRAIN).await;

    let dump = std::env::temp_dir().join(format!("fishapp-backup-{}.dump", uuid::Uuid::new_v4()));
    let dumped = tokio::process::Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&app.config.connections.database_url)
        .status()
        .await
        .unwrap();
    assert!(dumped.success(), "pg_dump");
    for n in 0..5 {
        send(
            &app,
            &owner.id_token,
            &room,
            &format!("before the restore {n}"),
        )
        .await;
    }
    wait_until_drained(&app, DRAIN).await;
    let published_before = tokio::time::Instant::now();

    relay.stop.cancel();
    let (config, database) = app.stop_keeping_data().await;
    disconnect_everyone(&config.connections.database_url).await;
    let restored = tokio::process::Command::new("pg_restore")
        .args([
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--dbname",
        ])
        .arg(&config.connections.database_url)
        .arg(&dump)
        .status()
        .await
        .unwrap();
    std::fs::remove_file(&dump).ok();
    assert!(restored.success(), "pg_restore");

    // A new process reads the stream from its start, less a margin for clocks: one started
    // within it would also hear the five earlier messages again (events of rows the restore
    // took away; docs/operations.md, "Restoring Postgres").
    tokio::time::sleep_until(published_before + Duration::from_secs(6)).await;
    let app = TestApp::spawn_on_with_worker(config, database).await;
    let _relay = app.start_relay().await;
    // The restored outbox lacks the five messages' events; the stream has them.
    let pool = app.pool().await;
    let restored_messages: i64 = sqlx::query_scalar("SELECT count(*) FROM chat.messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        restored_messages, 0,
        "the backup predates the five messages"
    );
    let mut live = LiveSubscription::open(
        &app,
        Some(&angler.id_token),
        FOLLOW,
        json!({ "room": room }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..5 {
        send(
            &app,
            &owner.id_token,
            &room,
            &format!("after the restore {n}"),
        )
        .await;
    }
    let delivered = bodies(&mut live, Duration::from_secs(10)).await;
    assert_eq!(
        delivered,
        (0..5)
            .map(|n| format!("after the restore {n}"))
            .collect::<Vec<_>>(),
        "every message after the restore, live"
    );
    wait_until_drained(&app, DRAIN).await;
    let stream = common::published(&app).await;
    let after: Vec<&common::Published> = stream
        .iter()
        .filter(|m| m.envelope.event_type == "chat.room.message_added")
        .collect();
    assert_eq!(
        after.len(),
        10,
        "the five before the restore and the five after"
    );
}

/// Two deployments on one NATS with the same stream and subjects: the second's relay refuses the
/// stream, naming both deployments, and the first one's chat never reaches the second's
/// subscribers (their rooms have the same ids).
#[tokio::test]
async fn a_second_deployment_on_the_same_stream_is_refused_and_sees_nothing_of_the_first() {
    let shared = uuid::Uuid::new_v4().simple().to_string();
    let same_stream = |c: &mut fishapp::config::Config| {
        c.relay.relay_stream = format!("T_SHARED_{shared}");
        c.relay.relay_subject_prefix = format!("test-shared-{shared}");
    };
    let first = TestApp::spawn_with_worker(same_stream).await;
    let second = TestApp::spawn_with_worker(same_stream).await;
    let _relay = first.start_relay().await;
    // The first deployment's relay made the stream (and owns it).
    let jetstream = first.jetstream().await;
    for _ in 0..300 {
        if jetstream
            .get_stream(&first.config.relay.relay_stream)
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let nats = fishapp_relaylog::nats::connect(&second.config.connections.nats_url)
        .await
        .unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        fishapp::app::run_relay(
            &second.config,
            nats,
            &fishapp_api::metrics::new_registry(),
            tokio_util::sync::CancellationToken::new(),
        ),
    )
    .await
    .expect("the relay stops at once")
    .expect_err("the relay refuses the stream");
    let text = format!("{refused:#}");
    for named in [
        first.config.relay.relay_stream.clone(),
        deployment_of(&first).await.to_string(),
        deployment_of(&second).await.to_string(),
    ] {
        assert!(text.contains(&named), "{named} is not named in: {text}");
    }

    let (owner1, angler1) = (sign_up_session(&first).await, sign_up_session(&first).await);
    let (owner2, angler2) = (
        sign_up_session(&second).await,
        sign_up_session(&second).await,
    );
    let (_, room1) = trip(&first, &owner1, &angler1).await;
    let (_, room2) = trip(&second, &owner2, &angler2).await;
    assert_eq!(room1, room2, "both databases issued the same room id");
    let mut theirs = LiveSubscription::open(
        &second,
        Some(&owner2.id_token),
        FOLLOW,
        json!({ "room": room2 }),
    )
    .await;
    let mut ours = LiveSubscription::open(
        &first,
        Some(&angler1.id_token),
        FOLLOW,
        json!({ "room": room1 }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(
        &first,
        &owner1.id_token,
        &room1,
        "for the first deployment only",
    )
    .await;
    assert_eq!(
        bodies(&mut ours, Duration::from_secs(10))
            .await
            .first()
            .map(String::as_str),
        Some("for the first deployment only")
    );
    assert!(
        bodies(&mut theirs, Duration::from_secs(2)).await.is_empty(),
        "another deployment's message"
    );
}

/// A member who withdraws hears that they left before any message written after the withdrawal
/// — even when the relay holds the room's events back (a failed row) while other aggregates'
/// events go out. (With the leave on an aggregate of its own, the message went out first.)
#[tokio::test]
async fn a_withdrawn_member_receives_nothing_written_after_the_withdrawal() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let relay = app.start_relay().await;
    let (owner, angler) = (sign_up_session(&app).await, sign_up_session(&app).await);
    let (post, room) = trip(&app, &owner, &angler).await;
    wait_until_drained(&app, DRAIN).await;
    let mut live = LiveSubscription::open(
        &app,
        Some(&angler.id_token),
        FOLLOW,
        json!({ "room": room }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&app, &owner.id_token, &room, "before").await;
    assert_eq!(bodies(&mut live, Duration::from_secs(10)).await, ["before"]);

    // With the relay stopped: the withdrawal, then a message; then the leave's event is made to
    // fail, as a refused event would (an operator clears it later).
    relay.stop.cancel();
    relay.task.await.unwrap();
    let application = app
        .graphql_as(
            None,
            "query($id: ID!) { post(id: $id) { applyPosts { id } } }",
            json!({ "id": post }),
        )
        .await["data"]["post"]["applyPosts"][0]["id"]
        .clone();
    let withdrawn = common::withdraw(&app, &angler.id_token, &application).await;
    assert_eq!(
        withdrawn["data"]["deleteApplyPost"]["success"], true,
        "{withdrawn}"
    );
    send(&app, &owner.id_token, &room, "after").await;
    let pool = app.pool().await;
    let failed = sqlx::query(
        "UPDATE outbox.pending SET failed_at = now(), last_error = 'held back by the test'
          WHERE id IN (SELECT id FROM outbox.events WHERE event_type = 'chat.room.member_left')",
    )
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(failed, 1);
    let _relay = app.start_relay().await;
    // The board's events go out; the room's wait behind the failed row.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        bodies(&mut live, Duration::from_secs(1)).await.is_empty(),
        "nothing of the room while its events are held back"
    );
    // Cleared: the leave, then the message, in the room's order. The subscription ends first.
    sqlx::query("UPDATE outbox.pending SET failed_at = NULL, last_error = NULL")
        .execute(&pool)
        .await
        .unwrap();
    let mut delivered = Vec::new();
    let mut ended = None;
    while let Some(message) = live.next(Duration::from_secs(10)).await {
        match message["payload"]["data"]["messageAdded"]["message"]["body"].as_str() {
            Some(body) => delivered.push(body.to_owned()),
            None => {
                ended = Some(message);
                break;
            }
        }
    }
    assert!(
        delivered.is_empty(),
        "delivered after the withdrawal: {delivered:?}"
    );
    let ended = ended.expect("the subscription ends");
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{ended}"
    );
}
