//! Promotions. A write that frees a seat (a cancel, an expired hold, a released hold) first
//! goes out as it always did, with one more condition on the event item: nobody waits for the
//! seat ([`NOBODY_WAITS`]). When that is what failed, the seat is handed on in the same write:
//! the first in line (a strongly consistent Query of the event's partition) is promoted by the
//! items of [`promotion_items`], and the event item, touched once, keeps its seat count and
//! loses one from `waitlist_count`. A capacity increase promotes in batches
//! ([`promote_waitlist`]).

use super::super::events::event_after_failure;
use super::super::items::{attr, key_item, n, s, AttendeeGuard, Entity, Item, ABSENT, EXISTS};
use super::super::{backoff, failed, DynamoStore, TxFailure};
use super::head;
use crate::error::{Error, Result};
use crate::keys::{self, entity};
use crate::model::{
    booking_cutoff, Booking, Delivery, Event, EventStatus, PaymentTask, PaymentTaskKind, WaitEntry, OFFER_MIN_MINUTES,
};
use crate::store::PROMOTIONS_PER_WRITE;
use crate::time::{self, Timestamp};
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

/// The event item's condition on a write that frees a seat without handing it on, or takes a
/// free seat: no one waits for it. Nobody is waiting, or the event is cancelled, or it no longer
/// promotes at `now` ([`Event::promotes_at`]: a free event once bookings close, a priced one
/// under [`OFFER_MIN_MINUTES`] before its start). Names `#wl #st #price #dt`, values
/// `:zero :cancelled :promote_cutoff :offer_cutoff` ([`with_nobody_waits`]).
pub(in crate::store::dynamo) const NOBODY_WAITS: &str = "(attribute_not_exists(#wl) OR #wl = :zero \
     OR #st = :cancelled OR (attribute_not_exists(#price) AND #dt <= :promote_cutoff) \
     OR (attribute_exists(#price) AND #dt < :offer_cutoff))";

/// The names and values [`NOBODY_WAITS`] uses, for a write at `now`. Timestamps are whole
/// seconds (`time::now`), so the text comparison is the instant comparison.
pub(in crate::store::dynamo) fn with_nobody_waits(u: UpdateBuilder, now: Timestamp) -> UpdateBuilder {
    u.expression_attribute_names("#wl", attr::WAITLIST_COUNT)
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_names("#price", attr::PRICE)
        .expression_attribute_names("#dt", attr::DATETIME)
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":cancelled", s(EventStatus::Cancelled.as_str()))
        .expression_attribute_values(":promote_cutoff", s(time::format(&booking_cutoff(now))))
        .expression_attribute_values(
            ":offer_cutoff",
            s(time::format(&(now + chrono::Duration::minutes(OFFER_MIN_MINUTES)))),
        )
}

/// Attempts of a freeing write. Each lost race means another write promoted (or a user left)
/// the entry this one aimed at: progress, so a loser retries at once (after a few milliseconds
/// of jitter that keeps the losers from arriving together), and the attempts a write needs are
/// bounded by the writes freeing seats of the same event at the same moment.
const HANDOFF_ATTEMPTS: u32 = 128;

/// A few milliseconds, more as the losses of one write add up.
fn jitter(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    std::time::Duration::from_millis(rand::thread_rng().gen_range(0..=2 * u64::from(attempt.min(10))))
}

/// The first in line and the booking their promotion makes, for the event as read.
pub(in crate::store::dynamo) struct Handoff {
    event: Event,
    entry: WaitEntry,
    booking: Booking,
}

/// What [`free_seat`] did.
pub(in crate::store::dynamo) enum Freed {
    /// Committed (the seat freed, or handed on).
    Done,
    /// A condition failed that is the caller's to explain: one of its own items, or the event
    /// item's own conditions (not the waitlist's). Per item, as [`DynamoStore::transact`] gives.
    Refused(Vec<Option<Option<Item>>>),
}

