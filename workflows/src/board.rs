//! The board's sagas: create, update and delete (teardown) a post, apply and withdraw. Each step
//! is an activity on its context's task queue, but CreatePost's and Apply's forward database
//! steps, which run as local activities on the workflow's worker (see `saga::Placement`); ids are
//! business keys (see `fishapp_app::board`), so a retried mutation finds the saga it already
//! started. The sagas that change a trip tell its trip workflow (`crate::trip`) by signal.

use crate::saga::{
    Compensations, ContextQueues, DB_STEP, MEDIA_STEP, Placement, StepError, forward, settle, step,
    until_done,
};
use crate::trip::{TRIP_WORKFLOW, TripInput, TripWorkflow};
use fishapp_activities::chat::{CreateRoom, DeleteRoom, LeaveRoom, Membership};
use fishapp_activities::media::{AttachImages, DeleteImages, ImageLimit, Owner};
use fishapp_activities::post::{
    CreatePending, GiveBackSeat, ReleaseUpdate, RestoreFields, SeatOf, UpdateFields,
};
use fishapp_activities::{ChatActivities, MediaActivities, PostActivities};
use fishapp_domain::board::{ApplyRefusal, PostDraft};
use fishapp_store::board::{ApplicationRow, Seat, SeatWay};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ParentClosePolicy, SignalWorkflowOptions, WorkflowContext, WorkflowResult,
};
use uuid::Uuid;

/// The version every saga input written by this build carries. Inputs live in histories and are
/// read again by later builds (replays, workers picking up a saga in flight): a field is only ever
/// added, with a serde default, so that older inputs still read — the `version` field itself was
/// added that way (histories recorded before it replay in tests/histories.rs). A change in
/// meaning raises the version, and the workflow branches on it.
pub const INPUT_VERSION: u16 = 1;

fn first_version() -> u16 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatePostInput {
    #[serde(default = "first_version")]
    pub version: u16,
    pub queues: ContextQueues,
    pub post_id: i64,
    pub user_id: i64,
    pub fields: PostDraft,
    /// Staged uploads to attach (ids only: workflows never carry bytes).
    pub image_ids: Vec<Uuid>,
    /// Most images a post may have (`board_max_images_per_post`), enforced where they are
    /// attached; none in sagas started before.
    #[serde(default)]
    pub max_images: Option<u32>,
    /// The trip workflow to start once the post is published (its id: see
    /// [`crate::trip::trip_workflow_id`]); none in sagas started before it existed.
    #[serde(default)]
    pub trip: Option<TripInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatePostOutput {
    pub post_id: i64,
    pub room_id: i64,
}

#[workflow]
#[derive(Default)]
pub struct CreatePostWorkflow;

#[workflow_methods]
impl CreatePostWorkflow {
    /// PENDING post → room with the owner → images attached → OPEN. On a failure that retries
    /// cannot fix, the compensations run in reverse and the saga fails with the reason.
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: CreatePostInput,
    ) -> WorkflowResult<CreatePostOutput> {
        let mut undo = Compensations::default();
        let result = Self::steps(ctx, &input, &mut undo).await;
        settle(result, undo).await
    }
}

