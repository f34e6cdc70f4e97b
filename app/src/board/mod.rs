//! The board's use cases: creating, changing and tearing down a post, reading one, following
//! a saga, and reviewing a trip that is over. Each takes domain values (the resolver parsed them) and owns the whole
//! story of its request: the checks that need the database, staging uploads, starting or
//! joining the saga under its business key, waiting for it, and undoing the request's own work
//! (staged uploads) when the saga cannot start or was already started by an earlier request.
//!
//! Workflow ids are business keys, so a retried mutation finds the saga it already started
//! instead of running a second one. Every id starts with the deployment's prefix
//! (`temporal_task_queue_prefix`), because post and user ids are only unique within one
//! database and a namespace may serve several deployments (the tests run dozens side by side):
//!
//! - `<prefix>/post-create/<user id>/<key>`, where the key is the mutation's `clientMutationId`
//!   (or a fresh one);
//! - `<prefix>/post-update/<post id>/<key>`, the same way;
//! - `<prefix>/post-delete/<post id>`: one teardown per post, ever;
//! - `<prefix>/apply/<post id>/<user id>`: one Apply at a time per post and applicant (a double
//!   click joins the running one; a finished one may run again after a withdrawal);
//! - `<prefix>/withdraw/<application id>`: one Withdraw per application, ever;
//! - `<prefix>/remove/<application id>`: one removal by the organiser per application, ever (the
//!   Withdraw saga again; it and the applicant's own withdrawal may cross: both steps are
//!   idempotent, and the removal is recorded either way).

mod applying;
mod keys;
mod posting;
mod reading;
mod reviewing;

pub use keys::MutationKey;
pub use posting::{CreatedPost, NewPost, PostChange};

use crate::account::Viewer;
use crate::cache::WindowLimiter;
use crate::error::AppError;
use crate::media::Media;
use fishapp_domain::board::PostStatus;
use fishapp_domain::review::ReviewWindow;
use fishapp_store::Database;
use fishapp_store::board::{self as store, PostRow};
use fishapp_temporal::Temporal;
use fishapp_temporal::sagas::{self, SagaOutcome, SagaSubject};
use fishapp_workflows::saga::ContextQueues;
use fishapp_workflows::trip::{TripTimings, trip_workflow_id};
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::Client;

#[derive(Debug, Clone)]
pub struct BoardSettings {
    /// How long createPost (and updatePost, deletePost) wait for their saga before answering
    /// with what is known so far.
    pub saga_wait: Duration,
    /// Most images a post may have.
    pub max_images_per_post: usize,
    /// Put before every workflow id (the deployment's task queue prefix).
    pub workflow_id_prefix: String,
    /// When a new trip's moments come (its workflow keeps them for its life).
    pub trip: TripTimings,
    /// How long after its meeting a trip may be reviewed.
    pub review_window: ReviewWindow,
}

#[derive(Clone)]
pub struct Board {
    db: Database,
    temporal: Temporal,
    media: Media,
    settings: Arc<BoardSettings>,
    limits: Arc<BoardLimits>,
}

/// What one user may start per window: each call starts (or may start) a saga, and most tell
/// other people something, so they are counted before any of that work.
pub struct BoardLimits {
    /// createPost calls (each may start a saga and upload images).
    pub creations: WindowLimiter,
    /// createApplyPost calls (each may start an Apply saga and notify the organiser).
    pub applications: WindowLimiter,
    /// updatePost calls (each starts a saga and may notify every member).
    pub changes: WindowLimiter,
    /// reviewTrip calls (each writes a review and its event).
    pub reviews: WindowLimiter,
}

impl Board {
    pub fn new(
        db: Database,
        temporal: Temporal,
        media: Media,
        settings: BoardSettings,
        limits: BoardLimits,
    ) -> Self {
        Self {
            db,
            temporal,
            media,
            settings: Arc::new(settings),
            limits: Arc::new(limits),
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The post `post_id` names, which must be `viewer`'s (FORBIDDEN otherwise).
    async fn owned_post(&self, viewer: &Viewer, post_id: i64) -> Result<PostRow, AppError> {
        let post = store::post_by_id(self.db.pool(), post_id)
            .await?
            .ok_or_else(|| not_found(post_id))?;
        if post.user_id != viewer.user_id {
            return Err(AppError::Forbidden("only the owner may do this".to_owned()));
        }
        Ok(post)
    }

    /// The owner's post once its create saga is over. A post is PENDING exactly while its
    /// create saga runs (the saga's last step publishes it; its compensation deletes it), and
    /// changing or tearing it down then would race the saga: a room created after the teardown
    /// deleted the room, images attached to a post that is gone. So both wait, up to the saga
    /// budget, for the post to leave PENDING: OPEN, or NOT_FOUND when the creation was undone.
    async fn settled_post(&self, viewer: &Viewer, post_id: i64) -> Result<PostRow, AppError> {
        let deadline = tokio::time::Instant::now() + self.settings.saga_wait;
        let mut pause = Duration::from_millis(50);
        loop {
            let post = self.owned_post(viewer, post_id).await?;
            if post.status != PostStatus::Pending {
                return Ok(post);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(AppError::Refused {
                    code: fishapp_domain::ErrorCode::Conflict,
                    reason: "POST_BEING_CREATED",
                    message: "the post is still being created; try again shortly".to_owned(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The Temporal client, or UNAVAILABLE: asked before anything is written, so that an
    /// unreachable workflow engine leaves no row behind.
    fn client(&self) -> Result<Client, AppError> {
        Ok(self.temporal.client()?)
    }

    fn queues(&self) -> ContextQueues {
        ContextQueues::from(&self.temporal.settings().task_queues)
    }

    /// The trip workflow of `post_id`.
    fn trip_id(&self, post_id: i64) -> String {
        trip_workflow_id(&self.settings.workflow_id_prefix, post_id)
    }

    fn saga_id(&self, key: &str) -> String {
        format!("{}/{key}", self.settings.workflow_id_prefix)
    }

    /// A saga's start options, made by `make` ([`sagas::start_options`], or
    /// [`sagas::start_options_rerunnable`] for a business key that can recur) on the workflow
    /// queue, with eager start as configured.
    fn configured(
        &self,
        make: fn(&str, &str, SagaSubject) -> temporalio_client::WorkflowStartOptions,
        saga_id: &str,
        subject: SagaSubject,
    ) -> temporalio_client::WorkflowStartOptions {
        let settings = self.temporal.settings();
        let options = make(&settings.task_queues.workflows, saga_id, subject);
        sagas::eager(options, settings.eager_start)
    }
}

fn not_found(post_id: i64) -> AppError {
    AppError::NotFound(format!("no post {post_id}"))
}

/// The answer of a forward-only saga (teardown, withdraw): finished or still running is success,
/// since its steps retry until done; it fails only when a step failed for good, which needs an
/// operator (the saga id finds it in the Temporal UI).
fn forward_only<T>(outcome: SagaOutcome<T>, saga_id: &str) -> Result<(), AppError> {
    match outcome {
        SagaOutcome::Done(_) | SagaOutcome::Running => Ok(()),
        SagaOutcome::Failed(reason) => {
            tracing::error!(saga_id, %reason, "a forward-only saga failed");
            Err(AppError::Unavailable(format!(
                "this could not be finished ({reason}); it has been reported"
            )))
        }
    }
}
