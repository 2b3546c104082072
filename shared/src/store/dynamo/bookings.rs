//! Bookings: the booking item, its attendee guard and the event's seat counter change together
//! in one transaction; idempotency records ride along.

use super::items::{attr, from_item, key_item, n, s, start_key, tag, AttendeeGuard, Entity, ABSENT, EXISTS};
use super::{events, failed, sdk_error, waitlist, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys::{self, entity};
use crate::model::{
    booking_cutoff, Booking, BookingStatus, Delivery, Event, IdempotencyRecord, PaymentTask, PaymentTaskKind,
};
use crate::store::{BookingContext, BookingPage, Position};
use crate::time::{self, Timestamp};
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

pub(super) async fn booking_context(
    db: &DynamoStore,
    event_id: &str,
    user_id: &str,
    idempotency_key: Option<&str>,
) -> Result<BookingContext> {
    let mut wanted = vec![keys::event(event_id), keys::attendee(event_id, user_id), keys::user(user_id)];
    wanted.extend(idempotency_key.map(|k| keys::idempotency(user_id, k)));
    let mut context = BookingContext::default();
    for item in db.batch_get(wanted).await? {
        match tag(&item) {
            Some(entity::EVENT) => context.event = Some(from_item(item)?),
            Some(entity::ATTENDEE) => context.already_booked = true,
            Some(entity::WAITING) => context.waiting = true,
            Some(entity::IDEMPOTENCY) => context.idempotency = Some(from_item(item)?),
            Some(entity::USER) => context.user = Some(from_item(item)?),
            _ => {}
        }
    }
    Ok(context)
}

pub(super) async fn create_booking(
    db: &DynamoStore,
    booking: &Booking,
    idem: Option<&IdempotencyRecord>,
    now: Timestamp,
) -> Result<()> {
    // `Event::bookable_at` and `Event::has_free_seat`, as a condition on the event item, and the
    // revision the booking's snapshot was taken at: a reschedule in between → `StatusChanged`
    // (the caller reads the event again), so no booking keeps a time its event no longer has.
    let revision_as_read =
        if booking.event.revision == 0 { "(attribute_not_exists(#rev) OR #rev = :rev)" } else { "#rev = :rev" };
    // A free seat nobody waits for: while users wait, a freed seat is theirs (it is handed on
    // in the write that frees it, or by the promote job after a capacity increase).
    let seat = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(&booking.event_id))))
        .update_expression("ADD #seats :one")
        .condition_expression(format!(
            "{EXISTS} AND (attribute_not_exists(#st) OR #st <> :cancelled) AND #dt > :cutoff \
             AND (attribute_not_exists(#cap) OR #seats < #cap) AND {revision_as_read} AND {}",
            waitlist::NOBODY_WAITS
        ))
        .expression_attribute_names("#rev", attr::REVISION)
        .expression_attribute_values(":rev", n(booking.event.revision))
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_values(":cancelled", s(crate::model::EventStatus::Cancelled.as_str()))
        .expression_attribute_names("#seats", attr::SEATS_BOOKED)
        .expression_attribute_names("#cap", attr::CAPACITY)
        .expression_attribute_names("#dt", attr::DATETIME)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":cutoff", s(time::format(&booking_cutoff(now))))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    let seat = waitlist::with_nobody_waits(seat, now).build().map_err(Error::internal)?;
    let guard = AttendeeGuard { event_id: &booking.event_id, user_id: &booking.user_id, booking_id: &booking.id };
    let mut items = vec![
        TransactWriteItem::builder().update(seat).build(),
        TransactWriteItem::builder().put(db.put(&guard, ABSENT)?).build(),
        TransactWriteItem::builder().put(db.put(booking, ABSENT)?).build(),
    ];
    if let Some(rec) = idem {
        // An expired record can outlive its TTL for a while; it no longer counts.
        let put = Put::builder()
            .table_name(&db.table)
            .set_item(Some(rec.to_item()?))
            .condition_expression(format!("{ABSENT} OR #ttl <= :epoch"))
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_values(":epoch", n(now.timestamp()))
            .build()
            .map_err(Error::internal)?;
        items.push(TransactWriteItem::builder().put(put).build());
    }
    // Last, without a condition of its own (a reused booking id already fails the booking's
    // `attribute_not_exists`): for a confirmed booking, the pending CRM delivery record, in the
    // pending index until the CRM has answered for good; for a seat hold, its task in the
    // due-payments index (the CRM hears of it once it is paid).
    let follow_up = match (&booking.payment, booking.status) {
        (Some(payment), BookingStatus::PendingPayment) => {
            PaymentTask { booking_id: booking.id.clone(), kind: PaymentTaskKind::Hold, due_at: payment.expires_at }
                .to_item()?
        }
        _ => Delivery::pending(booking, now).to_item()?,
    };
    let follow_up = Put::builder().table_name(&db.table).set_item(Some(follow_up)).build().map_err(Error::internal)?;
    items.push(TransactWriteItem::builder().put(follow_up).build());
    let reasons = match db.transact(items, &booking.id).await {
        Ok(()) => return Ok(()),
        Err(TxFailure::Conditions(reasons)) => reasons,
        Err(TxFailure::Failed(e)) => return Err(e),
    };
    // DynamoDB reports every failed condition of the transaction; answer with the first in the
    // contract's order, as the embedded store does.
    if failed(&reasons, 3).is_some() {
        return Err(Error::IdempotencyKeyReused);
    }
    let seat = match failed(&reasons, 0) {
        Some(returned) => Some(
            events::event_after_failure(db, returned.clone(), &booking.event_id)
                .await?
                .ok_or(Error::NotFound("event"))?,
        ),
        None => None,
    };
    if let Some(guard) = failed(&reasons, 1) {
        // One guard per user and event: a booking's, or a wait's.
        let waiting = guard.as_ref().is_some_and(|g| tag(g) == Some(entity::WAITING));
        return Err(if waiting { Error::AlreadyWaiting } else { Error::AlreadyBooked });
    }
    match seat {
        Some(event) => {
            event
                .bookable_at(now)
                .and_then(|()| event.has_free_seat())
                .and_then(|()| {
                    if event.waitlist_count > 0 && event.promotes_at(now) {
                        Err(Error::EventFull)
                    } else {
                        Ok(())
                    }
                })
                .and(Err(if event.revision != booking.event.revision {
                    Error::StatusChanged
                } else {
                    Error::internal("the seat condition failed for a bookable event with a free seat")
                }))
        }
        None => Err(Error::internal("booking id collision")),
    }
}

