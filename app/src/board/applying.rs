//! Taking a seat on a trip and giving it back: the Apply and Withdraw sagas.

use super::{Board, forward_only};
use crate::account::Viewer;
use crate::error::AppError;
use chrono::Utc;
use fishapp_domain::board::ApplyRefusal;
use fishapp_domain::board::PostStatus;
use fishapp_store::board as store;
use fishapp_store::board::ApplicationRow;
use fishapp_temporal::sagas::{self, SagaOutcome, SagaSubject};
use fishapp_workflows::board::{
    ApplyInput, ApplyOutput, ApplyWorkflow, INPUT_VERSION, WithdrawInput, WithdrawWorkflow,
};

impl Board {
    /// Applies `viewer` to a trip through the Apply saga. The rules are checked up front for a
    /// clear answer; the saga's conditional UPDATE decides races (two applicants for the last
    /// seat), and its refusal comes back the same way.
    pub async fn apply(&self, viewer: &Viewer, post_id: i64) -> Result<ApplicationRow, AppError> {
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
            SagaOutcome::Failed(reason) => Err(AppError::Conflict(format!(
                "the application did not go through ({reason}); nothing was kept"
            ))),
            SagaOutcome::Running => Err(AppError::Unavailable(
                "the application is still being processed; ask again shortly".to_owned(),
            )),
        }
    }

    /// Withdraws one of `viewer`'s applications through the Withdraw saga (forward only: it
    /// always finishes), waiting for it up to the budget.
    pub async fn withdraw(&self, viewer: &Viewer, application_id: i64) -> Result<(), AppError> {
        let application = store::application_by_id(self.db.pool(), application_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no application {application_id}")))?;
        if application.user_id != viewer.user_id {
            return Err(AppError::Forbidden(
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
}
