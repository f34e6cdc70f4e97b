//! Reviews of a trip that is over: what a member who held a seat may say about it.

use crate::validation::Invalid;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long after its meeting a trip may be reviewed: a review written weeks later says little
/// about the day, and an open window forever lets a rating be reshaped long after the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewWindow(Duration);

impl ReviewWindow {
    pub fn from_secs(secs: u64) -> Self {
        let secs = i64::try_from(secs).ok().and_then(Duration::try_seconds);
        Self(secs.unwrap_or(Duration::MAX))
    }

    /// When reviews of a trip meeting at `meeting_at` close.
    pub fn closes_at(self, meeting_at: DateTime<Utc>) -> DateTime<Utc> {
        meeting_at
            .checked_add_signed(self.0)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// How it went: 1 (poorly) to 5 (very well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rating(i16);

impl Rating {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 5;

    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        if !(Self::MIN..=Self::MAX).contains(&raw) {
            return Err(Invalid::new(
                field,
                format!("must be between {} and {}", Self::MIN, Self::MAX),
            ));
        }
        Ok(Self(raw as i16))
    }

    pub fn get(self) -> i16 {
        self.0
    }
}

crate::trimmed_text! {
    /// What a reviewer writes beside the rating: 1–1000 characters after trimming.
    ReviewComment, 1, 1000
}

impl ReviewComment {
    /// An optional comment: absent, or blank after trimming, is none.
    pub fn parse_optional(field: &str, raw: Option<&str>) -> Result<Option<Self>, Invalid> {
        match raw.map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => Self::parse(field, text).map(Some),
        }
    }
}

/// Why a review is refused: each a clear answer (GraphQL `extensions.reason` =
/// [`ReviewRefusal::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefusal {
    /// No such trip, or one the reviewer may not see.
    NotFound,
    /// The reviewer organised it: an organiser does not rate their own trip.
    OwnTrip,
    /// The reviewer did not hold a seat on it.
    NotMember,
    /// It is not over yet (reviews open when it is COMPLETED).
    NotOver,
    /// Its review window has passed (reviews close a configured time after the meeting).
    Closed,
}

impl ReviewRefusal {
    pub const fn code(self) -> &'static str {
        match self {
            ReviewRefusal::NotFound => "POST_NOT_FOUND",
            ReviewRefusal::OwnTrip => "OWN_TRIP",
            ReviewRefusal::NotMember => "NOT_A_MEMBER",
            ReviewRefusal::NotOver => "TRIP_NOT_OVER",
            ReviewRefusal::Closed => "REVIEWS_CLOSED",
        }
    }

    pub const fn message(self) -> &'static str {
        match self {
            ReviewRefusal::NotFound => "no such trip",
            ReviewRefusal::OwnTrip => "an organiser does not review their own trip",
            ReviewRefusal::NotMember => "only a member who held a seat on the trip may review it",
            ReviewRefusal::NotOver => "the trip is not over yet: reviews open when it is COMPLETED",
            ReviewRefusal::Closed => "reviews of this trip are closed: see Post.reviewsCloseAt",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_close_the_window_after_the_meeting_and_a_huge_window_never_overflows() {
        let meeting = DateTime::parse_from_rfc3339("2026-12-05T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            ReviewWindow::from_secs(14 * 86_400).closes_at(meeting),
            meeting + Duration::days(14)
        );
        assert_eq!(
            ReviewWindow::from_secs(u64::MAX).closes_at(meeting),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn a_rating_is_one_to_five() {
        assert_eq!(Rating::parse("rating", 1).unwrap().get(), 1);
        assert_eq!(Rating::parse("rating", 5).unwrap().get(), 5);
        for bad in [0, 6, -1, i64::MAX, i64::MIN] {
            assert_eq!(
                Rating::parse("input.rating", bad).unwrap_err().field,
                "input.rating"
            );
        }
    }

    #[test]
    fn a_blank_comment_is_none_and_a_long_one_is_refused() {
        assert_eq!(ReviewComment::parse_optional("c", None).unwrap(), None);
        assert_eq!(
            ReviewComment::parse_optional("c", Some("  ")).unwrap(),
            None
        );
        assert_eq!(
            ReviewComment::parse_optional("c", Some(" good "))
                .unwrap()
                .unwrap()
                .as_str(),
            "good"
        );
        let longest = "魚".repeat(1000);
        assert!(ReviewComment::parse_optional("c", Some(&longest)).is_ok());
        assert!(ReviewComment::parse_optional("c", Some(&format!("{longest}x"))).is_err());
    }
}