/// The event item's update in a write that frees a seat of `event_id`: `seats_booked - 1` while
/// nobody waits, or, handing the seat to `handoff`, `waitlist_count - 1` (the seat stays taken)
/// while the event is as the hand-off read it (`updated_at`: time, price and status unchanged).
/// `cutoff`: the seat may only be freed while the event starts after it (an attendee's cancel).
fn seat_item(
    db: &DynamoStore,
    event_id: &str,
    now: Timestamp,
    cutoff: Option<Timestamp>,
    handoff: Option<&Handoff>,
) -> Result<TransactWriteItem> {
    let mut condition = format!("{EXISTS} AND #seats > :zero");
    let mut u = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(event_id))))
        .expression_attribute_names("#seats", attr::SEATS_BOOKED)
        .expression_attribute_values(":minus", n(-1))
        .expression_attribute_values(":zero", n(0))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    if let Some(cutoff) = cutoff {
        condition.push_str(" AND #dt > :cutoff");
        u = u
            .expression_attribute_names("#dt", attr::DATETIME)
            .expression_attribute_values(":cutoff", s(time::format(&cutoff)));
    }
    u = match handoff {
        None => {
            condition.push_str(&format!(" AND {NOBODY_WAITS}"));
            with_nobody_waits(u.update_expression("ADD #seats :minus"), now)
        }
        Some(h) => {
            condition.push_str(" AND #wl > :zero AND #upd = :upd AND (attribute_not_exists(#st) OR #st <> :cancelled)");
            u.update_expression("ADD #wl :minus")
                .expression_attribute_names("#wl", attr::WAITLIST_COUNT)
                .expression_attribute_names("#upd", attr::UPDATED_AT)
                .expression_attribute_names("#st", attr::STATUS)
                .expression_attribute_values(":upd", s(time::format(&h.event.updated_at)))
                .expression_attribute_values(":cancelled", s(EventStatus::Cancelled.as_str()))
        }
    };
    let update = u.condition_expression(condition).build().map_err(Error::internal)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// One promotion's items besides the event's: the entry deleted (it must still exist), the
/// user's guard turned from this very wait into the booking's attendee guard, the booking
/// (new), and its CRM delivery record (free) or its `Offer` payment task due now (priced).
fn promotion_items(db: &DynamoStore, h: &Handoff, now: Timestamp) -> Result<Vec<TransactWriteItem>> {
    let e = &h.entry;
    let entry = Delete::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(e.key())))
        .condition_expression(EXISTS)
        .build()
        .map_err(Error::internal)?;
    let guard = AttendeeGuard { event_id: &e.event_id, user_id: &e.user_id, booking_id: &h.booking.id };
    let guard = Put::builder()
        .table_name(&db.table)
        .set_item(Some(guard.to_item()?))
        .condition_expression("#entity = :waiting AND #joined = :joined")
        .expression_attribute_names("#entity", keys::ENTITY)
        .expression_attribute_names("#joined", attr::JOINED_AT)
        .expression_attribute_values(":waiting", s(entity::WAITING))
        .expression_attribute_values(":joined", s(time::format(&e.joined_at)))
        .build()
        .map_err(Error::internal)?;
    let follow_up = match h.booking.payment {
        Some(_) => {
            PaymentTask { booking_id: h.booking.id.clone(), kind: PaymentTaskKind::Offer, due_at: now }.to_item()?
        }
        None => Delivery::pending(&h.booking, now).to_item()?,
    };
    let follow_up = Put::builder().table_name(&db.table).set_item(Some(follow_up)).build().map_err(Error::internal)?;
    Ok(vec![
        TransactWriteItem::builder().delete(entry).build(),
        TransactWriteItem::builder().put(guard).build(),
        TransactWriteItem::builder().put(db.put(&h.booking, ABSENT)?).build(),
        TransactWriteItem::builder().put(follow_up).build(),
    ])
}

/// Users wait for `event`'s seats and a promotion at `now` can take one.
fn waits_for(event: &Event, now: Timestamp) -> bool {
    event.waitlist_count > 0 && event.status != EventStatus::Cancelled && event.promotes_at(now)
}

/// The first in line for `event` (as read) at `now`; `None` when the line is empty by now.
async fn next_handoff(db: &DynamoStore, event: Event, now: Timestamp) -> Result<Option<Handoff>> {
    let Some(entry) = head(db, &event.id, 1).await?.into_iter().next() else { return Ok(None) };
    Ok(entry.promoted(&event, now).map(|booking| Handoff { event, entry, booking }))
}

