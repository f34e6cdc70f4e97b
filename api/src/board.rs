//! The board's service: starts the post sagas (Temporal workflows) and reads posts from
//! Postgres. Workflow ids are business keys, so a retried mutation finds the saga it already
//! started instead of running a second one:
//!
//! Every id starts with the deployment's prefix (`temporal_task_queue_prefix`), because post and
//! user ids are only unique within one database and a namespace may serve several deployments
//! (the tests run dozens side by side):
//!
//! - `<prefix>/post-create/<user id>/<key>`, where the key is the mutation's `clientMutationId` (or a
//!   fresh one). Conflict policy UseExisting (a running saga is joined), reuse policy
//!   RejectDuplicate (a finished one is never run again: its result is returned).
//! - `<prefix>/post-update/<post id>/<key>`, the same way.
//! - `<prefix>/post-delete/<post id>`: one teardown per post, ever.

use crate::error::ApiError;
use fishapp_store::Database;
use fishapp_store::board::{self as store, PostFields, PostRow};
use fishapp_workflows::Temporal;
use fishapp_workflows::board::{
    CreatePostInput, CreatePostOutput, CreatePostWorkflow, DeletePostInput, DeletePostWorkflow,
    UpdatePostInput, UpdatePostWorkflow,
};
use fishapp_workflows::saga::ContextQueues;
use fishapp_workflows::search_attributes::{POST_ID_KEY, USER_ID_KEY};
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::errors::{WorkflowGetResultError, WorkflowStartError};
use temporalio_client::{
    Client, UntypedWorkflow, WorkflowDescribeOptions, WorkflowExecutionStatus,
    WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;

#[derive(Debug, Clone)]
pub struct BoardSettings {
    /// How long createPost (and updatePost, deletePost) wait for their saga before answering
    /// with what is known so far.
    pub saga_wait: Duration,
    /// Most images a post may have.
    pub max_images_per_post: usize,
    /// Put before every workflow id (the deployment's task queue prefix).
    pub workflow_id_prefix: String,
}

#[derive(Clone)]
pub struct Board {
    db: Database,
    temporal: Temporal,
    settings: Arc<BoardSettings>,
}

/// How a saga stands after the wait.
#[derive(Debug)]
pub enum SagaWait<T> {
    Done(T),
    /// Failed for a business reason, compensated: nothing of it remains.
    Failed(String),
    /// Still running when the wait ended.
    Running,
}

/// A saga as its owner may see it (`saga(id)`).
#[derive(Debug, Clone)]
pub struct SagaInfo {
    pub id: String,
    pub workflow_type: String,
    pub status: WorkflowExecutionStatus,
    pub post_id: Option<i64>,
}

/// What updatePost asks the saga to do (checked by the resolver: owner, fields, image ids).
#[derive(Debug)]
pub struct UpdateRequest {
    pub post_id: i64,
    pub owner_id: i64,
    pub fields: PostFields,
    pub new_image_ids: Vec<uuid::Uuid>,
    pub image_ids_to_delete: Vec<uuid::Uuid>,
}

/// createPost's answer.
#[derive(Debug)]
pub struct CreateStarted {
    pub saga_id: String,
    pub post_id: i64,
    /// False when the key named a saga that an earlier request started.
    pub started_here: bool,
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable("the workflow service", e)
}

impl Board {
    pub fn new(db: Database, temporal: Temporal, settings: BoardSettings) -> Self {
        Self {
            db,
            temporal,
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &BoardSettings {
        &self.settings
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The Temporal client, or UNAVAILABLE: asked before anything is written, so that an
    /// unreachable workflow engine leaves no row behind.
    pub fn client(&self) -> Result<Client, ApiError> {
        Ok(self.temporal.client()?)
    }

    fn queues(&self) -> ContextQueues {
        ContextQueues::from(&self.temporal.settings().task_queues)
    }

    fn start_options(&self, workflow_id: &str, post_id: i64, user_id: i64) -> WorkflowStartOptions {
        WorkflowStartOptions::new(
            self.temporal.settings().task_queues.workflows.clone(),
            workflow_id.to_owned(),
        )
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .search_attributes(SearchAttributes::new([
            POST_ID_KEY.value_set(post_id.to_string()),
            USER_ID_KEY.value_set(user_id.to_string()),
        ]))
        .build()
    }

    /// Starts (or finds) the create saga for `key`. The post id is reserved here (no row is
    /// written: the saga writes it) and travels as the PostId search attribute. `client_key`:
    /// the key came from the caller, so an earlier request may own the saga under it.
    pub async fn start_create(
        &self,
        client: &Client,
        user_id: i64,
        key: &str,
        client_key: bool,
        fields: PostFields,
        image_ids: Vec<uuid::Uuid>,
    ) -> Result<CreateStarted, ApiError> {
        let saga_id = format!(
            "{}/post-create/{user_id}/{key}",
            self.settings.workflow_id_prefix
        );
        let reserved = store::reserve_post_id(self.db.pool()).await?;
        let input = CreatePostInput {
            queues: self.queues(),
            post_id: reserved,
            user_id,
            fields,
            image_ids,
        };
        let options = self.start_options(&saga_id, reserved, user_id);
        joined(
            client
                .start_workflow(CreatePostWorkflow::run, input, options)
                .await,
        )?;
        // Under a caller's key the saga may be an earlier request's: its post id is the one to
        // answer. A fresh key cannot have been used, so that lookup is skipped.
        let post_id = if client_key {
            self.describe(client, &saga_id)
                .await?
                .post_id
                .unwrap_or(reserved)
        } else {
            reserved
        };
        Ok(CreateStarted {
            started_here: post_id == reserved,
            saga_id,
            post_id,
        })
    }

    /// Waits up to the configured budget for a create saga's result.
    pub async fn wait_create(
        &self,
        client: &Client,
        saga_id: &str,
        budget: Duration,
    ) -> Result<SagaWait<CreatePostOutput>, ApiError> {
        let handle = client.get_workflow_handle::<CreatePostWorkflow>(saga_id.to_owned());
        wait(
            handle.get_result(WorkflowGetResultOptions::default()),
            budget,
        )
        .await
    }

    pub async fn start_update(
        &self,
        client: &Client,
        key: &str,
        request: UpdateRequest,
    ) -> Result<String, ApiError> {
        let saga_id = format!(
            "{}/post-update/{}/{key}",
            self.settings.workflow_id_prefix, request.post_id
        );
        let options = self.start_options(&saga_id, request.post_id, request.owner_id);
        let input = UpdatePostInput {
            queues: self.queues(),
            post_id: request.post_id,
            owner_id: request.owner_id,
            fields: request.fields,
            new_image_ids: request.new_image_ids,
            image_ids_to_delete: request.image_ids_to_delete,
        };
        joined(
            client
                .start_workflow(UpdatePostWorkflow::run, input, options)
                .await,
        )?;
        Ok(saga_id)
    }

    pub async fn wait_update(
        &self,
        client: &Client,
        saga_id: &str,
        budget: Duration,
    ) -> Result<SagaWait<i64>, ApiError> {
        let handle = client.get_workflow_handle::<UpdatePostWorkflow>(saga_id.to_owned());
        wait(
            handle.get_result(WorkflowGetResultOptions::default()),
            budget,
        )
        .await
    }

    /// Starts the teardown (once per post) and waits for it up to the budget; the teardown
    /// finishes whatever happens to this request.
    pub async fn delete(
        &self,
        client: &Client,
        post_id: i64,
        owner_id: i64,
    ) -> Result<SagaWait<i64>, ApiError> {
        let saga_id = format!("{}/post-delete/{post_id}", self.settings.workflow_id_prefix);
        let options = self.start_options(&saga_id, post_id, owner_id);
        let input = DeletePostInput {
            queues: self.queues(),
            post_id,
        };
        joined(
            client
                .start_workflow(DeletePostWorkflow::run, input, options)
                .await,
        )?;
        let handle = client.get_workflow_handle::<DeletePostWorkflow>(saga_id);
        wait(
            handle.get_result(WorkflowGetResultOptions::default()),
            self.settings.saga_wait,
        )
        .await
    }

    /// A saga's type, status and post, with the user who started it (for the owner check).
    pub async fn saga(
        &self,
        client: &Client,
        saga_id: &str,
    ) -> Result<(SagaInfo, Option<i64>), ApiError> {
        let handle = client.get_workflow_handle::<UntypedWorkflow>(saga_id.to_owned());
        let description = handle
            .describe(WorkflowDescribeOptions::default())
            .await
            .map_err(|e| {
                if e.to_string().to_lowercase().contains("not found") {
                    ApiError::NotFound(format!("no saga {saga_id:?}"))
                } else {
                    unavailable(e)
                }
            })?;
        let attributes = description.search_attributes();
        let parse = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
        Ok((
            SagaInfo {
                id: saga_id.to_owned(),
                workflow_type: description.workflow_type().to_owned(),
                status: description.status(),
                post_id: parse(attributes.get(&POST_ID_KEY)),
            },
            parse(attributes.get(&USER_ID_KEY)),
        ))
    }

    async fn describe(&self, client: &Client, saga_id: &str) -> Result<SagaInfo, ApiError> {
        Ok(self.saga(client, saga_id).await?.0)
    }

    pub async fn post(&self, id: i64) -> Result<Option<PostRow>, ApiError> {
        Ok(store::post_by_id(self.db.pool(), id).await?)
    }
}

/// A start that created the saga, or found it under its id (UseExisting joins a running one,
/// RejectDuplicate refuses a finished one — whose result is then awaited): both are success.
fn joined<T>(started: Result<T, WorkflowStartError>) -> Result<(), ApiError> {
    match started {
        Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
        Err(e) => Err(unavailable(e)),
    }
}

/// Waits for a workflow result up to `budget`. A failed saga is a business failure (it
/// compensated); anything else that ends a saga abnormally is an internal error.
async fn wait<T>(
    result: impl std::future::Future<Output = Result<T, WorkflowGetResultError>>,
    budget: Duration,
) -> Result<SagaWait<T>, ApiError> {
    match tokio::time::timeout(budget, result).await {
        Err(_) => Ok(SagaWait::Running),
        Ok(Ok(output)) => Ok(SagaWait::Done(output)),
        Ok(Err(WorkflowGetResultError::Failed(failure))) => {
            Ok(SagaWait::Failed(failure_message(&failure.to_string())))
        }
        Ok(Err(e)) => Err(ApiError::internal(e)),
    }
}

/// The saga's own message, without the SDK's wrapping.
fn failure_message(display: &str) -> String {
    display
        .trim_start_matches("Workflow failed: ")
        .trim()
        .to_owned()
}
