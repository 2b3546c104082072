//! Waitlist offers on the stream: a promotion into a priced event's seat writes the booking's
//! `Offer` payment task in the same transaction; that task's INSERT reaches this function (the
//! mapping's filter passes it) and [`shared::offers::open_offer`] opens the offer's Checkout
//! Session right away. The session's record then writes the `booking.offered` message, whose own
//! INSERT sends it to the CRM.
//!
//! The record is never reported as failed: Stripe being down must not hold back the CRM messages
//! behind it in the shard. The task stays due in the due-payments index, and the payment sweep
//! (crm-sweeper, every 10 minutes) opens the offer once Stripe answers; the seat stays held.

use crate::notifier::Notifier;
use aws_lambda_events::event::dynamodb::EventRecord;
use shared::model::{PaymentTask, PaymentTaskKind};
use shared::offers::{open_offer, OfferOutcome};
use shared::store::Store;

/// Opens the offer of an `Offer` task's INSERT; every other payment-task record is ignored.
pub async fn take<S: Store>(notifier: &Notifier<S>, record: &EventRecord) {
    if record.event_name != "INSERT" {
        return;
    }
    let task: PaymentTask = match serde_dynamo::from_item(record.change.new_image.clone()) {
        Ok(task) => task,
        Err(e) => {
            tracing::error!(sequence_number = ?record.change.sequence_number, error = %e, "payment task record is not a payment task; skipped");
            return;
        }
    };
    if task.kind != PaymentTaskKind::Offer {
        return;
    }
    let Some(provider) = notifier.payments() else {
        tracing::error!(booking_id = %task.booking_id, "waitlist offer but no Stripe key (STRIPE_SECRET_KEY / _ID): left to the payment sweep");
        return;
    };
    let booking = match notifier.store().get_booking(&task.booking_id).await {
        Ok(Some(booking)) => booking,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(booking_id = %task.booking_id, error = %e, "offer's booking not read; the payment sweep opens it");
            return;
        }
    };
    match open_offer(notifier.store(), provider, &booking, shared::time::now()).await {
        Ok(OfferOutcome::Opened(_)) => tracing::info!(booking_id = %booking.id, "offer opened"),
        Ok(OfferOutcome::Expired(_)) => {
            tracing::info!(booking_id = %booking.id, "offer expired unopened; seat handed on")
        }
        Ok(OfferOutcome::Gone) => {}
        Err(e) => tracing::warn!(booking_id = %booking.id, error = %e, "offer not opened; the payment sweep retries"),
    }
}
