//! Post activities (the board context), on the post task queue. Idempotent by post id.

use crate::faults::{FaultPlan, rule_violation};
use chrono::{DateTime, Utc};
use fishapp_domain::board::PostDraft;
use fishapp_store::Database;
use fishapp_store::board::{
    self as store, ApplicationRow, GivenUp, PostRow, Seat, SeatWay, SeatsView, Snapshot,
    WritePostError,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatePending {
    pub post_id: i64,
    pub user_id: i64,
    pub fields: PostDraft,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateFields {
    pub post_id: i64,
    pub owner_id: i64,
    pub fields: PostDraft,
    /// The saga that holds the post while it changes it (its workflow id); none in sagas
    /// started before changes were serialized.
    #[serde(default)]
    pub hold: Option<String>,
}

/// The end of an UpdatePost saga's hold on a post.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseUpdate {
    pub post_id: i64,
    pub saga: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreFields {
    pub post_id: i64,
    pub snapshot: Snapshot,
}

/// Whose seat on which trip, and how it is asked for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SeatOf {
    pub post_id: i64,
    pub user_id: i64,
    /// Absent from histories recorded before the line and approval existed: applying.
    #[serde(default)]
    pub way: SeatWay,
}

/// A moment of a trip's life before its meeting (the reminder, the requests' deadline), and
/// for which meeting time the trip workflow reached it. A post whose meeting has moved since
/// (the update's signal is on its way, and the workflow re-arms its timers then) is left as it
/// is. Reads a bare post id too: tasks scheduled before the meeting time was passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TripMomentWire")]
pub struct TripMoment {
    pub post_id: i64,
    /// `None` from a bare post id: whatever the post's meeting time.
    pub meeting_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TripMomentWire {
    PostId(i64),
    Moment {
        post_id: i64,
        meeting_at: Option<DateTime<Utc>>,
    },
}

impl From<TripMomentWire> for TripMoment {
    fn from(wire: TripMomentWire) -> Self {
        match wire {
            TripMomentWire::PostId(post_id) => TripMoment {
                post_id,
                meeting_at: None,
            },
            TripMomentWire::Moment {
                post_id,
                meeting_at,
            } => TripMoment {
                post_id,
                meeting_at,
            },
        }
    }
}

/// The first in a trip's line, when a seat is free for them, and the seats as they stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextInLine {
    pub next: Option<ApplicationRow>,
    pub seats: SeatsView,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct GiveBackSeat {
    pub post_id: i64,
    pub user_id: i64,
    /// Tell the world (a withdrawal), or not (a failed Apply's compensation).
    pub announce: bool,
    /// The organiser removes the applicant (announced as a removal, and they may not apply
    /// again). Absent from histories recorded before removals existed.
    #[serde(default)]
    pub removed: bool,
}

impl GiveBackSeat {
    fn why(&self) -> GivenUp {
        match (self.removed, self.announce) {
            (true, _) => GivenUp::Removed,
            (false, true) => GivenUp::Withdrawn,
            (false, false) => GivenUp::Undone,
        }
    }
}

pub struct PostActivities {
    db: Database,
    faults: FaultPlan,
}

impl PostActivities {
    pub fn new(db: Database, faults: FaultPlan) -> Self {
        Self { db, faults }
    }
}

fn write_error(e: WritePostError) -> ActivityError {
    match e {
        WritePostError::Rule(rule) => rule_violation(rule),
        WritePostError::Sql(e) => e.into(),
    }
}

#[activities]
impl PostActivities {
    /// The create saga's first step: the post, PENDING (never listed).
    #[activity]
    pub async fn create_pending(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CreatePending,
    ) -> Result<bool, ActivityError> {
        self.faults.check(&ctx, "post.create_pending")?;
        Ok(
            store::insert_pending(self.db.pool(), input.post_id, input.user_id, &input.fields)
                .await?,
        )
    }

    /// Compensation of `create_pending`: the post goes, without an event (nobody saw it).
    #[activity]
    pub async fn discard_pending(
        self: Arc<Self>,
        _ctx: ActivityContext,
        post_id: i64,
    ) -> Result<(), ActivityError> {
        store::delete_post(self.db.pool(), post_id, false).await?;
        Ok(())
    }

    /// The create saga's last step: PENDING → OPEN, with the `post.published` event.
    #[activity]
    pub async fn publish(
        self: Arc<Self>,
        ctx: ActivityContext,
        post_id: i64,
    ) -> Result<PostRow, ActivityError> {
        self.faults.check(&ctx, "post.publish")?;
        store::publish(self.db.pool(), post_id)
            .await
            .map_err(write_error)
    }

    /// Replaces the fields, holding the post for the saga (another change meanwhile fails for
    /// good); returns what they were, for the compensation.
    #[activity]
    pub async fn update_fields(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: UpdateFields,
    ) -> Result<Snapshot, ActivityError> {
        self.faults.check(&ctx, "post.update_fields")?;
        store::update_fields(
            self.db.pool(),
            input.post_id,
            input.owner_id,
            &input.fields,
            input.hold.as_deref(),
        )
        .await
        .map_err(write_error)
    }

    /// The UpdatePost saga's last step (or last compensation): the post is free to change again.
    #[activity]
    pub async fn release_update(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ReleaseUpdate,
    ) -> Result<(), ActivityError> {
        Ok(store::release_update(self.db.pool(), input.post_id, &input.saga).await?)
    }

    /// Compensation of `update_fields`.
    #[activity]
    pub async fn restore_fields(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RestoreFields,
    ) -> Result<(), ActivityError> {
        Ok(store::restore_fields(self.db.pool(), input.post_id, &input.snapshot).await?)
    }

    /// Trips whose meeting time has passed: OPEN → CLOSED (the lifecycle schedule's step).
    #[activity]
    pub async fn close_past_posts(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<u64, ActivityError> {
        let closed = store::close_past(self.db.pool()).await?;
        if closed > 0 {
            tracing::info!(closed, "closed past trips");
        }
        Ok(closed)
    }

    /// Apply, first step: a seat (or why not — a refusal is a result, not a failure).
    #[activity]
    pub async fn take_seat(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SeatOf,
    ) -> Result<Seat, ActivityError> {
        self.faults.check(&ctx, "post.take_seat")?;
        Ok(store::take_seat(self.db.pool(), input.post_id, input.user_id, input.way).await?)
    }

    /// Withdraw's last step, and the compensation of `take_seat`.
    #[activity]
    pub async fn give_back_seat(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: GiveBackSeat,
    ) -> Result<bool, ActivityError> {
        if input.announce {
            self.faults.check(&ctx, "post.give_back_seat")?;
        }
        let given_back =
            store::give_back_seat(self.db.pool(), input.post_id, input.user_id, input.why())
                .await?;
        Ok(given_back.is_some())
    }

    /// The trip workflow at the meeting time: OPEN → CLOSED.
    #[activity]
    pub async fn close_post(
        self: Arc<Self>,
        ctx: ActivityContext,
        post_id: i64,
    ) -> Result<bool, ActivityError> {
        self.faults.check(&ctx, "post.close_post")?;
        Ok(store::close_post(self.db.pool(), post_id).await?)
    }

    /// The trip workflow some hours after the meeting: CLOSED → COMPLETED, members invited to
    /// say how it went.
    #[activity]
    pub async fn complete_post(
        self: Arc<Self>,
        ctx: ActivityContext,
        post_id: i64,
    ) -> Result<bool, ActivityError> {
        self.faults.check(&ctx, "post.complete_post")?;
        Ok(store::complete_post(self.db.pool(), post_id).await?)
    }

    /// The trip workflow before the meeting: the reminder event for the members.
    #[activity]
    pub async fn remind(
        self: Arc<Self>,
        ctx: ActivityContext,
        moment: TripMoment,
    ) -> Result<bool, ActivityError> {
        self.faults.check(&ctx, "post.remind")?;
        Ok(store::remind(self.db.pool(), moment.post_id, moment.meeting_at).await?)
    }

    /// The trip workflow when seats may have freed: who is next in line, if anyone may move up.
    #[activity]
    pub async fn next_in_line(
        self: Arc<Self>,
        _ctx: ActivityContext,
        post_id: i64,
    ) -> Result<NextInLine, ActivityError> {
        let (next, seats) = store::next_in_line(self.db.pool(), post_id).await?;
        Ok(NextInLine { next, seats })
    }

    /// The trip workflow at the request deadline: requests nobody answered go, and no new ones
    /// are taken for this meeting time.
    #[activity]
    pub async fn expire_requests(
        self: Arc<Self>,
        ctx: ActivityContext,
        moment: TripMoment,
    ) -> Result<u64, ActivityError> {
        self.faults.check(&ctx, "post.expire_requests")?;
        Ok(store::expire_requests(self.db.pool(), moment.post_id, moment.meeting_at).await?)
    }

    /// Teardown, first step: the post disappears from every listing.
    #[activity]
    pub async fn hide(
        self: Arc<Self>,
        ctx: ActivityContext,
        post_id: i64,
    ) -> Result<(), ActivityError> {
        self.faults.check(&ctx, "post.hide")?;
        Ok(store::hide(self.db.pool(), post_id).await?)
    }

    #[activity]
    pub async fn delete_applications(
        self: Arc<Self>,
        ctx: ActivityContext,
        post_id: i64,
    ) -> Result<u64, ActivityError> {
        self.faults.check(&ctx, "post.delete_applications")?;
        Ok(store::delete_applications(self.db.pool(), post_id).await?)
    }

    /// Teardown, last step: the row, with the `post.deleted` event.
    #[activity]
    pub async fn delete_post(
        self: Arc<Self>,
        ctx: ActivityContext,
        post_id: i64,
    ) -> Result<bool, ActivityError> {
        self.faults.check(&ctx, "post.delete_post")?;
        Ok(store::delete_post(self.db.pool(), post_id, true).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trip_moment_reads_its_own_form_and_a_bare_post_id() {
        let at: DateTime<Utc> = "2026-12-05T09:30:00.123456Z".parse().unwrap();
        let moment = TripMoment {
            post_id: 7,
            meeting_at: Some(at),
        };
        let wire = serde_json::to_value(moment).unwrap();
        assert_eq!(serde_json::from_value::<TripMoment>(wire).unwrap(), moment);
        assert_eq!(
            serde_json::from_str::<TripMoment>("7").unwrap(),
            TripMoment {
                post_id: 7,
                meeting_at: None
            }
        );
        assert!(serde_json::from_str::<TripMoment>("\"7\"").is_err());
    }
}
