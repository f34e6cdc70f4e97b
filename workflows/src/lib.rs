//! Fishapp's Temporal workflow definitions — the sagas and the scheduled workflows — and the
//! names they are addressed by (task queues). Everything here is deterministic workflow code:
//! no I/O, clocks, randomness or tokio primitives, only the SDK's own timers, select and join;
//! talking to the Temporal server from outside (connecting, starting, awaiting, schedules,
//! replay) is `fishapp-temporal`'s.
//!
//! Depends on `fishapp-activities` (the typed activity definitions the workflows call) and
//! `fishapp-domain` (the values that travel in workflow inputs). Workflow inputs live in
//! Temporal histories for as long as a workflow runs and are replayed by later builds: their
//! serialized form only ever gains fields with defaults (see `board::CreatePostInput`).

pub mod board;
pub mod media_cleanup;
pub mod saga;
pub mod task_queues;
pub mod trip;

pub use task_queues::TaskQueues;

/// Registers every Fishapp workflow on a builder with the SDK's
/// `register_workflow::<W>() -> Result<Self, _>` (the worker's `WorkerOptions` and the
/// replayer's `WorkflowReplayerOptions`): the one list both use, so a workflow the worker runs is
/// always one the replayer knows.
#[macro_export]
macro_rules! register_all {
    ($builder:expr) => {
        $builder
            .register_workflow::<$crate::media_cleanup::CleanupStagedImagesWorkflow>()
            .and_then(|b| b.register_workflow::<$crate::board::CreatePostWorkflow>())
            .and_then(|b| b.register_workflow::<$crate::board::UpdatePostWorkflow>())
            .and_then(|b| b.register_workflow::<$crate::board::DeletePostWorkflow>())
            .and_then(|b| b.register_workflow::<$crate::board::ClosePastPostsWorkflow>())
            .and_then(|b| b.register_workflow::<$crate::board::ApplyWorkflow>())
            .and_then(|b| b.register_workflow::<$crate::board::WithdrawWorkflow>())
            .and_then(|b| b.register_workflow::<$crate::trip::TripWorkflow>())
    };
}
