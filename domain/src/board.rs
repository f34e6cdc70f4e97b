//! The board's value types: what a post is made of, each parsed and checked once at the edge,
//! and the [`PostDraft`] they make up, which travels as it is from the API through the saga's
//! input and its activities to the store. Code lists are the original front end's
//! (docs/architecture.md): JIS prefecture codes 1–47, fishing spot types 1–4, fish types 1–95.
//!
//! Every type serializes as its plain value (the draft as the JSON object workflow histories
//! already hold), and deserializes without checks: what is deserialized is Fishapp's own record
//! (a workflow history being replayed, a saga's snapshot), whose rules were checked when it was
//! made — re-checking "meeting time in the future" on a replay would fail a history that was valid.

use crate::validation::Invalid;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FishingSpotTypeId(i16);

impl FishingSpotTypeId {
    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        in_range(field, raw, 1, 4)?;
        Ok(Self(raw as i16))
    }
    /// See [`Title::from_record`].
    pub fn from_record(recorded: i16) -> Self {
        Self(recorded)
    }
    pub fn get(self) -> i16 {
        self.0
    }
}

/// A JIS prefecture code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrefectureId(i16);

impl PrefectureId {
    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        in_range(field, raw, 1, 47)?;
        Ok(Self(raw as i16))
    }
    /// See [`Title::from_record`].
    pub fn from_record(recorded: i16) -> Self {
        Self(recorded)
    }
    pub fn get(self) -> i16 {
        self.0
    }
}

/// At least one fish type, each 1–95, no repeats; kept sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FishTypeIds(Vec<i16>);

impl FishTypeIds {
    /// A post's fish types: at least one.
    pub fn parse(field: &str, raw: &[i64]) -> Result<Self, Invalid> {
        let ids = Self::parse_filter(field, raw)?;
        if ids.0.is_empty() {
            return Err(Invalid::new(field, "must name at least one fish type"));
        }
        Ok(ids)
    }

    /// A listing filter's fish types: none is allowed (no filter).
    pub fn parse_filter(field: &str, raw: &[i64]) -> Result<Self, Invalid> {
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
        Ok(Self(ids))
    }

    /// Recorded fish types (see [`Title::from_record`]); sorted here as `parse` would.
    pub fn from_record(mut recorded: Vec<i16>) -> Self {
        recorded.sort_unstable();
        Self(recorded)
    }

    pub fn as_slice(&self) -> &[i16] {
        &self.0
    }

    pub fn into_inner(self) -> Vec<i16> {
        self.0
    }
}

/// A Google Place ID, stored as given (27–255 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeetingPlaceId(String);

