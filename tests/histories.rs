//! Recorded saga histories (`tests/histories/*.json`, written by `scripts/record-histories` from
//! the real worker) replayed against this build: a change that makes a workflow decide
//! differently for a history already in flight — a nondeterminism — fails here, before it
//! reaches a deployment. `create_post*.json` and `apply*.json` ran before the sagas' database
//! steps became local activities (the `local-db-steps` patch), `*_local_steps*.json` after;
//! `update_post*.json` and `withdraw.json` before UpdatePost held its post and Withdraw gave the
//! seat back first (`serialized-updates`, `withdraw-seat-first`), `update_post_serialized*.json`
//! and `withdraw_seat_first.json` after. `create_post_trip.json`, `apply_{waitlisted,promoted,
//! accepted}.json`, `update_post_trip.json`, `withdraw_trip.json`, `trip_life.json` and
//! `trip_requests_expired.json` came with the trip workflow (the `trip-workflow` patch);
//! `withdraw_removed.json` (the organiser's removal: the Withdraw saga with `removed`) after.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

#[tokio::test]
async fn every_recorded_history_replays_against_this_build() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let mut replayed = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let history =
            fishapp_temporal::replay::history_from_json(&std::fs::read(&path).unwrap()).unwrap();
        if let Err(e) = fishapp_temporal::replay::replay(history).await {
            panic!("{} does not replay: {e}", path.display());
        }
        replayed.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    replayed.sort();
    assert_eq!(
        replayed,
        [
            "apply.json",
            "apply_accepted.json",
            "apply_compensated.json",
            "apply_local_steps.json",
            "apply_local_steps_compensated.json",
            "apply_promoted.json",
            "apply_waitlisted.json",
            "cleanup_staged_images.json",
            "close_past_posts.json",
            "create_post.json",
            "create_post_compensated.json",
            "create_post_local_steps.json",
            "create_post_local_steps_compensated.json",
            "create_post_trip.json",
            "delete_post.json",
            "trip_life.json",
            "trip_requests_expired.json",
            "update_post.json",
            "update_post_compensated.json",
            "update_post_serialized.json",
            "update_post_serialized_compensated.json",
            "update_post_trip.json",
            "withdraw.json",
            "withdraw_removed.json",
            "withdraw_seat_first.json",
            "withdraw_trip.json"
        ],
        "every recorded history was replayed"
    );
}
