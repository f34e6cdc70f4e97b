//! Joining a trip and leaving it: the Apply saga (a seat, a place in the trip's line, or a
//! request to its organiser), the organiser's answer to a request, and the Withdraw saga (also
//! when the organiser removes someone).

use super::{Board, forward_only};
use crate::account::Viewer;
use crate::error::AppError;
use fishapp_domain::board::{ApplyRefusal, PostStatus};
use fishapp_store::board as store;
use fishapp_store::board::{ApplicationRow, PostRow, SeatWay};
use fishapp_temporal::sagas::{self, SagaOutcome, SagaSubject};
use fishapp_workflows::board::{
    ApplyInput, ApplyOutput, ApplyWorkflow, INPUT_VERSION, WithdrawInput, WithdrawWorkflow,
};

impl Board {
    /// Applies `viewer` to a trip through the Apply saga: a seat if one is free (and nobody is
    /// in line before them); on a full trip, a place in its line when `waitlist` asks for it;
    /// on a trip that approves each application, a request to its organiser. The rules are
    /// checked up front for a clear answer; the saga decides races (two applicants for the last
    /// seat) with the post's row held, and its refusal comes back the same way. The answer's
    /// `status` says which it came to.
    pub async fn apply(
        &self,
        viewer: &Viewer,
        post_id: i64,
        waitlist: bool,
    ) -> Result<ApplicationRow, AppError> {
        self.limits
            .applications
            .check(&viewer.user_id.to_string())
            .await?;
        let post = store::post_by_id(self.db.pool(), post_id)
            .await?
            .filter(|p| p.status.is_public() || p.user_id == viewer.user_id);
        // Before the trip's state: a removed user is told so, not that the trip is full.
        if post.is_some() && store::was_removed(self.db.pool(), post_id, viewer.user_id).await? {
            return Err(ApplyRefusal::Removed.into());
        }
        if let Some(refusal) = store::refusal(post.as_ref(), viewer.user_id, waitlist) {
            return Err(refusal.into());
        }
        if store::application_of(self.db.pool(), post_id, viewer.user_id)
            .await?
            .is_some()
        {
            return Err(ApplyRefusal::AlreadyApplied.into());
        }
        self.run_apply(
            post_id,
            viewer.user_id,
            SeatWay::Apply { waitlist },
            format!("User {} applies to post {post_id}", viewer.user_id),
        )
        .await
    }

    /// The organiser accepts a request to their trip: the applicant takes a seat and joins the
    /// room, through an Apply saga (POST_FULL when no seat is left; the request then stays).
    pub async fn accept(
        &self,
        viewer: &Viewer,
        application_id: i64,
    ) -> Result<ApplicationRow, AppError> {
        let request = self.request_to(viewer, application_id).await?;
        self.run_apply(
            request.post_id,
            request.user_id,
            SeatWay::Accept,
            format!(
                "User {} accepts user {} on post {}",
                viewer.user_id, request.user_id, request.post_id
            ),
        )
        .await
    }

    /// The organiser declines a request to their trip: it goes (the applicant may ask again).
    pub async fn decline(&self, viewer: &Viewer, application_id: i64) -> Result<(), AppError> {
        let request = self.request_to(viewer, application_id).await?;
        store::decline_request(self.db.pool(), request.post_id, application_id)
            .await?
            .map(|_| ())
            .ok_or_else(|| ApplyRefusal::NotWaiting.into())
    }

    /// A request waiting on one of `viewer`'s trips (NOT_FOUND for anyone else's, as for none).
    async fn request_to(
        &self,
        viewer: &Viewer,
        application_id: i64,
    ) -> Result<ApplicationRow, AppError> {
        let (request, _) = self.to_own_trip(viewer, application_id, "request").await?;
        if request.status != fishapp_domain::board::ApplicationStatus::PendingApproval {
            return Err(ApplyRefusal::NotWaiting.into());
        }
        Ok(request)
    }

    /// An application to one of `viewer`'s trips, with the trip: NOT_FOUND ("no `what` …") for
    /// one to anyone else's trip, as for none, so a stranger learns nothing of it.
    async fn to_own_trip(
        &self,
        viewer: &Viewer,
        application_id: i64,
        what: &str,
    ) -> Result<(ApplicationRow, PostRow), AppError> {
        let missing = || AppError::NotFound(format!("no {what} {application_id}"));
        let application = store::application_by_id(self.db.pool(), application_id)
            .await?
            .ok_or_else(missing)?;
        let post = store::post_by_id(self.db.pool(), application.post_id)
            .await?
            .filter(|p| p.user_id == viewer.user_id)
            .ok_or_else(missing)?;
        Ok((application, post))
    }

