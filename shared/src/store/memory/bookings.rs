//! Bookings, their lists and idempotency records in the embedded store: the conditions of
//! `store/dynamo/bookings.rs`, checked under the store's one lock.

use super::{Inner, MemoryStore, SWEEP_EVERY_SECS};
use crate::error::{Error, Result};
use crate::model::{
    Booking, BookingStatus, CancelReason, Delivery, Event, IdempotencyRecord, MessageKind, PaymentTask, PaymentTaskKind,
};
use crate::store::{BookingContext, BookingPage, Position};
use crate::time::Timestamp;
use std::ops::Bound;
use std::sync::Arc;

impl Inner {
    /// Drops idempotency records past their 24 h life (DynamoDB: the `ttl` attribute).
    pub(super) fn evict_idempotency(&mut self, now: Timestamp) {
        if now.timestamp() - self.swept_idempotency >= SWEEP_EVERY_SECS {
            self.idempotency.retain(|_, r| r.is_live(now));
            self.swept_idempotency = now.timestamp();
        }
    }
}

pub(super) fn booking_context(
    store: &MemoryStore,
    event_id: &str,
    user_id: &str,
    idempotency_key: Option<&str>,
) -> Result<BookingContext> {
    let db = store.read()?;
    let guard = (event_id.to_string(), user_id.to_string());
    Ok(BookingContext {
        event: db.events.get(event_id).map(|e| Event::clone(e)),
        already_booked: db.attendees.contains_key(&guard),
        waiting: db.waiting.contains_key(&guard),
        idempotency: idempotency_key.and_then(|k| db.idempotency.get(&(user_id.to_string(), k.to_string())).cloned()),
        user: db.users.get(user_id).cloned(),
    })
}

pub(super) fn create_booking(
    store: &MemoryStore,
    booking: &Booking,
    idempotency: Option<&IdempotencyRecord>,
    now: Timestamp,
) -> Result<()> {
    let mut db = store.lock()?;
    db.evict_idempotency(now);
    if let Some(rec) = idempotency {
        let existing = db.idempotency.get(&(rec.user_id.clone(), rec.key.clone()));
        if existing.is_some_and(|r| r.is_live(now)) {
            return Err(Error::IdempotencyKeyReused);
        }
    }
    let event = db.events.get(&booking.event_id).ok_or(Error::NotFound("event"))?;
    let guard = (booking.event_id.clone(), booking.user_id.clone());
    if db.attendees.contains_key(&guard) {
        return Err(Error::AlreadyBooked);
    }
    if db.waiting.contains_key(&guard) {
        return Err(Error::AlreadyWaiting);
    }
    event.bookable_at(now)?;
    event.has_free_seat()?;
    // A seat that is free while users wait is theirs (a capacity increase whose promotions are
    // still running), unless the event no longer promotes.
    if event.waitlist_count > 0 && event.promotes_at(now) {
        return Err(Error::EventFull);
    }
    // The snapshot must be of the event as it is: a reschedule in between → read it again.
    if event.revision != booking.event.revision {
        return Err(Error::StatusChanged);
    }
    if db.bookings.contains_key(&booking.id) {
        return Err(Error::internal("booking id collision"));
    }
    if let Some(event) = db.events.get_mut(&booking.event_id) {
        Arc::make_mut(event).seats_booked += 1;
    }
    db.attendees.insert(guard, booking.id.clone());
    db.event_bookings.entry(booking.event_id.clone()).or_default().insert(Position::of_booking(booking));
    db.user_bookings(booking).insert(Position::of_booking(booking));
    db.bookings.insert(booking.id.clone(), booking.clone());
    if let Some(rec) = idempotency {
        db.idempotency.insert((rec.user_id.clone(), rec.key.clone()), rec.clone());
    }
    match (&booking.payment, booking.status) {
        (Some(payment), BookingStatus::PendingPayment) => db.put_task(PaymentTask {
            booking_id: booking.id.clone(),
            kind: PaymentTaskKind::Hold,
            due_at: payment.expires_at,
        }),
        _ => db.put_delivery(Delivery::pending(booking, now)),
    }
    Ok(())
}

pub(super) fn get_booking(store: &MemoryStore, id: &str) -> Result<Option<Booking>> {
    Ok(store.read()?.bookings.get(id).cloned())
}

pub(super) fn reschedule_booking(
    store: &MemoryStore,
    booking: &Booking,
    event: &Event,
    now: Timestamp,
) -> Result<Booking> {
    let mut db = store.lock()?;
    let current = db.bookings.get(&booking.id).ok_or(Error::NotFound("booking"))?;
    if current.status != booking.status
        || current.sequence != booking.sequence
        || current.event.revision != booking.event.revision
    {
        return Err(Error::StatusChanged);
    }
    let (b, previous, moved) = (current.rescheduled(event), current.event.datetime, current.moved_by(event));
    if b.status == BookingStatus::Confirmed && moved {
        db.put_delivery(b.rescheduled_message(previous, now));
    }
    db.put_booking(b.clone());
    Ok(b)
}

