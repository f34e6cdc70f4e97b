//! Replaying a saga's recorded history against this build's workflow code: the way to see why a
//! workflow failed, and to prove that a code change is still deterministic for histories already
//! in flight (docs/operations.md).

use crate::board::{
    ClosePastPostsWorkflow, CreatePostWorkflow, DeletePostWorkflow, UpdatePostWorkflow,
};
use crate::media_cleanup::CleanupStagedImagesWorkflow;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayer, WorkflowReplayerOptions,
};

/// A replayer that knows every Fishapp workflow. Keep this list equal to the worker's
/// registrations (`src/worker.rs`): a history of a workflow missing here cannot replay.
pub fn replayer() -> Result<WorkflowReplayer, WorkflowReplayError> {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<CleanupStagedImagesWorkflow>()
        .and_then(|o| o.register_workflow::<CreatePostWorkflow>())
        .and_then(|o| o.register_workflow::<UpdatePostWorkflow>())
        .and_then(|o| o.register_workflow::<DeletePostWorkflow>())
        .and_then(|o| o.register_workflow::<ClosePastPostsWorkflow>())
        .map_err(
            |e| temporalio_sdk::workflow_replayer::WorkflowReplayWorkerError::Internal {
                message: e.to_string(),
            },
        )?
        .build();
    WorkflowReplayer::new(options)
}

/// Replays one history; `Ok` when this code makes the same decisions the history recorded.
pub async fn replay(history: WorkflowHistory) -> Result<(), WorkflowReplayError> {
    replayer()?.replay_workflow(history).await
}
