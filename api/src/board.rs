//! The board's use cases: creating, changing and tearing down a post, reading one, and
//! following a saga. Each takes domain values (the resolver parsed them) and owns the whole
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
//! - `<prefix>/withdraw/<application id>`: one Withdraw per application, ever.

use crate::account::Viewer;
use crate::cache::WindowLimiter;
use crate::error::{ApiError, NO_SUCH_SAGA};
use crate::media::Media;
use async_graphql::UploadValue;
use chrono::Utc;
use fishapp_domain::board::ApplyRefusal;
use fishapp_domain::board::{PostDraft, PostStatus};
use fishapp_domain::media::ImageOwner;
use fishapp_store::Database;
use fishapp_store::board::ApplicationRow;
use fishapp_store::board::{self as store, PostRow};
use fishapp_store::media as media_store;
use fishapp_temporal::Temporal;
use fishapp_temporal::sagas::{self, SagaInfo, SagaOutcome, SagaSubject};
use fishapp_workflows::board::{
    ApplyInput, ApplyOutput, ApplyWorkflow, CreatePostInput, CreatePostOutput, CreatePostWorkflow,
    DeletePostInput, DeletePostWorkflow, INPUT_VERSION, UpdatePostInput, UpdatePostWorkflow,
    WithdrawInput, WithdrawWorkflow,
};
use fishapp_workflows::saga::ContextQueues;
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::Client;
use uuid::Uuid;

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
    media: Media,
    settings: Arc<BoardSettings>,
    /// createPost calls per user (each may start a saga and upload images).
    creations: WindowLimiter,
}

/// A mutation's idempotency key: the caller's `clientMutationId`, or a fresh one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationKey {
    /// From the caller: an earlier request may have started the saga under it.
    Client(String),
    /// Made for this request: no saga can have it yet.
    Fresh(String),
}

impl MutationKey {
    /// `clientMutationId`: 1–64 of `A-Z a-z 0-9 - _ .`; none makes a fresh key.
    pub fn parse(field: &str, raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None => Ok(MutationKey::Fresh(Uuid::new_v4().simple().to_string())),
            Some(key)
                if (1..=64).contains(&key.len())
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                Ok(MutationKey::Client(key.to_owned()))
            }
            Some(_) => Err(ApiError::bad_input(
                field,
                "must be 1 to 64 of A-Z, a-z, 0-9, '-', '_' and '.'",
            )),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            MutationKey::Client(key) | MutationKey::Fresh(key) => key,
        }
    }

    /// The caller's own key, if it sent one.
    pub fn client_key(&self) -> Option<&str> {
        match self {
            MutationKey::Client(key) => Some(key),
            MutationKey::Fresh(_) => None,
        }
    }
}

/// createPost's request.
pub struct NewPost {
    pub draft: PostDraft,
    pub images: Vec<UploadValue>,
    pub key: MutationKey,
}

/// createPost's answer: the post (OPEN when its saga finished within the wait, PENDING
/// otherwise) and the saga to follow.
pub struct CreatedPost {
    pub post: PostRow,
    pub saga_id: String,
}

/// updatePost's request.
pub struct PostChange {
    pub post_id: i64,
    pub draft: PostDraft,
    /// `Image.id`s as the client sent them (`imageIdsToDelete`): each must be this post's.
    pub image_ids_to_delete: Vec<i64>,
    pub images: Vec<UploadValue>,
    pub key: MutationKey,
}