/// Commits a write that frees one seat of `event_id`: `own` are the caller's items, into which
/// the event item's update is inserted at `seat_at` (so the caller's failure indexes hold).
/// First without a hand-off (the cost of a cancel nobody waits for is unchanged); when the
/// event shows users waiting, again with the first in line promoted, re-reading the head while
/// other writes take it first.
pub(in crate::store::dynamo) async fn free_seat(
    db: &DynamoStore,
    event_id: &str,
    now: Timestamp,
    cutoff: Option<Timestamp>,
    own: Vec<TransactWriteItem>,
    seat_at: usize,
) -> Result<Freed> {
    let mut handoff: Option<Handoff> = None;
    for attempt in 0..HANDOFF_ATTEMPTS {
        let mut items = own.clone();
        items.insert(seat_at, seat_item(db, event_id, now, cutoff, handoff.as_ref())?);
        let own_len = items.len();
        if let Some(h) = &handoff {
            items.extend(promotion_items(db, h, now)?);
        }
        let reasons = match db.transact(items, &crate::model::new_id()).await {
            Ok(()) => {
                if let Some(h) = handoff {
                    tracing::info!(event_id, booking_id = %h.booking.id, "freed seat handed to the first in line");
                }
                return Ok(Freed::Done);
            }
            Err(TxFailure::Conditions(reasons)) => reasons,
            Err(TxFailure::Failed(e)) => return Err(e),
        };
        if (0..own_len).any(|i| i != seat_at && failed(&reasons, i).is_some()) {
            return Ok(Freed::Refused(reasons));
        }
        let handed = handoff.take();
        let event = match (failed(&reasons, seat_at), handed) {
            (Some(returned), handed) => match event_after_failure(db, returned.clone(), event_id).await? {
                Some(event) => {
                    if handed.is_none() && !waits_for(&event, now) {
                        // The event's own conditions (started, no seat booked): not about waiters.
                        return Ok(Freed::Refused(reasons));
                    }
                    event
                }
                None => return Ok(Freed::Refused(reasons)),
            },
            // Only the promotion's items failed: the entry was promoted or left meanwhile.
            (None, Some(h)) => h.event,
            (None, None) => return Ok(Freed::Refused(reasons)),
        };
        if attempt > 0 {
            tokio::time::sleep(jitter(attempt)).await;
        }
        // No one to hand it to any more (left, or the event changed): plain again.
        handoff = if waits_for(&event, now) { next_handoff(db, event, now).await? } else { None };
    }
    Err(Error::Unavailable("a freed seat's hand-off kept racing other writes of its event".into()))
}

/// See [`crate::store::Store::promote_waitlist`]: per transaction, the event's seats and count
/// as read (so no outsider or concurrent change slips between the read and the write) and up
/// to [`PROMOTIONS_PER_WRITE`] promotions (81 items).
pub(in crate::store::dynamo) async fn promote_waitlist(
    db: &DynamoStore,
    event_id: &str,
    now: Timestamp,
    limit: usize,
) -> Result<u32> {
    let (mut promoted, mut raced) = (0usize, 0u32);
    while promoted < limit {
        let Some(event) = db.get_as::<Event>(keys::event(event_id)).await? else { break };
        if event.status == EventStatus::Cancelled || !event.promotes_at(now) {
            break;
        }
        let free = event.seats_left().map_or(usize::MAX, |s| s as usize);
        let k = free.min(event.waitlist_count as usize).min(PROMOTIONS_PER_WRITE).min(limit - promoted);
        if k == 0 {
            break;
        }
        let handoffs: Vec<Handoff> = head(db, event_id, k)
            .await?
            .into_iter()
            .filter_map(|entry| {
                entry.promoted(&event, now).map(|booking| Handoff { event: event.clone(), entry, booking })
            })
            .collect();
        if handoffs.is_empty() {
            break;
        }
        let count = handoffs.len();
        let update = Update::builder()
            .table_name(&db.table)
            .set_key(Some(key_item(keys::event(event_id))))
            .update_expression("ADD #seats :k, #wl :minus")
            .condition_expression(
                "#seats = :seats AND #wl = :wl AND #upd = :upd AND (attribute_not_exists(#st) OR #st <> :cancelled)",
            )
            .expression_attribute_names("#seats", attr::SEATS_BOOKED)
            .expression_attribute_names("#wl", attr::WAITLIST_COUNT)
            .expression_attribute_names("#upd", attr::UPDATED_AT)
            .expression_attribute_names("#st", attr::STATUS)
            .expression_attribute_values(":k", n(count))
            .expression_attribute_values(":minus", n(-(count as i64)))
            .expression_attribute_values(":seats", n(event.seats_booked))
            .expression_attribute_values(":wl", n(event.waitlist_count))
            .expression_attribute_values(":upd", s(time::format(&event.updated_at)))
            .expression_attribute_values(":cancelled", s(EventStatus::Cancelled.as_str()))
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        for h in &handoffs {
            items.extend(promotion_items(db, h, now)?);
        }
        match db.transact(items, &crate::model::new_id()).await {
            Ok(()) => promoted += count,
            // The event or the line changed since the read (a cancel, a join, a leave): again.
            Err(TxFailure::Conditions(_)) if raced < HANDOFF_ATTEMPTS => {
                raced += 1;
                tokio::time::sleep(backoff(raced.min(6))).await;
            }
            Err(TxFailure::Conditions(_)) if promoted > 0 => break,
            Err(TxFailure::Conditions(_)) => {
                return Err(Error::Unavailable("promotions kept racing other writes of the event".into()))
            }
            Err(TxFailure::Failed(e)) => return Err(e),
        }
    }
    Ok(u32::try_from(promoted).unwrap_or(u32::MAX))
}
