//! A booking's CRM messages, in order: `booking.confirmed`, then each `booking.rescheduled`, then
//! `booking.cancelled` (`booking.offered`/`.expired` with waitlists, issue 21). Each message is a
//! record in the booking's item collection, written by the same write as the change that owes it;
//! [`Notifier::deliver_booking`] reads the booking and all of them in one strongly consistent read
//! and sends each that is not final, one after another: a message goes out only once every
//! earlier message of the booking is final (delivered, or rejected for good), so the CRM never
//! hears of a cancellation before the confirmation it cancels. Each message is claimed, sent and
//! recorded on its own record (`Notifier::attempt`): one POST at a time, none once final, the
//! same `webhook-id` on every retry ([`Delivery::webhook_id`]).

use crate::error::Result;
use crate::notifier::{Budget, Decided, Notifier, Outcome};
use shared::model::{Booking, BookingStatus, Delivery, MessageKind};
use shared::store::Store;
use shared::time::Timestamp;

/// What [`Notifier::deliver_booking`] did with one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageOutcome {
    pub kind: MessageKind,
    pub webhook_id: String,
    pub outcome: Outcome,
}

/// What [`Notifier::deliver_booking`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookingOutcome {
    /// No `CRM_WEBHOOK_URL`: nothing read, sent or recorded.
    NotConfigured,
    /// The booking does not exist (its message records, if any, are orphans: logged).
    Missing { orphans: usize },
    /// The messages that were not final when read, in send order, up to and including the first
    /// one that is still owed (retryable, or held by another sender): the later ones wait for it.
    /// Empty when every message was final already (or the booking owes none: a hold).
    Messages(Vec<MessageOutcome>),
}

impl BookingOutcome {
    /// The outcome that decides whether the booking must be tried again: the last one.
    pub fn last(&self) -> Option<&Outcome> {
        match self {
            BookingOutcome::Messages(m) => m.last().map(|m| &m.outcome),
            _ => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.last().is_some_and(Outcome::is_retryable)
    }

    /// The outcomes of messages the CRM was called for now.
    pub fn sent(&self) -> impl Iterator<Item = &MessageOutcome> {
        let all = match self {
            BookingOutcome::Messages(m) => m.as_slice(),
            _ => &[],
        };
        all.iter().filter(|m| matches!(m.outcome, Outcome::Sent(_)))
    }
}

/// The messages `booking` owes, in send order. A confirmed booking without a `booking.confirmed`
/// record predates the records (its claim creates it, as [`Notifier::deliver`] always did); it
/// goes first. A booking that was never confirmed has no records at all, so a cancelled hold
/// owes nothing: the CRM never heard of it.
fn owed(booking: &Booking, mut messages: Vec<Delivery>, now: Timestamp) -> Vec<Delivery> {
    let has_confirmation = messages.iter().any(|m| m.kind == MessageKind::Confirmed);
    if !has_confirmation && booking.status == BookingStatus::Confirmed {
        messages.insert(0, Delivery { seq: 0, ..Delivery::pending(booking, now) });
    }
    messages
}

/// The event's start as the booking knew it when `messages[i]` was owed: the start the next
/// reschedule replaced, else the booking's current one. A reschedule carries its own new start.
fn event_datetime_as_of(booking: &Booking, messages: &[Delivery], i: usize) -> Timestamp {
    if let (MessageKind::Rescheduled, Some(at)) = (messages[i].kind, messages[i].event_datetime) {
        return at;
    }
    messages[i + 1..]
        .iter()
        .find(|m| m.kind == MessageKind::Rescheduled)
        .and_then(|m| m.previous_event_datetime)
        .unwrap_or(booking.event.datetime)
}

impl<S: Store> Notifier<S> {
    /// One pass over the booking's messages: reads the booking and its records (one Query on
    /// DynamoDB), then sends each that is not final in order, one attempt each, and stops at the
    /// first that stays owed. `Err` when the store could not be asked (try the booking again).
    pub async fn deliver_booking(&self, booking_id: &str) -> Result<BookingOutcome> {
        let Some(client) = self.client() else {
            tracing::info!(booking_id, "CRM_WEBHOOK_URL is not set; CRM notification skipped");
            return Ok(BookingOutcome::NotConfigured);
        };
        let read = self.store().booking_messages(booking_id).await?;
        let Some(booking) = read.booking else {
            if !read.messages.is_empty() {
                tracing::error!(booking_id, records = read.messages.len(), "CRM message records without their booking");
            }
            return Ok(BookingOutcome::Missing { orphans: read.messages.len() });
        };
        let now = crate::clock::whole_seconds(self.clock().now());
        let messages = owed(&booking, read.messages, now);
        let mut done = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if message.status.is_final() {
                continue;
            }
            // The read is strongly consistent: a lease it shows is held now, and a claim would
            // only be refused (a write saved).
            let outcome = if message.claimable_at(now) {
                self.attempt(client, &booking, message, event_datetime_as_of(&booking, &messages, i)).await?
            } else {
                Outcome::InFlight { until: message.lease_until.unwrap_or(now) }
            };
            let settled = match &outcome {
                Outcome::Sent(sent) => !sent.is_retryable(),
                Outcome::AlreadyDelivered | Outcome::AlreadyFailed => true,
                _ => false,
            };
            done.push(MessageOutcome { kind: message.kind, webhook_id: message.webhook_id(), outcome });
            if !settled {
                break;
            }
        }
        Ok(BookingOutcome::Messages(done))
    }

