//! Reviews of a trip that is over: what a member who held a seat may say about it.

use crate::validation::Invalid;
use serde::{Deserialize, Serialize};

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
}

impl ReviewRefusal {
    pub const fn code(self) -> &'static str {
        match self {
            ReviewRefusal::NotFound => "POST_NOT_FOUND",
            ReviewRefusal::OwnTrip => "OWN_TRIP",
            ReviewRefusal::NotMember => "NOT_A_MEMBER",
            ReviewRefusal::NotOver => "TRIP_NOT_OVER",
        }
    }

    pub const fn message(self) -> &'static str {
        match self {
            ReviewRefusal::NotFound => "no such trip",
            ReviewRefusal::OwnTrip => "an organiser does not review their own trip",
            ReviewRefusal::NotMember => "only a member who held a seat on the trip may review it",
            ReviewRefusal::NotOver => "the trip is not over yet: reviews open when it is COMPLETED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
