//! A trip's life as one workflow: from the moment the CreatePost saga publishes the post until
//! some hours after the meeting. It owns the trip's timers — the reminder, the deadline of the
//! organiser's requests, closing at the meeting time, completing after it — and its line: when a
//! seat frees, the first in line is promoted through an Apply saga (a child workflow: seat,
//! room, events, all or nothing).
//!
//! The database stays the truth of seats, the line and requests (reads come from it); the
//! workflow decides *when* things happen. The sagas that change a trip tell it so by signal:
//! UpdatePost (`rescheduled`: the timers move, and a raised maxApply promotes), Withdraw and an
//! Apply that joined the line (`seats_changed`), DeletePost (`ended`). An idle trip is a few
//! timers in Temporal's database and costs the workers nothing; a long life with many signals
//! continues as new with what it has done so far.

use crate::board::{ApplyInput, ApplyOutput, ApplyWorkflow, INPUT_VERSION};
use crate::saga::{ContextQueues, DB_STEP, until_done};
use chrono::{DateTime, Duration as Span, NaiveTime, TimeZone, Utc};
use fishapp_activities::PostActivities;
use fishapp_activities::post::TripMoment;
use fishapp_domain::board::ApplyRefusal;
use fishapp_domain::board::trip_time_zone;
use fishapp_store::board::{SeatWay, SeatsView};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ContinueAsNewOptions, ParentClosePolicy, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};

/// The patch that made CreatePost start the trip's workflow once the post is published; sagas
/// started before replay without it.
pub const TRIP_WORKFLOW: &str = "trip-workflow";

/// When a trip's moments come, relative to its meeting time. Part of the workflow's input: a
/// trip keeps the timings it was posted with (a configuration change applies to new trips).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TripTimings {
    /// The reminder goes this long before the meeting; `None`: the evening before (18:00 Japan
    /// time on the day before the meeting day there).
    pub reminder_before_secs: Option<u64>,
    /// Requests nobody answered expire this long before the meeting.
    pub requests_expire_before_secs: u64,
    /// The trip is completed (its members invited to say how it went) this long after the
    /// meeting.
    pub completed_after_secs: u64,
}

/// What a trip has done for its current meeting time: carried over when it continues as new,
/// and reset for the moments a new meeting time moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TripProgress {
    /// The meeting time the reminder went for.
    pub reminded_for: Option<DateTime<Utc>>,
    /// The meeting time whose request deadline passed.
    pub requests_expired_for: Option<DateTime<Utc>>,
    pub closed: bool,
    /// Applicants promoted from the line so far.
    pub promoted: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TripInput {
    pub version: u16,
    pub queues: ContextQueues,
    pub post_id: i64,
    pub meeting_at: DateTime<Utc>,
    pub timings: TripTimings,
    /// Every saga id starts with it (`<prefix>/apply/<post id>/<user id>` for a promotion).
    pub saga_id_prefix: String,
    /// Where a trip that continued as new had got to.
    #[serde(default)]
    pub progress: TripProgress,
}

/// The trip's id: one workflow per post, under the post's business key.
pub fn trip_workflow_id(saga_id_prefix: &str, post_id: i64) -> String {
    format!("{saga_id_prefix}/trip/{post_id}")
}

/// How a trip's life ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TripOutcome {
    /// Completed after the meeting.
    Completed,
    /// Torn down (DeletePost) before that.
    Ended,
}

/// The next moment a trip waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Moment {
    Reminder,
    RequestDeadline,
    Close,
    Complete,
}

/// What the `state` query shows (Temporal UI → the workflow → Queries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TripView {
    pub post_id: i64,
    pub meeting_at: DateTime<Utc>,
    /// The next timer: which moment, and when.
    pub next: Option<(Moment, DateTime<Utc>)>,
    /// Seats, line and requests as the last look at them found them.
    pub seats: Option<SeatsView>,
    pub progress: TripProgress,
    pub ended: bool,
}