pub(super) fn cancel_booking(
    store: &MemoryStore,
    booking: &Booking,
    reason: CancelReason,
    now: Timestamp,
) -> Result<Booking> {
    let mut db = store.lock()?;
    let current = db.bookings.get(&booking.id).ok_or(Error::NotFound("booking"))?;
    if !current.status.holds_seat() {
        return Err(Error::AlreadyCancelled);
    }
    if current.status != booking.status || current.sequence != booking.sequence {
        return Err(Error::StatusChanged);
    }
    let event = db.events.get(&current.event_id).ok_or(Error::NotFound("event"))?;
    if reason != CancelReason::EventCancelled {
        event.cancellable_at(now)?;
    }
    if event.seats_booked == 0 {
        return Err(Error::internal("confirmed booking on an event with no seats booked"));
    }
    let from = current.status;
    let b = current.cancelled(reason, now);
    db.release_seat(&b);
    db.drop_task(&b.id);
    if from == BookingStatus::PendingPayment && reason == CancelReason::EventCancelled && b.has_checkout_session() {
        db.put_task(PaymentTask { booking_id: b.id.clone(), kind: PaymentTaskKind::ExpireCheckout, due_at: now });
    }
    if from == BookingStatus::Confirmed {
        if b.payment.is_some() {
            db.put_task(PaymentTask { booking_id: b.id.clone(), kind: PaymentTaskKind::Refund, due_at: now });
        }
        db.put_delivery(Delivery::message(&b, MessageKind::Cancelled, now));
    } else if b.via_waitlist && b.has_checkout_session() {
        // The CRM heard `booking.offered` (written when the session was opened): it hears the end.
        db.put_delivery(Delivery::message(&b, MessageKind::Cancelled, now));
    }
    db.put_booking(b.clone());
    if reason != CancelReason::EventCancelled {
        db.promote(&b.event_id, now, 1);
    }
    Ok(b)
}

pub(super) fn list_user_bookings(
    store: &MemoryStore,
    user_id: &str,
    status: BookingStatus,
    limit: usize,
) -> Result<Vec<Booking>> {
    let db = store.read()?;
    let Some(index) = db.user_bookings.get(&(user_id.to_string(), status)) else {
        return Ok(Vec::new());
    };
    Ok(index.iter().rev().take(limit).filter_map(|p| db.bookings.get(&p.id).cloned()).collect())
}

pub(super) fn list_event_bookings(
    store: &MemoryStore,
    event_id: &str,
    after: Option<&Position>,
    limit: usize,
) -> Result<BookingPage> {
    let db = store.read()?;
    let Some(index) = db.event_bookings.get(event_id) else {
        return Ok(BookingPage::default());
    };
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut page: Vec<Booking> = index
        .range((start, Bound::Unbounded))
        .take(limit + 1)
        .filter_map(|p| db.bookings.get(&p.id).cloned())
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = if more { page.last().map(Position::of_booking) } else { None };
    Ok(BookingPage { items: page, next })
}

pub(super) fn get_idempotency(store: &MemoryStore, user_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
    Ok(store.read()?.idempotency.get(&(user_id.to_string(), key.to_string())).cloned())
}

pub(super) fn get_bookings(store: &MemoryStore, ids: &[String]) -> Result<Vec<Booking>> {
    let db = store.read()?;
    Ok(ids.iter().filter_map(|id| db.bookings.get(id).cloned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use chrono::Duration;

    fn record(user: &str, key: &str, now: Timestamp) -> IdempotencyRecord {
        IdempotencyRecord {
            user_id: user.into(),
            key: key.into(),
            request_hash: "h".into(),
            status: 201,
            body: "{}".into(),
            created_at: now,
            ttl: now.timestamp() + crate::model::IDEMPOTENCY_TTL_SECS,
        }
    }

    #[tokio::test]
    async fn expired_idempotency_records_are_evicted() {
        let store = MemoryStore::new();
        let t0 = crate::time::now();
        store.lock().unwrap().idempotency.insert(("u".into(), "k".into()), record("u", "k", t0));
        let event = Event {
            waitlist_count: 0,
            id: "E".into(),
            title: "t".into(),
            description: String::new(),
            datetime: t0 + Duration::days(30),
            duration_minutes: 60,
            facilitator_id: "F".into(),
            event_type: "Yoga".into(),
            rating: None,
            capacity: None,
            seats_booked: 0,
            price: None,
            owner_id: "O".into(),
            created_at: t0,
            updated_at: t0,
            status: crate::model::EventStatus::Scheduled,
            cancelled_at: None,
            cancel_reason: None,
            revision: 0,
        };
        store.create_event(&event).await.unwrap();
        let book = |user: &str, at: Timestamp| Booking {
            via_waitlist: false,
            id: crate::model::new_id(),
            event_id: "E".into(),
            user_id: user.into(),
            user_name: "n".into(),
            user_email: "e@x.io".into(),
            status: BookingStatus::Confirmed,
            created_at: at,
            cancelled_at: None,
            event: event.snapshot(),
            payment: None,
            cancel_reason: None,
            sequence: 0,
        };
        store.create_booking(&book("a", t0), None, t0 + Duration::hours(23)).await.unwrap();
        assert_eq!(store.lock().unwrap().idempotency.len(), 1, "a live record was evicted");
        store.create_booking(&book("b", t0), None, t0 + Duration::hours(25)).await.unwrap();
        assert!(store.lock().unwrap().idempotency.is_empty(), "an expired record was kept");
    }
}