impl CreatePostWorkflow {
    async fn steps(
        ctx: &WorkflowContext<Self>,
        input: &CreatePostInput,
        undo: &mut Compensations,
    ) -> Result<CreatePostOutput, StepError> {
        let q = &input.queues;
        let post_id = input.post_id;
        // The database steps run as local activities (sagas started before that change replay
        // with them on the context queues); the image step touches storage and stays on the
        // media queue; compensations retry until done and stay regular activities.
        let db = Placement::of(ctx);
        // The staged uploads belong to the saga from its start: whatever fails, they go.
        if !input.image_ids.is_empty() {
            undo.push_activity(
                ctx,
                MediaActivities::delete_images,
                DeleteImages::StagedOrOwnedBy {
                    owner: Owner::Post(post_id),
                    ids: input.image_ids.clone(),
                },
                until_done(&q.media, MEDIA_STEP),
            );
        }
        undo.push_activity(
            ctx,
            PostActivities::discard_pending,
            post_id,
            until_done(&q.post, DB_STEP),
        );
        db.forward(
            ctx,
            PostActivities::create_pending,
            CreatePending {
                post_id,
                user_id: input.user_id,
                fields: input.fields.clone(),
            },
            &q.post,
            DB_STEP,
        )
        .await
        .map_err(step("create the post"))?;

        undo.push_activity(
            ctx,
            ChatActivities::delete_room,
            DeleteRoom {
                post_id,
                announce: false,
            },
            until_done(&q.chat, DB_STEP),
        );
        let room_id = db
            .forward(
                ctx,
                ChatActivities::create_room,
                CreateRoom {
                    post_id,
                    owner_id: input.user_id,
                },
                &q.chat,
                DB_STEP,
            )
            .await
            .map_err(step("create the chat room"))?;

        if !input.image_ids.is_empty() {
            ctx.execute_activity(
                MediaActivities::attach_images,
                AttachImages {
                    owner: Owner::Post(post_id),
                    image_ids: input.image_ids.clone(),
                    limit: input.max_images.map(|max| ImageLimit {
                        max,
                        leaving: Vec::new(),
                    }),
                },
                forward(&q.media, MEDIA_STEP),
            )
            .await
            .map_err(step("attach the images"))?;
        }

        db.forward(ctx, PostActivities::publish, post_id, &q.post, DB_STEP)
            .await
            .map_err(step("publish the post"))?;
        if let Some(trip) = &input.trip
            && ctx.patched(TRIP_WORKFLOW)
        {
            start_trip(ctx, trip).await;
        }
        Ok(CreatePostOutput { post_id, room_id })
    }
}

/// Starts the trip's workflow (it outlives this saga). Only its start is awaited; a start that
/// fails (a workflow of that id runs already) leaves the trip to it.
async fn start_trip<W>(ctx: &WorkflowContext<W>, trip: &TripInput) {
    let options = ChildWorkflowOptions::builder()
        .workflow_id(crate::trip::trip_workflow_id(
            &trip.saga_id_prefix,
            trip.post_id,
        ))
        .static_summary(format!("the life of trip {}", trip.post_id))
        .parent_close_policy(ParentClosePolicy::Abandon)
        .build();
    let _ = ctx
        .start_child_workflow(TripWorkflow::run, trip.clone(), options)
        .await;
}

