//! The board end to end: GraphQL over HTTP, the sagas on the real Temporal dev server with a
//! real worker, Postgres and the local object store. Each test has its own database, task
//! queues and media directory.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{
    TestApp, apply_to, error_code, free_port, jpeg as photo, post_input, sign_up, subscribe,
    withdraw,
};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreatePostInput!) {
  createPost(input: $input) {
    sagaId
    post { id title status fishTypeIds maxApply user { id name } images { id ownerType ownerId url } }
  }
}";

const UPDATE: &str = "mutation($input: UpdatePostInput!) {
  updatePost(input: $input) { post { id title maxApply fishTypeIds images { id } } }
}";

async fn create_post(app: &TestApp, token: &str, input: Value, images: Vec<Vec<u8>>) -> Value {
    let files: Vec<(String, String, Vec<u8>)> = images
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            (
                format!("variables.input.images.{i}"),
                format!("p{i}.jpg"),
                bytes,
            )
        })
        .collect();
    let mut input = input;
    if !files.is_empty() {
        input["images"] = json!(vec![Value::Null; files.len()]);
    }
    let files = files
        .iter()
        .map(|(path, name, bytes)| (path.as_str(), name.as_str(), bytes.clone()))
        .collect();
    app.graphql_multipart(Some(token), CREATE, json!({ "input": input }), files)
        .await
}

/// Rows of the board, chat, media and outbox tables: what "as before" means.
async fn footprint(app: &TestApp) -> [i64; 6] {
    let pool = app.pool().await;
    let mut counts = [0; 6];
    for (i, table) in [
        "board.posts",
        "board.post_fish_types",
        "chat.rooms",
        "chat.members",
        "media.images",
        "outbox.events",
    ]
    .iter()
    .enumerate()
    {
        counts[i] = sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
    }
    counts
}

async fn event_types(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM outbox.events ORDER BY id")
        .fetch_all(&app.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn create_post_runs_the_saga_and_publishes_the_post() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, user_id) = sign_up(&app).await;
    let body = create_post(
        &app,
        &token,
        post_input("Dawn bass"),
        vec![photo(1), photo(2)],
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let payload = &body["data"]["createPost"];
    let post = &payload["post"];
    assert_eq!(post["status"], "OPEN", "{body}");
    // Codes are the original's `ID`s: strings on the way out.
    assert_eq!(post["fishTypeIds"], json!(["3", "12"]));
    assert_eq!(post["user"]["id"], user_id.as_str());
    let images = post["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|i| i["ownerType"] == "POST"
        && i["ownerId"].as_i64().map(|n| n.to_string()).as_deref() == post["id"].as_str()));
    let saga_id = payload["sagaId"].as_str().unwrap();
    let prefix = &app.config.temporal.temporal_task_queue_prefix;
    assert!(
        saga_id.starts_with(&format!("{prefix}/post-create/{user_id}/")),
        "{saga_id}"
    );

    // The room exists with the owner in it; the events were written with the changes.
    let pool = app.pool().await;
    let post_id: i64 = post["id"].as_str().unwrap().parse().unwrap();
    let members: Vec<i64> = sqlx::query_scalar(
        "SELECT m.user_id FROM chat.members m JOIN chat.rooms r ON r.id = m.room_id WHERE r.post_id = $1",
    )
    .bind(post_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(members, vec![user_id.parse::<i64>().unwrap()]);
    assert_eq!(
        event_types(&app).await,
        ["chat.room.created", "board.post.published"]
    );

    // Its owner sees the saga; nobody else does.
    let saga = app
        .graphql_as(
            Some(&token),
            "query($id: String!) { saga(id: $id) { id type status postId } }",
            json!({ "id": saga_id }),
        )
        .await;
    assert_eq!(
        saga["data"]["saga"],
        json!({ "id": saga_id, "type": "CreatePostWorkflow", "status": "COMPLETED", "postId": post["id"] })
    );
    let (stranger, _) = sign_up(&app).await;
    let theirs = app
        .graphql_as(
            Some(&stranger),
            "query($id: String!) { saga(id: $id) { id } }",
            json!({ "id": saga_id }),
        )
        .await;
    assert_eq!(error_code(&theirs), "NOT_FOUND");

    // Anyone reads it.
    let read = app
        .graphql(&format!(
            "{{ post(id: \"{post_id}\") {{ title images {{ url }} }} }}"
        ))
        .await;
    assert_eq!(read["data"]["post"]["title"], "Dawn bass", "{read}");
}

#[tokio::test]
async fn another_deployments_saga_is_not_found_even_for_the_same_user_id() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, user_id) = sign_up(&app).await;
    let body = create_post(&app, &token, post_input("Ours"), vec![]).await;
    let saga_id = body["data"]["createPost"]["sagaId"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second deployment on the same Temporal namespace: its own database and prefix, and
    // (both databases being fresh) a user with the same id.
    let other = TestApp::spawn().await;
    let (other_token, other_user_id) = sign_up(&other).await;
    assert_eq!(other_user_id, user_id, "both databases number users alike");
    let theirs = other
        .graphql_as(
            Some(&other_token),
            "query($id: String!) { saga(id: $id) { id } }",
            json!({ "id": saga_id }),
        )
        .await;
    assert_eq!(error_code(&theirs), "NOT_FOUND", "{theirs}");
}

