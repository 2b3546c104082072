//! DynamoDB stream batch → CRM webhooks, with partial batch responses
//! (`FunctionResponseTypes: [ReportBatchItemFailures]`).

use crate::notifier::{Budget, Notifier};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;
use shared::keys;
use shared::model::{Booking, BookingStatus};
use shared::store::Store;

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
    for record in event.records {
        if crate::jobs::take(notifier.store(), &record).await {
            continue;
        }
        let Some(booking) = confirmed_booking(&record) else {
            continue;
        };
        let retry = if !budget.can_start(notifier.clock().now()) {
            tracing::warn!(booking_id = %booking.id, "invocation deadline reached; record left for the retry");
            true
        } else {
            match notifier.deliver_until(&booking, budget).await {
                Ok(outcome) => outcome.is_retryable(),
                Err(e) => {
                    tracing::warn!(booking_id = %booking.id, error = %e, "delivery record unavailable; will retry");
                    true
                }
            }
        };
        if retry {
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
    let image = &record.change.new_image;
    match image.get(keys::ENTITY) {
        Some(AttributeValue::S(entity)) if entity == keys::entity::BOOKING => {}
        _ => return None,
    }
    match serde_dynamo::from_item::<_, Booking>(image.clone()) {
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