/// Tells a trip's workflow, if the saga knows it, what changed. A trip without one (posted
/// before it existed) or whose life is over ignores nothing: the signal just finds no one.
async fn tell_trip<W, S>(ctx: &WorkflowContext<W>, trip: Option<&str>, signal: S, input: S::Input)
where
    S: temporalio_common::SignalDefinition + 'static,
{
    if let Some(trip) = trip {
        let _ = ctx
            .external_workflow(trip.to_owned(), None)
            .signal(signal, input, SignalWorkflowOptions::default())
            .await;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdatePostInput {
    #[serde(default = "first_version")]
    pub version: u16,
    pub queues: ContextQueues,
    pub post_id: i64,
    pub owner_id: i64,
    pub fields: PostDraft,
    /// New staged uploads to attach.
    pub new_image_ids: Vec<Uuid>,
    /// This post's images to delete (ids of other owners' images select nothing).
    pub image_ids_to_delete: Vec<Uuid>,
    /// As in [`CreatePostInput::max_images`].
    #[serde(default)]
    pub max_images: Option<u32>,
    /// The trip workflow to tell of the new meeting time and seats; none in sagas started
    /// before it existed.
    #[serde(default)]
    pub trip_workflow_id: Option<String>,
}

#[workflow]
#[derive(Default)]
pub struct UpdatePostWorkflow;

#[workflow_methods]
impl UpdatePostWorkflow {
    /// Fields and fish types → new images attached → removed images deleted. Deleting cannot
    /// be undone, so it comes last, after every step that can; a failure before it restores
    /// the fields and deletes the new images.
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: UpdatePostInput,
    ) -> WorkflowResult<i64> {
        let mut undo = Compensations::default();
        let result = Self::steps(ctx, &input, &mut undo).await;
        settle(result.map(|()| input.post_id), undo).await
    }
}

impl UpdatePostWorkflow {
    async fn steps(
        ctx: &WorkflowContext<Self>,
        input: &UpdatePostInput,
        undo: &mut Compensations,
    ) -> Result<(), StepError> {
        let q = &input.queues;
        let post_id = input.post_id;
        // One change of a post at a time: this saga holds the post from its first step to its
        // last (released last of all when it compensates, so nothing else changes the post
        // before its fields are restored).
        let hold = ctx
            .patched(SERIALIZED_UPDATES)
            .then(|| ctx.workflow_id().to_owned());
        if let Some(saga) = &hold {
            undo.push_activity(
                ctx,
                PostActivities::release_update,
                ReleaseUpdate {
                    post_id,
                    saga: saga.clone(),
                },
                until_done(&q.post, DB_STEP),
            );
        }
        // The new staged uploads belong to the saga from its start: on failure, they go.
        if !input.new_image_ids.is_empty() {
            undo.push_activity(
                ctx,
                MediaActivities::delete_images,
                DeleteImages::StagedOrOwnedBy {
                    owner: Owner::Post(post_id),
                    ids: input.new_image_ids.clone(),
                },
                until_done(&q.media, MEDIA_STEP),
            );
        }
        // The snapshot comes back from the step itself: if the step fails, it changed nothing
        // (one transaction), so there is nothing to restore.
        let snapshot = ctx
            .execute_activity(
                PostActivities::update_fields,
                UpdateFields {
                    post_id,
                    owner_id: input.owner_id,
                    fields: input.fields.clone(),
                    hold: hold.clone(),
                },
                forward(&q.post, DB_STEP),
            )
            .await
            .map_err(step("update the post"))?;
        undo.push_activity(
            ctx,
            PostActivities::restore_fields,
            RestoreFields { post_id, snapshot },
            until_done(&q.post, DB_STEP),
        );

        if !input.new_image_ids.is_empty() {
            ctx.execute_activity(
                MediaActivities::attach_images,
                AttachImages {
                    owner: Owner::Post(post_id),
                    image_ids: input.new_image_ids.clone(),
                    limit: input.max_images.map(|max| ImageLimit {
                        max,
                        leaving: input.image_ids_to_delete.clone(),
                    }),
                },
                forward(&q.media, MEDIA_STEP),
            )
            .await
            .map_err(step("attach the new images"))?;
        }

        if !input.image_ids_to_delete.is_empty() {
            ctx.execute_activity(
                MediaActivities::delete_images,
                DeleteImages::OwnedBy {
                    owner: Owner::Post(post_id),
                    ids: input.image_ids_to_delete.clone(),
                },
                forward(&q.media, MEDIA_STEP),
            )
            .await
            .map_err(step("delete the removed images"))?;
        }
        if let Some(saga) = hold {
            // Retried until done: the change is made; only the hold is left to end.
            ctx.execute_activity(
                PostActivities::release_update,
                ReleaseUpdate { post_id, saga },
                until_done(&q.post, DB_STEP),
            )
            .await
            .map_err(step("release the post"))?;
        }
        tell_trip(
            ctx,
            input.trip_workflow_id.as_deref(),
            TripWorkflow::rescheduled,
            input.fields.meeting_at.get(),
        )
        .await;
        Ok(())
    }
}

/// The patch that made UpdatePost hold its post (one change at a time); sagas started before
/// replay without the hold.
pub const SERIALIZED_UPDATES: &str = "serialized-updates";

/// The patch that made Withdraw give the seat back before leaving the room (an Apply that joins
/// the room meanwhile then finds no seat, or its member is removed by the leave step); sagas
/// started before replay in the old order.
pub const WITHDRAW_SEAT_FIRST: &str = "withdraw-seat-first";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeletePostInput {
    #[serde(default = "first_version")]
    pub version: u16,
    pub queues: ContextQueues,
    pub post_id: i64,
    /// The trip workflow whose life the teardown ends; none in sagas started before it existed.
    #[serde(default)]
    pub trip_workflow_id: Option<String>,
}

#[workflow]
#[derive(Default)]
pub struct DeletePostWorkflow;

#[workflow_methods]
impl DeletePostWorkflow {
    /// Teardown, forward only: hide → the room's message images → the room (members,
    /// messages) → the post's images → applications → the post. Every step is idempotent and
    /// retried until it is done, so the saga always finishes.
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: DeletePostInput,
    ) -> WorkflowResult<i64> {
        let q = &input.queues;
        let post_id = input.post_id;
        tell_trip(
            ctx,
            input.trip_workflow_id.as_deref(),
            TripWorkflow::ended,
            (),
        )
        .await;
        ctx.execute_activity(PostActivities::hide, post_id, until_done(&q.post, DB_STEP))
            .await?;
        let messages = ctx
            .execute_activity(
                ChatActivities::message_ids,
                post_id,
                until_done(&q.chat, DB_STEP),
            )
            .await?;
        if !messages.is_empty() {
            ctx.execute_activity(
                MediaActivities::delete_images,
                DeleteImages::OfMessages(messages),
                until_done(&q.media, MEDIA_STEP),
            )
            .await?;
        }
        ctx.execute_activity(
            ChatActivities::delete_room,
            DeleteRoom {
                post_id,
                announce: true,
            },
            until_done(&q.chat, DB_STEP),
        )
        .await?;
        ctx.execute_activity(
            MediaActivities::delete_images,
            DeleteImages::OfOwner(Owner::Post(post_id)),
            until_done(&q.media, MEDIA_STEP),
        )
        .await?;
        ctx.execute_activity(
            PostActivities::delete_applications,
            post_id,
            until_done(&q.post, DB_STEP),
        )
        .await?;
        ctx.execute_activity(
            PostActivities::delete_post,
            post_id,
            until_done(&q.post, DB_STEP),
        )
        .await?;
        Ok(post_id)
    }
}