#[tokio::test]
async fn a_step_that_keeps_failing_is_reported_in_our_words_and_undone() {
    // Retryable failures past the forward steps' five attempts: the saga gives up and
    // compensates; the user reads why in our words, not the failure's own text.
    let app = TestApp::spawn_with_worker(|c| {
        c.diagnostics.fault_injection = vec!["post.publish@10".to_owned()]
    })
    .await;
    let (token, _) = sign_up(&app).await;
    let before = footprint(&app).await;
    let body = create_post(&app, &token, post_input("Flaky"), vec![]).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("kept failing"), "{message}");
    assert!(!message.contains("injected"), "{message}");
    assert_eq!(footprint(&app).await, before, "rows left behind");
}

#[tokio::test]
async fn post_creations_are_limited_per_user() {
    let app = TestApp::spawn_with_worker(|c| c.board.board_max_posts_per_hour = 1).await;
    let (token, _) = sign_up(&app).await;
    let first = create_post(&app, &token, post_input("One"), vec![]).await;
    assert!(first["errors"].is_null(), "{first}");
    let second = create_post(&app, &token, post_input("Two"), vec![]).await;
    assert_eq!(error_code(&second), "RATE_LIMITED", "{second}");
    // Another user has a limit of their own.
    let (other, _) = sign_up(&app).await;
    let theirs = create_post(&app, &other, post_input("Mine"), vec![]).await;
    assert!(theirs["errors"].is_null(), "{theirs}");
}

/// Applying and changing a post start sagas and tell other people: an apply-and-withdraw loop
/// or a post moved back and forth is bounded per user, before any of that work.
#[tokio::test]
async fn applications_and_post_changes_are_limited_per_user() {
    let app = TestApp::spawn_with_worker(|c| {
        c.board.board_max_applications_per_hour = 2;
        c.board.board_max_post_changes_per_hour = 1;
    })
    .await;
    let (owner, _) = sign_up(&app).await;
    let post = open_post(&app, &owner, "Limited", vec![]).await;
    let post_id: i64 = post["id"].as_str().unwrap().parse().unwrap();
    let (angler, _) = sign_up(&app).await;

    // Apply, withdraw, apply again: the third application of the hour is refused, and
    // nothing of it is written.
    let applied = apply_to(&app, &angler, &post["id"]).await;
    assert!(applied["errors"].is_null(), "{applied}");
    let withdrawn = withdraw(
        &app,
        &angler,
        &applied["data"]["createApplyPost"]["applyPost"]["id"],
    )
    .await;
    assert!(withdrawn["errors"].is_null(), "{withdrawn}");
    let again = apply_to(&app, &angler, &post["id"]).await;
    assert!(again["errors"].is_null(), "{again}");
    let third = apply_to(&app, &angler, &post["id"]).await;
    assert_eq!(error_code(&third), "RATE_LIMITED", "{third}");
    assert!(
        third["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0,
        "{third}"
    );
    let pool = app.pool().await;
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM board.applications WHERE post_id = $1")
            .bind(post_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows, 1, "the refused application wrote nothing");
    // Another applicant has a limit of their own.
    let (other, _) = sign_up(&app).await;
    let theirs = apply_to(&app, &other, &post["id"]).await;
    assert!(theirs["errors"].is_null(), "{theirs}");

    let changed = update_post(&app, &owner, update_input(&post, "Moved"), vec![]).await;
    assert!(changed["errors"].is_null(), "{changed}");
    let twice = update_post(&app, &owner, update_input(&post, "Moved back"), vec![]).await;
    assert_eq!(error_code(&twice), "RATE_LIMITED", "{twice}");
    let title: String = sqlx::query_scalar("SELECT title FROM board.posts WHERE id = $1")
        .bind(post_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(title, "Moved", "the refused change changed nothing");
}

/// A failure injected at `step` leaves every table and the object store as they were.
async fn create_fails_cleanly_at(step: &str) {
    let app =
        TestApp::spawn_with_worker(|c| c.diagnostics.fault_injection = vec![step.to_owned()]).await;
    let (token, _) = sign_up(&app).await;
    let before = footprint(&app).await;
    let files_before = app.media_files().len();
    let body = create_post(&app, &token, post_input("Doomed"), vec![photo(3)]).await;
    assert_eq!(error_code(&body), "CONFLICT", "{step}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("injected fault"), "{step}: {message}");
    assert_eq!(footprint(&app).await, before, "{step}: rows left behind");
    assert_eq!(
        app.media_files().len(),
        files_before,
        "{step}: objects left behind"
    );
}

#[tokio::test]
async fn create_post_failing_at_create_pending_leaves_nothing() {
    create_fails_cleanly_at("post.create_pending").await;
}

#[tokio::test]
async fn create_post_failing_at_create_room_leaves_nothing() {
    create_fails_cleanly_at("chat.create_room").await;
}

#[tokio::test]
async fn create_post_failing_at_attach_images_leaves_nothing() {
    create_fails_cleanly_at("media.attach_images").await;
}

#[tokio::test]
async fn create_post_failing_at_publish_leaves_nothing() {
    create_fails_cleanly_at("post.publish").await;
}

#[tokio::test]
async fn a_retried_create_post_returns_the_same_post() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, _) = sign_up(&app).await;
    let mut input = post_input("Once only");
    input["clientMutationId"] = json!("retry-me-1");
    let first = create_post(&app, &token, input.clone(), vec![photo(4)]).await;
    let second = create_post(&app, &token, input, vec![photo(4)]).await;
    assert!(first["errors"].is_null(), "{first}");
    assert!(second["errors"].is_null(), "{second}");
    assert_eq!(
        first["data"]["createPost"]["post"]["id"],
        second["data"]["createPost"]["post"]["id"]
    );
    assert_eq!(
        first["data"]["createPost"]["sagaId"],
        second["data"]["createPost"]["sagaId"]
    );
    let [posts, _, rooms, _, images, _] = footprint(&app).await;
    assert_eq!(
        (posts, rooms, images),
        (1, 1, 1),
        "one saga ran; the retry's upload was discarded"
    );
    assert_eq!(app.media_files().len(), 2, "one image's two renditions");
}

#[tokio::test]
async fn without_temporal_create_post_is_unavailable_and_writes_nothing() {
    let dead = free_port().await;
    let app = TestApp::spawn_with(|c| {
        c.temporal.temporal_address = url::Url::parse(&format!("http://127.0.0.1:{dead}")).unwrap();
    })
    .await;
    let (token, _) = sign_up(&app).await;
    let before = footprint(&app).await;
    let body = create_post(&app, &token, post_input("Nowhere"), vec![photo(5)]).await;
    assert_eq!(error_code(&body), "UNAVAILABLE", "{body}");
    assert_eq!(footprint(&app).await, before);
    assert!(app.media_files().is_empty());
}

#[tokio::test]
async fn bad_post_input_names_the_field() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, _) = sign_up(&app).await;
    let cases = [
        ("title", json!(""), "input.title"),
        ("prefectureId", json!(48), "input.prefectureId"),
        ("prefectureId", json!("tokyo"), "input.prefectureId"),
        ("fishingSpotTypeId", json!(0), "input.fishingSpotTypeId"),
        ("fishingSpotTypeId", json!("4x"), "input.fishingSpotTypeId"),
        ("fishTypeIds", json!([3, 96]), "input.fishTypeIds.1"),
        ("fishTypeIds", json!(["3", "salmon"]), "input.fishTypeIds.1"),
        ("fishTypeIds", json!([]), "input.fishTypeIds"),
        ("maxApply", json!(0), "input.maxApply"),
        (
            "meetingAt",
            json!("2020-01-01T00:00:00Z"),
            "input.meetingAt",
        ),
        ("meetingPlaceId", json!("short"), "input.meetingPlaceId"),
        (
            "clientMutationId",
            json!("no spaces please"),
            "input.clientMutationId",
        ),
    ];
    for (key, value, field) in cases {
        let mut input = post_input("Bad");
        input[key] = value;
        let body = create_post(&app, &token, input, vec![]).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{key}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{key}: {body}"
        );
    }
    let too_many = create_post(
        &app,
        &token,
        post_input("Many"),
        (0..6).map(photo).collect(),
    )
    .await;
    assert_eq!(error_code(&too_many), "BAD_USER_INPUT", "{too_many}");
    assert_eq!(too_many["errors"][0]["extensions"]["field"], "input.images");
    assert_eq!(footprint(&app).await[0], 0);
    assert!(app.media_files().is_empty(), "nothing kept");
    let anonymous = app
        .graphql_as(None, CREATE, json!({ "input": post_input("Anon") }))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

