//! Posting a trip, changing it and tearing it down: the CreatePost, UpdatePost and DeletePost
//! sagas, started (or joined) under their business keys.

use super::{Board, MutationKey, forward_only, not_found};
use crate::account::Viewer;
use crate::error::AppError;
use crate::media::Upload;
use chrono::Utc;
use fishapp_domain::board::{PostDraft, PostStatus};
use fishapp_domain::media::ImageOwner;
use fishapp_store::board::{self as store, PostRow};
use fishapp_store::media as media_store;
use fishapp_temporal::sagas::{self, SagaOutcome, SagaSubject};
use fishapp_workflows::board::{
    CreatePostInput, CreatePostWorkflow, DeletePostInput, DeletePostWorkflow, INPUT_VERSION,
    UpdatePostInput, UpdatePostWorkflow,
};
use fishapp_workflows::trip::{TripInput, TripProgress};
use temporalio_client::Client;
use uuid::Uuid;

/// createPost's request.
pub struct NewPost {
    pub draft: PostDraft,
    pub images: Vec<Upload>,
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
    pub images: Vec<Upload>,
    pub key: MutationKey,
}

impl Board {
    /// Posts a trip: stage the uploads, start (or join) the CreatePost saga, wait for it up to
    /// the budget.
    pub async fn create_post(
        &self,
        viewer: &Viewer,
        mut request: NewPost,
    ) -> Result<CreatedPost, AppError> {
        self.limits
            .creations
            .check(&viewer.user_id.to_string())
            .await?;
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
                return Err(AppError::Conflict(format!(
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
                return Err(AppError::Refused {
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
    ) -> Result<StartedPost, AppError> {
        let reserved = store::reserve_post_id(self.db.pool()).await?;
        let input = CreatePostInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id: reserved,
            user_id,
            fields: request.draft.clone(),
            image_ids,
            max_images: Some(self.max_images()),
            trip: Some(TripInput {
                version: INPUT_VERSION,
                queues: self.queues(),
                post_id: reserved,
                meeting_at: request.draft.meeting_at.get(),
                timings: self.settings.trip,
                saga_id_prefix: self.settings.workflow_id_prefix.clone(),
                progress: TripProgress::default(),
            }),
        };
        let photos = match input.image_ids.len() {
            1 => "1 photo".to_owned(),
            n => format!("{n} photos"),
        };
        let options = self.configured(
            sagas::start_options,
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
    ) -> Result<PostRow, AppError> {
        self.limits
            .changes
            .check(&viewer.user_id.to_string())
            .await?;
        let current = self.settled_post(viewer, change.post_id).await?;
        if current.status == PostStatus::Deleting {
            return Err(not_found(current.id));
        }
        if change.draft.max_apply.get() < current.apply_count {
            return Err(AppError::bad_input(
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
                    AppError::bad_input(
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
            trip_workflow_id: Some(self.trip_id(current.id)),
        };
        let options = self.configured(
            sagas::start_options,
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
            return Err(AppError::Conflict(format!(
                "the post was not changed ({reason})"
            )));
        }
        store::post_by_id(self.db.pool(), current.id)
            .await?
            .ok_or_else(|| not_found(current.id))
    }

    /// Tears the owner's post down through the DeletePost saga (once per post, ever) and waits
    /// for it up to the budget; the teardown finishes whatever happens to this request.
    pub async fn delete_post(&self, viewer: &Viewer, post_id: i64) -> Result<(), AppError> {
        let post = self.settled_post(viewer, post_id).await?;
        let client = self.client()?;
        let saga_id = self.saga_id(&format!("post-delete/{}", post.id));
        let input = DeletePostInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id: post.id,
            trip_workflow_id: Some(self.trip_id(post.id)),
        };
        let options = self.configured(
            sagas::start_options,
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

    fn max_images(&self) -> u32 {
        u32::try_from(self.settings.max_images_per_post).unwrap_or(u32::MAX)
    }
}

struct StartedPost {
    id: i64,
    /// False when the key named a saga an earlier request started.
    started_here: bool,
}

fn check_image_count(sent: usize, max: usize) -> Result<(), AppError> {
    if sent > max {
        return Err(AppError::bad_input(
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
        approval_required: draft.approval_required.unwrap_or(false),
        requests_closed: false,
        created_at: now,
        updated_at: now,
    }
}