#[workflow]
pub struct TripWorkflow {
    input: TripInput,
    meeting_at: DateTime<Utc>,
    progress: TripProgress,
    /// Bumped by every signal that may free a seat or move the timers; the run compares.
    changes: u64,
    ended: bool,
    seats: Option<SeatsView>,
    next: Option<(Moment, DateTime<Utc>)>,
}

/// Most promotions in one round: a bound on the work one signal causes (the next signal, or
/// the next round, goes on).
const PROMOTIONS_PER_ROUND: u32 = 100;

/// Continue as new past this many history events even if the server does not suggest it yet.
const HISTORY_EVENTS_BEFORE_CONTINUING: u32 = 10_000;

#[workflow_methods]
impl TripWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: TripInput) -> Self {
        Self {
            meeting_at: input.meeting_at,
            progress: input.progress,
            changes: 0,
            ended: false,
            seats: None,
            next: None,
            input,
        }
    }

    /// The trip's life: promote whoever may move up, then wait for the next moment or a signal,
    /// until it is completed or torn down.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<TripOutcome> {
        // A trip that continued as new may have missed nothing but a seat freed meanwhile.
        let mut seen_changes = u64::MAX;
        loop {
            if ctx.state(|s| s.ended) {
                return Ok(TripOutcome::Ended);
            }
            let changes = ctx.state(|s| s.changes);
            if changes != seen_changes {
                seen_changes = changes;
                Self::promote(ctx).await?;
                continue;
            }
            let now = now(ctx);
            let next = ctx.state(|s| s.next_moment());
            ctx.state_mut(|s| s.next = next);
            let Some((moment, at)) = next else {
                return Ok(TripOutcome::Completed);
            };
            if at <= now {
                if Self::reach(ctx, moment).await? {
                    return Ok(TripOutcome::Completed);
                }
                continue;
            }
            let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
            temporalio_sdk::workflows::select! {
                _ = ctx.timer(wait) => {}
                _ = ctx.wait_condition(move |s: &Self| s.changes != changes || s.ended) => {}
            }
            if ctx.continue_as_new_suggested()
                || ctx.history_length() > HISTORY_EVENTS_BEFORE_CONTINUING
            {
                let input = ctx.state(|s| TripInput {
                    meeting_at: s.meeting_at,
                    progress: s.progress,
                    ..s.input.clone()
                });
                ctx.continue_as_new(input, ContinueAsNewOptions::default())?;
            }
        }
    }

    /// UpdatePost changed the trip: its meeting time (the timers move) and maybe its seats.
    #[signal]
    pub fn rescheduled(&mut self, _ctx: &mut SyncWorkflowContext<Self>, meeting_at: DateTime<Utc>) {
        if meeting_at != self.meeting_at {
            self.meeting_at = meeting_at;
            // A trip that was CLOSED stays closed (an update needs an OPEN post).
        }
        self.changes += 1;
    }

    /// A seat may have freed (a withdrawal), or someone joined the line.
    #[signal]
    pub fn seats_changed(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _unit: ()) {
        self.changes += 1;
    }

    /// DeletePost tears the trip down: its life ends now.
    #[signal]
    pub fn ended(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _unit: ()) {
        self.ended = true;
    }

    #[query]
    pub fn state(&self, _ctx: &WorkflowContextView) -> TripView {
        TripView {
            post_id: self.input.post_id,
            meeting_at: self.meeting_at,
            next: self.next,
            seats: self.seats,
            progress: self.progress,
            ended: self.ended,
        }
    }
}

impl TripWorkflow {
    /// The earliest moment not yet reached for the current meeting time.
    fn next_moment(&self) -> Option<(Moment, DateTime<Utc>)> {
        let meeting = self.meeting_at;
        let timings = &self.input.timings;
        let progress = &self.progress;
        let mut moments = Vec::with_capacity(4);
        if !progress.closed {
            let reminder = reminder_at(meeting, timings);
            if progress.reminded_for != Some(meeting) && reminder < meeting {
                moments.push((Moment::Reminder, reminder));
            }
            if progress.requests_expired_for != Some(meeting) {
                let deadline = meeting - span(timings.requests_expire_before_secs);
                moments.push((Moment::RequestDeadline, deadline.min(meeting)));
            }
            moments.push((Moment::Close, meeting));
        }
        moments.push((
            Moment::Complete,
            meeting + span(timings.completed_after_secs),
        ));
        moments.into_iter().min_by_key(|(_, at)| *at)
    }

