//! The board's value types: what a post is made of, each parsed and checked once at the edge.
//! Code lists are the original front end's (docs/architecture.md): JIS prefecture codes 1–47,
//! fishing spot types 1–4, fish types 1–95.

use crate::validation::Invalid;
use chrono::{DateTime, Utc};

crate::trimmed_text! {
    /// A post's title: 1–20 characters after trimming.
    Title, 1, 20
}

crate::trimmed_text! {
    /// A post's text: 1–2000 characters after trimming.
    Content, 1, 2000
}

fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), Invalid> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

/// 1 shore/bank, 2 mountain stream, 3 boat, 4 fishing pond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FishingSpotTypeId(i16);

impl FishingSpotTypeId {
    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        in_range(field, raw, 1, 4)?;
        Ok(Self(raw as i16))
    }
    pub fn get(self) -> i16 {
        self.0
    }
}

/// A JIS prefecture code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefectureId(i16);

impl PrefectureId {
    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        in_range(field, raw, 1, 47)?;
        Ok(Self(raw as i16))
    }
    pub fn get(self) -> i16 {
        self.0
    }
}

/// At least one fish type, each 1–95, no repeats; kept sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FishTypeIds(Vec<i16>);

impl FishTypeIds {
    pub fn parse(field: &str, raw: &[i64]) -> Result<Self, Invalid> {
        Self::parse_any(field, raw)?
            .filter(|ids| !ids.0.is_empty())
            .ok_or_else(|| Invalid::new(field, "must name at least one fish type"))
    }

    /// For filters: empty is allowed (no filter).
    pub fn parse_any(field: &str, raw: &[i64]) -> Result<Option<Self>, Invalid> {
        let mut ids = Vec::with_capacity(raw.len());
        for (i, id) in raw.iter().enumerate() {
            in_range(&format!("{field}.{i}"), *id, 1, 95)?;
            ids.push(*id as i16);
        }
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        if ids.len() != before {
            return Err(Invalid::new(field, "must not repeat a fish type"));
        }
        Ok(Some(Self(ids)))
    }

    pub fn into_inner(self) -> Vec<i16> {
        self.0
    }
}

/// A Google Place ID, stored as given (27–255 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingPlaceId(String);

impl MeetingPlaceId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Invalid> {
        crate::validation::check_length(field, raw, 27, 255)?;
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(field, "must not contain spaces"));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When the anglers meet: in the future when a post is created or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeetingAt(DateTime<Utc>);

impl MeetingAt {
    pub fn parse(field: &str, raw: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, Invalid> {
        if raw <= now {
            return Err(Invalid::new(field, "must be in the future"));
        }
        Ok(Self(raw))
    }
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

/// How many may join: at least 1 (and never below the current applicants: the store's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxApply(i32);

impl MaxApply {
    pub const MAX: i64 = 1_000;

    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        in_range(field, raw, 1, Self::MAX)?;
        Ok(Self(raw as i32))
    }
    pub fn get(self) -> i32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn code_lists_are_enforced() {
        assert!(FishingSpotTypeId::parse("f", 4).is_ok());
        assert!(FishingSpotTypeId::parse("f", 5).is_err());
        assert!(PrefectureId::parse("p", 0).is_err());
        assert!(PrefectureId::parse("p", 47).is_ok());
        assert!(MaxApply::parse("m", 0).is_err());
    }

    #[test]
    fn fish_types_are_checked_sorted_and_unique() {
        let ids = FishTypeIds::parse("fishTypeIds", &[12, 3]).unwrap();
        assert_eq!(ids.into_inner(), vec![3, 12]);
        assert_eq!(
            FishTypeIds::parse("fishTypeIds", &[3, 96])
                .unwrap_err()
                .field,
            "fishTypeIds.1"
        );
        assert!(FishTypeIds::parse("fishTypeIds", &[]).is_err());
        assert!(FishTypeIds::parse("fishTypeIds", &[3, 3]).is_err());
    }

    #[test]
    fn meeting_time_must_be_ahead() {
        let now = Utc::now();
        assert!(MeetingAt::parse("meetingAt", now - Duration::minutes(1), now).is_err());
        assert!(MeetingAt::parse("meetingAt", now + Duration::hours(1), now).is_ok());
    }

    #[test]
    fn titles_and_place_ids_have_bounds() {
        assert!(Title::parse("title", "  ").is_err());
        assert!(Title::parse("title", &"鮎".repeat(20)).is_ok());
        assert!(Title::parse("title", &"鮎".repeat(21)).is_err());
        assert!(MeetingPlaceId::parse("m", "ChIJN1t_tDeuEmsRUsoyG83frY4").is_ok());
        assert!(MeetingPlaceId::parse("m", "short").is_err());
    }
}
