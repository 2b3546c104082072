//! One message → one POST at a time, and no POST once the CRM has answered for good (a booking's
//! messages and their order: [`crate::messages`]).
//!
//! Every attempt first **claims** the message's record: one conditional write that takes a
//! short lease (`lease_owner`, `lease_until`) only if the record is not final and nobody else holds
//! it. Only the winner POSTs; then it writes the outcome, which releases the lease. So the stream
//! handler, its retries, the sweeper and an operator's redelivery can all run at once for the same
//! message and the CRM still gets one POST at a time, and none after a 2xx or a permanent 4xx. The
//! lease outlives the longest possible POST ([`CrmConfig::lease`]), so it only expires for a sender
//! that died mid-attempt; the sweeper then finds the record again.
//!
//! Between the POST and the outcome write the CRM may have accepted while our write fails; the CRM's
//! final answer wins over the bookkeeping: the write error is logged at `error` level and the
//! outcome is still returned as final, so nobody re-POSTs because of a store hiccup (the SDK has
//! already retried transient DynamoDB errors). The lease then blocks other senders for its length
//! and the record stays in the pending index, so the sweeper sends it once more later: the CRM gets
//! the same `webhook-id` again and can drop the duplicate (the booking's next message may have gone
//! out in between: the CRM did accept this one first). Delivery is at-least-once, never lost.

use crate::clock::{self, Clock, SystemClock};
use crate::config::CrmConfig;
use crate::error::Result;
use crate::webhook::{SendOutcome, WebhookClient, WebhookPayload};
use chrono::{DateTime, Utc};
use shared::model::{new_id, Booking, BookingStatus, Delivery, DeliveryStatus};
use shared::payments::PaymentProvider;
use shared::store::{Claim, Claimed, Store};
use shared::time::Timestamp;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A `Retry-After` longer than this is shortened to it: a CRM cannot park a booking for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The shortest wait before asking again for a record another sender holds.
const MIN_POLL: Duration = Duration::from_millis(250);

/// Result of [`Notifier::deliver`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The delivery record already says delivered: nothing was sent.
    AlreadyDelivered,
    /// The CRM already rejected this booking permanently: nothing was sent.
    AlreadyFailed,
    /// Another sender holds the record's lease (it is POSTing this booking now), or the CRM asked
    /// to wait (`Retry-After`): nothing was sent; ask again from `until` on.
    InFlight { until: Timestamp },
    /// No `CRM_WEBHOOK_URL`: nothing was sent and nothing recorded.
    NotConfigured,
    /// The booking is not one the CRM hears of (yet): `pending_payment`, or `expired` without
    /// ever being paid. Nothing was sent and nothing recorded; a paid hold is delivered once the
    /// payment confirms it.
    NotConfirmed,
    /// The CRM was called; its answer is recorded.
    Sent(SendOutcome),
}

impl Outcome {
    /// Whether the caller should try this booking again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Outcome::Sent(s) => s.is_retryable(),
            Outcome::InFlight { .. } => true,
            _ => false,
        }
    }
}

/// Jittered exponential backoff between attempts inside one invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, 8 s, then 16 s (each jittered): ~7 attempts in a 60 s budget.
    fn default() -> Self {
        Backoff { initial: Duration::from_secs(1), max: Duration::from_secs(16) }
    }
}