    /// Starts (or joins) the Apply saga of `user_id` on `post_id` and waits for it.
    async fn run_apply(
        &self,
        post_id: i64,
        user_id: i64,
        way: SeatWay,
        summary: String,
    ) -> Result<ApplicationRow, AppError> {
        let client = self.client()?;
        let saga_id = self.saga_id(&format!("apply/{post_id}/{user_id}"));
        let input = ApplyInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id,
            user_id,
            way,
            trip_workflow_id: Some(self.trip_id(post_id)),
        };
        let options = self.configured(
            sagas::start_options_rerunnable,
            &saga_id,
            SagaSubject {
                post_id,
                user_id,
                summary,
            },
        );
        sagas::started(
            client
                .start_workflow(ApplyWorkflow::run, input, options)
                .await,
        )?;
        match sagas::wait_for::<ApplyWorkflow>(&client, &saga_id, self.settings.saga_wait).await? {
            SagaOutcome::Done(
                ApplyOutput::Applied(application)
                | ApplyOutput::Waitlisted(application)
                | ApplyOutput::Requested(application),
            ) => Ok(application),
            SagaOutcome::Done(ApplyOutput::Refused(refusal)) => Err(refusal.into()),
            SagaOutcome::Failed(reason) => Err(AppError::Conflict(format!(
                "the application did not go through ({reason}); nothing was kept"
            ))),
            SagaOutcome::Running => Err(AppError::Unavailable(
                "the application is still being processed; ask again shortly".to_owned(),
            )),
        }
    }

    /// Withdraws one of `viewer`'s applications through the Withdraw saga (forward only: it
    /// always finishes), waiting for it up to the budget: a seat is given back (and the first in
    /// line moves up), a place in the line is left, a request is taken back.
    pub async fn withdraw(&self, viewer: &Viewer, application_id: i64) -> Result<(), AppError> {
        let application = store::application_by_id(self.db.pool(), application_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no application {application_id}")))?;
        if application.user_id != viewer.user_id {
            return Err(AppError::Forbidden(
                "only the applicant may withdraw".to_owned(),
            ));
        }
        let summary = format!(
            "User {} withdraws application {application_id} from post {}",
            viewer.user_id, application.post_id
        );
        self.run_withdraw(&application, false, summary).await
    }

    /// The organiser removes someone from their trip while it is OPEN, through the same saga:
    /// a member gives the seat back (the first in line moves up) and leaves the room, one in
    /// line leaves it, a request goes. The removed user may not apply to the trip again.
    /// NOT_FOUND for an application to anyone else's trip, as for none.
    pub async fn remove(&self, viewer: &Viewer, application_id: i64) -> Result<(), AppError> {
        let (application, post) = self
            .to_own_trip(viewer, application_id, "application")
            .await?;
        // Once the meeting time has passed the trip happened as it did: a removal then would
        // only take a member's review away.
        if post.status != PostStatus::Open {
            return Err(AppError::Refused {
                code: fishapp_domain::ErrorCode::Conflict,
                reason: ApplyRefusal::NotOpen.code(),
                message: "someone can be removed from a trip only while it is open".to_owned(),
            });
        }
        let summary = format!(
            "User {} removes user {} (application {application_id}) from post {}",
            viewer.user_id, application.user_id, application.post_id
        );
        self.run_withdraw(&application, true, summary).await
    }

    /// The organiser lets someone they removed from their trip apply to it again. NOT_FOUND
    /// when there is no such removal (or no such trip); FORBIDDEN for anyone else's trip.
    pub async fn lift_removal(
        &self,
        viewer: &Viewer,
        post_id: i64,
        user_id: i64,
    ) -> Result<(), AppError> {
        self.owned_post(viewer, post_id).await?;
        if !store::lift_removal(self.db.pool(), post_id, user_id).await? {
            return Err(AppError::NotFound(format!(
                "user {user_id} was not removed from trip {post_id}"
            )));
        }
        Ok(())
    }

    /// Starts (or joins) the Withdraw saga of `application` (`removed`: by the organiser) and
    /// waits for it up to the budget.
    async fn run_withdraw(
        &self,
        application: &ApplicationRow,
        removed: bool,
        summary: String,
    ) -> Result<(), AppError> {
        let client = self.client()?;
        let verb = if removed { "remove" } else { "withdraw" };
        let saga_id = self.saga_id(&format!("{verb}/{}", application.id));
        let input = WithdrawInput {
            version: INPUT_VERSION,
            queues: self.queues(),
            post_id: application.post_id,
            user_id: application.user_id,
            trip_workflow_id: Some(self.trip_id(application.post_id)),
            removed,
        };
        let options = self.configured(
            sagas::start_options,
            &saga_id,
            SagaSubject {
                post_id: application.post_id,
                user_id: application.user_id,
                summary,
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
}
