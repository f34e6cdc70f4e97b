//! Reading a post as its viewer may see it, and following a saga.

use super::{Board, not_found};
use crate::account::Viewer;
use crate::error::{AppError, NO_SUCH_SAGA};
use fishapp_store::board::{self as store, PostRow};
use fishapp_temporal::sagas::{self, SagaInfo, SagaOutcome};
use fishapp_workflows::board::{CreatePostOutput, CreatePostWorkflow};
use std::time::Duration;

impl Board {
    /// One post as `viewer` may see it: PENDING and DELETING posts are their owner's alone
    /// (NOT_FOUND for everyone else, as for a post that does not exist).
    pub async fn post(&self, viewer: Option<&Viewer>, id: i64) -> Result<PostRow, AppError> {
        match store::post_by_id(self.db.pool(), id).await? {
            Some(post)
                if post.status.is_public() || viewer.is_some_and(|v| v.user_id == post.user_id) =>
            {
                Ok(post)
            }
            _ => Err(not_found(id)),
        }
    }

    /// One of `viewer`'s sagas: someone else's is indistinguishable from none.
    pub async fn saga(&self, viewer: &Viewer, saga_id: &str) -> Result<SagaInfo, AppError> {
        // Only this deployment's sagas: another one sharing the namespace has its own user ids,
        // so a matching `UserId` there proves nothing.
        if !saga_id.starts_with(&self.saga_id("")) {
            return Err(AppError::NotFound(NO_SUCH_SAGA.to_owned()));
        }
        let client = self.client()?;
        let info = sagas::describe(&client, saga_id).await?;
        if info.user_id != Some(viewer.user_id) {
            return Err(AppError::NotFound(NO_SUCH_SAGA.to_owned()));
        }
        Ok(info)
    }

    /// The outcome of one of `viewer`'s create sagas, waiting up to `budget`: the post, or why
    /// it failed (and was undone). Checked before waiting starts; the wait is the returned
    /// future.
    pub async fn create_result(
        &self,
        viewer: &Viewer,
        saga_id: &str,
        budget: Duration,
    ) -> Result<
        impl Future<Output = Result<Result<Option<PostRow>, String>, AppError>> + use<>,
        AppError,
    > {
        let info = self.saga(viewer, saga_id).await?;
        if info.workflow_type != CREATE_POST_WORKFLOW {
            return Err(AppError::NotFound(NO_SUCH_SAGA.to_owned()));
        }
        let client = self.client()?;
        let db = self.db.clone();
        let saga_id = saga_id.to_owned();
        Ok(async move {
            let outcome: SagaOutcome<CreatePostOutput> =
                sagas::wait_for::<CreatePostWorkflow>(&client, &saga_id, budget).await?;
            match outcome {
                SagaOutcome::Done(output) => {
                    Ok(Ok(store::post_by_id(db.pool(), output.post_id).await?))
                }
                SagaOutcome::Failed(reason) => Ok(Err(format!(
                    "the post could not be created ({reason}); nothing was kept"
                ))),
                SagaOutcome::Running => Err(AppError::Unavailable(
                    "the saga is still running; ask saga(id) later".to_owned(),
                )),
            }
        })
    }
}

/// The workflow type createPostResult follows.
const CREATE_POST_WORKFLOW: &str = "CreatePostWorkflow";
