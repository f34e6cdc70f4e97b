//! The board context's tables: posts, their fish types, applications. Every write the sagas make
//! is idempotent (Temporal may run an activity twice) and writes its outbox event in the same
//! transaction.
//!
//! - [`posts`]: a post's life — written PENDING, published, changed under a saga's hold, closed,
//!   hidden and deleted;
//! - [`reading`]: posts by id, by user and by the listing's filters and keyset;
//! - [`applications`]: seats taken and given back, and who applied where;
//! - [`reviews`]: what members say of a trip that is over, summed up per trip and organiser.

mod applications;
mod posts;
mod reading;
mod reviews;
mod rows;

pub use applications::{
    ApplicationRow, GivenUp, RemovalRow, Seat, SeatWay, SeatsView, application_by_id,
    application_of, applications_of_posts_in, applications_of_user_to, applications_of_users,
    decline_request, delete_applications, expire_requests, give_back_seat, lift_removal,
    next_in_line, refusal, removals_of_posts, take_seat, waitlist_positions, was_removed,
};
pub use posts::{
    Snapshot, close_past, close_post, complete_post, delete_post, hide, insert_pending, publish,
    release_update, remind, reserve_post_id, restore_fields, update_fields,
};
pub use reading::{
    Keyset, Order, PostFilter, PostVisibility, SortBy, fish_types_of, list_posts, post_by_id,
    posts_by_ids, posts_of_users,
};
pub use reviews::{
    RatingOf, RatingSummary, ReviewRow, ratings, reviews_by_user_of, reviews_of_post,
    reviews_of_posts, write_review,
};
pub use rows::{PostRow, PostRuleError, WritePostError};