impl MeetingPlaceId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Invalid> {
        crate::validation::check_length(field, raw, 27, 255)?;
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(field, "must not contain spaces"));
        }
        Ok(Self(raw.to_owned()))
    }
    /// See [`Title::from_record`].
    pub fn from_record(recorded: String) -> Self {
        Self(recorded)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When the anglers meet: in the future when a post is created or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeetingAt(DateTime<Utc>);

impl MeetingAt {
    pub fn parse(field: &str, raw: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, Invalid> {
        if raw <= now {
            return Err(Invalid::new(field, "must be in the future"));
        }
        Ok(Self(raw))
    }
    /// See [`Title::from_record`] (a recorded meeting time may be past by now).
    pub fn from_record(recorded: DateTime<Utc>) -> Self {
        Self(recorded)
    }
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

/// How many may join: at least 1 (and never below the current applicants: the store's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxApply(i32);

impl MaxApply {
    pub const MAX: i64 = 1_000;

    pub fn parse(field: &str, raw: i64) -> Result<Self, Invalid> {
        in_range(field, raw, 1, Self::MAX)?;
        Ok(Self(raw as i32))
    }
    /// See [`Title::from_record`].
    pub fn from_record(recorded: i32) -> Self {
        Self(recorded)
    }
    pub fn get(self) -> i32 {
        self.0
    }
}

/// What an owner writes about a trip: the fields createPost and updatePost carry, each already
/// parsed. The saga's input, its activities' input and the store's argument; also the snapshot
/// an update saga restores when it fails.
///
/// Its serialized form is part of every CreatePost and UpdatePost history: field names never
/// change, and a field added later must have a serde default so that recorded histories still
/// replay (tests/histories.rs replays histories recorded before each change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostDraft {
    pub title: Title,
    pub content: Content,
    pub fishing_spot_type_id: FishingSpotTypeId,
    pub prefecture_id: PrefectureId,
    pub meeting_place_id: MeetingPlaceId,
    pub meeting_at: MeetingAt,
    pub max_apply: MaxApply,
    pub fish_type_ids: FishTypeIds,
    /// Whether the organiser approves each application: `Some` sets it, `None` keeps what the
    /// post has (off for a new post). Absent from histories recorded before it existed, and
    /// left out when `None` so a draft without it is written as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_required: Option<bool>,
}

/// Where a post is in its life. Stored as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PostStatus {
    /// Its create saga is running: its owner's alone.
    Pending,
    /// Listed; people may apply while there is room and the meeting time is ahead.
    Open,
    /// The meeting time has passed.
    Closed,
    /// Some hours after the meeting: the trip's life is over (its members were asked how it
    /// went).
    Completed,
    /// Being torn down: its owner's alone, until it is gone.
    Deleting,
}

impl PostStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            PostStatus::Pending => "PENDING",
            PostStatus::Open => "OPEN",
            PostStatus::Closed => "CLOSED",
            PostStatus::Completed => "COMPLETED",
            PostStatus::Deleting => "DELETING",
        }
    }

    /// Whether everyone may see a post in this status (its owner always may).
    pub const fn is_public(self) -> bool {
        matches!(
            self,
            PostStatus::Open | PostStatus::Closed | PostStatus::Completed
        )
    }
}

/// Why someone may not apply to a trip: each a clear answer to the applicant (GraphQL
/// `CONFLICT` with `extensions.reason` = [`ApplyRefusal::code`]), never an internal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyRefusal {
    /// No such post, or one the applicant may not see.
    NotFound,
    /// The post is not open (being created, closed, or being torn down).
    NotOpen,
    /// Its meeting time has passed.
    Past,
    /// The applicant is its owner.
    OwnPost,
    /// Every seat is taken.
    Full,
    /// The applicant has applied already.
    AlreadyApplied,
    /// The application is no longer waiting (in the line, or for the organiser): withdrawn,
    /// declined or expired meanwhile.
    NotWaiting,
    /// The trip approves each application, and the organiser's deadline for requests has
    /// passed (unanswered requests expired then; a later one would never be answered).
    RequestsClosed,
    /// The organiser removed the applicant from this trip: they may not apply to it again.
    Removed,
}

impl ApplyRefusal {
    /// The wire form (`extensions.reason`): part of the public API, never renamed.
    pub const fn code(self) -> &'static str {
        match self {
            ApplyRefusal::NotFound => "POST_NOT_FOUND",
            ApplyRefusal::NotOpen => "POST_NOT_OPEN",
            ApplyRefusal::Past => "POST_IN_THE_PAST",
            ApplyRefusal::OwnPost => "OWN_POST",
            ApplyRefusal::Full => "POST_FULL",
            ApplyRefusal::AlreadyApplied => "ALREADY_APPLIED",
            ApplyRefusal::NotWaiting => "NOT_WAITING",
            ApplyRefusal::RequestsClosed => "REQUESTS_CLOSED",
            ApplyRefusal::Removed => "REMOVED_FROM_TRIP",
        }
    }

    pub const fn message(self) -> &'static str {
        match self {
            ApplyRefusal::NotFound => "there is no such trip",
            ApplyRefusal::NotOpen => "the trip is not open for applications",
            ApplyRefusal::Past => "the trip's meeting time has passed",
            ApplyRefusal::OwnPost => "one cannot apply to one's own trip",
            ApplyRefusal::Full => "the trip is full",
            ApplyRefusal::AlreadyApplied => "you have applied to this trip already",
            ApplyRefusal::NotWaiting => "the application is no longer waiting",
            ApplyRefusal::RequestsClosed => "the organiser no longer takes requests for this trip",
            ApplyRefusal::Removed => "the organiser removed you from this trip",
        }
    }
}

