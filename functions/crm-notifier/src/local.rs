//! The local server's stand-in for the stream: after a booking commits (or is cancelled), the same [`Notifier`]
//! runs in a background task with its own bounded retries, so the request never waits. The tasks
//! are counted in [`PendingDeliveries`], so that the server can let them finish when it stops.

use crate::notifier::Notifier;
use shared::app::BookingHook;
use shared::model::{Booking, BookingStatus};
use shared::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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

/// A booking hook whose background deliveries nobody waits for; see [`PendingDeliveries::hook`].
pub fn booking_hook<S: Store>(notifier: Arc<Notifier<S>>, policy: RetryPolicy) -> BookingHook {
    PendingDeliveries::new().hook(notifier, policy)
}

/// The background deliveries started by [`PendingDeliveries::hook`] that have not finished yet
/// (retries included). Clones share the count.
#[derive(Clone, Debug)]
pub struct PendingDeliveries {
    count: Arc<watch::Sender<usize>>,
}

impl Default for PendingDeliveries {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingDeliveries {
    pub fn new() -> Self {
        PendingDeliveries { count: Arc::new(watch::Sender::new(0)) }
    }

    /// The hook the local server installs with `App::with_booking_hook`: counts the delivery in
    /// before the booking's response is sent, then runs it in a background task.
    pub fn hook<S: Store>(&self, notifier: Arc<Notifier<S>>, policy: RetryPolicy) -> BookingHook {
        let pending = self.clone();
        Arc::new(move |booking: &Booking| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::error!(booking_id = %booking.id, "no tokio runtime; CRM notification not sent");
                return;
            };
            let guard = pending.start();
            let notifier = Arc::clone(&notifier);
            let booking = booking.clone();
            runtime.spawn(async move {
                let _guard = guard;
                deliver_with_retries(&notifier, &booking, policy).await
            });
        })
    }

    /// How many deliveries are still running.
    pub fn in_flight(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until no delivery is running, or for `timeout`; returns how many are still running.
    pub async fn drain(&self, timeout: Duration) -> usize {
        let mut idle = self.count.subscribe();
        // `wait_for` only fails once the sender is gone, and `self` holds it.
        let _ = tokio::time::timeout(timeout, idle.wait_for(|n| *n == 0)).await;
        self.in_flight()
    }

    fn start(&self) -> InFlight {
        self.count.send_modify(|n| *n += 1);
        InFlight(self.clone())
    }
}

/// One running delivery; dropping it (task finished, panicked or never spawned) counts it out.
struct InFlight(PendingDeliveries);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The stream's dispatch, locally: a confirmed booking just committed sends its
/// `booking.confirmed` as it was made (the stream's booking image); any other change (a
/// cancellation) sends the booking's messages in order, as the stream does for a new message
/// record. Returns whether the booking ended in a final state (delivered, rejected, or nothing
/// to do).
pub async fn deliver_with_retries<S: Store>(notifier: &Notifier<S>, booking: &Booking, policy: RetryPolicy) -> bool {
    for attempt in 1..=policy.max_attempts.max(1) {
        // A paid waitlist offer owes its `booking.offered` before its confirmation.
        let offer = booking.via_waitlist && booking.payment.is_some();
        let retryable = if booking.status == BookingStatus::Confirmed && !offer {
            notifier.deliver(booking).await.map(|o| o.is_retryable())
        } else {
            notifier.deliver_booking(&booking.id).await.map(|o| o.is_retryable())
        };
        match retryable {
            Ok(false) => return true,
            Ok(true) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_running_deliveries_up_to_the_timeout() {
        let pending = PendingDeliveries::new();
        assert_eq!(pending.drain(Duration::from_secs(5)).await, 0, "nothing to wait for");
        let (quick, slow) = (pending.start(), pending.start());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(quick);
        });
        let stuck = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(slow);
        });
        assert_eq!(pending.in_flight(), 2);
        let started = std::time::Instant::now();
        assert_eq!(pending.drain(Duration::from_millis(300)).await, 1, "the stuck one is left");
        assert!(started.elapsed() < Duration::from_secs(2), "drain is bounded by its timeout");
        stuck.abort();
        assert_eq!(pending.drain(Duration::from_secs(5)).await, 0, "an aborted task counts out");
    }
}