#[workflow]
#[derive(Default)]
pub struct ClosePastPostsWorkflow;

#[workflow_methods]
impl ClosePastPostsWorkflow {
    /// OPEN posts whose meeting time has passed become CLOSED (run by the `<prefix>.close-posts`
    /// schedule). Returns how many were closed.
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        post_task_queue: String,
    ) -> WorkflowResult<u64> {
        Ok(ctx
            .execute_activity(
                PostActivities::close_past_posts,
                (),
                until_done(&post_task_queue, DB_STEP),
            )
            .await?)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyInput {
    #[serde(default = "first_version")]
    pub version: u16,
    pub queues: ContextQueues,
    pub post_id: i64,
    pub user_id: i64,
    /// Applying (the default, also of sagas started before), a promotion from the line, or an
    /// accepted request.
    #[serde(default)]
    pub way: SeatWay,
    /// The trip workflow to tell when the applicant joined the line.
    #[serde(default)]
    pub trip_workflow_id: Option<String>,
}

/// An Apply saga's answer: the seat (and the room), a place in the line or a request (no seat
/// yet), or why none (nothing changed then).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum ApplyOutput {
    Applied(ApplicationRow),
    Refused(ApplyRefusal),
    Waitlisted(ApplicationRow),
    Requested(ApplicationRow),
}

#[workflow]
#[derive(Default)]
pub struct ApplyWorkflow;

#[workflow_methods]
impl ApplyWorkflow {
    /// A seat (one conditional UPDATE: capacity holds under any concurrency) → the applicant joins
    /// the room. A refused seat ends the saga with the reason; a failure after the seat gives it
    /// back (and leaves the room).
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: ApplyInput,
    ) -> WorkflowResult<ApplyOutput> {
        let mut undo = Compensations::default();
        let result = Self::steps(ctx, &input, &mut undo).await;
        settle(result, undo).await
    }
}

