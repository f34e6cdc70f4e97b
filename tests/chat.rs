//! Chat end to end: GraphQL over HTTP and WebSocket against the real stack — the API, the Apply
//! and Withdraw sagas on the Temporal dev server, Postgres, and live delivery through the outbox
//! relay and NATS JetStream. Each test has its own database, task queues and stream.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{LiveSubscription, TestApp, apply_to, error_code, post_input, sign_up, withdraw};
use serde_json::{Value, json};
use std::time::Duration;

const CREATE_POST: &str =
    "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }";
const ROOM: &str = "query($post: ID!) { room(post_id: $post) {
  id post { id } members { roomId user { id } } messages { id body roomId user { id } image { id ownerType } } } }";
const SEND: &str = "mutation($input: CreateMessageInput!) {
  createMessage(input: $input) { message { id body roomId user { id } image { id ownerId ownerType url } } } }";
const FOLLOW: &str = "subscription($input: MessageAddedInput!) {
  messageAdded(input: $input) { message { id body roomId user { id } } } }";

/// An app with a worker and a relay (live delivery needs both), a generous message limit.
async fn chat_app() -> TestApp {
    let app = TestApp::spawn_with_worker(|c| c.chat.chat_max_messages = 1_000).await;
    app.start_relay().await;
    app
}

/// An open trip of a new owner, with `applicants` new users applied: (post id, room id,
/// owner's token, applicants' tokens and application ids).
struct Trip {
    post: String,
    room: String,
    owner: String,
    owner_refresh_token: String,
    applicants: Vec<(String, Value)>,
}