async fn open_post(app: &TestApp, token: &str, title: &str, images: Vec<Vec<u8>>) -> Value {
    let body = create_post(app, token, post_input(title), images).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["createPost"]["post"].clone()
}

fn update_input(post: &Value, title: &str) -> Value {
    let mut input = post_input(title);
    input["id"] = post["id"].clone();
    input["fishTypeIds"] = json!([40]);
    input["maxApply"] = json!(5);
    // Image ids are integers on the way in (`[Int!]`), as the original's.
    if let Some(image_id) = post["images"][0]["id"].as_str() {
        input["imageIdsToDelete"] = json!([image_id.parse::<i64>().unwrap()]);
    }
    input
}

async fn update_post(app: &TestApp, token: &str, input: Value, images: Vec<Vec<u8>>) -> Value {
    let mut input = input;
    let files: Vec<(String, Vec<u8>)> = images
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("variables.input.images.{i}"), b))
        .collect();
    input["images"] = json!(vec![Value::Null; files.len()]);
    let files = files
        .iter()
        .map(|(path, bytes)| (path.as_str(), "new.jpg", bytes.clone()))
        .collect();
    app.graphql_multipart(Some(token), UPDATE, json!({ "input": input }), files)
        .await
}

#[tokio::test]
async fn update_post_changes_fields_and_images() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, _) = sign_up(&app).await;
    let post = open_post(&app, &token, "Before", vec![photo(6), photo(7)]).await;
    let kept = post["images"][1]["id"].clone();
    let body = update_post(&app, &token, update_input(&post, "After"), vec![photo(8)]).await;
    assert!(body["errors"].is_null(), "{body}");
    let updated = &body["data"]["updatePost"]["post"];
    assert_eq!(updated["title"], "After");
    assert_eq!(updated["maxApply"], 5);
    assert_eq!(updated["fishTypeIds"], json!(["40"]));
    let ids: Vec<&Value> = updated["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids.len(), 2, "{body}");
    assert!(ids.contains(&&kept));
    assert!(!ids.contains(&&post["images"][0]["id"]));
    assert_eq!(
        app.media_files().len(),
        4,
        "two images, two renditions each"
    );

    // Only the owner may.
    let (stranger, _) = sign_up(&app).await;
    let theirs = update_post(&app, &stranger, update_input(&post, "Mine now"), vec![]).await;
    assert_eq!(error_code(&theirs), "FORBIDDEN", "{theirs}");

    // Another post's image, or no image at all, is not this post's to delete.
    let other = open_post(&app, &token, "Other", vec![photo(9)]).await;
    let others_image: i64 = other["images"][0]["id"].as_str().unwrap().parse().unwrap();
    for wrong in [others_image, 999_999] {
        let mut input = update_input(updated, "Again");
        input["imageIdsToDelete"] = json!([wrong]);
        let body = update_post(&app, &token, input, vec![]).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.imageIdsToDelete.0"
        );
    }
}

