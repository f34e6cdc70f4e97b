//! Temporal Schedules the worker keeps: created at start-up when missing, left alone when they
//! exist (an operator may have paused or changed one in the Web UI).

use fishapp_workflows::TaskQueues;
use fishapp_workflows::board::ClosePastPostsWorkflow;
use fishapp_workflows::media_cleanup::{CleanupInput, CleanupStagedImagesWorkflow};
use std::time::Duration;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleError, ScheduleSpec,
};
use temporalio_client::tonic::Code;

/// Creates the schedule `schedule_id` running `action` every `every`, unless it exists.
pub async fn ensure_schedule(
    client: &Client,
    schedule_id: &str,
    action: ScheduleAction,
    every: Duration,
) -> Result<(), ScheduleError> {
    let options = CreateScheduleOptions::builder()
        .action(action)
        .spec(ScheduleSpec::from_interval(every))
        .build();
    match client.create_schedule(schedule_id, options).await {
        Ok(_) => {
            tracing::info!(schedule_id, ?every, "created a schedule");
            Ok(())
        }
        Err(ScheduleError::Rpc(status)) if status.code() == Code::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// What the worker's schedules do and how often.
#[derive(Debug, Clone)]
pub struct WorkerSchedules {
    /// Schedule ids are `<prefix>.media-cleanup` and `<prefix>.close-posts`.
    pub prefix: String,
    /// Staged uploads nothing attached are deleted once this old.
    pub staged_max_age: Duration,
    pub cleanup_every: Duration,
    pub close_posts_every: Duration,
}

/// Ensures the worker's schedules exist: the staged-image cleanup and the closing of past trips.
/// A schedule that cannot be created is logged, not fatal: the worker still serves, and its next
/// start tries again.
pub async fn ensure_worker_schedules(
    client: &Client,
    queues: &TaskQueues,
    settings: &WorkerSchedules,
) {
    let [cleanup_id, close_id] = worker_schedule_ids(&settings.prefix);
    let cleanup = ScheduleAction::start_workflow(
        CleanupStagedImagesWorkflow::run,
        CleanupInput {
            media_task_queue: queues.media.clone(),
            older_than_secs: settings.staged_max_age.as_secs(),
        },
        &queues.workflows,
        format!("{cleanup_id}/run"),
    );
    let close = ScheduleAction::start_workflow(
        ClosePastPostsWorkflow::run,
        queues.post.clone(),
        &queues.workflows,
        format!("{close_id}/run"),
    );
    for (schedule_id, action, every) in [
        (&cleanup_id, cleanup, settings.cleanup_every),
        (&close_id, close, settings.close_posts_every),
    ] {
        if let Err(e) = ensure_schedule(client, schedule_id, action, every).await {
            tracing::error!(error = %e, schedule_id, "could not create a schedule");
        }
    }
}

/// The ids of the worker's schedules under a deployment's prefix.
fn worker_schedule_ids(prefix: &str) -> [String; 2] {
    [
        format!("{prefix}.media-cleanup"),
        format!("{prefix}.close-posts"),
    ]
}

/// Deletes the worker's schedules of a deployment (`prefix`), for taking a deployment down —
/// and for tests, whose throwaway prefixes would otherwise leave schedules firing on the server.
/// Already gone is success.
pub async fn delete_worker_schedules(client: &Client, prefix: &str) -> Result<(), ScheduleError> {
    for schedule_id in worker_schedule_ids(prefix) {
        match client
            .get_schedule_handle(schedule_id)
            .delete(Default::default())
            .await
        {
            Ok(()) => {}
            Err(ScheduleError::Rpc(status)) if status.code() == Code::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
