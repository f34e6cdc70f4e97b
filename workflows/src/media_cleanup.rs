//! Staged uploads that no saga attached within a day are deleted: a Temporal Schedule starts
//! this workflow every hour, and it asks the media activities to delete them.

use fishapp_activities::media::{DeleteImages, MediaActivities};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

/// What the schedule passes to each run. Task queue names are inputs, not workflow code, so that
/// deployments with other prefixes replay the same code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupInput {
    pub media_task_queue: String,
    pub older_than_secs: u64,
}

#[workflow]
#[derive(Default)]
pub struct CleanupStagedImagesWorkflow;

#[workflow_methods]
impl CleanupStagedImagesWorkflow {
    /// Returns how many staged images were deleted.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: CleanupInput) -> WorkflowResult<u64> {
        // Deleting is idempotent, so it may retry as often as it takes (default policy: forever,
        // with back-off); one run handles at most 1000 images, the next run the rest.
        let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
            .task_queue(input.media_task_queue)
            .build();
        let deleted = ctx
            .execute_activity(
                MediaActivities::delete_images,
                DeleteImages::StagedOlderThan {
                    seconds: input.older_than_secs,
                },
                options,
            )
            .await?;
        Ok(deleted)
    }
}
