//! A booking's cancellation: its status, its guard, its seat and what it owes (a refund, its
//! CRM message) change in one transaction, and the seat goes to the first in line in that same
//! transaction when users wait (`waitlist::free_seat`), except when the event itself is
//! cancelled.

use super::items::{attr, from_item, key_item, n, s, Entity, ABSENT, EXISTS};
use super::{events, failed, waitlist, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::{
    cancel_cutoff, Booking, BookingStatus, CancelReason, Delivery, MessageKind, PaymentTask, PaymentTaskKind,
    REFUND_REQUESTED,
};
use crate::time::{self, Timestamp};
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

/// Index of the event item's update in a cancel's transaction (the failure reasons are read by
/// index).
const SEAT_AT: usize = 2;

pub(super) async fn cancel_booking(
    db: &DynamoStore,
    booking: &Booking,
    reason: CancelReason,
    now: Timestamp,
) -> Result<Booking> {
    let from = booking.status;
    if !from.holds_seat() {
        return Err(Error::AlreadyCancelled);
    }
    let cancelled = booking.cancelled(reason, now);
    // A paid booking's refund is owed from the moment it is cancelled: recorded in the same
    // transaction, with a task the payment sweep finds if the refund request is lost.
    let refund = from == BookingStatus::Confirmed && booking.payment.is_some();
    // A waitlist offer whose Checkout Session was opened was announced (`booking.offered`): the
    // CRM hears of its end too. Whether the session exists is part of the status as read.
    let offer = from == BookingStatus::PendingPayment && booking.via_waitlist;
    // The user's list is keyed by status: the cancelled booking moves to its cancelled entry.
    let moved = cancelled.index_attrs().into_iter().find(|(name, _)| *name == keys::GSI1SK);
    let (gsk_name, gsk) = moved.ok_or_else(|| Error::internal("bookings have a GSI1 sort key"))?;
    // The status and the sequence as read: a reschedule of the booking in between raised its
    // sequence (and owes its own message), so this write would reuse its number.
    let sequence_as_read =
        if booking.sequence == 0 { "(attribute_not_exists(#seq) OR #seq = :seq)" } else { "#seq = :seq" };
    let session_as_read = match (offer, booking.has_checkout_session()) {
        (false, _) => "",
        (true, true) => " AND attribute_exists(#pay.#sid) AND NOT attribute_type(#pay.#sid, :null_type)",
        (true, false) => " AND (attribute_not_exists(#pay.#sid) OR attribute_type(#pay.#sid, :null_type))",
    };
    let status = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::booking(&booking.id))))
        .update_expression(if refund {
            "SET #st = :cancelled, #cat = :now, #gsk = :gsk, #cr = :reason, #seq = :next, #pay.#rs = :requested"
        } else {
            "SET #st = :cancelled, #cat = :now, #gsk = :gsk, #cr = :reason, #seq = :next"
        })
        .condition_expression(format!("#st = :from AND {sequence_as_read}{session_as_read}"))
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_names("#cat", attr::CANCELLED_AT)
        .expression_attribute_names("#gsk", gsk_name)
        .expression_attribute_names("#cr", attr::CANCEL_REASON)
        .expression_attribute_names("#seq", attr::SEQUENCE)
        .expression_attribute_values(":cancelled", s(BookingStatus::Cancelled.as_str()))
        .expression_attribute_values(":from", s(from.as_str()))
        .expression_attribute_values(":now", s(time::format(&now)))
        .expression_attribute_values(":gsk", s(gsk))
        .expression_attribute_values(":reason", s(reason.as_str()))
        .expression_attribute_values(":seq", n(booking.sequence))
        .expression_attribute_values(":next", n(cancelled.sequence))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    let status = if refund {
        status
            .expression_attribute_names("#pay", attr::PAYMENT)
            .expression_attribute_names("#rs", attr::REFUND_STATUS)
            .expression_attribute_values(":requested", s(REFUND_REQUESTED))
    } else if offer {
        status
            .expression_attribute_names("#pay", attr::PAYMENT)
            .expression_attribute_names("#sid", attr::CHECKOUT_SESSION_ID)
            .expression_attribute_values(":null_type", s("NULL"))
    } else {
        status
    };
    let status = status.build().map_err(Error::internal)?;
    let guard = Delete::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::attendee(&booking.event_id, &booking.user_id))))
        .build()
        .map_err(Error::internal)?;
    let mut items =
        vec![TransactWriteItem::builder().update(status).build(), TransactWriteItem::builder().delete(guard).build()];
    if from == BookingStatus::PendingPayment && reason == CancelReason::EventCancelled && booking.has_checkout_session()
    {
        // The hold task becomes the session's expiry (same key): the payment sweep asks Stripe.
        let task = PaymentTask { booking_id: booking.id.clone(), kind: PaymentTaskKind::ExpireCheckout, due_at: now };
        let put =
            Put::builder().table_name(&db.table).set_item(Some(task.to_item()?)).build().map_err(Error::internal)?;
        items.push(TransactWriteItem::builder().put(put).build());
    } else if from == BookingStatus::PendingPayment {
        // Its hold task, or an offer's task while its session is still to be opened.
        let task = Delete::builder()
            .table_name(&db.table)
            .set_key(Some(key_item(keys::payment_task(&booking.id))))
            .build()
            .map_err(Error::internal)?;
        items.push(TransactWriteItem::builder().delete(task).build());
    } else if refund {
        let task = PaymentTask { booking_id: booking.id.clone(), kind: PaymentTaskKind::Refund, due_at: now };
        let put =
            Put::builder().table_name(&db.table).set_item(Some(task.to_item()?)).build().map_err(Error::internal)?;
        items.push(TransactWriteItem::builder().put(put).build());
    }
    // The CRM heard of a confirmed booking (or of an offer), so it hears of its end, in the
    // same write.
    if from == BookingStatus::Confirmed || (offer && booking.has_checkout_session()) {
        let message = Delivery::message(&cancelled, MessageKind::Cancelled, now);
        items.push(TransactWriteItem::builder().put(db.put(&message, ABSENT)?).build());
    }
    let reasons = if reason == CancelReason::EventCancelled {
        // The event's own cancellation frees seats whenever it gets to them, started or not, and
        // hands none on: its waitlist is cleared after its bookings.
        items.insert(SEAT_AT, event_cancelled_seat(db, &booking.event_id)?);
        // A token per cancel request, not per booking: a second request to cancel must hear
        // `already_cancelled`, not the first request's success replayed.
        match db.transact(items, &crate::model::new_id()).await {
            Ok(()) => return Ok(cancelled),
            Err(TxFailure::Conditions(reasons)) => reasons,
            Err(TxFailure::Failed(e)) => return Err(e),
        }
    } else {
        // `Event::cancellable_at` as the seat's condition, and the seat handed on if users wait.
        match waitlist::free_seat(db, &booking.event_id, now, Some(cancel_cutoff(now)), items, SEAT_AT).await? {
            waitlist::Freed::Done => return Ok(cancelled),
            waitlist::Freed::Refused(reasons) => reasons,
        }
    };
    if let Some(returned) = failed(&reasons, 0) {
        // The booking as it stood: still holding a seat means it moved (a hold was paid
        // meanwhile, its offer's session opened), and the caller retries from the new status.
        let status = returned.clone().and_then(|item| from_item::<Booking>(item).ok()).map(|b| b.status);
        return Err(match status {
            Some(st) if st.holds_seat() => Error::StatusChanged,
            None => Error::NotFound("booking"),
            Some(_) => Error::AlreadyCancelled,
        });
    }
    if let Some(returned) = failed(&reasons, SEAT_AT) {
        let event = events::event_after_failure(db, returned.clone(), &booking.event_id)
            .await?
            .ok_or(Error::NotFound("event"))?;
        event.cancellable_at(now)?;
    }
    Err(Error::internal("confirmed booking on an event with no seats booked"))
}

fn event_cancelled_seat(db: &DynamoStore, event_id: &str) -> Result<TransactWriteItem> {
    let seat = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(event_id))))
        .update_expression("ADD #seats :minus")
        .condition_expression(format!("{EXISTS} AND #seats > :zero"))
        .expression_attribute_names("#seats", attr::SEATS_BOOKED)
        .expression_attribute_values(":minus", n(-1))
        .expression_attribute_values(":zero", n(0))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(Error::internal)?;
    Ok(TransactWriteItem::builder().update(seat).build())
}