pub(super) async fn get_booking(db: &DynamoStore, id: &str) -> Result<Option<Booking>> {
    db.get_as(keys::booking(id)).await
}

pub(super) async fn get_bookings(db: &DynamoStore, ids: &[String]) -> Result<Vec<Booking>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let items = db.batch_get(ids.iter().map(|id| keys::booking(id)).collect()).await?;
    items.into_iter().map(from_item).collect()
}

pub(super) async fn reschedule_booking(
    db: &DynamoStore,
    booking: &Booking,
    event: &Event,
    now: Timestamp,
) -> Result<Booking> {
    let updated = booking.rescheduled(event);
    let snapshot = serde_dynamo::to_attribute_value(&updated.event).map_err(Error::internal)?;
    // As read: the status, the sequence (another change of the booking owes its own message)
    // and the snapshot's revision (a later reschedule already brought it further).
    let seq_as_read = if booking.sequence == 0 { "(attribute_not_exists(#seq) OR #seq = :seq)" } else { "#seq = :seq" };
    let rev_as_read = if booking.event.revision == 0 {
        "(attribute_not_exists(#ev.#rev) OR #ev.#rev = :rev)"
    } else {
        "#ev.#rev = :rev"
    };
    let update = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::booking(&booking.id))))
        .update_expression("SET #ev = :snap, #seq = :next")
        .condition_expression(format!("{EXISTS} AND #st = :status AND {seq_as_read} AND {rev_as_read}"))
        .expression_attribute_names("#ev", attr::EVENT)
        .expression_attribute_names("#rev", attr::REVISION)
        .expression_attribute_names("#seq", attr::SEQUENCE)
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_values(":snap", snapshot)
        .expression_attribute_values(":next", n(updated.sequence))
        .expression_attribute_values(":seq", n(booking.sequence))
        .expression_attribute_values(":rev", n(booking.event.revision))
        .expression_attribute_values(":status", s(booking.status.as_str()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(Error::internal)?;
    let mut items = vec![TransactWriteItem::builder().update(update).build()];
    // The CRM heard of a confirmed booking: it hears of the new time, in the same write.
    if booking.status == BookingStatus::Confirmed && booking.moved_by(event) {
        let message = updated.rescheduled_message(booking.event.datetime, now);
        items.push(TransactWriteItem::builder().put(db.put(&message, ABSENT)?).build());
    }
    match db.transact(items, &crate::model::new_id()).await {
        Ok(()) => Ok(updated),
        Err(TxFailure::Failed(e)) => Err(e),
        Err(TxFailure::Conditions(reasons)) => match failed(&reasons, 0) {
            Some(Some(item)) if !item.is_empty() => Err(Error::StatusChanged),
            Some(_) => Err(Error::NotFound("booking")),
            // Only the message's own condition failed: its sequence was taken, so the booking
            // changed after it was read.
            None => Err(Error::StatusChanged),
        },
    }
}

pub(super) async fn list_user_bookings(
    db: &DynamoStore,
    user_id: &str,
    status: BookingStatus,
    limit: usize,
) -> Result<Vec<Booking>> {
    let out = db
        .client
        .query()
        .table_name(&db.table)
        .index_name(keys::GSI1)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
        .expression_attribute_names("#pk", keys::GSI1PK)
        .expression_attribute_names("#sk", keys::GSI1SK)
        .expression_attribute_values(":pk", s(keys::user_bookings(user_id)))
        .expression_attribute_values(":prefix", s(format!("{}#", status.as_str())))
        .scan_index_forward(false)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| sdk_error("Query", e))?;
    out.items.unwrap_or_default().into_iter().map(from_item).collect()
}

pub(super) async fn list_event_bookings(
    db: &DynamoStore,
    event_id: &str,
    after: Option<&Position>,
    limit: usize,
) -> Result<BookingPage> {
    let partition = keys::event_bookings(event_id);
    let start = after.map(|p| start_key(1, keys::booking(&p.id), &partition, keys::event_booking_sort(&p.at, &p.id)));
    // One more than asked tells whether another page exists without an empty last page.
    let out = db
        .client
        .query()
        .table_name(&db.table)
        .index_name(keys::GSI2)
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", keys::GSI2PK)
        .expression_attribute_values(":pk", s(partition))
        .scan_index_forward(true)
        .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| sdk_error("Query", e))?;
    let mut items: Vec<Booking> = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_>>()?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(Position::of_booking) } else { None };
    Ok(BookingPage { items, next })
}

pub(super) async fn get_idempotency(db: &DynamoStore, user_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
    db.get_as(keys::idempotency(user_id, key)).await
}
