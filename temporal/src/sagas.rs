//! Starting a saga under its business key, waiting for its outcome, and describing it — with
//! outcomes told apart by type, never by the text of an error:
//!
//! - a saga that failed for a business reason ended with an `ApplicationFailure` of type
//!   [`SAGA_FAILED`](fishapp_workflows::saga::SAGA_FAILED) after its compensations ran:
//!   [`SagaOutcome::Failed`] with the step's reason;
//! - Temporal unreachable, a workflow that timed out, was terminated or cancelled, or any other
//!   failure: [`SagaError`], which the API maps to codes of their own.

use crate::search_attributes::{POST_ID_KEY, USER_ID_KEY};
use fishapp_workflows::saga::SAGA_FAILED;
use std::future::Future;
use std::time::Duration;
use temporalio_client::errors::{
    WorkflowGetResultError, WorkflowInteractionError, WorkflowStartError,
};
use temporalio_client::{
    Client, UntypedWorkflow, WorkflowDescribeOptions, WorkflowExecutionStatus,
    WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowStartOptions,
};
use temporalio_common::HasWorkflowDefinition;
use temporalio_common::error::IncomingError;
use temporalio_common::search_attributes::SearchAttributes;

/// How a saga stands after waiting for it.
#[derive(Debug, PartialEq, Eq)]
pub enum SagaOutcome<T> {
    Done(T),
    /// Failed for a business reason and compensated: nothing of it remains.
    Failed(String),
    /// Still running when the wait ended.
    Running,
}

/// What went wrong on Temporal's side: nothing the caller did.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// Temporal could not be reached, or refused the call.
    #[error("the workflow service is unavailable: {0}")]
    Unavailable(String),
    /// No saga has this id (in this namespace). Temporal's own text (which names the workflow
    /// id, and with it the deployment's prefix) is not kept: it is never a client's business.
    #[error("no such saga")]
    NotFound,
    /// The saga ran past its workflow timeout.
    #[error("the saga timed out")]
    TimedOut,
    /// The saga ended without finishing its work or compensating: terminated or cancelled by an
    /// operator, or failed outside the saga pattern.
    #[error("the saga ended abnormally: {0}")]
    Aborted(String),
}

/// A saga as its starter may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaInfo {
    pub id: String,
    /// The workflow type, e.g. `CreatePostWorkflow`.
    pub workflow_type: String,
    pub status: WorkflowExecutionStatus,
    /// The `PostId` search attribute.
    pub post_id: Option<i64>,
    /// The `UserId` search attribute: who started it.
    pub user_id: Option<i64>,
    /// The one-line summary the Temporal UI shows ([`SagaSubject::summary`]).
    pub summary: Option<String>,
}

/// What a saga is about, for its start options.
#[derive(Debug, Clone)]
pub struct SagaSubject {
    pub post_id: i64,
    /// Who started it.
    pub user_id: i64,
    /// One line for the Temporal UI's summary column ("Create post 12 for user 3 (2 photos)"):
    /// ids and counts only, never what users wrote.
    pub summary: String,
}

/// Start options of every saga: the id is a business key (conflict policy UseExisting joins a
/// running saga, reuse policy RejectDuplicate never runs a finished one again), the
/// `PostId`/`UserId` search attributes let operators find it and the summary tells them what it
/// is in the Temporal UI's list.
pub fn start_options(
    task_queue: &str,
    workflow_id: &str,
    subject: SagaSubject,
) -> WorkflowStartOptions {
    options(
        task_queue,
        workflow_id,
        subject,
        WorkflowIdReusePolicy::RejectDuplicate,
    )
}

/// Like [`start_options`], but a finished saga under the id may run again (reuse policy
/// AllowDuplicate): for a business key that can recur — applying again after withdrawing. A
/// running one is still joined.
pub fn start_options_rerunnable(
    task_queue: &str,
    workflow_id: &str,
    subject: SagaSubject,
) -> WorkflowStartOptions {
    options(
        task_queue,
        workflow_id,
        subject,
        WorkflowIdReusePolicy::AllowDuplicate,
    )
}

