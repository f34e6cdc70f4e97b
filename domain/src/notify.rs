//! What a user is told: the kinds of notification the notifications consumer writes from the
//! event stream (see `fishapp_app::notify`).

use serde::{Deserialize, Serialize};

/// A kind of notification. Stored and shown as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    /// Someone applied to your trip (a seat, a place in its line, or a request).
    Applied,
    /// Someone withdrew from your trip (gave up a seat, left the line, took back a request).
    Withdrew,
    /// The organiser accepted your request.
    RequestAccepted,
    /// The organiser declined your request.
    RequestDeclined,
    /// Nobody answered your request before the deadline.
    RequestExpired,
    /// A seat freed and you moved up from the line.
    Promoted,
    /// The organiser removed you from their trip (a seat, a place in its line, or a request).
    Removed,
    /// A trip you are a member of is soon.
    TripReminder,
    /// A trip you are a member of changed its time or place.
    TripChanged,
    /// A trip you were a member of was cancelled (deleted by its organiser).
    TripCancelled,
    /// A trip you were a member of is over: say how it went.
    TripCompleted,
    /// A member reviewed a trip you organised.
    TripReviewed,
    /// New messages in a room of yours (one per room until read).
    NewMessages,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 13] = [
        NotificationKind::Applied,
        NotificationKind::Withdrew,
        NotificationKind::RequestAccepted,
        NotificationKind::RequestDeclined,
        NotificationKind::RequestExpired,
        NotificationKind::Promoted,
        NotificationKind::Removed,
        NotificationKind::TripReminder,
        NotificationKind::TripChanged,
        NotificationKind::TripCancelled,
        NotificationKind::TripCompleted,
        NotificationKind::TripReviewed,
        NotificationKind::NewMessages,
    ];

    /// The stored name (the database's CHECK lists the same).
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Applied => "APPLIED",
            NotificationKind::Withdrew => "WITHDREW",
            NotificationKind::RequestAccepted => "REQUEST_ACCEPTED",
            NotificationKind::RequestDeclined => "REQUEST_DECLINED",
            NotificationKind::RequestExpired => "REQUEST_EXPIRED",
            NotificationKind::Promoted => "PROMOTED",
            NotificationKind::Removed => "REMOVED",
            NotificationKind::TripReminder => "TRIP_REMINDER",
            NotificationKind::TripChanged => "TRIP_CHANGED",
            NotificationKind::TripCancelled => "TRIP_CANCELLED",
            NotificationKind::TripCompleted => "TRIP_COMPLETED",
            NotificationKind::TripReviewed => "TRIP_REVIEWED",
            NotificationKind::NewMessages => "NEW_MESSAGES",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl TryFrom<String> for NotificationKind {
    type Error = String;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::parse(&name).ok_or_else(|| format!("unknown notification kind {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_match_the_serde_form() {
        for kind in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(NotificationKind::parse("applied"), None);
    }
}