/// A failure injected at `step` of the update restores the post as it was.
async fn update_fails_cleanly_at(step: &str) {
    let app =
        TestApp::spawn_with_worker(|c| c.diagnostics.fault_injection = vec![step.to_owned()]).await;
    let (token, _) = sign_up(&app).await;
    let post = open_post(&app, &token, "Stable", vec![photo(9)]).await;
    let query = format!(
        "{{ post(id: {}) {{ title maxApply fishTypeIds content meetingAt images {{ id }} }} }}",
        post["id"]
    );
    let before = app.graphql(&query).await;
    let footprint_before = footprint(&app).await;
    let files_before = app.media_files().len();
    let body = update_post(
        &app,
        &token,
        update_input(&post, "Changed"),
        vec![photo(10)],
    )
    .await;
    assert_eq!(error_code(&body), "CONFLICT", "{step}: {body}");
    assert_eq!(
        app.graphql(&query).await,
        before,
        "{step}: the post changed"
    );
    let mut after = footprint(&app).await;
    // An update of an OPEN post writes `post.updated`, and its compensation writes another.
    after[5] = footprint_before[5];
    assert_eq!(after, footprint_before, "{step}: rows changed");
    assert_eq!(
        app.media_files().len(),
        files_before,
        "{step}: objects changed"
    );
}

#[tokio::test]
async fn update_post_failing_at_update_fields_changes_nothing() {
    update_fails_cleanly_at("UpdatePostWorkflow/post.update_fields").await;
}

#[tokio::test]
async fn update_post_failing_at_attach_images_changes_nothing() {
    update_fails_cleanly_at("UpdatePostWorkflow/media.attach_images").await;
}

#[tokio::test]
async fn update_post_failing_at_delete_images_changes_nothing() {
    update_fails_cleanly_at("UpdatePostWorkflow/media.delete_images").await;
}

#[tokio::test]
async fn delete_post_tears_everything_down() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, _) = sign_up(&app).await;
    let post = open_post(&app, &token, "Short-lived", vec![photo(11)]).await;
    let (stranger, _) = sign_up(&app).await;
    let delete = "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }";
    let input = json!({ "input": { "id": post["id"] } });
    let theirs = app.graphql_as(Some(&stranger), delete, input.clone()).await;
    assert_eq!(error_code(&theirs), "FORBIDDEN");

    let body = app.graphql_as(Some(&token), delete, input).await;
    assert_eq!(body["data"]["deletePost"]["success"], true, "{body}");
    let [posts, fish, rooms, members, images, _] = footprint(&app).await;
    assert_eq!((posts, fish, rooms, members, images), (0, 0, 0, 0, 0));
    assert!(app.media_files().is_empty());
    let events = event_types(&app).await;
    assert_eq!(
        &events[events.len() - 2..],
        ["chat.room.deleted", "board.post.deleted"]
    );
    let gone = app
        .graphql(&format!("{{ post(id: {}) {{ id }} }}", post["id"]))
        .await;
    assert_eq!(error_code(&gone), "NOT_FOUND");
}

