//! Reviews over GraphQL (new in this API, additive): `reviewTrip`, a trip's `reviews`,
//! `viewerReview` and `rating`, and a user's `organiserRating`. The rules are the board's (see
//! `fishapp_app::board`): a member who held a seat reviews a COMPLETED trip, once (a second review
//! replaces the first).

use super::ListBound;
use super::account::{User, parse_id};
use super::board::PageInfo;
use super::context::Guards;
use super::cursor::number_after;
use super::loaders::{ListOf, load, loaders};
use super::scalars::Time;
use crate::error::{ApiResult, AppError, IntoGql};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use fishapp_app::board::{Board, MutationKey};
use fishapp_domain::review::{Rating as DomainRating, ReviewComment};
use fishapp_store::board::{self as store, RatingOf, RatingSummary, ReviewRow};

/// A trip's reviews per page: 20 unless asked, 1 to 50.
pub(crate) const REVIEWS: ListBound = ListBound {
    default: 20,
    max: 50,
};

/// Ratings summed up.
#[derive(SimpleObject)]
pub(crate) struct Rating {
    /// The mean of the ratings (1–5).
    average: f64,
    /// How many reviews it is made of.
    count: i64,
}

impl From<RatingSummary> for Rating {
    fn from(summary: RatingSummary) -> Self {
        Self {
            average: summary.average,
            count: summary.count,
        }
    }
}

/// A member's review of a trip that is over.
pub(crate) struct TripReview(pub(crate) ReviewRow);

#[Object]
impl TripReview {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// 1 (poorly) to 5 (very well).
    async fn rating(&self) -> i32 {
        i32::from(self.0.rating)
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// The reviewer.
    async fn user(&self, ctx: &Context<'_>) -> ApiResult<User> {
        User::load(ctx, self.0.user_id, "the reviewer is gone").await
    }
    async fn created_at(&self) -> Time {
        Time(self.0.created_at)
    }
    /// When it was last replaced (a member's second review replaces the first).
    async fn updated_at(&self) -> Time {
        Time(self.0.updated_at)
    }
}

#[derive(SimpleObject)]
pub(crate) struct TripReviewConnection {
    page_info: PageInfo,
    nodes: Vec<TripReview>,
}

/// A trip's reviews, newest first: at most `first` after the cursor `after`.
pub(crate) async fn reviews_of(
    ctx: &Context<'_>,
    post_id: i64,
    first: Option<i32>,
    after: Option<&str>,
) -> ApiResult<TripReviewConnection> {
    let limit = REVIEWS.limit("first", first).gql()?;
    // One more than asked tells whether there is a next page. A first page goes through the
    // loader (every post of a list in one statement); a later one is the post's own.
    let mut rows = match number_after(after).gql()? {
        None => {
            let key = ListOf {
                id: post_id,
                limit: limit + 1,
            };
            load(&loaders(ctx).reviews, key).await?.unwrap_or_default()
        }
        Some(before) => {
            let board = ctx.data_unchecked::<Board>();
            store::reviews_of_post(board.db().pool(), post_id, before, limit + 1)
                .await
                .map_err(AppError::from)
                .gql()?
        }
    };
    let has_next_page = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(TripReviewConnection {
        page_info: PageInfo {
            has_next_page,
            end_cursor: rows.last().map(|r| r.id.to_string()),
        },
        nodes: rows.into_iter().map(TripReview).collect(),
    })
}

/// The rating of a trip or of the trips an organiser organised, `null` without reviews.
pub(crate) async fn rating_of(
    ctx: &Context<'_>,
    id: i64,
    of: RatingOf,
) -> ApiResult<Option<Rating>> {
    let l = loaders(ctx);
    let loader = match of {
        RatingOf::Trip => &l.post_ratings,
        RatingOf::Organiser => &l.organiser_ratings,
    };
    Ok(load(loader, id).await?.map(Rating::from))
}

#[derive(InputObject)]
pub(crate) struct ReviewTripInput {
    post_id: ID,
    /// 1 (poorly) to 5 (very well).
    rating: i32,
    /// 1–1000 characters after trimming; blank or absent is none.
    comment: Option<String>,
    /// Echoed back (1–64 of `A-Z a-z 0-9 - _ .`). A retry needs none: a member's review of a
    /// trip is one, written again.
    client_mutation_id: Option<String>,
}

#[derive(SimpleObject)]
pub(crate) struct ReviewTripPayload {
    review: TripReview,
    client_mutation_id: Option<String>,
}

#[derive(Default)]
pub(crate) struct ReviewMutation;

#[Object]
impl ReviewMutation {
    /// Says how a trip went: for a member who held a seat, once the trip is COMPLETED and until
    /// `Post.reviewsCloseAt` (CONFLICT `TRIP_NOT_OVER` before, `REVIEWS_CLOSED` after;
    /// FORBIDDEN `OWN_TRIP` for its organiser, `NOT_A_MEMBER` for anyone else). A member's
    /// second review replaces the first. Limited per user (RATE_LIMITED).
    async fn review_trip(
        &self,
        ctx: &Context<'_>,
        input: ReviewTripInput,
    ) -> ApiResult<ReviewTripPayload> {
        let viewer = ctx.viewer().await.gql()?;
        let post_id = parse_id("input.postId", &input.post_id).gql()?;
        let rating = DomainRating::parse("input.rating", i64::from(input.rating))
            .map_err(AppError::from)
            .gql()?;
        let comment = ReviewComment::parse_optional("input.comment", input.comment.as_deref())
            .map_err(AppError::from)
            .gql()?;
        let key = MutationKey::parse(
            "input.clientMutationId",
            input.client_mutation_id.as_deref(),
        )
        .gql()?;
        let review = ctx
            .data_unchecked::<Board>()
            .review(&viewer, post_id, rating, comment.as_ref())
            .await
            .gql()?;
        Ok(ReviewTripPayload {
            review: TripReview(review),
            client_mutation_id: key.client_key().map(str::to_owned),
        })
    }
}
