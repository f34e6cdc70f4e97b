//! The floor a saga is measured against: a workflow that runs one no-op activity per step of the
//! real saga — a local activity where the saga runs that step locally, else a regular activity on
//! the task queue the saga's step uses — with inputs of the same size, on the same Temporal
//! server, started and awaited the way the API starts and awaits a saga. What a saga costs above
//! it is our own work.

use fishapp_temporal::sagas::{self, SagaOutcome, SagaSubject};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use temporalio_client::Client;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{ActivityOptions, LocalActivityOptions, WorkflowContext, WorkflowResult};

struct Noop;

#[activities]
impl Noop {
    /// Takes a step's input (as large as the real step's) and returns a small result.
    #[activity]
    async fn step(_ctx: ActivityContext, _input: Value) -> Result<i64, ActivityError> {
        Ok(1)
    }
}

/// One step of a floor run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Step {
    /// `None`: a local activity on the workflow's worker; else a regular activity on this queue.
    pub(crate) queue: Option<String>,
    /// The input, shaped and sized like the real step's.
    pub(crate) input: Value,
}

impl Step {
    pub(crate) fn local(input: Value) -> Self {
        Self { queue: None, input }
    }

    pub(crate) fn on(queue: &str, input: Value) -> Self {
        Self {
            queue: Some(queue.to_owned()),
            input,
        }
    }
}

#[workflow]
#[derive(Default)]
pub(crate) struct FloorWorkflow;

#[workflow_methods]
impl FloorWorkflow {
    /// The steps in order, each a no-op activity placed as the step says.
    #[run]
    pub(crate) async fn run(
        ctx: &mut WorkflowContext<Self>,
        steps: Vec<Step>,
    ) -> WorkflowResult<usize> {
        let timeout = Duration::from_secs(10);
        for step in &steps {
            match &step.queue {
                None => {
                    let options = LocalActivityOptions::builder()
                        .start_to_close_timeout(timeout)
                        .build();
                    ctx.execute_local_activity(Noop::step, step.input.clone(), options)
                        .await?;
                }
                Some(queue) => {
                    let options = ActivityOptions::with_start_to_close_timeout(timeout)
                        .task_queue(queue.clone())
                        .build();
                    ctx.execute_activity(Noop::step, step.input.clone(), options)
                        .await?;
                }
            }
        }
        Ok(steps.len())
    }
}

/// The floor's worker, shaped like the app's (`fishapp worker`, as the benchmarks' `TestApp`
/// runs it): one thread with a two-thread runtime and one Temporal connection, one SDK worker per
/// queue (the first is the workflow queue; every worker can run the no-op, so local steps run on
/// the workflow's worker as the app's do).
pub(crate) fn start_workers(config: &fishapp::config::Config, queues: &[String]) {
    let mut distinct = queues.to_vec();
    distinct.sort();
    distinct.dedup();
    let settings = fishapp::app::temporal_settings(config);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
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
            let mut workers: Vec<_> = distinct
                .iter()
                .map(|queue| {
                    let options = temporalio_sdk::WorkerOptions::new(queue)
                        .register_workflow::<FloorWorkflow>()
                        .expect("the floor workflow registers")
                        .register_activities(Noop)
                        .build();
                    temporalio_sdk::Worker::new(&sdk, client.clone(), options)
                        .expect("a floor worker")
                })
                .collect();
            let runs = workers.iter_mut().map(|worker| worker.run());
            for result in futures::future::join_all(runs).await {
                result.expect("the floor worker runs");
            }
        });
    });
}

/// Starts one floor run with id `id` on `workflow_queue` and waits for it, with the start options
/// and the wait of every saga the API starts (`fishapp_temporal::sagas`).
pub(crate) async fn run(client: &Client, workflow_queue: &str, id: String, steps: &[Step]) {
    let subject = SagaSubject {
        post_id: 1,
        user_id: 1,
        summary: format!("Floor of {} steps", steps.len()),
    };
    let options = sagas::start_options(workflow_queue, &id, subject);
    sagas::started(
        client
            .start_workflow(FloorWorkflow::run, steps.to_vec(), options)
            .await,
    )
    .expect("the floor starts");
    match sagas::wait_for::<FloorWorkflow>(client, &id, Duration::from_secs(120)).await {
        Ok(SagaOutcome::Done(done)) => assert_eq!(done, steps.len()),
        other => panic!("the floor run {id} did not finish: {other:?}"),
    }
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
