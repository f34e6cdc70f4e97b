//! Reviewing a trip that is over (its reviews are read straight from the store, see
//! `fishapp_store::board::reviews_of_posts`).

use super::Board;
use crate::account::Viewer;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use fishapp_domain::review::{Rating, ReviewComment};
use fishapp_store::board::{self as store, ReviewRow};

impl Board {
    /// `viewer`'s review of the trip `post_id` (a second one replaces the first): for a member
    /// who held a seat, once the trip is COMPLETED and until its review window closes. Counted
    /// per user before anything is read.
    pub async fn review(
        &self,
        viewer: &Viewer,
        post_id: i64,
        rating: Rating,
        comment: Option<&ReviewComment>,
    ) -> Result<ReviewRow, AppError> {
        self.limits
            .reviews
            .check(&viewer.user_id.to_string())
            .await?;
        let written = store::write_review(
            self.db.pool(),
            post_id,
            viewer.user_id,
            rating,
            comment,
            self.settings.review_window,
        )
        .await?;
        Ok(written?)
    }

    /// When reviews of a trip meeting at `meeting_at` close.
    pub fn reviews_close_at(&self, meeting_at: DateTime<Utc>) -> DateTime<Utc> {
        self.settings.review_window.closes_at(meeting_at)
    }
}