    /// Does what `moment` asks. Returns whether the trip's life is over.
    async fn reach(ctx: &mut WorkflowContext<Self>, moment: Moment) -> WorkflowResult<bool> {
        let (q, post_id, meeting) =
            ctx.state(|s| (s.input.queues.clone(), s.input.post_id, s.meeting_at));
        let db = until_done(&q.post, DB_STEP);
        // Before the meeting, a moment is for this meeting time only: an update that moved it
        // may have reached the database before its signal reaches this workflow.
        let for_meeting = TripMoment {
            post_id,
            meeting_at: Some(meeting),
        };
        match moment {
            Moment::Reminder => {
                ctx.execute_activity(PostActivities::remind, for_meeting, db)
                    .await?;
                ctx.state_mut(|s| s.progress.reminded_for = Some(meeting));
            }
            Moment::RequestDeadline => {
                ctx.execute_activity(PostActivities::expire_requests, for_meeting, db)
                    .await?;
                ctx.state_mut(|s| s.progress.requests_expired_for = Some(meeting));
            }
            Moment::Close => {
                ctx.execute_activity(PostActivities::close_post, post_id, db)
                    .await?;
                ctx.state_mut(|s| s.progress.closed = true);
            }
            Moment::Complete => {
                ctx.execute_activity(PostActivities::complete_post, post_id, db)
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Promotes the first in line while a seat is free for them: each through an Apply saga of
    /// its own (a child workflow under the applicant's Apply business key), one after another,
    /// in the line's order. An applicant no longer waiting (withdrawn meanwhile) is skipped.
    async fn promote(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let (q, post_id, prefix) = ctx.state(|s| {
            (
                s.input.queues.clone(),
                s.input.post_id,
                s.input.saga_id_prefix.clone(),
            )
        });
        for _ in 0..PROMOTIONS_PER_ROUND {
            let line = ctx
                .execute_activity(
                    PostActivities::next_in_line,
                    post_id,
                    until_done(&q.post, DB_STEP),
                )
                .await?;
            ctx.state_mut(|s| s.seats = Some(line.seats));
            let Some(next) = line.next else {
                return Ok(());
            };
            let saga_id = format!("{prefix}/apply/{post_id}/{}", next.user_id);
            let input = ApplyInput {
                version: INPUT_VERSION,
                queues: q.clone(),
                post_id,
                user_id: next.user_id,
                way: SeatWay::Promote,
                trip_workflow_id: None,
            };
            let options = ChildWorkflowOptions::builder()
                .workflow_id(saga_id)
                .static_summary(format!(
                    "promote user {} from the line of trip {post_id}",
                    next.user_id
                ))
                // The promotion is the trip's: if the trip's run ends first (continues as
                // new), the saga still finishes.
                .parent_close_policy(ParentClosePolicy::Abandon)
                .build();
            let started = match ctx
                .start_child_workflow(ApplyWorkflow::run, input, options)
                .await
            {
                Ok(started) => started,
                // An Apply saga of this applicant is running (they are being handled): the
                // signal its end sends brings the next round.
                Err(_) => return Ok(()),
            };
            match started.result().await {
                Ok(ApplyOutput::Applied(_)) => ctx.state_mut(|s| s.progress.promoted += 1),
                // Withdrawn meanwhile: the next in line.
                Ok(ApplyOutput::Refused(ApplyRefusal::NotWaiting)) => {}
                // No seat after all, or the trip no longer takes anyone: until the next change.
                Ok(_) => return Ok(()),
                // The saga failed and gave the seat back (the room is gone: a teardown).
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }
}

/// The workflow's clock (deterministic: the time of the current workflow task).
fn now<W>(ctx: &WorkflowContext<W>) -> DateTime<Utc> {
    ctx.workflow_time()
        .map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn span(secs: u64) -> Span {
    Span::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1_000))
}

/// When the reminder for a meeting at `meeting` goes.
pub fn reminder_at(meeting: DateTime<Utc>, timings: &TripTimings) -> DateTime<Utc> {
    if let Some(before) = timings.reminder_before_secs {
        return meeting - span(before);
    }
    // 18:00 in Japan on the day before the meeting's day there.
    let day_before = meeting.with_timezone(&trip_time_zone()).date_naive() - Span::days(1);
    let evening = day_before.and_time(NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default());
    trip_time_zone()
        .from_local_datetime(&evening)
        .single()
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or(meeting - Span::hours(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings() -> TripTimings {
        TripTimings {
            reminder_before_secs: None,
            requests_expire_before_secs: 24 * 3_600,
            completed_after_secs: 6 * 3_600,
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_reminder_goes_the_evening_before_in_japan() {
        // Sunday 05:00 in Tokyo is Saturday 20:00 UTC: the evening before is Saturday 18:00 in
        // Tokyo, 09:00 UTC.
        let meeting = at("2027-01-09T20:00:00Z");
        assert_eq!(reminder_at(meeting, &timings()), at("2027-01-09T09:00:00Z"));
        let fixed = TripTimings {
            reminder_before_secs: Some(600),
            ..timings()
        };
        assert_eq!(reminder_at(meeting, &fixed), at("2027-01-09T19:50:00Z"));
    }

    fn trip(meeting: DateTime<Utc>, timings: TripTimings) -> TripWorkflow {
        TripWorkflow {
            input: TripInput {
                version: INPUT_VERSION,
                queues: ContextQueues {
                    post: "p".into(),
                    chat: "c".into(),
                    media: "m".into(),
                },
                post_id: 1,
                meeting_at: meeting,
                timings,
                saga_id_prefix: "x".into(),
                progress: TripProgress::default(),
            },
            meeting_at: meeting,
            progress: TripProgress::default(),
            changes: 0,
            ended: false,
            seats: None,
            next: None,
        }
    }

    #[test]
    fn moments_come_in_order_and_a_new_meeting_time_moves_them() {
        let meeting = at("2027-01-09T20:00:00Z");
        let mut trip = trip(meeting, timings());
        assert_eq!(
            trip.next_moment(),
            Some((Moment::RequestDeadline, at("2027-01-08T20:00:00Z")))
        );
        trip.progress.requests_expired_for = Some(meeting);
        assert_eq!(
            trip.next_moment(),
            Some((Moment::Reminder, at("2027-01-09T09:00:00Z")))
        );
        trip.progress.reminded_for = Some(meeting);
        assert_eq!(trip.next_moment(), Some((Moment::Close, meeting)));
        trip.progress.closed = true;
        assert_eq!(
            trip.next_moment(),
            Some((Moment::Complete, at("2027-01-10T02:00:00Z")))
        );
        // Moved a day later before it closed: every moment is due again.
        trip.progress.closed = false;
        trip.meeting_at = meeting + Span::days(1);
        assert_eq!(
            trip.next_moment(),
            Some((Moment::RequestDeadline, at("2027-01-09T20:00:00Z")))
        );
    }

    #[test]
    fn a_reminder_after_the_meeting_is_skipped() {
        let meeting = at("2027-01-09T20:00:00Z");
        let late = TripTimings {
            reminder_before_secs: Some(0),
            requests_expire_before_secs: 0,
            completed_after_secs: 10,
        };
        let trip = trip(meeting, late);
        // Both at the meeting time: the deadline first (min is stable), never a reminder.
        assert_eq!(trip.next_moment(), Some((Moment::RequestDeadline, meeting)));
    }
}
