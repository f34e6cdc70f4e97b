//! Staged uploads nothing attached are deleted by the cleanup workflow, through the real
//! Temporal dev server and a real worker; attached and young images stay.
#![allow(clippy::unwrap_used)] // in a test, a panic is the failure report

mod common;

use common::{TestDatabase, test_config};
use fishapp_domain::media::ImageOwner;
use fishapp_media::{LocalDisk, ObjectStore};
use fishapp_store::Database;
use fishapp_store::media::{self as store, NewImage};
use fishapp_temporal::Temporal;
use fishapp_workflows::media_cleanup::{CleanupInput, CleanupStagedImagesWorkflow};
use temporalio_client::{
    UntypedWorkflow, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowStartOptions,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn stored_image(
    pool: &sqlx::PgPool,
    objects: &LocalDisk,
    owner: Option<ImageOwner>,
    hours_old: i32,
) -> Uuid {
    let id = Uuid::new_v4();
    let (display, thumbnail) = (
        format!("images/{id}/display.jpg"),
        format!("images/{id}/thumbnail.jpg"),
    );
    objects
        .put(&display, b"display".to_vec(), "image/jpeg")
        .await
        .unwrap();
    objects
        .put(&thumbnail, b"thumb".to_vec(), "image/jpeg")
        .await
        .unwrap();
    let image = NewImage {
        id,
        owner,
        display_key: &display,
        thumbnail_key: &thumbnail,
        content_type: "image/jpeg",
        width: 10,
        height: 10,
        bytes: 7,
        original_name: "x.jpg",
        uploader_id: None,
    };
    store::insert_image(pool, &image).await.unwrap();
    sqlx::query(
        "UPDATE media.images SET created_at = now() - make_interval(hours => $2) WHERE id = $1",
    )
    .bind(id)
    .bind(hours_old)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// A configuration of the test's own, its migrated database, a pool on it, and the local object store.
async fn setup() -> (
    fishapp::config::Config,
    TestDatabase,
    sqlx::PgPool,
    LocalDisk,
) {
    let config = test_config();
    let db = TestDatabase::migrated(&config).await;
    let pool = db.pool().await;
    let objects = LocalDisk::new(&config.media.media_dir, "/media");
    (config, db, pool, objects)
}

#[tokio::test]
async fn the_cleanup_workflow_deletes_old_staged_images_only() {
    let (config, _db, pool, objects) = setup().await;

    let old_staged = stored_image(&pool, &objects, None, 25).await;
    let young_staged = stored_image(&pool, &objects, None, 1).await;
    let old_attached = stored_image(&pool, &objects, Some(ImageOwner::User(7)), 48).await;

    let shutdown = CancellationToken::new();
    let temporal =
        Temporal::connect_in_background(fishapp::app::temporal_settings(&config), shutdown.clone());
    let queues = temporal.settings().task_queues.clone();
    let worker_db = Database::connect_lazy(&config.connections.database_url, 2).unwrap();
    let worker = fishapp::worker::run(
        &config,
        &temporal,
        worker_db,
        &fishapp::worker::Queue::ALL,
        None,
        shutdown.clone(),
    );

    let schedule_id = format!(
        "{}.media-cleanup",
        config.temporal.temporal_task_queue_prefix
    );
    let scenario = async {
        let client = temporal.connected(&shutdown).await.unwrap();
        let input = CleanupInput {
            media_task_queue: queues.media.clone(),
            older_than_secs: 24 * 3600,
        };
        let workflow_id = format!("cleanup-test/{}", Uuid::new_v4());
        let options =
            WorkflowStartOptions::new(queues.workflows.clone(), workflow_id.clone()).build();
        let handle = client
            .start_workflow(CleanupStagedImagesWorkflow::run, input, options)
            .await
            .unwrap();
        let deleted = handle
            .get_result(WorkflowGetResultOptions::default())
            .await
            .unwrap();
        assert_eq!(deleted, 1);

        // A developer replays the saga's history against this build: from a file, and by id.
        let history = client
            .get_workflow_handle::<UntypedWorkflow>(workflow_id.clone())
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .unwrap();
        let file = std::env::temp_dir().join(format!("fishapp-history-{}.json", Uuid::new_v4()));
        std::fs::write(&file, history).unwrap();
        let by_file = ["replay", "--file", file.to_str().unwrap()];
        let by_id = ["replay", "--workflow-id", workflow_id.as_str()];
        for args in [by_file, by_id] {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fishapp"))
                .args(args)
                .env("FISHAPP_LOG_FILTER", "error")
                .output()
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{args:?}: {stdout} {stderr}");
            assert!(stdout.contains("replay ok"), "{stdout}");
        }
        std::fs::write(&file, br#"{"events": "nope"}"#).unwrap();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fishapp"))
            .args(["replay", "--file", file.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&output.stderr).contains("is not a workflow history"));
        std::fs::remove_file(&file).ok();

        // The worker created the hourly schedule; remove it so the test leaves nothing behind.
        let schedule = client.get_schedule_handle(schedule_id.clone());
        schedule
            .describe(Default::default())
            .await
            .expect("the cleanup schedule exists");
        schedule.delete(Default::default()).await.unwrap();
        shutdown.cancel();
    };
    let (worker, ()) = tokio::join!(worker, scenario);
    worker.unwrap();

    let remaining: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM media.images ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut expected = vec![young_staged, old_attached];
    expected.sort();
    assert_eq!(remaining, expected);
    for (id, present) in [
        (old_staged, false),
        (young_staged, true),
        (old_attached, true),
    ] {
        assert_eq!(
            objects
                .exists(&format!("images/{id}/display.jpg"))
                .await
                .unwrap(),
            present,
            "{id}"
        );
        assert_eq!(
            objects
                .exists(&format!("images/{id}/thumbnail.jpg"))
                .await
                .unwrap(),
            present,
            "{id}"
        );
    }
    pool.close().await;
    std::fs::remove_dir_all(&config.media.media_dir).ok();
}

/// A live post of its own (PENDING, as during its create saga), for images to be attached to.
async fn a_post(pool: &sqlx::PgPool) -> i64 {
    use fishapp_store::board;
    let id = board::reserve_post_id(pool).await.unwrap();
    let draft = serde_json::from_value(serde_json::json!({
        "title": "Attach", "content": "A trip.", "fishing_spot_type_id": 1,
        "prefecture_id": 13, "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
        "meeting_at": chrono::Utc::now() + chrono::Duration::days(2),
        "max_apply": 3, "fish_type_ids": [3],
    }))
    .unwrap();
    board::insert_pending(pool, id, 1, &draft).await.unwrap();
    id
}

#[tokio::test]
async fn attaching_is_all_or_none_and_idempotent() {
    let (config, _db, pool, objects) = setup().await;
    let post = a_post(&pool).await;
    let owner = ImageOwner::Post(post);
    let a = stored_image(&pool, &objects, None, 0).await;
    let b = stored_image(&pool, &objects, None, 0).await;
    let elsewhere = stored_image(&pool, &objects, Some(ImageOwner::Post(99)), 0).await;

    // One of them belongs to another post: nothing is attached.
    let refused = store::attach(&pool, owner, &[a, elsewhere], None).await;
    assert!(
        matches!(refused, Err(store::AttachError::NotAttachable(ref e)) if e.0 == vec![elsewhere]),
        "{refused:?}"
    );
    assert!(store::images_of(&pool, owner).await.unwrap().is_empty());

    assert_eq!(store::attach(&pool, owner, &[a, b], None).await.unwrap(), 2);
    // A retried activity attaches the same images again: fine.
    assert_eq!(store::attach(&pool, owner, &[a, b], None).await.unwrap(), 2);
    assert_eq!(store::images_of(&pool, owner).await.unwrap().len(), 2);
    // An unknown id is refused.
    assert!(
        store::attach(&pool, owner, &[Uuid::new_v4()], None)
            .await
            .is_err()
    );
    pool.close().await;
    std::fs::remove_dir_all(&config.media.media_dir).ok();
}

/// The store's rules, not timing: nothing is attached to a post that does not exist or is being
/// torn down, and a post never gets more images than its limit, counting the ones the same
/// change removes afterwards as gone.
#[tokio::test]
async fn images_are_attached_only_to_a_live_post_and_within_its_limit() {
    let (config, _db, pool, objects) = setup().await;
    let post = a_post(&pool).await;
    let owner = ImageOwner::Post(post);
    let staged = |n| {
        let (pool, objects) = (&pool, &objects);
        async move {
            let mut ids = Vec::new();
            for _ in 0..n {
                ids.push(stored_image(pool, objects, None, 0).await);
            }
            ids
        }
    };
    let limit = |max, leaving: &[Uuid]| store::ImageLimit {
        max,
        leaving: leaving.to_vec(),
    };

    let first = staged(2).await;
    store::attach(&pool, owner, &first, Some(&limit(3, &[])))
        .await
        .unwrap();
    // Two more would make four.
    let more = staged(2).await;
    let refused = store::attach(&pool, owner, &more, Some(&limit(3, &[]))).await;
    assert!(
        matches!(
            refused,
            Err(store::AttachError::TooMany {
                max: 3,
                would_have: 4
            })
        ),
        "{refused:?}"
    );
    assert_eq!(store::images_of(&pool, owner).await.unwrap().len(), 2);
    // The same two, while the change removes one of the first: three.
    store::attach(&pool, owner, &more, Some(&limit(3, &first[..1])))
        .await
        .unwrap();
    assert_eq!(store::images_of(&pool, owner).await.unwrap().len(), 4);

    // No such post.
    let orphan = staged(1).await;
    let gone = store::attach(&pool, ImageOwner::Post(post + 1000), &orphan, None).await;
    assert!(
        matches!(gone, Err(store::AttachError::OwnerGone)),
        "{gone:?}"
    );
    // A post being torn down (the teardown's first step marks it).
    fishapp_store::board::hide(&pool, post).await.unwrap();
    let late = store::attach(&pool, owner, &orphan, None).await;
    assert!(
        matches!(late, Err(store::AttachError::OwnerGone)),
        "{late:?}"
    );
    let staged_still: Option<Option<i64>> =
        sqlx::query_scalar("SELECT owner_id FROM media.images WHERE id = $1")
            .bind(orphan[0])
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(staged_still, Some(None), "the image stays staged");
    pool.close().await;
    std::fs::remove_dir_all(&config.media.media_dir).ok();
}
