//! Replaying a saga's recorded history against this build's workflow code: the way to see why a
//! workflow failed, and to prove that a code change is still deterministic for histories already
//! in flight (docs/operations.md).

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayer, WorkflowReplayerOptions,
};

/// A replayer that knows every Fishapp workflow: the same list the worker registers
/// (`fishapp_workflows::register_all!`).
pub fn replayer() -> Result<WorkflowReplayer, WorkflowReplayError> {
    let options = fishapp_workflows::register_all!(WorkflowReplayerOptions::new())
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
