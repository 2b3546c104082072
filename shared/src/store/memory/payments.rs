//! Seat holds, settlement, refunds and the payment tasks in the embedded store: the conditions
//! of `store/dynamo/payments.rs`, checked under the store's one lock.

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{
    is_final_refund_status, Booking, BookingStatus, Delivery, MessageKind, PaymentTask, PaymentTaskKind,
};
use crate::store::{PendingQuery, Position, Settled, Settlement, TaskPage};
use std::ops::Bound;

pub(super) fn attach_checkout(store: &MemoryStore, booking_id: &str, session_id: &str, url: &str) -> Result<bool> {
    let mut db = store.lock()?;
    let Some(b) = db.bookings.get_mut(booking_id).filter(|b| b.status == BookingStatus::PendingPayment) else {
        return Ok(false);
    };
    let Some(payment) = b.payment.as_mut() else {
        return Ok(false);
    };
    payment.checkout_session_id = Some(session_id.to_string());
    payment.checkout_url = Some(url.to_string());
    let expires_at = payment.expires_at;
    let offer = b.clone();
    // A waitlist offer's session is open: its hold runs until the offer ends, and the CRM is
    // told (once: a retry that finds the Hold task already there writes no second message).
    if offer.via_waitlist && db.payment_tasks.get(booking_id).is_some_and(|t| t.kind == PaymentTaskKind::Offer) {
        db.put_task(PaymentTask {
            booking_id: booking_id.to_string(),
            kind: PaymentTaskKind::Hold,
            due_at: expires_at,
        });
        db.put_delivery(Delivery::message(&offer, MessageKind::Offered, crate::time::now()));
    }
    Ok(true)
}

pub(super) fn release_hold(store: &MemoryStore, booking: &Booking, idempotency_key: Option<&str>) -> Result<()> {
    let mut db = store.lock()?;
    let held = db.bookings.get(&booking.id).is_some_and(|b| {
        b.status == BookingStatus::PendingPayment && b.payment.as_ref().is_some_and(|p| p.checkout_session_id.is_none())
    });
    if !held {
        return Err(Error::internal("release_hold: the booking is not a hold without a session"));
    }
    db.release_seat(booking);
    db.drop_task(&booking.id);
    if let Some(b) = db.bookings.remove(&booking.id) {
        db.user_bookings(&b).remove(&Position::of_booking(&b));
        if let Some(index) = db.event_bookings.get_mut(&b.event_id) {
            index.remove(&Position::of_booking(&b));
        }
    }
    if let Some(key) = idempotency_key {
        db.idempotency.remove(&(booking.user_id.clone(), key.to_string()));
    }
    db.promote(&booking.event_id, crate::time::now(), 1);
    Ok(())
}

pub(super) fn settle_payment(store: &MemoryStore, booking_id: &str, settle: &Settlement) -> Result<Settled> {
    let mut db = store.lock()?;
    let Some(current) = db.bookings.get(booking_id).cloned() else {
        return Ok(Settled::NotFound);
    };
    if let Some(session) = &settle.session {
        if !current.payment.as_ref().is_some_and(|p| p.is_paid_by(session)) {
            return Ok(Settled::Foreign(current));
        }
    }
    if current.status != BookingStatus::PendingPayment || current.payment.is_none() {
        return Ok(Settled::Unchanged(current));
    }
    let mut b = current;
    match settle.to {
        BookingStatus::Confirmed => {
            db.put_delivery(Delivery::pending(&b, settle.now));
        }
        BookingStatus::Expired => {
            db.release_seat(&b);
            // The CRM heard `booking.offered` once the session was opened: it hears the end.
            if b.via_waitlist && b.has_checkout_session() {
                db.put_delivery(Delivery::message(&b, MessageKind::Expired, settle.now));
            }
        }
        other => return Err(Error::internal(format!("a payment cannot settle a booking as {}", other.as_str()))),
    }
    db.drop_task(&b.id);
    b.status = settle.to;
    if let Some(payment) = b.payment.as_mut() {
        payment.settled_by = Some(settle.by.clone());
        payment.payment_intent = settle.payment_intent.clone().or(payment.payment_intent.take());
    }
    db.put_booking(b.clone());
    if b.status == BookingStatus::Expired {
        db.promote(&b.event_id, settle.now, 1);
    }
    Ok(Settled::Changed(b))
}

pub(super) fn record_refund(store: &MemoryStore, booking_id: &str, refund_id: &str, refund_status: &str) -> Result<()> {
    let mut db = store.lock()?;
    let b = db.bookings.get_mut(booking_id).ok_or(Error::NotFound("booking"))?;
    if let Some(payment) = b.payment.as_mut() {
        let ended = payment.refund_id.as_deref() == Some(refund_id)
            && payment.refund_status.as_deref().is_some_and(is_final_refund_status);
        if ended && !is_final_refund_status(refund_status) {
            return Ok(());
        }
        payment.refund_id = Some(refund_id.to_string());
        payment.refund_status = Some(refund_status.to_string());
    }
    if db
        .payment_tasks
        .get(booking_id)
        .is_some_and(|t| matches!(t.kind, PaymentTaskKind::Refund | PaymentTaskKind::ExpireCheckout))
    {
        db.drop_task(booking_id);
    }
    Ok(())
}

pub(super) fn due_payment_tasks(store: &MemoryStore, q: &PendingQuery) -> Result<TaskPage> {
    let db = store.read()?;
    let day_start = q.day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(|| Error::internal("bad day"))?;
    let day_end = day_start + chrono::Duration::days(1);
    let (from, before) = (q.from.max(day_start), q.before.min(day_end));
    if from >= before {
        return Ok(TaskPage::default());
    }
    let lower = Position { at: from, id: String::new() };
    let start = match &q.after {
        Some(after) if *after >= lower => Bound::Excluded(after),
        _ => Bound::Included(&lower),
    };
    let mut items: Vec<PaymentTask> = db
        .due_tasks
        .range((start, Bound::Unbounded))
        .take_while(|p| p.at < before)
        .take(q.limit + 1)
        .filter_map(|p| db.payment_tasks.get(&p.id).cloned())
        .collect();
    let more = items.len() > q.limit;
    items.truncate(q.limit);
    let next = if more { items.last().map(|t| Position { at: t.due_at, id: t.booking_id.clone() }) } else { None };
    Ok(TaskPage { items, next })
}
