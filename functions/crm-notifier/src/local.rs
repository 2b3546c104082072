//! The local server's stand-in for the stream: after a booking commits, the same [`Notifier`]
//! runs in a background task with its own bounded retries, so the request never waits.

use crate::notifier::Notifier;
use shared::app::BookingHook;
use shared::model::Booking;
use shared::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Exponential backoff: `initial_delay`, doubled after each failure up to `max_delay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, the first included.
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 tries over 1 + 2 + 4 + 8 = 15 s of waiting (plus up to 5 request timeouts): well within
    /// a minute, like a short outage of the CRM.
    fn default() -> Self {
        RetryPolicy { max_attempts: 5, initial_delay: Duration::from_secs(1), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// Wait after failed attempt `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// The hook the local server installs with `App::with_booking_hook`.
pub fn booking_hook<S: Store>(notifier: Arc<Notifier<S>>, policy: RetryPolicy) -> BookingHook {
    Arc::new(move |booking: &Booking| {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(booking_id = %booking.id, "no tokio runtime; CRM notification not sent");
            return;
        };
        let notifier = Arc::clone(&notifier);
        let booking = booking.clone();
        runtime.spawn(async move { deliver_with_retries(&notifier, &booking, policy).await });
    })
}

/// Returns whether the booking ended in a final state (delivered, rejected, or nothing to do).
pub async fn deliver_with_retries<S: Store>(notifier: &Notifier<S>, booking: &Booking, policy: RetryPolicy) -> bool {
    for attempt in 1..=policy.max_attempts.max(1) {
        match notifier.deliver(booking).await {
            Ok(outcome) if !outcome.is_retryable() => return true,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(booking_id = %booking.id, error = %e, "CRM delivery record unavailable")
            }
        }
        if attempt < policy.max_attempts {
            tokio::time::sleep(policy.delay_after(attempt)).await;
        }
    }
    tracing::error!(
        booking_id = %booking.id,
        attempts = policy.max_attempts,
        "CRM notification still failing; giving up (the delivery record says retrying)"
    );
    false
}
