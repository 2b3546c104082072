//! CRM message records and their pending index in the embedded store: the conditions of
//! `store/dynamo/deliveries.rs`, checked under the store's one lock.

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{Booking, Delivery, DeliveryStatus, MessageKind};
use crate::store::{possible_messages, BookingMessages, Claim, Claimed, PendingPage, PendingQuery, Position};
use std::ops::Bound;

pub(super) fn get_delivery(store: &MemoryStore, booking_id: &str) -> Result<Option<Delivery>> {
    Ok(store.read()?.deliveries.get(booking_id).cloned())
}

pub(super) fn get_deliveries(store: &MemoryStore, booking_ids: &[String]) -> Result<Vec<Delivery>> {
    let db = store.read()?;
    Ok(booking_ids.iter().filter_map(|id| db.deliveries.get(id).cloned()).collect())
}

pub(super) fn claim_message(store: &MemoryStore, message: &Delivery, claim: &Claim<'_>) -> Result<Claimed> {
    let mut db = store.lock()?;
    let mut record = match db.message(&message.key()) {
        None if message.kind == MessageKind::Confirmed => message.clone(),
        None => return Err(Error::internal("message claim refused for a record that does not exist")),
        Some(current) if current.claimable_at(claim.now) => current.clone(),
        Some(current) => return Ok(Claimed::refused(current.clone(), claim.now)),
    };
    record.booked_at = record.booked_at.or(message.booked_at).or(Some(claim.now));
    record.attempts += 1;
    record.lease_until = Some(claim.until);
    record.lease_owner = Some(claim.owner.to_string());
    record.updated_at = claim.now;
    db.put_delivery(record.clone());
    Ok(Claimed::Won(record))
}

pub(super) fn finish_delivery(store: &MemoryStore, delivery: &Delivery, owner: &str) -> Result<bool> {
    let mut db = store.lock()?;
    let current = db.message(&delivery.key());
    let allowed = if delivery.status.is_final() {
        current.is_none_or(|d| d.status != DeliveryStatus::Delivered)
    } else {
        current.is_some_and(|d| d.lease_owner.as_deref() == Some(owner))
    };
    if allowed {
        db.put_delivery(delivery.clone());
    }
    Ok(allowed)
}

pub(super) fn booking_messages(store: &MemoryStore, booking_id: &str) -> Result<BookingMessages> {
    let db = store.read()?;
    let id = booking_id.to_string();
    let mut messages: Vec<Delivery> = db.deliveries.get(booking_id).cloned().into_iter().collect();
    messages.extend(
        db.messages.range((id.clone(), String::new())..).take_while(|((b, _), _)| *b == id).map(|(_, d)| d.clone()),
    );
    messages.sort_by_key(Delivery::send_order);
    Ok(BookingMessages { booking: db.bookings.get(booking_id).cloned(), messages })
}

pub(super) fn get_messages(store: &MemoryStore, bookings: &[Booking]) -> Result<Vec<Delivery>> {
    let db = store.read()?;
    Ok(bookings
        .iter()
        .flat_map(|b| possible_messages(b).into_iter().map(|(kind, seq)| crate::keys::message(&b.id, kind, seq)))
        .filter_map(|key| db.message(&key).cloned())
        .collect())
}

pub(super) fn pending_deliveries(store: &MemoryStore, q: &PendingQuery) -> Result<PendingPage> {
    let db = store.read()?;
    let day_start = q.day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(|| Error::internal("bad day"))?;
    let day_end = day_start + chrono::Duration::days(1);
    let (from, before) = (q.from.max(day_start), q.before.min(day_end));
    if from >= before {
        return Ok(PendingPage::default());
    }
    let lower = Position { at: from, id: String::new() };
    let start = match &q.after {
        Some(after) if *after >= lower => Bound::Excluded(after),
        _ => Bound::Included(&lower),
    };
    let mut items = Vec::new();
    let mut more = false;
    for p in db.pending_deliveries.range((start, Bound::Unbounded)).take_while(|p| p.at < before) {
        if items.len() == q.limit {
            more = true;
            break;
        }
        items.extend(db.message(&crate::keys::pending_message_key(&p.id)).cloned());
    }
    let next = if more { items.last().and_then(Position::of_pending) } else { None };
    Ok(PendingPage { items, next })
}