/// `options` with eager workflow start requested or not ([`crate::TemporalSettings::eager_start`]).
pub fn eager(mut options: WorkflowStartOptions, on: bool) -> WorkflowStartOptions {
    options.enable_eager_workflow_start = on;
    options
}

fn options(
    task_queue: &str,
    workflow_id: &str,
    subject: SagaSubject,
    reuse: WorkflowIdReusePolicy,
) -> WorkflowStartOptions {
    WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.to_owned())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .id_reuse_policy(reuse)
        .search_attributes(SearchAttributes::new([
            POST_ID_KEY.value_set(subject.post_id.to_string()),
            USER_ID_KEY.value_set(subject.user_id.to_string()),
        ]))
        .static_summary(subject.summary)
        .build()
}

/// A start that created the saga, or found it under its id (a running one joined, a finished
/// one — whose result is then awaited): both are success.
pub fn started<T>(start: Result<T, WorkflowStartError>) -> Result<(), SagaError> {
    match start {
        Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
        Err(e) => Err(SagaError::Unavailable(e.to_string())),
    }
}

/// Waits up to `budget` for the outcome of the saga of workflow type `W` under `saga_id`.
pub async fn wait_for<W: HasWorkflowDefinition>(
    client: &Client,
    saga_id: &str,
    budget: Duration,
) -> Result<SagaOutcome<W::Output>, SagaError> {
    let handle = client.get_workflow_handle::<W>(saga_id.to_owned());
    wait(
        handle.get_result(WorkflowGetResultOptions::default()),
        budget,
    )
    .await
}

/// Waits for a saga's result up to `budget`.
pub async fn wait<T>(
    result: impl Future<Output = Result<T, WorkflowGetResultError>>,
    budget: Duration,
) -> Result<SagaOutcome<T>, SagaError> {
    match tokio::time::timeout(budget, result).await {
        Err(_) => Ok(SagaOutcome::Running),
        Ok(Ok(output)) => Ok(SagaOutcome::Done(output)),
        Ok(Err(e)) => classify(e),
    }
}

fn classify<T>(error: WorkflowGetResultError) -> Result<SagaOutcome<T>, SagaError> {
    match error {
        WorkflowGetResultError::Failed(failure) => match *failure {
            IncomingError::Application(app) if app.type_name() == Some(SAGA_FAILED) => {
                Ok(SagaOutcome::Failed(app.source_error().to_string()))
            }
            other => Err(SagaError::Aborted(other.to_string())),
        },
        WorkflowGetResultError::NotFound(_) => Err(SagaError::NotFound),
        WorkflowGetResultError::TimedOut => Err(SagaError::TimedOut),
        WorkflowGetResultError::Rpc(status) => Err(SagaError::Unavailable(status.to_string())),
        other => Err(SagaError::Aborted(other.to_string())),
    }
}

/// A saga's type, status, post and starter.
pub async fn describe(client: &Client, saga_id: &str) -> Result<SagaInfo, SagaError> {
    let description = client
        .get_workflow_handle::<UntypedWorkflow>(saga_id.to_owned())
        .describe(WorkflowDescribeOptions::default())
        .await
        .map_err(|e| match e {
            WorkflowInteractionError::NotFound(_) => SagaError::NotFound,
            other => SagaError::Unavailable(other.to_string()),
        })?;
    let attributes = description.search_attributes();
    let id_of = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
    Ok(SagaInfo {
        id: saga_id.to_owned(),
        workflow_type: description.workflow_type().to_owned(),
        status: description.status(),
        post_id: id_of(attributes.get(&POST_ID_KEY)),
        user_id: id_of(attributes.get(&USER_ID_KEY)),
        summary: description.static_summary().map(str::to_owned),
    })
}