impl Board {
    pub fn new(
        db: Database,
        temporal: Temporal,
        media: Media,
        settings: BoardSettings,
        creations: WindowLimiter,
    ) -> Self {
        Self {
            db,
            temporal,
            media,
            settings: Arc::new(settings),
            creations,
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Posts a trip: stage the uploads, start (or join) the CreatePost saga, wait for it up to
    /// the budget.
    pub async fn create_post(
        &self,
        viewer: &Viewer,
        mut request: NewPost,
    ) -> Result<CreatedPost, ApiError> {
        self.creations.check(&viewer.user_id.to_string()).await?;
        let max_images = self
            .settings
            .max_images_per_post
            .min(self.media.settings().max_files_per_request);
        check_image_count(request.images.len(), max_images)?;
        // Temporal first: when it is unreachable, nothing is uploaded or written.
        let client = self.client()?;
        let image_ids = self
            .media
            .stage_all(
                "input.images",
                std::mem::take(&mut request.images),
                viewer.user_id,
            )
            .await?;
        let saga_id = self.saga_id(&format!(
            "post-create/{}/{}",
            viewer.user_id,
            request.key.as_str()
        ));
        let started = self
            .start_create(
                &client,
                &saga_id,
                viewer.user_id,
                &request,
                image_ids.clone(),
            )
            .await;
        let post_id = match started {
            Ok(post_id) if post_id.started_here => post_id.id,
            Ok(earlier) => {
                // A retry: the earlier request's saga owns the post; these uploads are not needed.
                self.media.discard_staged(&image_ids).await;
                earlier.id
            }
            Err(e) => {
                self.media.discard_staged(&image_ids).await;
                return Err(e);
            }
        };
        let outcome =
            sagas::wait_for::<CreatePostWorkflow>(&client, &saga_id, self.settings.saga_wait)
                .await?;
        let running = match outcome {
            SagaOutcome::Failed(reason) => {
                return Err(ApiError::Conflict(format!(
                    "the post could not be created ({reason}); nothing was kept"
                )));
            }
            SagaOutcome::Running => true,
            SagaOutcome::Done(_) => false,
        };
        let post = match store::post_by_id(self.db.pool(), post_id).await? {
            Some(row) => row,
            // The saga has not written the row yet: answer with what it will write.
            None if running => pending_post(post_id, viewer.user_id, &request.draft),
            // The saga under this key created the post long ago, and it has been deleted since.
            None => {
                return Err(ApiError::Refused {
                    code: fishapp_domain::ErrorCode::NotFound,
                    reason: "POST_DELETED",
                    message: format!(
                        "the post created under this clientMutationId ({post_id}) has since been \
                         deleted; send a new key to post again"
                    ),
                });
            }
        };
        Ok(CreatedPost { post, saga_id })
    }

    /// The create saga under `saga_id`, started here or by an earlier request with the same
    /// key. The post id is reserved here (no row: the saga writes it) and travels as the
    /// PostId search attribute.
    async fn start_create(
        &self,
        client: &Client,
        saga_id: &str,
        user_id: i64,
        request: &NewPost,
        image_ids: Vec<Uuid>,
    ) -> Result<StartedPost, ApiError> {
        let reserved = store::reserve_post_id(self.db.pool()).await?;
        let input = CreatePostInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id: reserved,
            user_id,
            fields: request.draft.clone(),
            image_ids,
            max_images: Some(self.max_images()),
        };
        let photos = match input.image_ids.len() {
            1 => "1 photo".to_owned(),
            n => format!("{n} photos"),
        };
        let options = self.start_options(
            saga_id,
            SagaSubject {
                post_id: reserved,
                user_id,
                summary: format!("Create post {reserved} for user {user_id} ({photos})"),
            },
        );
        sagas::started(
            client
                .start_workflow(CreatePostWorkflow::run, input, options)
                .await,
        )?;
        // Under a caller's key the saga may be an earlier request's: its post id is the one to
        // answer. A fresh key cannot have been used, so that lookup is skipped.
        let id = match request.key {
            MutationKey::Client(_) => sagas::describe(client, saga_id)
                .await?
                .post_id
                .unwrap_or(reserved),
            MutationKey::Fresh(_) => reserved,
        };
        Ok(StartedPost {
            id,
            started_here: id == reserved,
        })
    }

    /// Changes the owner's post through the UpdatePost saga; waits for it up to the budget.
    pub async fn update_post(
        &self,
        viewer: &Viewer,
        change: PostChange,
    ) -> Result<PostRow, ApiError> {
        let current = self.settled_post(viewer, change.post_id).await?;
        if current.status == PostStatus::Deleting {
            return Err(not_found(current.id));
        }
        if change.draft.max_apply.get() < current.apply_count {
            return Err(ApiError::bad_input(
                "input.maxApply",
                format!(
                    "cannot be below the {} people who already applied",
                    current.apply_count
                ),
            ));
        }
        let existing = media_store::images_of(self.db.pool(), ImageOwner::Post(current.id)).await?;
        let mut to_delete = Vec::new();
        for (i, number) in change.image_ids_to_delete.iter().enumerate() {
            let id = existing
                .iter()
                .find(|image| image.number == *number)
                .map(|image| image.id)
                .ok_or_else(|| {
                    ApiError::bad_input(
                        format!("input.imageIdsToDelete.{i}"),
                        "is not an image of this post",
                    )
                })?;
            if !to_delete.contains(&id) {
                to_delete.push(id);
            }
        }
        let room = self
            .settings
            .max_images_per_post
            .saturating_sub(existing.len() - to_delete.len());
        check_image_count(
            change.images.len(),
            room.min(self.media.settings().max_files_per_request),
        )?;
        let client = self.client()?;
        let new_images = self
            .media
            .stage_all("input.images", change.images, viewer.user_id)
            .await?;
        let saga_id = self.saga_id(&format!(
            "post-update/{}/{}",
            current.id,
            change.key.as_str()
        ));
        let input = UpdatePostInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id: current.id,
            owner_id: viewer.user_id,
            fields: change.draft,
            new_image_ids: new_images.clone(),
            image_ids_to_delete: to_delete,
            max_images: Some(self.max_images()),
        };
        let options = self.start_options(
            &saga_id,
            SagaSubject {
                post_id: current.id,
                user_id: viewer.user_id,
                summary: format!(
                    "Update post {} by user {}: {} photo(s) added, {} removed",
                    current.id,
                    viewer.user_id,
                    input.new_image_ids.len(),
                    input.image_ids_to_delete.len()
                ),
            },
        );
        let started = sagas::started(
            client
                .start_workflow(UpdatePostWorkflow::run, input, options)
                .await,
        );
        if let Err(e) = started {
            self.media.discard_staged(&new_images).await;
            return Err(e.into());
        }
        let outcome =
            sagas::wait_for::<UpdatePostWorkflow>(&client, &saga_id, self.settings.saga_wait)
                .await?;
        // A saga that is over attaches nothing more: whatever of this request's uploads is
        // still staged was not used (the key named an earlier request's saga, which had images
        // of its own) and goes now rather than with the daily cleanup. Attached images are left
        // alone.
        if !matches!(outcome, SagaOutcome::Running) {
            self.media.discard_staged(&new_images).await;
        }
        if let SagaOutcome::Failed(reason) = outcome {
            return Err(ApiError::Conflict(format!(
                "the post was not changed ({reason})"
            )));
        }
        store::post_by_id(self.db.pool(), current.id)
            .await?
            .ok_or_else(|| not_found(current.id))
    }

