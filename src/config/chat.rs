//! Chat: how much one user may write.

use super::checks::at_least_one;
use super::keys::{Invalid, config_group};

config_group! {
    pub struct Chat {
        title: "Chat",
        about: "A trip's room.",
        chat_max_messages: u32 = 30,
            "chat messages one user may send per window (all rooms together); more is `RATE_LIMITED` with `extensions.retryAfterSeconds`";
        chat_message_window_secs: u64 = 60,
            "the window of `CHAT_MAX_MESSAGES`";
    }
}

impl Chat {
    fn check(&self) -> Result<(), Invalid> {
        at_least_one(&[("chat_message_window_secs", self.chat_message_window_secs)])
    }
}
