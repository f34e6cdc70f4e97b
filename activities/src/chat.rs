//! Chat activities the post sagas need, on the chat task queue. Idempotent by post id.

use crate::faults::{FaultPlan, rule_violation};
use fishapp_store::Database;
use fishapp_store::chat::{self as store, Joined};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRoom {
    pub post_id: i64,
    pub owner_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRoom {
    pub post_id: i64,
    /// Tell the world (a teardown), or not (a compensation: nobody saw the room).
    pub announce: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Membership {
    pub post_id: i64,
    pub user_id: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LeaveRoom {
    pub post_id: i64,
    pub user_id: i64,
    /// Tell the world (a withdrawal), or not (a failed Apply's compensation).
    pub announce: bool,
}

pub struct ChatActivities {
    db: Database,
    faults: FaultPlan,
}

impl ChatActivities {
    pub fn new(db: Database, faults: FaultPlan) -> Self {
        Self { db, faults }
    }
}

#[activities]
impl ChatActivities {
    /// The post's room, with its owner as a member. Returns the room id.
    #[activity]
    pub async fn create_room(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CreateRoom,
    ) -> Result<i64, ActivityError> {
        self.faults.check(&ctx, "chat.create_room")?;
        Ok(
            store::create_room(self.db.pool(), input.post_id, input.owner_id)
                .await?
                .id,
        )
    }

    /// Ids of the messages in the post's room (their images go before the room).
    #[activity]
    pub async fn message_ids(
        self: Arc<Self>,
        _ctx: ActivityContext,
        post_id: i64,
    ) -> Result<Vec<i64>, ActivityError> {
        match store::room_of_post(self.db.pool(), post_id).await? {
            Some(room) => Ok(store::message_ids(self.db.pool(), room.id).await?),
            None => Ok(Vec::new()),
        }
    }

    /// The room, its members and messages. Gone already is success.
    #[activity]
    pub async fn delete_room(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeleteRoom,
    ) -> Result<bool, ActivityError> {
        if input.announce {
            self.faults.check(&ctx, "chat.delete_room")?;
        }
        Ok(store::delete_room(self.db.pool(), input.post_id, input.announce).await?)
    }

    /// Apply, second step: the applicant joins the post's room. Returns the member id. No room
    /// (the post is being torn down), or no seat (the application was withdrawn meanwhile),
    /// fails for good, and the saga gives the seat back.
    #[activity]
    pub async fn join_room(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: Membership,
    ) -> Result<i64, ActivityError> {
        self.faults.check(&ctx, "chat.join_room")?;
        match store::join_room(self.db.pool(), input.post_id, input.user_id).await? {
            Joined::Member(member) => Ok(member.id),
            Joined::NoRoom => Err(rule_violation("the trip is being removed")),
            Joined::NoSeat => Err(rule_violation("the application was withdrawn")),
        }
    }

    /// Withdraw's first step, and the compensation of `join_room`.
    #[activity]
    pub async fn leave_room(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: LeaveRoom,
    ) -> Result<bool, ActivityError> {
        if input.announce {
            self.faults.check(&ctx, "chat.leave_room")?;
        }
        Ok(store::leave_room(self.db.pool(), input.post_id, input.user_id, input.announce).await?)
    }
}
