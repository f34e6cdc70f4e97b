//! The Temporal worker role: one SDK worker per task queue — workflows on `<prefix>.workflows`,
//! each context's activities on its own queue — sharing one Temporal client and runtime.

use crate::config::Config;
use anyhow::Context;
use fishapp_activities::MediaActivities;
use fishapp_store::Database;
use fishapp_workflows::Temporal;
use fishapp_workflows::media_cleanup::{self, CleanupInput, CleanupStagedImagesWorkflow};
use std::time::Duration;
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;

/// Serves the workflow and activity task queues until `shutdown`, then lets in-flight tasks
/// finish (the SDK's graceful shutdown). Waits for Temporal first if it is not there yet.
pub async fn run(
    config: &Config,
    temporal: &Temporal,
    db: Database,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(client) = temporal.connected(&shutdown).await else {
        return Ok(());
    };
    let queues = temporal.settings().task_queues.clone();

    let schedule_id = format!("{}.media-cleanup", config.temporal_task_queue_prefix);
    let cleanup = CleanupInput {
        media_task_queue: queues.media.clone(),
        older_than_secs: config.media_staged_max_age_secs,
    };
    let every = Duration::from_secs(config.media_cleanup_interval_secs);
    if let Err(e) =
        media_cleanup::ensure_schedule(&client, &schedule_id, &queues.workflows, cleanup, every)
            .await
    {
        // Not fatal: the worker still serves; the next start tries again.
        tracing::error!(error = %e, schedule_id, "could not create the staged-image cleanup schedule");
    }

    let runtime =
        Runtime::from_current_tokio(RuntimeOptions::default()).context("Temporal SDK runtime")?;
    let mut workflows = Worker::new(
        &runtime,
        client.clone(),
        WorkerOptions::new(&queues.workflows)
            .register_workflow::<CleanupStagedImagesWorkflow>()?
            .build(),
    )?;
    let store = crate::app::media_store(config).await?;
    let mut media = Worker::new(
        &runtime,
        client,
        WorkerOptions::new(&queues.media)
            .register_activities(MediaActivities::new(db, store))
            .build(),
    )?;
    let stops = [workflows.shutdown_handle(), media.shutdown_handle()];
    tracing::info!(workflows = %queues.workflows, media = %queues.media, "Temporal worker polling");
    let stop = async {
        shutdown.cancelled().await;
        for stop in &stops {
            stop();
        }
    };
    let (workflows, media, ()) = tokio::join!(workflows.run(), media.run(), stop);
    workflows.context("workflow worker")?;
    media.context("media activity worker")?;
    tracing::info!("Temporal worker stopped");
    Ok(())
}
