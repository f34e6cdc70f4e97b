//! A trip's life: when its workflow reminds, expires requests and completes it.

use super::checks::at_least_one;
use super::keys::{Invalid, config_group};

config_group! {
    pub struct Trip {
        title: "Trips",
        about: "The moments of a trip's workflow, relative to its meeting time (a trip keeps the timings it was posted with).",
        trip_reminder_before_secs: Option<u64> = None,
            "the reminder (`board.post.reminder_due`) goes this long before the meeting",
            shown "unset: the evening before (18:00 Japan time)";
        trip_requests_expire_before_secs: u64 = 24 * 3_600,
            "requests to a trip that approves each application expire this long before the meeting, if nobody answered";
        trip_completed_after_secs: u64 = 6 * 3_600,
            "the trip becomes COMPLETED (and its members are invited to say how it went) this long after the meeting";
    }
}

impl Trip {
    fn check(&self) -> Result<(), Invalid> {
        at_least_one(&[("trip_completed_after_secs", self.trip_completed_after_secs)])
    }
}