impl Backoff {
    /// The ceiling of the wait after the `failures`-th failure in a row (1-based).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// A wait drawn from [½, 1] of [`Backoff::ceiling`] ("equal jitter"): senders that failed
    /// together spread out, and none retries at once.
    pub fn delay(&self, failures: u32) -> Duration {
        use rand::Rng;
        let ceiling = self.ceiling(failures);
        ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// The time one invocation may spend on deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Backoff waits end by then: a sleep that would end later is not started, and the record is
    /// left to the next invocation or the sweeper.
    pub retry_until: DateTime<Utc>,
    /// No attempt starts after this: the Lambda deadline, less one request and the store writes.
    /// `None`: no limit (tests, the admin CLI).
    pub stop_at: Option<DateTime<Utc>>,
}

impl Budget {
    pub fn can_start(&self, now: DateTime<Utc>) -> bool {
        self.stop_at.is_none_or(|stop| now < stop)
    }
}

pub struct Notifier<S> {
    store: S,
    client: Option<WebhookClient>,
    clock: Arc<dyn Clock>,
    lease: Duration,
    retry_budget: Duration,
    deadline_margin: Duration,
    backoff: Backoff,
    /// Stripe, to open waitlist offers from their task's stream record ([`crate::offers`]).
    payments: Option<Arc<dyn PaymentProvider>>,
}

impl<S: Store> Notifier<S> {
    /// `client: None` disables sending (no CRM configured). Default timeouts, budget and clock.
    pub fn new(store: S, client: Option<WebhookClient>) -> Self {
        let defaults = CrmConfig::new(None);
        Notifier {
            store,
            client,
            clock: Arc::new(SystemClock),
            lease: defaults.lease(),
            retry_budget: defaults.retry_budget,
            deadline_margin: defaults.deadline_margin(),
            backoff: Backoff::default(),
            payments: None,
        }
    }

