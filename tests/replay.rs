//! `fishapp replay` as a developer uses it: a history downloaded with the Temporal CLI (proto3
//! JSON), a saga fetched by id, and every failed saga of the deployment at once — each against a
//! real history the real worker wrote, and each able to say "no" (a tampered history fails).
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{TestApp, error_code, post_input, sign_up};
use serde_json::{Value, json};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const CREATE: &str = "mutation($input: CreatePostInput!) { createPost(input: $input) { sagaId } }";

/// `fishapp replay <args>` pointed at the test app's Temporal names.
fn fishapp_replay(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fishapp"))
        .arg("replay")
        .args(args)
        .env(
            "FISHAPP_TEMPORAL_TASK_QUEUE_PREFIX",
            &app.config.temporal.temporal_task_queue_prefix,
        )
        .env(
            "FISHAPP_TEMPORAL_ADDRESS",
            app.config.temporal.temporal_address.as_str(),
        )
        .env(
            "FISHAPP_TEMPORAL_NAMESPACE",
            &app.config.temporal.temporal_namespace,
        )
        .env("FISHAPP_LOG_FILTER", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `temporal workflow show --output json`: the download format operators have.
fn cli_history(app: &TestApp, workflow_id: &str) -> Value {
    let address = app.config.temporal.temporal_address.authority().to_owned();
    let output = Command::new("temporal")
        .args(["workflow", "show", "--output", "json", "--address"])
        .arg(&address)
        .args([
            "--namespace",
            &app.config.temporal.temporal_namespace,
            "-w",
            workflow_id,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("the temporal CLI runs (scripts/stack env puts it on PATH)");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn a_cli_download_and_every_failed_saga_replay_and_a_tampered_history_does_not() {
    let app = TestApp::spawn_with_worker(|c| {
        c.diagnostics.fault_injection = vec!["post.publish".to_owned()]
    })
    .await;
    let (token, user_id) = sign_up(&app).await;
    let mut input = post_input("Replayed");
    input["clientMutationId"] = json!("replayed");
    let body = app
        .graphql_as(Some(&token), CREATE, json!({ "input": input }))
        .await;
    assert_eq!(
        error_code(&body),
        "CONFLICT",
        "the saga compensated: {body}"
    );
    let saga_id = format!(
        "{}/post-create/{user_id}/replayed",
        app.config.temporal.temporal_task_queue_prefix
    );

    // The CLI's proto3 JSON, as downloaded.
    let history = cli_history(&app, &saga_id);
    assert!(
        history["events"][0]["eventType"].is_string(),
        "{history:.300}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.json");
    std::fs::write(&file, serde_json::to_vec(&history).unwrap()).unwrap();
    let output = fishapp_replay(&app, &["--file", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("replay ok"), "{}", text(&output));

    // The same history with one step's activity renamed: this build would not make that decision.
    let mut tampered = history.clone();
    let scheduled = tampered["events"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED")
        .unwrap();
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] =
        json!("PostActivities::no_such_step");
    std::fs::write(&file, serde_json::to_vec(&tampered).unwrap()).unwrap();
    let output = fishapp_replay(&app, &["--file", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("Nondeterminism"),
        "{}",
        text(&output)
    );

    // Not a history at all: a clear message, exit 1.
    std::fs::write(&file, b"{\"events\": \"no\"}").unwrap();
    let output = fishapp_replay(&app, &["--file", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("is not a workflow history"),
        "{}",
        text(&output)
    );

    // By id, from the server.
    let output = fishapp_replay(&app, &["--workflow-id", &saga_id]);
    assert!(output.status.success(), "{}", text(&output));

    // Every failed saga of this deployment (visibility is eventually consistent: ask again).
    let mut last = String::new();
    for _ in 0..50 {
        let output = fishapp_replay(&app, &["--all-failed"]);
        last = text(&output);
        if last.contains("1 replayed, 0 failed") {
            assert!(output.status.success(), "{last}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.contains("1 replayed, 0 failed"), "{last}");
    assert!(
        last.lines().any(|l| l.starts_with("ok")
            && l.contains("CreatePostWorkflow")
            && l.contains(&saga_id)),
        "{last}"
    );

    // The saga carries its summary for the Temporal UI.
    let (_temporal, client) = app.temporal().await;
    let info = fishapp_temporal::sagas::describe(&client, &saga_id)
        .await
        .unwrap();
    let post_id = info.post_id.unwrap();
    assert_eq!(
        info.summary.as_deref(),
        Some(format!("Create post {post_id} for user {user_id} (0 photos)").as_str())
    );
}