/// Where an application stands. Stored as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApplicationStatus {
    /// A seat on the trip, and a member of its room.
    #[default]
    Applied,
    /// In the trip's line (asked for with `waitlist`): promoted, first come first served, when a
    /// seat frees.
    Waitlisted,
    /// Waiting for the organiser of a trip that approves each application; no seat is held.
    PendingApproval,
}

impl ApplicationStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ApplicationStatus::Applied => "APPLIED",
            ApplicationStatus::Waitlisted => "WAITLISTED",
            ApplicationStatus::PendingApproval => "PENDING_APPROVAL",
        }
    }
}

impl TryFrom<String> for ApplicationStatus {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        match stored.as_str() {
            "APPLIED" => Ok(ApplicationStatus::Applied),
            "WAITLISTED" => Ok(ApplicationStatus::Waitlisted),
            "PENDING_APPROVAL" => Ok(ApplicationStatus::PendingApproval),
            other => Err(format!("unknown application status {other:?}")),
        }
    }
}

impl TryFrom<String> for PostStatus {
    type Error = String;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        match stored.as_str() {
            "PENDING" => Ok(PostStatus::Pending),
            "OPEN" => Ok(PostStatus::Open),
            "CLOSED" => Ok(PostStatus::Closed),
            "COMPLETED" => Ok(PostStatus::Completed),
            "DELETING" => Ok(PostStatus::Deleting),
            other => Err(format!("unknown post status {other:?}")),
        }
    }
}

/// The time zone trips are told in: Japan Standard Time (every prefecture is in Japan), with no
/// daylight saving, so a fixed offset is exact.
pub fn trip_time_zone() -> FixedOffset {
    const JST_SECONDS: i32 = 9 * 3_600;
    FixedOffset::east_opt(JST_SECONDS).unwrap_or_else(|| {
        FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("a zero offset is valid"))
    })
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
    fn statuses_read_back_and_only_open_closed_and_completed_are_public() {
        for status in [
            PostStatus::Pending,
            PostStatus::Open,
            PostStatus::Closed,
            PostStatus::Completed,
            PostStatus::Deleting,
        ] {
            assert_eq!(PostStatus::try_from(status.as_str().to_owned()), Ok(status));
        }
        assert!(PostStatus::try_from("open".to_owned()).is_err());
        assert!(PostStatus::Open.is_public() && PostStatus::Closed.is_public());
        assert!(PostStatus::Completed.is_public());
        assert!(!PostStatus::Pending.is_public() && !PostStatus::Deleting.is_public());
        for status in [
            ApplicationStatus::Applied,
            ApplicationStatus::Waitlisted,
            ApplicationStatus::PendingApproval,
        ] {
            assert_eq!(
                ApplicationStatus::try_from(status.as_str().to_owned()),
                Ok(status)
            );
        }
    }

    /// The draft reads the field names CreatePost and UpdatePost histories hold, including a
    /// meeting time that has passed since.
    #[test]
    fn a_recorded_draft_reads_back_unchecked() {
        let recorded = serde_json::json!({
            "title": "Recorded", "content": "Sea bass", "fishing_spot_type_id": 1,
            "prefecture_id": 13, "meeting_place_id": "ChIJN1t_tDeuEmsRUsoyG83frY4",
            "meeting_at": "2020-01-01T05:00:00Z", "max_apply": 3, "fish_type_ids": [3, 12]
        });
        let draft: PostDraft = serde_json::from_value(recorded.clone()).unwrap();
        assert_eq!(draft.title.as_str(), "Recorded");
        assert_eq!(draft.fish_type_ids.as_slice(), [3, 12]);
        assert_eq!(serde_json::to_value(&draft).unwrap(), recorded);
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
