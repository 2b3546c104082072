//! DynamoDB stream batch → CRM webhooks, with partial batch responses
//! (`FunctionResponseTypes: [ReportBatchItemFailures]`). Each record goes by its item's `entity`:
//! a confirmed booking's image sends its `booking.confirmed` (a paid waitlist offer's goes with
//! its booking's other messages, after its `booking.offered`); a new message record (`delivery`
//! INSERT: a cancellation, a reschedule, an offer, an expiry) sends its booking's messages in
//! order; a waitlist offer's payment task opens its Checkout Session ([`crate::offers`]). Anything
//! else is not this function's.

use crate::notifier::{Budget, Notifier};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;
use shared::keys::{self, entity};
use shared::model::{Booking, BookingStatus};
use shared::store::Store;
use std::collections::HashSet;

/// [`handle_batch_within`] with the notifier's retry budget from now, and no Lambda deadline.
pub async fn handle_batch<S: Store>(notifier: &Notifier<S>, event: Event) -> DynamoDbEventResponse {
    handle_batch_within(notifier, event, notifier.budget(None)).await
}

/// Processes the records in stream order and stops at the first one that must be retried,
/// reporting its sequence number: Lambda then resumes the shard from that record, so everything
/// before it counts as done and nothing after it has been sent out of order.
///
/// A failing record is first retried here with backoff (see [`Notifier::deliver_until`]) while the
/// waits fit in `budget`: a CRM that is down for a minute costs one invocation, not all of the
/// mapping's retries. A record reached after the budget's `stop_at` is reported without an attempt.
pub async fn handle_batch_within<S: Store>(
    notifier: &Notifier<S>,
    event: Event,
    budget: Budget,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    // Bookings whose messages this invocation has already gone through: every record of the
    // batch was written before that read (a record reaches the stream once its write commits),
    // so a second record of the same booking (its INSERT and its confirmation's, a cancellation
    // right after) has nothing left to send.
    let mut settled = HashSet::new();
    for record in event.records {
        let step = match entity_of(&record) {
            Some(entity::BOOKING) => match confirmed_booking(&record) {
                // Its `booking.offered` goes first: the booking's messages, in order.
                Some(booking) if booking.via_waitlist && booking.payment.is_some() => {
                    if settled.contains(&booking.id) {
                        Step::Done
                    } else {
                        let step = messages(notifier, &booking.id, budget).await;
                        settled.insert(booking.id);
                        step
                    }
                }
                Some(booking) => confirmation(notifier, &booking, budget).await,
                None => Step::Done,
            },
            // Too close to the deadline for a Stripe call: the payment sweep opens it.
            Some(entity::PAYMENT_TASK) => {
                if budget.can_start(notifier.clock().now()) {
                    crate::offers::take(notifier, &record).await;
                }
                Step::Done
            }
            // A lifecycle job's batch: a failed one is left to the job's lease and the sweeper.
            Some(entity::JOB) => {
                crate::jobs::take(notifier.store(), &record).await;
                Step::Done
            }
            Some(entity::DELIVERY) if record.event_name == "INSERT" => match booking_of_message(&record) {
                Some(id) if settled.contains(&id) => Step::Done,
                Some(id) => {
                    let step = messages(notifier, &id, budget).await;
                    settled.insert(id);
                    step
                }
                None => Step::Done,
            },
            _ => Step::Done,
        };
        if step == Step::Retry {
            let mut failure = DynamoDbBatchItemFailure::default();
            // A record without a sequence number yields a null identifier, which Lambda treats as
            // a failure of the whole batch: still a retry, never a loss.
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            break;
        }
    }
    response
}

/// What became of one stream record (every branch of the dispatch answers one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing left to do for it (sent, final, or not ours).
    Done,
    /// Report it: Lambda resumes the shard from it.
    Retry,
}

/// The record's item kind (`entity` of its new image).
fn entity_of(record: &EventRecord) -> Option<&str> {
    match record.change.new_image.get(keys::ENTITY) {
        Some(AttributeValue::S(entity)) => Some(entity),
        _ => None,
    }
}

/// A confirmed booking's image: its `booking.confirmed`, built from the image (the booking as
/// it was confirmed), with the in-invocation retries.
async fn confirmation<S: Store>(notifier: &Notifier<S>, booking: &Booking, budget: Budget) -> Step {
    if !budget.can_start(notifier.clock().now()) {
        tracing::warn!(booking_id = %booking.id, "invocation deadline reached; record left for the retry");
        return Step::Retry;
    }
    match notifier.deliver_until(booking, budget).await {
        Ok(outcome) if outcome.is_retryable() => Step::Retry,
        Ok(_) => Step::Done,
        Err(e) => {
            tracing::warn!(booking_id = %booking.id, error = %e, "delivery record unavailable; will retry");
            Step::Retry
        }
    }
}

/// A new message record: every message of its booking that is not final, in order.
async fn messages<S: Store>(notifier: &Notifier<S>, booking_id: &str, budget: Budget) -> Step {
    if !budget.can_start(notifier.clock().now()) {
        tracing::warn!(booking_id, "invocation deadline reached; record left for the retry");
        return Step::Retry;
    }
    match notifier.deliver_booking_until(booking_id, budget).await {
        Ok(outcome) if outcome.is_retryable() => Step::Retry,
        Ok(_) => Step::Done,
        Err(e) => {
            tracing::warn!(booking_id, error = %e, "CRM message records unavailable; will retry");
            Step::Retry
        }
    }
}

/// The booking id of a message record's INSERT.
fn booking_of_message(record: &EventRecord) -> Option<String> {
    match record.change.new_image.get("booking_id") {
        Some(AttributeValue::S(id)) if !id.is_empty() => Some(id.clone()),
        _ => {
            tracing::error!(event_id = %record.event_id, "CRM message record without a booking id; skipped");
            None
        }
    }
}

/// The booking of an INSERT or MODIFY whose new image is a `confirmed` booking; `None` for every
/// other record. A free booking is confirmed by its INSERT; a paid one is inserted
/// `pending_payment` and confirmed by the MODIFY that records its payment. Pending, expired and
/// cancelled images are skipped (the stream mapping's filter already drops them in AWS). Any
/// later MODIFY of a confirmed booking, or a record delivered twice, goes through the same claim
/// of the delivery record as every attempt: nothing is sent once it is final, never two at once.
///
/// A booking item whose image does not parse is logged and skipped, not retried: the same bytes
/// would fail on every retry and block the shard until the records expire.
fn confirmed_booking(record: &EventRecord) -> Option<Booking> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    match serde_dynamo::from_item::<_, Booking>(record.change.new_image.clone()) {
        Ok(booking) if booking.status == BookingStatus::Confirmed => Some(booking),
        Ok(_) => None,
        Err(e) => {
            tracing::error!(
                sequence_number = ?record.change.sequence_number,
                event_id = %record.event_id,
                error = %e,
                "booking stream record is not a valid booking; skipped"
            );
            None
        }
    }
}
