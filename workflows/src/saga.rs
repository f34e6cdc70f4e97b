//! The saga pattern for Fishapp's workflows: each forward step that changed something records
//! its compensation; when a later step fails for good, the compensations run in reverse and the
//! workflow fails with the business reason. Plus the activity options every board saga uses.

use futures::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_common::{ActivityDefinition, RetryPolicy};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, LocalActivityOptions,
    WorkflowContext,
};

/// The activity task queues of each context, as workflow input: queue names are configuration,
/// not workflow code, so that deployments with other prefixes replay the same code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContextQueues {
    pub post: String,
    pub chat: String,
    pub media: String,
}

impl From<&crate::TaskQueues> for ContextQueues {
    fn from(q: &crate::TaskQueues) -> Self {
        Self {
            post: q.post.clone(),
            chat: q.chat.clone(),
            media: q.media.clone(),
        }
    }
}

/// Forward steps of create and update: a few quick retries (about 15 s in all), then the saga
/// gives up and compensates, so that a user waiting on createPost hears back.
pub fn forward(task_queue: &str, start_to_close: Duration) -> ActivityOptions {
    options(
        task_queue,
        start_to_close,
        FORWARD_MAX_INTERVAL,
        FORWARD_ATTEMPTS,
    )
}

/// Compensations and teardown steps: they must happen, so they retry until they do (capped
/// back-off); each is idempotent, so a retry after a lost reply is harmless.
pub fn until_done(task_queue: &str, start_to_close: Duration) -> ActivityOptions {
    options(task_queue, start_to_close, Duration::from_secs(60), 0)
}

/// Where a saga's quick database steps run.
///
/// On the dev server a regular activity costs a round trip through Temporal's matching service
/// (≈ 50 ms here, docs/benchmarks.md); a local activity runs on the worker that runs the
/// workflow, and only its result is recorded (a marker in the history). Durability is the same:
/// a worker that dies mid-step loses the workflow task, and the next worker runs the step again
/// (every step is idempotent). What is given up is the context's own task queue: local steps
/// need the workflow worker to be able to run them (`fishapp worker` registers the post and
/// chat activities on the workflow queue too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A regular activity on the context's task queue: sagas started before local steps, so
    /// that their histories replay as they ran.
    ContextQueue,
    /// A local activity on the workflow's worker.
    Local,
}

/// The patch that moved a saga's forward database steps to local activities. A saga started
/// before it replays without it (its steps ran on the context queues).
pub const LOCAL_DB_STEPS: &str = "local-db-steps";

impl Placement {
    /// The placement for this saga: local, unless it is a replay of a saga started before.
    pub fn of<W>(ctx: &WorkflowContext<W>) -> Self {
        if ctx.patched(LOCAL_DB_STEPS) {
            Placement::Local
        } else {
            Placement::ContextQueue
        }
    }

    /// Runs a forward step (the [`forward`] retry policy) here.
    pub async fn forward<W, AD>(
        self,
        ctx: &WorkflowContext<W>,
        activity: AD,
        input: AD::Input,
        task_queue: &str,
        start_to_close: Duration,
    ) -> Result<AD::Output, ActivityExecutionError>
    where
        AD: ActivityDefinition,
        AD::Output: temporalio_common::data_converters::TemporalDeserializable,
    {
        match self {
            Placement::ContextQueue => {
                ctx.execute_activity(activity, input, forward(task_queue, start_to_close))
                    .await
            }
            Placement::Local => {
                let options = LocalActivityOptions::builder()
                    .start_to_close_timeout(start_to_close)
                    .retry_policy(retry_policy(FORWARD_MAX_INTERVAL, FORWARD_ATTEMPTS))
                    .build();
                ctx.execute_local_activity(activity, input, options).await
            }
        }
    }
}

const FORWARD_MAX_INTERVAL: Duration = Duration::from_secs(8);
const FORWARD_ATTEMPTS: u32 = 5;

fn retry_policy(max_interval: Duration, max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(max_interval)
        .maximum_attempts(max_attempts)
        .build()
}