    /// [`Notifier::deliver_booking`] again while the booking still owes a message, with the
    /// waits of [`Notifier::deliver_until`], as long as they end within `budget`.
    pub async fn deliver_booking_until(&self, booking_id: &str, budget: Budget) -> Result<BookingOutcome> {
        self.retry_until(booking_id, budget, || self.deliver_booking(booking_id)).await
    }
}

impl Decided for BookingOutcome {
    fn deciding(&self) -> Option<&Outcome> {
        self.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::WebhookPayload;
    use shared::model::{CancelReason, DeliveryStatus, EventSnapshot};
    use shared::time::parse;

    fn booking() -> Booking {
        Booking {
            via_waitlist: false,
            id: "01KBK3ZQ7M4XR2D9T6VW8YHN5B".into(),
            event_id: "01KBK3Y1C2D3E4F5G6H7J8K9MN".into(),
            user_id: "U".into(),
            user_name: "Asha Rao".into(),
            user_email: "asha@example.com".into(),
            status: BookingStatus::Confirmed,
            created_at: parse("2026-01-05T09:30:00Z").unwrap(),
            cancelled_at: None,
            event: EventSnapshot {
                id: "01KBK3Y1C2D3E4F5G6H7J8K9MN".into(),
                title: "Morning Yoga".into(),
                // Moved twice since it was booked: 07:00 → 08:00 → 09:00.
                datetime: parse("2026-02-01T09:00:00Z").unwrap(),
                duration_minutes: 60,
                event_type: "Yoga".into(),
                facilitator_id: "FAC001".into(),
                revision: 2,
            },
            payment: None,
            cancel_reason: None,
            sequence: 2,
        }
    }

    fn rescheduled(b: &Booking, seq: u32, from: &str, to: &str) -> Delivery {
        let mut at = b.clone();
        at.sequence = seq;
        Delivery {
            event_datetime: parse(to),
            previous_event_datetime: parse(from),
            ..Delivery::message(&at, MessageKind::Rescheduled, parse("2026-01-10T00:00:00Z").unwrap())
        }
    }

    #[test]
    fn each_message_shows_the_start_the_booking_had_when_it_was_owed() {
        let b = booking();
        let now = parse("2026-01-20T00:00:00Z").unwrap();
        let second = rescheduled(&b, 2, "2026-02-01T08:00:00Z", "2026-02-01T09:00:00Z");
        let first = rescheduled(&b, 1, "2026-02-01T07:00:00Z", "2026-02-01T08:00:00Z");
        let mut stored = vec![second, first];
        stored.sort_by_key(Delivery::send_order);
        // A confirmation from before the records: created first, before every reschedule.
        let all = owed(&b, stored, now);
        let kinds: Vec<_> = all.iter().map(|m| (m.kind, m.seq)).collect();
        assert_eq!(kinds, [(MessageKind::Confirmed, 0), (MessageKind::Rescheduled, 1), (MessageKind::Rescheduled, 2)]);
        let at: Vec<String> = (0..3).map(|i| shared::time::format(&event_datetime_as_of(&b, &all, i))).collect();
        assert_eq!(at, ["2026-02-01T07:00:00Z", "2026-02-01T08:00:00Z", "2026-02-01T09:00:00Z"]);
        // Nothing is owed by a booking that never was confirmed.
        let mut hold = b.clone();
        hold.status = BookingStatus::Cancelled;
        assert!(owed(&hold, Vec::new(), now).is_empty());
    }

    #[test]
    fn rescheduled_and_cancelled_payloads_are_exactly_the_contracts() {
        let b = booking();
        let m = rescheduled(&b, 2, "2026-02-01T08:00:00Z", "2026-02-01T09:00:00Z");
        assert_eq!(m.webhook_id(), "01KBK3ZQ7M4XR2D9T6VW8YHN5B:rescheduled:2");
        let payload = serde_json::to_value(WebhookPayload::of_message(&b, &m, m.event_datetime.unwrap())).unwrap();
        assert_eq!(
            payload,
            serde_json::json!({
                "type": "booking.rescheduled",
                "booking_id": "01KBK3ZQ7M4XR2D9T6VW8YHN5B",
                "user": {"name": "Asha Rao", "email": "asha@example.com"},
                "event_id": "01KBK3Y1C2D3E4F5G6H7J8K9MN",
                "facilitator_id": "FAC001",
                "event_title": "Morning Yoga",
                "event_datetime": "2026-02-01T09:00:00Z",
                "previous_event_datetime": "2026-02-01T08:00:00Z",
                "booked_at": "2026-01-05T09:30:00Z",
            })
        );
        let cancelled = b.cancelled(CancelReason::EventCancelled, parse("2026-01-25T12:00:00Z").unwrap());
        let m = Delivery::message(&cancelled, MessageKind::Cancelled, parse("2026-01-25T12:00:00Z").unwrap());
        assert_eq!((m.status, m.seq, m.webhook_id()), (DeliveryStatus::Pending, 3, format!("{}:cancelled", b.id)));
        let payload = serde_json::to_value(WebhookPayload::of_message(&cancelled, &m, b.event.datetime)).unwrap();
        assert_eq!(payload["type"], "booking.cancelled");
        assert_eq!(
            (&payload["reason"], &payload["cancelled_at"]),
            (&serde_json::json!("event_cancelled"), &serde_json::json!("2026-01-25T12:00:00Z"))
        );
        assert!(payload.get("refund_status").is_none() && payload.get("amount").is_none(), "free: {payload}");
    }
}
