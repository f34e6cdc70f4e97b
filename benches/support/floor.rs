//! The floor a saga is measured against: a workflow that runs one no-op activity per step, each
//! on the task queue the real saga's step uses, on the same Temporal server, started and awaited
//! the way the API starts and awaits a saga. What a saga costs above it is our own work.

use std::time::Duration;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

struct Noop;

#[activities]
impl Noop {
    /// Takes and returns a step's ids, as small as the real steps' inputs.
    #[activity]
    async fn step(_ctx: ActivityContext, ids: (i64, i64)) -> Result<(i64, i64), ActivityError> {
        Ok(ids)
    }
}

#[workflow]
#[derive(Default)]
pub(crate) struct FloorWorkflow;

#[workflow_methods]
impl FloorWorkflow {
    /// One no-op activity per entry of `steps`, in order, each on that entry's task queue.
    #[run]
    pub(crate) async fn run(
        ctx: &mut WorkflowContext<Self>,
        steps: Vec<String>,
    ) -> WorkflowResult<usize> {
        for (n, queue) in steps.iter().enumerate() {
            let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                .task_queue(queue.clone())
                .build();
            ctx.execute_activity(Noop::step, (n as i64, 1), options)
                .await?;
        }
        Ok(steps.len())
    }
}

/// The floor's workers: one per queue (the workflow's and each step's), each on a thread of its
/// own with one runtime thread, as the app's worker runs its queues (the SDK's worker future is
/// not `Send`).
pub(crate) fn start_workers(config: &fishapp::config::Config, queues: &[String]) {
    let mut distinct = queues.to_vec();
    distinct.sort();
    distinct.dedup();
    for queue in distinct {
        let settings = fishapp::app::temporal_settings(config);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let stop = tokio_util::sync::CancellationToken::new();
                let temporal =
                    fishapp_temporal::Temporal::connect_in_background(settings, stop.clone());
                let client = temporal.connected(&stop).await.expect("Temporal");
                let sdk = temporalio_sdk::Runtime::from_current_tokio(Default::default())
                    .expect("an SDK runtime");
                let options = temporalio_sdk::WorkerOptions::new(&queue)
                    .register_workflow::<FloorWorkflow>()
                    .expect("the floor workflow registers")
                    .register_activities(Noop)
                    .build();
                let mut worker =
                    temporalio_sdk::Worker::new(&sdk, client, options).expect("a floor worker");
                worker.run().await.expect("the floor worker runs");
            });
        });
    }
}

/// Starts one floor run with id `id` on `workflow_queue` and waits for it.
pub(crate) async fn run(client: &Client, workflow_queue: &str, id: String, steps: &[String]) {
    let options = WorkflowStartOptions::new(workflow_queue.to_owned(), id).build();
    let handle = client
        .start_workflow(FloorWorkflow::run, steps.to_vec(), options)
        .await
        .expect("the floor starts");
    let done = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .expect("the floor finishes");
    assert_eq!(done, steps.len());
}

/// A Temporal client for the floor, from the app's settings.
pub(crate) async fn client(config: &fishapp::config::Config) -> Client {
    let stop = tokio_util::sync::CancellationToken::new();
    let temporal = fishapp_temporal::Temporal::connect_in_background(
        fishapp::app::temporal_settings(config),
        stop.clone(),
    );
    temporal.connected(&stop).await.expect("Temporal")
}