    pub fn from_config(store: S, config: &CrmConfig) -> Result<Self> {
        let mut notifier = Self::new(store, WebhookClient::from_config(config)?);
        notifier.lease = config.lease();
        notifier.retry_budget = config.retry_budget;
        notifier.deadline_margin = config.deadline_margin();
        Ok(notifier)
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn with_payments(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.payments = Some(provider);
        self
    }

    pub fn payments(&self) -> Option<&dyn PaymentProvider> {
        self.payments.as_deref()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Whether a CRM URL is configured (without one nothing is sent or recorded).
    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// The budget of a stream invocation starting now: retries for at most the configured retry
    /// budget, and nothing new after `lambda_deadline` less one attempt.
    pub fn budget(&self, lambda_deadline: Option<SystemTime>) -> Budget {
        self.budget_within(self.retry_budget, lambda_deadline)
    }

    /// [`Notifier::budget`] with another retry budget (the sweeper's is its whole run).
    pub fn budget_within(&self, retry_budget: Duration, lambda_deadline: Option<SystemTime>) -> Budget {
        let now = self.clock.now();
        let stop_at = lambda_deadline.map(|d| {
            let d = DateTime::<Utc>::from(d);
            d - chrono::Duration::from_std(self.deadline_margin).unwrap_or(chrono::Duration::MAX)
        });
        let wanted = clock::add(now, retry_budget);
        Budget { retry_until: stop_at.map_or(wanted, |stop| wanted.min(stop)), stop_at }
    }

    /// One attempt at the booking's `booking.confirmed` message, the booking as given (a stream
    /// image): claims its record, POSTs if the claim was won, records the CRM's answer. `Err`
    /// only when the store could not be asked, or a retryable failure could not be recorded;
    /// both mean "try this booking again". [`Notifier::deliver_booking`] sends every message.
    pub async fn deliver(&self, booking: &Booking) -> Result<Outcome> {
        let Some(client) = &self.client else {
            tracing::info!(booking_id = %booking.id, "CRM_WEBHOOK_URL is not set; CRM notification skipped");
            return Ok(Outcome::NotConfigured);
        };
        if booking.status != BookingStatus::Confirmed && booking.status != BookingStatus::Cancelled {
            tracing::info!(
                booking_id = %booking.id,
                status = booking.status.as_str(),
                "booking is not confirmed; no CRM notification"
            );
            return Ok(Outcome::NotConfirmed);
        }
        let now = clock::whole_seconds(self.clock.now());
        let message = Delivery::pending(booking, now);
        self.attempt(client, booking, &message, booking.event.datetime).await
    }

    /// One attempt at one message of `booking`: claims its record, POSTs its payload (with
    /// `event_datetime` as given: the booking's time as of this message) if the claim was won,
    /// records the CRM's answer.
    pub(crate) async fn attempt(
        &self,
        client: &WebhookClient,
        booking: &Booking,
        message: &Delivery,
        event_datetime: Timestamp,
    ) -> Result<Outcome> {
        let webhook_id = message.webhook_id();
        let owner = new_id();
        let now = clock::whole_seconds(self.clock.now());
        let claim = Claim { owner: &owner, now, until: clock::add(now, self.lease) };
        let record = match self.store.claim_message(message, &claim).await? {
            Claimed::Won(record) => record,
            Claimed::Final(d) if d.status == DeliveryStatus::Delivered => {
                tracing::info!(booking_id = %booking.id, %webhook_id, "CRM already notified; not sent again");
                return Ok(Outcome::AlreadyDelivered);
            }
            Claimed::Final(_) => {
                tracing::info!(booking_id = %booking.id, %webhook_id, "CRM rejected this message before; not sent again");
                return Ok(Outcome::AlreadyFailed);
            }
            Claimed::Busy { until } => {
                tracing::info!(
                    booking_id = %booking.id,
                    %webhook_id,
                    until = %shared::time::format(&until),
                    "CRM notification in flight elsewhere (or the CRM asked to wait); not sent now"
                );
                return Ok(Outcome::InFlight { until });
            }
        };
        let attempts = record.attempts;
        let payload = WebhookPayload::of_message(booking, &record, event_datetime);
        let sent = client.send(&webhook_id, &payload).await;
        let record = outcome_record(record, &sent, self.clock.now());
        let kind = message.kind.event_type();
        match &sent {
            SendOutcome::Delivered { status } => {
                tracing::info!(booking_id = %booking.id, %webhook_id, kind, status, attempts, "CRM notified");
            }
            SendOutcome::Retryable { status, failure, detail, retry_after } => {
                tracing::warn!(
                    booking_id = %booking.id,
                    %webhook_id,
                    kind,
                    ?status,
                    ?failure,
                    ?retry_after,
                    error = %detail,
                    attempts,
                    "CRM notification failed; will retry"
                );
            }
            SendOutcome::Permanent { status } => {
                tracing::warn!(booking_id = %booking.id, %webhook_id, kind, status, attempts, "CRM rejected the notification; not retried");
            }
        }
        match self.store.finish_delivery(&record, &owner).await {
            Ok(true) => {}
            // Our lease expired (this sender stalled longer than the lease) and another sender
            // took over, or already delivered: its record stands.
            Ok(false) => tracing::warn!(
                booking_id = %booking.id,
                %webhook_id,
                outcome = ?sent,
                "delivery record changed hands during the attempt; outcome not recorded"
            ),
            Err(e) if sent.is_retryable() => return Err(e.into()),
            Err(e) => tracing::error!(
                booking_id = %booking.id,
                %webhook_id,
                error = %e,
                outcome = ?sent,
                "CRM answered but the delivery record could not be written; the sweeper will POST \
                 this message again with the same webhook-id once the lease expires"
            ),
        }
        Ok(Outcome::Sent(sent))
    }

    pub(crate) fn client(&self) -> Option<&WebhookClient> {
        self.client.as_ref()
    }

    /// [`Notifier::deliver`] again after each retryable result, waiting a jittered exponential
    /// backoff (or the CRM's `Retry-After`, or until another sender's lease ends), as long as the
    /// wait ends within `budget`. Returns the last result: still retryable when the budget ran out.
    pub async fn deliver_until(&self, booking: &Booking, budget: Budget) -> Result<Outcome> {
        self.retry_until(&booking.id, budget, || self.deliver(booking)).await
    }

    /// `attempt` again while its result is an error or its deciding outcome is retryable, with
    /// the waits of [`Notifier::deliver_until`].
    pub(crate) async fn retry_until<T: Decided, F, Fut>(
        &self,
        booking_id: &str,
        budget: Budget,
        attempt: F,
    ) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut failures = 0u32;
        loop {
            let result = attempt().await;
            let now = self.clock.now();
            failures += 1;
            let outcome = match &result {
                Ok(t) => match t.deciding() {
                    Some(o) if o.is_retryable() => Some(o),
                    _ => return result,
                },
                Err(_) => None,
            };
            let wait = match outcome {
                Some(Outcome::Sent(SendOutcome::Retryable { retry_after: Some(after), .. })) => {
                    // To the second the record's not-before says (see `outcome_record`).
                    clock::until(now, ceil_seconds(clock::add(now, after.delay_from(now).min(MAX_RETRY_AFTER))))
                }
                // Another sender is on it: look again soon (it usually finishes in well under a
                // second), at the latest when its lease or the CRM's not-before ends.
                Some(Outcome::InFlight { until }) => {
                    self.backoff.delay(failures).min(clock::until(now, *until).max(MIN_POLL))
                }
                _ => self.backoff.delay(failures),
            };
            if clock::add(now, wait) > budget.retry_until {
                tracing::warn!(
                    booking_id = %booking_id,
                    tries = failures,
                    next_wait_ms = wait.as_millis() as u64,
                    "CRM notification not done within this invocation's retry budget; left for a retry"
                );
                return result;
            }
            self.clock.sleep(wait).await;
        }
    }
}

/// A result whose retry is decided by one outcome.
pub(crate) trait Decided {
    fn deciding(&self) -> Option<&Outcome>;
}

impl Decided for Outcome {
    fn deciding(&self) -> Option<&Outcome> {
        Some(self)
    }
}

/// Rounded up to the next whole second (records keep whole seconds; a not-before must not be
/// rounded into the past).
fn ceil_seconds(t: DateTime<Utc>) -> Timestamp {
    let floor = clock::whole_seconds(t);
    if floor < t {
        floor + chrono::Duration::seconds(1)
    } else {
        floor
    }
}

/// The claimed record with the attempt's outcome, its lease released. A retryable answer with a
/// `Retry-After` keeps a not-before in `lease_until` (without an owner), so that no sender calls
/// the CRM earlier than it asked.
fn outcome_record(mut d: Delivery, sent: &SendOutcome, now: DateTime<Utc>) -> Delivery {
    let at = clock::whole_seconds(now);
    let (status, last_http_status, delivered_at, not_before) = match sent {
        SendOutcome::Delivered { status } => (DeliveryStatus::Delivered, Some(*status), Some(at), None),
        SendOutcome::Retryable { status, retry_after, .. } => {
            let not_before = retry_after
                .map(|after| ceil_seconds(clock::add(now, after.delay_from(now).min(MAX_RETRY_AFTER))))
                .filter(|t| *t > at);
            (DeliveryStatus::Retrying, *status, None, not_before)
        }
        SendOutcome::Permanent { status } => (DeliveryStatus::Failed, Some(*status), None, None),
    };
    d.status = status;
    d.last_http_status = last_http_status;
    // The category only: the error text was logged and stays out of the store and API.
    d.last_failure = sent.failure();
    d.delivered_at = delivered_at;
    d.updated_at = at;
    d.lease_until = not_before;
    d.lease_owner = None;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
        let b = Backoff::default();
        let ceilings: Vec<u64> = (1..=7).map(|f| b.ceiling(f).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 16, 16]);
        for failures in 1..=7 {
            for _ in 0..50 {
                let d = b.delay(failures);
                assert!(d >= b.ceiling(failures) / 2 && d <= b.ceiling(failures), "{failures}: {d:?}");
            }
        }
        assert_eq!(b.ceiling(u32::MAX), b.max);
    }

    #[test]
    fn not_before_rounds_up_to_the_second() {
        let t = shared::time::parse("2026-01-05T09:30:00Z").unwrap();
        assert_eq!(ceil_seconds(t), t);
        assert_eq!(ceil_seconds(t + chrono::Duration::milliseconds(1)), t + chrono::Duration::seconds(1));
    }
}