impl ApplyWorkflow {
    async fn steps(
        ctx: &WorkflowContext<Self>,
        input: &ApplyInput,
        undo: &mut Compensations,
    ) -> Result<ApplyOutput, StepError> {
        let q = &input.queues;
        let (post_id, user_id) = (input.post_id, input.user_id);
        // Both steps are database steps: local activities, like CreatePost's (sagas started
        // before that change replay with them on the context queues).
        let db = Placement::of(ctx);
        // Recorded before the step: a seat taken by an attempt whose reply was lost goes back too.
        undo.push_activity(
            ctx,
            PostActivities::give_back_seat,
            GiveBackSeat {
                post_id,
                user_id,
                announce: false,
                removed: false,
            },
            until_done(&q.post, DB_STEP),
        );
        let seat = db
            .forward(
                ctx,
                PostActivities::take_seat,
                SeatOf {
                    post_id,
                    user_id,
                    way: input.way,
                },
                &q.post,
                DB_STEP,
            )
            .await
            .map_err(step("take a seat"))?;
        let application = match seat {
            Seat::Taken(application) => application,
            Seat::Refused(refusal) => return Ok(ApplyOutput::Refused(refusal)),
            Seat::Requested(request) => return Ok(ApplyOutput::Requested(request)),
            Seat::Waitlisted(waiting) => {
                // A seat may have freed since the trip was found full: the trip looks again.
                tell_trip(
                    ctx,
                    input.trip_workflow_id.as_deref(),
                    TripWorkflow::seats_changed,
                    (),
                )
                .await;
                return Ok(ApplyOutput::Waitlisted(waiting));
            }
        };
        undo.push_activity(
            ctx,
            ChatActivities::leave_room,
            LeaveRoom {
                post_id,
                user_id,
                announce: false,
            },
            until_done(&q.chat, DB_STEP),
        );
        db.forward(
            ctx,
            ChatActivities::join_room,
            Membership { post_id, user_id },
            &q.chat,
            DB_STEP,
        )
        .await
        .map_err(step("join the chat room"))?;
        Ok(ApplyOutput::Applied(application))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WithdrawInput {
    #[serde(default = "first_version")]
    pub version: u16,
    pub queues: ContextQueues,
    pub post_id: i64,
    pub user_id: i64,
    /// The trip workflow to tell that a seat may have freed (the first in line moves up).
    #[serde(default)]
    pub trip_workflow_id: Option<String>,
    /// The organiser removes the applicant (the same steps, announced as a removal; the
    /// applicant may not apply again).
    #[serde(default)]
    pub removed: bool,
}

#[workflow]
#[derive(Default)]
pub struct WithdrawWorkflow;

#[workflow_methods]
impl WithdrawWorkflow {
    /// Forward only, like the teardown: give the seat back (the application goes) → leave the
    /// room. Each step is idempotent and retried until done. In this order an Apply whose
    /// join step runs meanwhile cannot leave a member without a seat: its join finds no
    /// application, or came first and is undone by the leave step.
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: WithdrawInput,
    ) -> WorkflowResult<bool> {
        let q = &input.queues;
        let (post_id, user_id) = (input.post_id, input.user_id);
        let leave = || {
            ctx.execute_activity(
                ChatActivities::leave_room,
                LeaveRoom {
                    post_id,
                    user_id,
                    announce: true,
                },
                until_done(&q.chat, DB_STEP),
            )
        };
        let give_back = || {
            ctx.execute_activity(
                PostActivities::give_back_seat,
                GiveBackSeat {
                    post_id,
                    user_id,
                    announce: true,
                    removed: input.removed,
                },
                until_done(&q.post, DB_STEP),
            )
        };
        let gave_back = if ctx.patched(WITHDRAW_SEAT_FIRST) {
            let gave_back = give_back().await?;
            leave().await?;
            gave_back
        } else {
            leave().await?;
            give_back().await?
        };
        tell_trip(
            ctx,
            input.trip_workflow_id.as_deref(),
            TripWorkflow::seats_changed,
            (),
        )
        .await;
        Ok(gave_back)
    }
}