    /// Tears the owner's post down through the DeletePost saga (once per post, ever) and waits
    /// for it up to the budget; the teardown finishes whatever happens to this request.
    pub async fn delete_post(&self, viewer: &Viewer, post_id: i64) -> Result<(), ApiError> {
        let post = self.settled_post(viewer, post_id).await?;
        let client = self.client()?;
        let saga_id = self.saga_id(&format!("post-delete/{}", post.id));
        let input = DeletePostInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id: post.id,
        };
        let options = self.start_options(
            &saga_id,
            SagaSubject {
                post_id: post.id,
                user_id: viewer.user_id,
                summary: format!("Delete post {} of user {}", post.id, viewer.user_id),
            },
        );
        sagas::started(
            client
                .start_workflow(DeletePostWorkflow::run, input, options)
                .await,
        )?;
        let outcome =
            sagas::wait_for::<DeletePostWorkflow>(&client, &saga_id, self.settings.saga_wait)
                .await?;
        forward_only(outcome, &saga_id)
    }

    /// Applies `viewer` to a trip through the Apply saga. The rules are checked up front for a
    /// clear answer; the saga's conditional UPDATE decides races (two applicants for the last
    /// seat), and its refusal comes back the same way.
    pub async fn apply(&self, viewer: &Viewer, post_id: i64) -> Result<ApplicationRow, ApiError> {
        let post = store::post_by_id(self.db.pool(), post_id)
            .await?
            .filter(|p| p.status.is_public() || p.user_id == viewer.user_id);
        let seat_left = post.as_ref().is_some_and(|p| {
            p.status == PostStatus::Open
                && p.meeting_at > Utc::now()
                && p.user_id != viewer.user_id
                && p.apply_count < p.max_apply
        });
        if !seat_left {
            return Err(store::refusal(post.as_ref(), viewer.user_id).into());
        }
        if store::application_of(self.db.pool(), post_id, viewer.user_id)
            .await?
            .is_some()
        {
            return Err(ApplyRefusal::AlreadyApplied.into());
        }
        let client = self.client()?;
        let saga_id = self.saga_id(&format!("apply/{post_id}/{}", viewer.user_id));
        let input = ApplyInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id,
            user_id: viewer.user_id,
        };
        let options = sagas::start_options_rerunnable(
            &self.temporal.settings().task_queues.workflows,
            &saga_id,
            SagaSubject {
                post_id,
                user_id: viewer.user_id,
                summary: format!("User {} applies to post {post_id}", viewer.user_id),
            },
        );
        sagas::started(
            client
                .start_workflow(ApplyWorkflow::run, input, options)
                .await,
        )?;
        match sagas::wait_for::<ApplyWorkflow>(&client, &saga_id, self.settings.saga_wait).await? {
            SagaOutcome::Done(ApplyOutput::Applied(application)) => Ok(application),
            SagaOutcome::Done(ApplyOutput::Refused(refusal)) => Err(refusal.into()),
            SagaOutcome::Failed(reason) => Err(ApiError::Conflict(format!(
                "the application did not go through ({reason}); nothing was kept"
            ))),
            SagaOutcome::Running => Err(ApiError::Unavailable(
                "the application is still being processed; ask again shortly".to_owned(),
            )),
        }
    }

    /// Withdraws one of `viewer`'s applications through the Withdraw saga (forward only: it
    /// always finishes), waiting for it up to the budget.
    pub async fn withdraw(&self, viewer: &Viewer, application_id: i64) -> Result<(), ApiError> {
        let application = store::application_by_id(self.db.pool(), application_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no application {application_id}")))?;
        if application.user_id != viewer.user_id {
            return Err(ApiError::Forbidden(
                "only the applicant may withdraw".to_owned(),
            ));
        }
        let client = self.client()?;
        let saga_id = self.saga_id(&format!("withdraw/{application_id}"));
        let input = WithdrawInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id: application.post_id,
            user_id: viewer.user_id,
        };
        let options = self.start_options(
            &saga_id,
            SagaSubject {
                post_id: application.post_id,
                user_id: viewer.user_id,
                summary: format!(
                    "User {} withdraws application {application_id} from post {}",
                    viewer.user_id, application.post_id
                ),
            },
        );
        sagas::started(
            client
                .start_workflow(WithdrawWorkflow::run, input, options)
                .await,
        )?;
        let outcome =
            sagas::wait_for::<WithdrawWorkflow>(&client, &saga_id, self.settings.saga_wait).await?;
        forward_only(outcome, &saga_id)
    }

    /// One post as `viewer` may see it: PENDING and DELETING posts are their owner's alone
    /// (NOT_FOUND for everyone else, as for a post that does not exist).
    pub async fn post(&self, viewer: Option<&Viewer>, id: i64) -> Result<PostRow, ApiError> {
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
    pub async fn saga(&self, viewer: &Viewer, saga_id: &str) -> Result<SagaInfo, ApiError> {
        // Only this deployment's sagas: another one sharing the namespace has its own user ids,
        // so a matching `UserId` there proves nothing.
        if !saga_id.starts_with(&self.saga_id("")) {
            return Err(ApiError::NotFound(NO_SUCH_SAGA.to_owned()));
        }
        let client = self.client()?;
        let info = sagas::describe(&client, saga_id).await?;
        if info.user_id != Some(viewer.user_id) {
            return Err(ApiError::NotFound(NO_SUCH_SAGA.to_owned()));
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
        impl Future<Output = Result<Result<Option<PostRow>, String>, ApiError>> + use<>,
        ApiError,
    > {
        let info = self.saga(viewer, saga_id).await?;
        if info.workflow_type != CREATE_POST_WORKFLOW {
            return Err(ApiError::NotFound(NO_SUCH_SAGA.to_owned()));
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
                SagaOutcome::Running => Err(ApiError::Unavailable(
                    "the saga is still running; ask saga(id) later".to_owned(),
                )),
            }
        })
    }

    /// The post `post_id` names, which must be `viewer`'s (FORBIDDEN otherwise).
    async fn owned_post(&self, viewer: &Viewer, post_id: i64) -> Result<PostRow, ApiError> {
        let post = store::post_by_id(self.db.pool(), post_id)
            .await?
            .ok_or_else(|| not_found(post_id))?;
        if post.user_id != viewer.user_id {
            return Err(ApiError::Forbidden("only the owner may do this".to_owned()));
        }
        Ok(post)
    }

    /// The owner's post once its create saga is over. A post is PENDING exactly while its
    /// create saga runs (the saga's last step publishes it; its compensation deletes it), and
    /// changing or tearing it down then would race the saga: a room created after the teardown
    /// deleted the room, images attached to a post that is gone. So both wait, up to the saga
    /// budget, for the post to leave PENDING: OPEN, or NOT_FOUND when the creation was undone.
    async fn settled_post(&self, viewer: &Viewer, post_id: i64) -> Result<PostRow, ApiError> {
        let deadline = tokio::time::Instant::now() + self.settings.saga_wait;
        let mut pause = Duration::from_millis(50);
        loop {
            let post = self.owned_post(viewer, post_id).await?;
            if post.status != PostStatus::Pending {
                return Ok(post);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(ApiError::Refused {
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
    fn client(&self) -> Result<Client, ApiError> {
        Ok(self.temporal.client()?)
    }

    fn max_images(&self) -> u32 {
        u32::try_from(self.settings.max_images_per_post).unwrap_or(u32::MAX)
    }

    fn queues(&self) -> ContextQueues {
        ContextQueues::from(&self.temporal.settings().task_queues)
    }

    fn saga_id(&self, key: &str) -> String {
        format!("{}/{key}", self.settings.workflow_id_prefix)
    }

    fn start_options(
        &self,
        saga_id: &str,
        subject: SagaSubject,
    ) -> temporalio_client::WorkflowStartOptions {
        sagas::start_options(
            &self.temporal.settings().task_queues.workflows,
            saga_id,
            subject,
        )
    }
}

/// The workflow type createPostResult follows.
const CREATE_POST_WORKFLOW: &str = "CreatePostWorkflow";

struct StartedPost {
    id: i64,
    /// False when the key named a saga an earlier request started.
    started_here: bool,
}

fn not_found(post_id: i64) -> ApiError {
    ApiError::NotFound(format!("no post {post_id}"))
}

fn check_image_count(sent: usize, max: usize) -> Result<(), ApiError> {
    if sent > max {
        return Err(ApiError::bad_input(
            "input.images",
            format!("at most {max} images per request; {sent} were sent"),
        ));
    }
    Ok(())
}

/// The post a create saga is about to write, for an answer that cannot wait for it.
fn pending_post(id: i64, user_id: i64, draft: &PostDraft) -> PostRow {
    let now = Utc::now();
    PostRow {
        id,
        user_id,
        title: draft.title.as_str().to_owned(),
        content: draft.content.as_str().to_owned(),
        fishing_spot_type_id: draft.fishing_spot_type_id.get(),
        prefecture_id: draft.prefecture_id.get(),
        meeting_place_id: draft.meeting_place_id.as_str().to_owned(),
        meeting_at: draft.meeting_at.get(),
        max_apply: draft.max_apply.get(),
        apply_count: 0,
        status: PostStatus::Pending,
        created_at: now,
        updated_at: now,
    }
}

/// The answer of a forward-only saga (teardown, withdraw): finished or still running is success,
/// since its steps retry until done; it fails only when a step failed for good, which needs an
/// operator (the saga id finds it in the Temporal UI).
fn forward_only<T>(outcome: SagaOutcome<T>, saga_id: &str) -> Result<(), ApiError> {
    match outcome {
        SagaOutcome::Done(_) | SagaOutcome::Running => Ok(()),
        SagaOutcome::Failed(reason) => {
            tracing::error!(saga_id, %reason, "a forward-only saga failed");
            Err(ApiError::Unavailable(format!(
                "this could not be finished ({reason}); it has been reported"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_keys_are_checked_or_made() {
        assert!(matches!(
            MutationKey::parse("k", None),
            Ok(MutationKey::Fresh(_))
        ));
        assert_eq!(
            MutationKey::parse("k", Some("retry-me.1_A")).ok(),
            Some(MutationKey::Client("retry-me.1_A".to_owned()))
        );
        for bad in ["", "has space", &"x".repeat(65)] {
            assert!(MutationKey::parse("k", Some(bad)).is_err(), "{bad:?}");
        }
    }
}
