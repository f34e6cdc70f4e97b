//! The board: posting trips.

use super::checks::at_least_one;
use super::keys::{Invalid, config_group};

config_group! {
    pub struct Board {
        title: "Board",
        about: "Posting, changing and closing trips.",
        board_saga_wait_ms: u64 = 10_000,
            "how long createPost/updatePost/deletePost wait for their saga; past it createPost answers the PENDING post and its `sagaId`";
        board_max_images_per_post: usize = 5,
            "most images one post may have (existing − removed + new)";
        board_max_posts_per_hour: u32 = 30,
            "`createPost` calls one user may make per hour; more is `RATE_LIMITED`";
        board_max_applications_per_hour: u32 = 60,
            "`createApplyPost` calls one user may make per hour (each may run an Apply saga and notify the organiser; a withdrawal needs an application first); more is `RATE_LIMITED`";
        board_max_post_changes_per_hour: u32 = 60,
            "`updatePost` calls one user may make per hour (each runs a saga and may notify every member); more is `RATE_LIMITED`";
        board_max_reviews_per_hour: u32 = 30,
            "`reviewTrip` calls one user may make per hour (each writes a review and its event); more is `RATE_LIMITED`";
        board_review_window_secs: u64 = 14 * 86_400,
            "members may review a trip (`reviewTrip`) until this long after its meeting time; later is `REVIEWS_CLOSED` (`Post.reviewsCloseAt` tells when)";
        board_close_interval_secs: u64 = 300,
            "how often the `<prefix>.close-posts` schedule closes trips whose meeting time has passed: a safety net for trips posted before trip workflows existed (each trip's workflow closes it at its meeting time)";
        board_post_url: String = "http://localhost:3000/posts/{id}".to_owned(),
            "the front end's page of a trip (`{id}` is replaced): the URL of its calendar event";
    }
}

impl Board {
    fn check(&self) -> Result<(), Invalid> {
        at_least_one(&[("board_close_interval_secs", self.board_close_interval_secs)])?;
        if !self.board_post_url.contains("{id}") {
            return Err((
                "board_post_url",
                "must contain {id}, where the trip's id goes".to_owned(),
            ));
        }
        Ok(())
    }
}
