//! Counting login attempts.

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Fixed-window counter of login attempts for one email, counted before the password is checked
/// and cleared by a successful login.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginThrottle {
    pub attempts: u32,
    /// Epoch seconds when the window opened.
    pub window_start: i64,
}

impl LoginThrottle {
    /// The 429 for an attempt refused at `now` (epoch seconds): retry when the window closes.
    pub fn refusal(&self, now: i64, window_secs: i64) -> Error {
        Error::TooManyAttempts { retry_after_secs: (self.window_start + window_secs - now).max(1) as u64 }
    }
}