async fn trip(app: &TestApp, applicants: usize) -> Trip {
    let session = common::sign_up_session(app).await;
    let owner = session.id_token;
    let body = app
        .graphql_as(
            Some(&owner),
            CREATE_POST,
            json!({ "input": post_input("Chat trip") }),
        )
        .await;
    let post = body["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    let mut joined = Vec::new();
    for _ in 0..applicants {
        let (token, _) = sign_up(app).await;
        let applied = apply_to(app, &token, &json!(post)).await;
        let id = applied["data"]["createApplyPost"]["applyPost"]["id"].clone();
        assert!(id.is_string(), "{applied}");
        joined.push((token, id));
    }
    let room = app
        .graphql_as(Some(&owner), ROOM, json!({ "post": post }))
        .await;
    let room = room["data"]["room"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{room}"))
        .to_owned();
    Trip {
        post,
        room,
        owner,
        owner_refresh_token: session.refresh_token,
        applicants: joined,
    }
}

async fn send(app: &TestApp, token: &str, room: &str, body: &str) -> Value {
    app.graphql_as(
        Some(token),
        SEND,
        json!({ "input": { "roomId": room, "body": body } }),
    )
    .await
}

fn message_id(body: &Value) -> i64 {
    body["data"]["createMessage"]["message"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"))
        .parse()
        .unwrap()
}

/// Opens `messageAdded` for `token` and waits until the server holds it (its gauge counts it).
async fn follow(app: &TestApp, token: &str, room: &str, after: Option<i64>) -> LiveSubscription {
    let before = app.metric("fishapp_chat_live_subscriptions").await;
    let mut input = json!({ "roomId": room });
    if let Some(after) = after {
        input["after"] = json!(after.to_string());
    }
    let mut live =
        LiveSubscription::open(app, Some(token), FOLLOW, json!({ "input": input })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.metric("fishapp_chat_live_subscriptions").await <= before {
        if tokio::time::Instant::now() > deadline {
            let answer = live.next(Duration::from_secs(1)).await;
            panic!("the subscription never opened: {answer:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    live
}

/// The next delivered message's body, within `within`.
async fn next_body(live: &mut LiveSubscription, within: Duration) -> Option<String> {
    let value = live.next(within).await?;
    assert_eq!(value["type"], "next", "{value}");
    assert!(value["payload"]["errors"].is_null(), "{value}");
    Some(
        value["payload"]["data"]["messageAdded"]["message"]["body"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test]
async fn members_chat_live_and_in_order() {
    let app = chat_app().await;
    let trip = trip(&app, 1).await;
    let (angler, _) = &trip.applicants[0];

    let mut theirs = follow(&app, angler, &trip.room, None).await;
    let sent = send(&app, &trip.owner, &trip.room, "  Bring waders  ").await;
    assert!(sent["errors"].is_null(), "{sent}");
    let message = &sent["data"]["createMessage"]["message"];
    assert_eq!(message["body"], "Bring waders", "trimmed");
    assert_eq!(message["roomId"], trip.room.as_str());
    assert_eq!(message["image"], Value::Null);
    assert_eq!(
        next_body(&mut theirs, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("Bring waders")
    );

    // A hundred in a row, from both sides, arrive in the order they were written.
    let mut expected = Vec::new();
    for i in 0..100 {
        let from = if i % 3 == 0 { angler } else { &trip.owner };
        let body = format!("message {i}");
        assert!(send(&app, from, &trip.room, &body).await["errors"].is_null());
        expected.push(body);
    }
    let mut received = Vec::new();
    while received.len() < expected.len() {
        match next_body(&mut theirs, Duration::from_secs(10)).await {
            Some(body) => received.push(body),
            None => break,
        }
    }
    assert_eq!(received, expected);

    // The room as a member reads it: members, and the newest page of messages, oldest first.
    let room = app
        .graphql_as(Some(angler), ROOM, json!({ "post": trip.post }))
        .await;
    assert!(room["errors"].is_null(), "{room}");
    assert_eq!(room["data"]["room"]["members"].as_array().unwrap().len(), 2);
    let page = room["data"]["room"]["messages"].as_array().unwrap();
    assert_eq!(page.len(), 50, "the default page");
    assert_eq!(page.last().unwrap()["body"], "message 99");
    assert_eq!(page[0]["body"], "message 50");
    // Scrolling back from the oldest message shown.
    let back = app
        .graphql_as(
            Some(angler),
            "query($post: ID!, $before: ID) { room(post_id: $post) { messages(before: $before, limit: 60) { body } } }",
            json!({ "post": trip.post, "before": page[0]["id"] }),
        )
        .await;
    let older = back["data"]["room"]["messages"].as_array().unwrap();
    assert_eq!(older.len(), 51, "{back}");
    assert_eq!(older[0]["body"], "Bring waders");
    assert_eq!(older[50]["body"], "message 49");
}

#[tokio::test]
async fn only_members_read_write_or_follow_a_room() {
    let app = chat_app().await;
    let trip = trip(&app, 1).await;
    let (stranger, _) = sign_up(&app).await;

    let read = app
        .graphql_as(Some(&stranger), ROOM, json!({ "post": trip.post }))
        .await;
    assert_eq!(error_code(&read), "NOT_FOUND", "{read}");
    let anonymous = app
        .graphql_as(None, ROOM, json!({ "post": trip.post }))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    let missing = app
        .graphql_as(Some(&stranger), ROOM, json!({ "post": "999999" }))
        .await;
    assert_eq!(
        error_code(&missing),
        "NOT_FOUND",
        "the same answer as a foreign room"
    );

    let written = send(&app, &stranger, &trip.room, "let me in").await;
    assert_eq!(error_code(&written), "NOT_FOUND", "{written}");
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM chat.messages")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    assert_eq!(messages, 0, "nothing written");

    // A wrong type, an out-of-range page size, a bad cursor: coded errors naming the argument.
    let member = trip.owner.as_str();
    for (query, variables, field) in [
        (ROOM, json!({ "post": "abc" }), "post_id"),
        (
            "query($post: ID!) { room(post_id: $post) { messages(limit: 1000000) { id } } }",
            json!({ "post": trip.post }),
            "limit",
        ),
        (
            "query($post: ID!) { room(post_id: $post) { messages(before: \"x\") { id } } }",
            json!({ "post": trip.post }),
            "before",
        ),
        (
            "query($post: ID!) { room(post_id: $post) { messages(before: \"1\", after: \"1\") { id } } }",
            json!({ "post": trip.post }),
            "after",
        ),
    ] {
        let body = app.graphql_as(Some(member), query, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let anonymous_follow = common::subscribe(
        &app,
        None,
        FOLLOW,
        json!({ "input": { "roomId": trip.room } }),
    )
    .await;
    assert_eq!(
        anonymous_follow[0]["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{anonymous_follow:?}"
    );
    let bad_resume = common::subscribe(
        &app,
        Some(member),
        FOLLOW,
        json!({ "input": { "roomId": trip.room, "after": "abc" } }),
    )
    .await;
    assert_eq!(
        bad_resume[0]["payload"]["errors"][0]["extensions"]["field"], "input.after",
        "{bad_resume:?}"
    );
    let anonymous_send = app
        .graphql_as(
            None,
            SEND,
            json!({ "input": { "roomId": trip.room, "body": "hi" } }),
        )
        .await;
    assert_eq!(error_code(&anonymous_send), "UNAUTHENTICATED");

    let followed = common::subscribe(
        &app,
        Some(&stranger),
        FOLLOW,
        json!({ "input": { "roomId": trip.room } }),
    )
    .await;
    assert_eq!(followed[0]["type"], "next", "{followed:?}");
    assert_eq!(
        followed[0]["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{followed:?}"
    );
}

#[tokio::test]
async fn a_member_who_withdraws_is_cut_off() {
    let app = chat_app().await;
    let trip = trip(&app, 1).await;
    let (angler, application) = &trip.applicants[0];
    let mut theirs = follow(&app, angler, &trip.room, None).await;
    assert!(send(&app, &trip.owner, &trip.room, "before").await["errors"].is_null());
    assert_eq!(
        next_body(&mut theirs, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("before")
    );

    let withdrawn = withdraw(&app, angler, application).await;
    assert_eq!(
        withdrawn["data"]["deleteApplyPost"]["success"], true,
        "{withdrawn}"
    );
    // The stream ends with a clear error once the withdrawal's event is out.
    ends_with(&mut theirs, "FORBIDDEN", Duration::from_secs(5)).await;

    let written = send(&app, angler, &trip.room, "still here?").await;
    assert_eq!(error_code(&written), "NOT_FOUND", "{written}");
    let read = app
        .graphql_as(Some(angler.as_str()), ROOM, json!({ "post": trip.post }))
        .await;
    assert_eq!(error_code(&read), "NOT_FOUND");
}

#[tokio::test]
async fn a_resumed_subscription_gets_exactly_what_it_missed() {
    let app = chat_app().await;
    let trip = trip(&app, 1).await;
    let (angler, _) = &trip.applicants[0];
    let mut first = follow(&app, angler, &trip.room, None).await;
    let seen = message_id(&send(&app, &trip.owner, &trip.room, "one").await);
    assert_eq!(
        next_body(&mut first, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("one")
    );
    drop(first);

    // Written while the client was away.
    for body in ["two", "three", "four"] {
        assert!(send(&app, &trip.owner, &trip.room, body).await["errors"].is_null());
    }
    let mut resumed = follow(&app, angler, &trip.room, Some(seen)).await;
    assert!(send(&app, &trip.owner, &trip.room, "five").await["errors"].is_null());
    let mut got = Vec::new();
    while let Some(body) = next_body(&mut resumed, Duration::from_secs(3)).await {
        got.push(body);
    }
    assert_eq!(
        got,
        ["two", "three", "four", "five"],
        "no gap, no duplicate"
    );
}

#[tokio::test]
async fn a_message_sent_through_one_api_process_reaches_a_subscriber_of_another() {
    let app = chat_app().await;
    let trip = trip(&app, 1).await;
    let (angler, _) = &trip.applicants[0];
    // A second API process on the same database, Redis and stream (no worker, no relay).
    let config = app.config.clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let deps = fishapp::app::connect_dependencies(&config, &shutdown)
        .await
        .unwrap();
    let keys = fishapp::app::token_keys(&config, fishapp::app::MissingKey::Refuse).unwrap();
    let registry = fishapp_api::metrics::new_registry();
    let second = fishapp::app::start_api(
        &config,
        deps,
        keys,
        registry.clone(),
        None,
        shutdown.clone(),
    )
    .await
    .unwrap();

    let mut theirs = LiveSubscription::open_at(
        second.addr,
        Some(angler),
        FOLLOW,
        json!({ "input": { "roomId": trip.room } }),
    )
    .await;
    let open = || {
        registry
            .gather()
            .iter()
            .find(|f| f.name() == "fishapp_chat_live_subscriptions")
            .map_or(0.0, |f| f.get_metric()[0].get_gauge().get_value())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while open() < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(send(&app, &trip.owner, &trip.room, "across processes").await["errors"].is_null());
    assert_eq!(
        next_body(&mut theirs, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("across processes")
    );
    shutdown.cancel();
}

#[tokio::test]
async fn bad_messages_are_refused_and_nothing_is_written() {
    let app = chat_app().await;
    let trip = trip(&app, 0).await;
    let owner = trip.owner.as_str();
    let cases = [
        (json!({ "roomId": trip.room, "body": "   " }), "input.body"),
        (
            json!({ "roomId": trip.room, "body": "x".repeat(1001) }),
            "input.body",
        ),
        (json!({ "roomId": trip.room }), "input"),
        (json!({ "roomId": "abc", "body": "hi" }), "input.roomId"),
        (
            json!({ "roomId": trip.room, "body": "hi", "clientMutationId": "no spaces" }),
            "input.clientMutationId",
        ),
    ];
    for (input, field) in cases {
        let body = app
            .graphql_as(Some(owner), SEND, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let missing = send(&app, owner, "999999", "hello?").await;
    assert_eq!(error_code(&missing), "NOT_FOUND");

    // Both a body and an image; and a file that is no image.
    let both = app
        .graphql_multipart(
            Some(owner),
            SEND,
            json!({ "input": { "roomId": trip.room, "body": "hi", "image": null } }),
            vec![("variables.input.image", "photo.jpg", common::jpeg(7))],
        )
        .await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT", "{both}");
    assert_eq!(both["errors"][0]["extensions"]["field"], "input");
    let not_an_image = app
        .graphql_multipart(
            Some(owner),
            SEND,
            json!({ "input": { "roomId": trip.room, "body": null, "image": null } }),
            vec![(
                "variables.input.image",
                "notes.jpg",
                b"just some text".to_vec(),
            )],
        )
        .await;
    assert_eq!(
        error_code(&not_an_image),
        "BAD_USER_INPUT",
        "{not_an_image}"
    );
    assert_eq!(
        not_an_image["errors"][0]["extensions"]["field"],
        "input.image"
    );

    let pool = app.pool().await;
    let written: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chat.messages),
                (SELECT count(*) FROM media.images WHERE owner_type = 'MESSAGE')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(written, (0, 0));
}

#[tokio::test]
async fn an_image_message_is_one_transaction_and_a_retry_returns_it() {
    let app = chat_app().await;
    let trip = trip(&app, 0).await;
    let owner = trip.owner.as_str();
    let input = json!({ "input": { "roomId": trip.room, "body": null, "image": null, "clientMutationId": "photo-1" } });
    let files = || vec![("variables.input.image", "catch.jpg", common::jpeg(9))];
    let first = app
        .graphql_multipart(Some(owner), SEND, input.clone(), files())
        .await;
    assert!(first["errors"].is_null(), "{first}");
    let message = &first["data"]["createMessage"]["message"];
    assert_eq!(message["body"], Value::Null);
    assert_eq!(message["image"]["ownerType"], "MESSAGE");
    assert_eq!(
        message["image"]["ownerId"].to_string(),
        message["id"].as_str().unwrap()
    );
    let again = app
        .graphql_multipart(Some(owner), SEND, input, files())
        .await;
    assert_eq!(
        again["data"]["createMessage"]["message"]["id"], message["id"],
        "{again}"
    );
    let pool = app.pool().await;
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chat.messages),
                (SELECT count(*) FROM media.images WHERE owner_type = 'MESSAGE'),
                (SELECT count(*) FROM outbox.events WHERE event_type = 'chat.room.message_added')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(counts, (1, 1, 1), "the retry wrote nothing");
    // The retry's upload was not kept: one display and one thumbnail rendition on disk.
    assert_eq!(app.media_files().len(), 2, "{:?}", app.media_files());
}

#[tokio::test]
async fn messages_are_rate_limited_per_user() {
    let app = TestApp::spawn_with_worker(|c| c.chat.chat_max_messages = 3).await;
    let trip = trip(&app, 0).await;
    for i in 0..3 {
        let body = send(&app, &trip.owner, &trip.room, &format!("m{i}")).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let limited = send(&app, &trip.owner, &trip.room, "one too many").await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    assert!(
        limited["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

/// Deleting the trip removes the room, its messages and their images; a subscriber hears the
/// room is gone.
#[tokio::test]
async fn the_teardown_takes_the_chat_with_it() {
    let app = chat_app().await;
    let trip = trip(&app, 1).await;
    let (angler, _) = &trip.applicants[0];
    let files = vec![("variables.input.image", "catch.jpg", common::jpeg(3))];
    let photo = app
        .graphql_multipart(
            Some(&trip.owner),
            SEND,
            json!({ "input": { "roomId": trip.room, "body": null, "image": null } }),
            files,
        )
        .await;
    assert!(photo["errors"].is_null(), "{photo}");
    let mut theirs = follow(&app, angler, &trip.room, None).await;
    let deleted = app
        .graphql_as(
            Some(&trip.owner),
            "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }",
            json!({ "input": { "id": trip.post } }),
        )
        .await;
    assert_eq!(deleted["data"]["deletePost"]["success"], true, "{deleted}");
    ends_with(&mut theirs, "NOT_FOUND", Duration::from_secs(10)).await;
    let left: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chat.rooms), (SELECT count(*) FROM chat.messages),
                (SELECT count(*) FROM media.images)",
    )
    .fetch_one(&app.pool().await)
    .await
    .unwrap();
    assert_eq!(left, (0, 0, 0));
    assert!(app.media_files().is_empty(), "{:?}", app.media_files());
}

/// A room's page of messages with their authors and images, and its members with theirs, costs
/// the same few statements however many messages the page holds.
#[tokio::test]
async fn a_page_of_messages_costs_a_constant_number_of_statements() {
    use fishapp_domain::board::PostDraft;
    use fishapp_store::{board, chat, media};
    use std::sync::atomic::Ordering;
    let (app, statements) = TestApp::spawn_counting_statements().await;
    let (owner, owner_id) = sign_up(&app).await;
    let (_, angler_id) = sign_up(&app).await;
    let (owner_id, angler_id): (i64, i64) = (owner_id.parse().unwrap(), angler_id.parse().unwrap());
    let pool = app.pool().await;
    let post = board::reserve_post_id(&pool).await.unwrap();
    let draft: PostDraft = serde_json::from_value(json!({
        "title": "Counted", "content": "A trip.", "fishing_spot_type_id": 1, "prefecture_id": 13,
        "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
        "meeting_at": chrono::Utc::now() + chrono::Duration::days(2),
        "max_apply": 3, "fish_type_ids": [3],
    }))
    .unwrap();
    board::insert_pending(&pool, post, owner_id, &draft)
        .await
        .unwrap();
    let room = chat::create_room(&pool, post, owner_id).await.unwrap();
    board::publish(&pool, post).await.unwrap();
    // A member holds a seat first, as the Apply saga does it.
    board::take_seat(&pool, post, angler_id, board::SeatWay::default())
        .await
        .unwrap();
    chat::join_room(&pool, post, angler_id).await.unwrap();
    for i in 0..60 {
        let author = if i % 2 == 0 { owner_id } else { angler_id };
        let id = uuid::Uuid::new_v4();
        let key = format!("images/{id}/display.jpg");
        let image = media::NewImage {
            id,
            owner: None,
            display_key: &key,
            thumbnail_key: &key,
            content_type: "image/jpeg",
            width: 10,
            height: 10,
            bytes: 10,
            original_name: "x.jpg",
            uploader_id: Some(author),
        };
        let body = format!("message {i}");
        let message = chat::NewMessage {
            room_id: room.id,
            user_id: author,
            body: (i % 3 != 0).then_some(body.as_str()),
            image: (i % 3 == 0).then_some(image),
            client_mutation_id: None,
        };
        assert!(matches!(
            chat::add_message(&pool, message).await.unwrap(),
            chat::Sent::New(_)
        ));
    }
    let query = "query($post: ID!, $limit: Int) { room(post_id: $post) {
        id post { id title } members { id user { id name image { id } } }
        messages(limit: $limit) { id body user { id name image { id url } } image { id url } } } }";
    let mut counts = Vec::new();
    for limit in [50, 5, 50] {
        statements.store(0, Ordering::SeqCst);
        let body = app
            .graphql_as(
                Some(&owner),
                query,
                json!({ "post": post.to_string(), "limit": limit }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let messages = body["data"]["room"]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), limit);
        assert!(messages.iter().any(|m| !m["image"].is_null()), "{body}");
        counts.push(statements.load(Ordering::SeqCst));
    }
    // The room, its post, its members, the messages, their images, and the users (members and
    // authors) with their avatars. The users and avatars go in one to a few batches, depending on
    // when the members' and the messages' loads meet the loader's batching window (on a machine
    // busy with every other test, up to 15 were seen) — never one per message: a page of 50
    // loaded row by row would be over 100 statements.
    assert!(
        counts.iter().all(|&c| (7..=20).contains(&c)),
        "7 to 20 statements whatever the page size: {counts:?}"
    );
}

/// The stream's end: an error message with this code, then `complete`.
async fn ends_with(live: &mut LiveSubscription, code: &str, within: Duration) {
    let ended = live.next(within).await.expect("the stream ends");
    assert_eq!(
        ended["payload"]["errors"][0]["extensions"]["code"], code,
        "{ended}"
    );
    let complete = live.next(Duration::from_secs(5)).await.expect("complete");
    assert_eq!(complete["type"], "complete", "{complete}");
}

/// A subscription lives no longer than the ID token it was opened with.
#[tokio::test]
async fn a_subscription_ends_when_its_id_token_expires() {
    let app = TestApp::spawn_with_worker(|c| c.accounts.id_token_ttl_secs = 8).await;
    app.start_relay().await;
    let trip = trip(&app, 0).await;
    let opened = std::time::Instant::now();
    let mut mine = follow(&app, &trip.owner, &trip.room, None).await;
    ends_with(&mut mine, "UNAUTHENTICATED", Duration::from_secs(15)).await;
    assert!(opened.elapsed() < Duration::from_secs(15));
}

/// Logging out ends the sign-in's live subscriptions too (within the revocation check).
#[tokio::test]
async fn a_subscription_ends_when_its_sign_in_is_revoked() {
    let app = chat_app().await;
    let trip = trip(&app, 0).await;
    let mut mine = follow(&app, &trip.owner, &trip.room, None).await;
    let out = app
        .graphql_as(
            Some(&trip.owner),
            "mutation($r: String) { logout(refreshToken: $r) { success } }",
            json!({ "r": trip.owner_refresh_token }),
        )
        .await;
    assert_eq!(out["data"]["logout"]["success"], true, "{out}");
    ends_with(&mut mine, "UNAUTHENTICATED", Duration::from_secs(15)).await;
}

/// A trip being torn down takes no new messages (its room and images are about to go).
#[tokio::test]
async fn a_trip_being_deleted_takes_no_messages() {
    let app = chat_app().await;
    let trip = trip(&app, 0).await;
    sqlx::query("UPDATE board.posts SET status = 'DELETING' WHERE id = $1")
        .bind(trip.post.parse::<i64>().unwrap())
        .execute(&app.pool().await)
        .await
        .unwrap();
    let refused = send(&app, &trip.owner, &trip.room, "anyone?").await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
    let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM chat.messages")
        .fetch_one(&app.pool().await)
        .await
        .unwrap();
    assert_eq!(messages, 0);
}

/// A raw graphql-transport-ws connection, initialised with `token`.
async fn raw_connection(app: &TestApp, token: &str) -> common::WebSocketClient {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut ws = common::ws_connect(app.addr, Some("graphql-transport-ws"))
        .await
        .unwrap();
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    ws
}

/// Sends `subscribe` for `id` and returns the error's reason if the server refused it at once,
/// `None` if it is open (nothing but keep-alives within a second).
async fn subscribe_on(ws: &mut common::WebSocketClient, id: &str, room: &str) -> Option<Value> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let message = json!({ "id": id, "type": "subscribe",
        "payload": { "query": FOLLOW, "variables": { "input": { "roomId": room } } } });
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout_at(deadline, ws.next()).await
    {
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["id"] == id {
            return Some(value);
        }
    }
    None
}

#[tokio::test]
async fn subscriptions_are_capped_per_connection_and_per_user() {
    let app = TestApp::spawn_with_worker(|c| {
        c.graphql.graphql_max_subscriptions_per_connection = 2;
        c.graphql.graphql_max_subscriptions_per_user = 3;
    })
    .await;
    app.start_relay().await;
    let trip = trip(&app, 0).await;
    let refused = |answer: Option<Value>| {
        let answer = answer.expect("an answer");
        assert_eq!(
            answer["payload"]["errors"][0]["extensions"]["reason"], "TOO_MANY_SUBSCRIPTIONS",
            "{answer}"
        );
    };

    let mut first = raw_connection(&app, &trip.owner).await;
    assert_eq!(subscribe_on(&mut first, "a", &trip.room).await, None);
    assert_eq!(subscribe_on(&mut first, "b", &trip.room).await, None);
    refused(subscribe_on(&mut first, "c", &trip.room).await);

    // The user's third subscription opens on another connection; the fourth is one too many.
    let mut second = raw_connection(&app, &trip.owner).await;
    assert_eq!(subscribe_on(&mut second, "a", &trip.room).await, None);
    refused(subscribe_on(&mut second, "b", &trip.room).await);

    // Closing a connection gives its places back.
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(subscribe_on(&mut second, "c", &trip.room).await, None);
}

#[tokio::test]
async fn a_socket_that_never_initialises_is_closed_with_4408() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let app = TestApp::spawn_with(|c| c.graphql.graphql_ws_init_timeout_secs = 1).await;
    let mut ws = common::ws_connect(app.addr, Some("graphql-transport-ws"))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("closed within the timeout");
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4408),
        other => panic!("expected a 4408 close: {other:?}"),
    }
}