/// Retries from 1 s, doubling up to `max_interval`; `max_attempts` 0 is unlimited.
fn options(
    task_queue: &str,
    start_to_close: Duration,
    max_interval: Duration,
    max_attempts: u32,
) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(start_to_close)
        .task_queue(task_queue.to_owned())
        .retry_policy(retry_policy(max_interval, max_attempts))
        .build()
}

/// Database steps are quick; image steps touch object storage.
pub const DB_STEP: Duration = Duration::from_secs(15);
pub const MEDIA_STEP: Duration = Duration::from_secs(60);

/// Compensations recorded so far, run in reverse by [`Compensations::run`].
#[derive(Default)]
pub struct Compensations(Vec<LocalBoxFuture<'static, ()>>);

impl Compensations {
    /// Records a compensation: `activity` with `input`, run (with `options`, normally
    /// [`until_done`]) if a later step fails. Record it *before* the step it undoes: a step whose
    /// reply was lost may have done its work, and every compensation is harmless when there is
    /// nothing to undo.
    pub fn push_activity<W: 'static, AD>(
        &mut self,
        ctx: &WorkflowContext<W>,
        activity: AD,
        input: AD::Input,
        options: ActivityOptions,
    ) where
        AD: ActivityDefinition + 'static,
    {
        let ctx = ctx.clone();
        self.0.push(Box::pin(async move {
            // A compensation retried until done only returns once it succeeded; one with
            // limited attempts that still fails leaves its trace in the history.
            let _ = ctx.execute_activity(activity, input, options).await;
        }));
    }

    pub async fn run(self) {
        for compensation in self.0.into_iter().rev() {
            compensation.await;
        }
    }
}

/// What a saga says when a step kept failing for reasons of its own (a dependency down, a
/// timeout): the dependency's error text stays in the history, for operators, and never reaches
/// a user.
pub const STEP_KEPT_FAILING: &str = "it kept failing; try again later";

/// Why a step failed, in words a user may read: the business reason of a non-retryable
/// application failure ("maxApply cannot be below…", raised by our activities with our text),
/// else [`STEP_KEPT_FAILING`].
pub fn reason(error: &ActivityExecutionError) -> String {
    fn innermost(failure: &Failure) -> &Failure {
        match failure.cause.as_deref() {
            Some(cause) => innermost(cause),
            None => failure,
        }
    }
    match error.failure().map(innermost) {
        Some(Failure {
            message,
            failure_info: Some(FailureInfo::ApplicationFailureInfo(info)),
            ..
        }) if info.non_retryable => message.clone(),
        _ => STEP_KEPT_FAILING.to_owned(),
    }
}

/// The failure a saga ends with once its compensations ran: non-retryable, typed so that the
/// API can tell it from an infrastructure failure.
pub fn business_failure(step: &str, error: &ActivityExecutionError) -> ApplicationFailure {
    ApplicationFailure::builder(format!("{step}: {}", reason(error)))
        .type_name(SAGA_FAILED.to_owned())
        .non_retryable(true)
        .build()
}

/// A step that failed for good: what it was doing, and why.
pub type StepError = (&'static str, ActivityExecutionError);

/// Names the step an activity error came from (`.map_err(step("create the post"))`).
pub fn step(what: &'static str) -> impl FnOnce(ActivityExecutionError) -> StepError {
    move |e| (what, e)
}

/// A saga's end: its forward steps' result as the workflow's, or — when a step failed for good —
/// the recorded compensations run in reverse and the saga fails with that step's reason.
pub async fn settle<T>(
    result: Result<T, StepError>,
    undo: Compensations,
) -> temporalio_sdk::WorkflowResult<T> {
    match result {
        Ok(output) => Ok(output),
        Err((what, error)) => {
            undo.run().await;
            Err(business_failure(what, &error).into())
        }
    }
}

/// `ApplicationFailure` type of a saga that failed for a business reason and compensated.
pub const SAGA_FAILED: &str = "SagaFailed";