/// The id of the first post the create saga has written and not yet published.
async fn first_pending_post(app: &TestApp) -> i64 {
    let pool = app.pool().await;
    loop {
        let pending: Option<i64> =
            sqlx::query_scalar("SELECT id FROM board.posts WHERE status = 'PENDING' LIMIT 1")
                .fetch_optional(&pool)
                .await
                .unwrap();
        if let Some(id) = pending {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn update_and_delete_during_the_create_saga_wait_for_it_and_leave_nothing_behind() {
    // The room step fails twice (retried after 1 s, then 2 s), so each post stays PENDING for
    // a few seconds after its row is written: long enough for its owner to change or delete it.
    let app = TestApp::spawn_with_worker(|c| {
        c.diagnostics.fault_injection = vec!["CreatePostWorkflow/chat.create_room@2".to_owned()];
    })
    .await;
    let (token, _) = sign_up(&app).await;
    let delete = "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }";

    // Changed while it is being created: the change waits, then applies to the open post.
    let creating = create_post(&app, &token, post_input("Racing"), vec![photo(21)]);
    let updating = async {
        let id = first_pending_post(&app).await;
        let body = update_post(
            &app,
            &token,
            update_input(&json!({ "id": id.to_string() }), "Renamed"),
            vec![],
        )
        .await;
        (id, body)
    };
    let (created, (id, updated)) = tokio::join!(creating, updating);
    assert!(
        created["errors"].is_null(),
        "the create saga finished: {created}"
    );
    assert!(updated["errors"].is_null(), "{updated}");
    assert_eq!(updated["data"]["updatePost"]["post"]["title"], "Renamed");
    let events = event_types(&app).await;
    let published = events.iter().position(|e| e == "board.post.published");
    let changed = events.iter().position(|e| e == "board.post.updated");
    assert!(
        matches!((published, changed), (Some(p), Some(c)) if p < c),
        "published, then changed: {events:?}"
    );

    // Deleted while it is being created: the teardown waits, then removes everything.
    let delete_input = json!({ "input": { "id": id.to_string() } });
    let gone = app.graphql_as(Some(&token), delete, delete_input).await;
    assert_eq!(gone["data"]["deletePost"]["success"], true, "{gone}");
    let creating = create_post(&app, &token, post_input("Doomed"), vec![photo(22)]);
    let deleting = async {
        let id = first_pending_post(&app).await;
        app.graphql_as(
            Some(&token),
            delete,
            json!({ "input": { "id": id.to_string() } }),
        )
        .await
    };
    let (created, deleted) = tokio::join!(creating, deleting);
    assert!(
        created["errors"].is_null(),
        "the create saga finished: {created}"
    );
    assert_eq!(deleted["data"]["deletePost"]["success"], true, "{deleted}");
    let [posts, fish, rooms, members, images, _] = footprint(&app).await;
    assert_eq!((posts, fish, rooms, members, images), (0, 0, 0, 0, 0));
    assert!(app.media_files().is_empty());
    let events = event_types(&app).await;
    assert_eq!(
        &events[events.len() - 3..],
        [
            "board.post.published",
            "chat.room.deleted",
            "board.post.deleted"
        ],
        "the teardown came after the publication: {events:?}"
    );
}

#[tokio::test]
async fn past_the_wait_create_post_answers_pending_and_the_subscription_delivers_the_result() {
    // A wait so short that createPost answers before its saga is done.
    let app = TestApp::spawn_with_worker(|c| c.board.board_saga_wait_ms = 1).await;
    let (token, _) = sign_up(&app).await;
    let body = create_post(&app, &token, post_input("Later"), vec![photo(12)]).await;
    assert!(body["errors"].is_null(), "{body}");
    let payload = &body["data"]["createPost"];
    assert_eq!(payload["post"]["status"], "PENDING", "{body}");
    let saga_id = payload["sagaId"].as_str().unwrap();

    let query = "subscription($input: CreatePostResultInput!) {
        createPostResult(input: $input) { post { id status } error } }";
    let input = json!({ "input": { "sagaId": saga_id } });
    let messages = subscribe(&app, Some(&token), query, input.clone()).await;
    assert_eq!(messages.len(), 2, "one result, then complete: {messages:?}");
    assert_eq!(messages[0]["type"], "next");
    let result = &messages[0]["payload"]["data"]["createPostResult"];
    assert_eq!(result["post"]["id"], payload["post"]["id"], "{messages:?}");
    assert_eq!(result["post"]["status"], "OPEN");
    assert!(result["error"].is_null());
    assert_eq!(messages[1]["type"], "complete");

    // Someone else's saga is not theirs to follow.
    let (stranger, _) = sign_up(&app).await;
    let theirs = subscribe(&app, Some(&stranger), query, input).await;
    let errors = theirs
        .iter()
        .find_map(|m| {
            let errors = if m["type"] == "error" {
                &m["payload"]
            } else {
                &m["payload"]["errors"]
            };
            errors.as_array().cloned()
        })
        .unwrap_or_else(|| panic!("an error: {theirs:?}"));
    assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{theirs:?}");
}

#[tokio::test]
async fn a_saga_interrupted_by_a_worker_stop_finishes_once_on_another_worker() {
    use fishapp::worker::Queue;
    let app = TestApp::spawn_with(|c| c.board.board_saga_wait_ms = 1).await;
    let (token, _) = sign_up(&app).await;
    // The first worker serves no media queue: the saga runs its database steps (local
    // activities on the workflow's worker) and stops at the image step.
    let first = tokio_util::sync::CancellationToken::new();
    let first_worker =
        app.start_worker(first.clone(), &[Queue::Workflows, Queue::Post, Queue::Chat]);
    let body = create_post(&app, &token, post_input("Interrupted"), vec![photo(13)]).await;
    assert!(body["errors"].is_null(), "{body}");
    let post_id: i64 = body["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pool = app.pool().await;
    let rooms = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chat.rooms")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while rooms(pool.clone()).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the database steps never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        post_status(&pool, post_id).await.as_deref(),
        Some("PENDING")
    );
    first.cancel();
    tokio::task::spawn_blocking(move || first_worker.join())
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // A new worker on every queue picks the saga up where it stopped.
    let second = tokio_util::sync::CancellationToken::new();
    let _second_worker = app.start_worker(second.clone(), &Queue::ALL);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while post_status(&pool, post_id).await.as_deref() != Some("OPEN") {
        assert!(tokio::time::Instant::now() < deadline, "never published");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    second.cancel();
    assert_created_once(&app, 1).await;
}

/// One post, one room with one member, `images` images, and one event per step: a CreatePost
/// saga whose every step ran once.
async fn assert_created_once(app: &TestApp, images: i64) {
    let [posts, _, rooms, members, stored, _] = footprint(app).await;
    assert_eq!(
        (posts, rooms, members, stored),
        (1, 1, 1, images),
        "every step ran once"
    );
    assert_eq!(
        event_types(app).await,
        ["chat.room.created", "board.post.published"],
        "one event per step"
    );
}

/// A post's status, `None` once it is gone (or before it was written).
async fn post_status(pool: &sqlx::PgPool, post_id: i64) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM board.posts WHERE id = $1")
        .bind(post_id)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// A worker killed (SIGKILL) in the middle of a local step — the room step, failing and retrying
/// on that worker: the step's result was never recorded, so once Temporal gives the workflow
/// task up (its 10 s timeout), the next worker runs the step again and the saga ends with every
/// step done once. (A graceful stop is no test of this: the SDK lets a local step in flight finish
/// first, retries included.)
#[tokio::test]
async fn a_saga_killed_inside_a_local_step_finishes_once_on_another_worker() {
    use fishapp::worker::Queue;
    let app = TestApp::spawn_with(|c| c.board.board_saga_wait_ms = 1).await;
    let (token, _) = sign_up(&app).await;
    // A worker process whose room step fails its first four attempts (retried after 1, 2 and
    // 4 s): it is inside that step when it is killed.
    let mut first = common::worker_process(&app, "CreatePostWorkflow/chat.create_room@4");
    // The API's own Temporal connection may still be coming up on a busy machine.
    app.wait_for_readiness(200, std::time::Duration::from_secs(30))
        .await;
    let body = create_post(&app, &token, post_input("Killed mid-step"), vec![]).await;
    assert!(body["errors"].is_null(), "{body}");
    let post_id: i64 = body["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pool = app.pool().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while post_status(&pool, post_id).await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first step never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Inside the room step's retries.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert_eq!(
        post_status(&pool, post_id).await.as_deref(),
        Some("PENDING"),
        "killed inside the room step"
    );

    let second = tokio_util::sync::CancellationToken::new();
    let _second_worker = app.start_worker(second.clone(), &Queue::ALL);
    let taking_over = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while post_status(&pool, post_id).await.as_deref() != Some("OPEN") {
        assert!(tokio::time::Instant::now() < deadline, "never published");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eprintln!(
        "the second worker finished the saga {:?} after it started",
        taking_over.elapsed()
    );
    second.cancel();
    assert_created_once(&app, 0).await;
}

#[tokio::test]
async fn trips_whose_meeting_time_passed_are_closed_by_the_lifecycle_workflow() {
    use fishapp_workflows::board::ClosePastPostsWorkflow;
    use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, _) = sign_up(&app).await;
    let past = open_post(&app, &token, "Yesterday", vec![]).await;
    let future = open_post(&app, &token, "Tomorrow", vec![]).await;
    let pool = app.pool().await;
    sqlx::query("UPDATE board.posts SET meeting_at = now() - interval '1 hour' WHERE id = $1")
        .bind(past["id"].as_str().unwrap().parse::<i64>().unwrap())
        .execute(&pool)
        .await
        .unwrap();

    let (temporal, client) = app.temporal().await;
    let queues = temporal.settings().task_queues.clone();
    let options = WorkflowStartOptions::new(
        queues.workflows.clone(),
        format!(
            "{}/close-test",
            app.config.temporal.temporal_task_queue_prefix
        ),
    )
    .build();
    let handle = client
        .start_workflow(ClosePastPostsWorkflow::run, queues.post.clone(), options)
        .await
        .unwrap();
    let closed = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(closed, 1);

    let listed = app
        .graphql("{ posts(input: {}) { nodes { id status } } }")
        .await;
    assert_eq!(
        listed["data"]["posts"]["nodes"],
        json!([{ "id": future["id"], "status": "OPEN" }]),
        "a closed trip is no longer listed"
    );
    let read = app
        .graphql(&format!("{{ post(id: {}) {{ status }} }}", past["id"]))
        .await;
    assert_eq!(read["data"]["post"]["status"], "CLOSED", "{read}");
    assert_eq!(
        event_types(&app).await.last().map(String::as_str),
        Some("board.post.closed")
    );
}

#[tokio::test]
async fn max_apply_never_drops_below_the_applicants() {
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let (token, _) = sign_up(&app).await;
    let post = open_post(&app, &token, "Popular", vec![]).await;
    // Two people applied (applying arrives with its own issue; the counter is what matters here).
    sqlx::query("UPDATE board.posts SET apply_count = 2 WHERE id = $1")
        .bind(post["id"].as_str().unwrap().parse::<i64>().unwrap())
        .execute(&app.pool().await)
        .await
        .unwrap();
    let mut input = update_input(&post, "Smaller");
    input["imageIdsToDelete"] = json!([]);
    input["maxApply"] = json!(1);
    let body = update_post(&app, &token, input.clone(), vec![]).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "input.maxApply");
    input["maxApply"] = json!(2);
    let body = update_post(&app, &token, input, vec![]).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["updatePost"]["post"]["maxApply"], 2);
}

/// Every flow's events, through the real relay into JetStream: each outbox row exactly once, with
/// its envelope, in order per aggregate; every event type is covered and its `data` has the
/// fields docs/events.md lists.
#[tokio::test]
async fn every_event_of_every_flow_reaches_jetstream_once_in_order() {
    use fishapp_domain::events::EventType;
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let _relay = app.start_relay().await;
    let (token, _) = sign_up(&app).await;
    // create (room created, post published) → update → close
    let kept = open_post(&app, &token, "Kept", vec![photo(21)]).await;
    let body = update_post(&app, &token, update_input(&kept, "Renamed"), vec![]).await;
    assert!(body["errors"].is_null(), "{body}");
    // → an applicant applies (application created, member joined) and withdraws (left, deleted)
    let (angler, _) = sign_up(&app).await;
    let applied = common::apply_to(&app, &angler, &kept["id"]).await;
    let application = &applied["data"]["createApplyPost"]["applyPost"]["id"];
    assert!(application.is_string(), "{applied}");
    // → the two chat (message added)
    let said = app
        .graphql_as(
            Some(&angler),
            "mutation($room: ID!) { createMessage(input: { roomId: $room, body: \"Hi\" }) { message { id } } }",
            json!({ "room": common::room_of(&app, &token, &kept["id"]).await }),
        )
        .await;
    assert!(said["errors"].is_null(), "{said}");
    let withdrawn = common::withdraw(&app, &angler, application).await;
    assert_eq!(
        withdrawn["data"]["deleteApplyPost"]["success"], true,
        "{withdrawn}"
    );
    let pool = app.pool().await;
    sqlx::query("UPDATE board.posts SET meeting_at = now() - interval '1 hour' WHERE id = $1")
        .bind(kept["id"].as_str().unwrap().parse::<i64>().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(fishapp_store::board::close_past(&pool).await.unwrap(), 1);
    // create → delete (room deleted, post deleted)
    let gone = open_post(&app, &token, "Gone", vec![]).await;
    let delete = "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }";
    let body = app
        .graphql_as(
            Some(&token),
            delete,
            json!({ "input": { "id": gone["id"] } }),
        )
        .await;
    assert_eq!(body["data"]["deletePost"]["success"], true, "{body}");

    common::wait_until_drained(&app, std::time::Duration::from_secs(30)).await;
    let rows: Vec<(i64, String, String, String, Value)> = sqlx::query_as(
        "SELECT id, event_type, aggregate_type, aggregate_id, payload FROM outbox.events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let published = common::published(&app).await;
    assert_eq!(
        published.iter().map(|p| p.row()).collect::<Vec<_>>(),
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "each row once, in id order (one relay, one aggregate at a time here)"
    );
    let types: std::collections::HashSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    // The trip's life (its timers, the line, approval, removals) is published in tests/trips.rs, reviews
    // in tests/reviews.rs, the notifier's events and the marking of notifications in
    // tests/notifications.rs.
    let elsewhere = [
        EventType::NotificationsWritten,
        EventType::NotificationsRead,
        EventType::NotificationsPruned,
        EventType::PostReminderDue,
        EventType::PostCompleted,
        EventType::PostReviewed,
        EventType::ApplicationWaitlisted,
        EventType::ApplicationPromoted,
        EventType::ApplicationRequested,
        EventType::ApplicationAccepted,
        EventType::ApplicationDeclined,
        EventType::ApplicationExpired,
        EventType::ApplicationRemoved,
    ];
    assert_eq!(
        types,
        EventType::ALL
            .iter()
            .filter(|t| !elsewhere.contains(t))
            .map(|t| t.name())
            .collect(),
        "every event type is covered"
    );
    for (message, (id, event_type, aggregate_type, aggregate_id, payload)) in
        published.iter().zip(&rows)
    {
        let envelope = &message.envelope;
        // The message id is the event's identity; the row is its position here.
        assert_eq!(message.message_id, envelope.id.to_string());
        assert_eq!(message.row(), *id);
        assert_eq!(&envelope.event_type, event_type);
        let subject = format!("{}.{event_type}", app.config.relay.relay_subject_prefix);
        assert_eq!((&message.subject, &envelope.subject), (&subject, &subject));
        assert_eq!(&envelope.aggregate.kind, aggregate_type);
        assert_eq!(&envelope.aggregate.id, aggregate_id);
        assert_eq!(envelope.version, 1);
        assert_eq!(&envelope.data, payload);
        let documented = EventType::from_name(event_type).unwrap().example_data();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&envelope.data), keys(&documented), "{event_type}");
    }
}

/// Records the board sagas' histories from the real worker into `tests/histories/` (the replay
/// test in tests/histories.rs runs them against every build). Run by `scripts/record-histories`.
#[tokio::test]
#[ignore = "records histories; run by scripts/record-histories"]
async fn record_board_saga_histories() {
    use fishapp_workflows::board::ClosePastPostsWorkflow;
    use fishapp_workflows::media_cleanup::{CleanupInput, CleanupStagedImagesWorkflow};
    use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
    async fn save(app: &TestApp, workflow_id: &str, name: &str) {
        app.save_history(workflow_id, name).await
    }
    let app = TestApp::spawn_with_worker(|_| {}).await;
    let prefix = app.config.temporal.temporal_task_queue_prefix.clone();
    let (token, _) = sign_up(&app).await;
    let body = create_post(&app, &token, post_input("Recorded"), vec![photo(31)]).await;
    let saga_id = body["data"]["createPost"]["sagaId"].as_str().unwrap();
    save(&app, saga_id, "create_post_local_steps").await;
    let post = body["data"]["createPost"]["post"].clone();
    let mut input = update_input(&post, "Recorded again");
    input["clientMutationId"] = json!("record");
    let body = update_post(&app, &token, input, vec![photo(32)]).await;
    assert!(body["errors"].is_null(), "{body}");
    let post_id = post["id"].as_str().unwrap();
    save(
        &app,
        &format!("{prefix}/post-update/{post_id}/record"),
        "update_post_serialized",
    )
    .await;
    let (angler, angler_id) = sign_up(&app).await;
    let applied = common::apply_to(&app, &angler, &post["id"]).await;
    let application = applied["data"]["createApplyPost"]["applyPost"]["id"].clone();
    save(
        &app,
        &format!("{prefix}/apply/{post_id}/{angler_id}"),
        "apply_local_steps",
    )
    .await;
    common::withdraw(&app, &angler, &application).await;
    let application = application.as_str().unwrap();
    save(
        &app,
        &format!("{prefix}/withdraw/{application}"),
        "withdraw_seat_first",
    )
    .await;
    let delete = "mutation($input: DeletePostInput!) { deletePost(input: $input) { success } }";
    app.graphql_as(
        Some(&token),
        delete,
        json!({ "input": { "id": post["id"] } }),
    )
    .await;
    save(
        &app,
        &format!("{prefix}/post-delete/{post_id}"),
        "delete_post",
    )
    .await;

    let failing = TestApp::spawn_with_worker(|c| {
        c.diagnostics.fault_injection = vec!["post.publish".to_owned()]
    })
    .await;
    let (token, user_id) = sign_up(&failing).await;
    let mut input = post_input("Undone");
    input["clientMutationId"] = json!("record");
    let body = create_post(&failing, &token, input, vec![photo(33)]).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    save(
        &failing,
        &format!(
            "{}/post-create/{user_id}/record",
            failing.config.temporal.temporal_task_queue_prefix
        ),
        "create_post_local_steps_compensated",
    )
    .await;

    // The compensation paths of UpdatePost (its image step fails) and Apply (joining the room
    // fails after the seat was taken).
    let later = TestApp::spawn_with_worker(|c| {
        c.diagnostics.fault_injection = vec![
            "UpdatePostWorkflow/media.attach_images".to_owned(),
            "chat.join_room".to_owned(),
        ]
    })
    .await;
    let later_prefix = later.config.temporal.temporal_task_queue_prefix.clone();
    let (token, _) = sign_up(&later).await;
    let body = create_post(&later, &token, post_input("Kept"), vec![]).await;
    let post = body["data"]["createPost"]["post"].clone();
    let post_id = post["id"].as_str().unwrap();
    let mut input = update_input(&post, "Not kept");
    input["clientMutationId"] = json!("record");
    let body = update_post(&later, &token, input, vec![photo(34)]).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    save(
        &later,
        &format!("{later_prefix}/post-update/{post_id}/record"),
        "update_post_serialized_compensated",
    )
    .await;
    let (angler, angler_id) = sign_up(&later).await;
    let applied = common::apply_to(&later, &angler, &post["id"]).await;
    assert_eq!(error_code(&applied), "CONFLICT", "{applied}");
    save(
        &later,
        &format!("{later_prefix}/apply/{post_id}/{angler_id}"),
        "apply_local_steps_compensated",
    )
    .await;

    // The scheduled workflows, started the way their schedules start them.
    let (temporal, client) = app.temporal().await;
    let queues = temporal.settings().task_queues.clone();
    let close_id = format!("{prefix}.close-posts/recorded");
    let options = WorkflowStartOptions::new(queues.workflows.clone(), close_id.clone()).build();
    client
        .start_workflow(ClosePastPostsWorkflow::run, queues.post.clone(), options)
        .await
        .unwrap()
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    save(&app, &close_id, "close_past_posts").await;
    let cleanup_id = format!("{prefix}.media-cleanup/recorded");
    let options = WorkflowStartOptions::new(queues.workflows.clone(), cleanup_id.clone()).build();
    let input = CleanupInput {
        media_task_queue: queues.media.clone(),
        older_than_secs: 24 * 3600,
    };
    client
        .start_workflow(CleanupStagedImagesWorkflow::run, input, options)
        .await
        .unwrap()
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    save(&app, &cleanup_id, "cleanup_staged_images").await;
}
