//! Paid bookings: the Checkout Session recorded on the hold, the hold undone when Stripe failed,
//! the settlement of a hold (paid → confirmed, or expired → seat released), refunds, and the
//! sparse due-payments index on GSI1 (`PAY#DUE#<day>` / `<due_at>#<booking_id>`) that the payment
//! sweep queries. Every transition is conditional on the status it expects.

use super::items::{attr, from_item, key_item, s, start_key, Entity, Item, ABSENT};
use super::{day_bucket_page, failed, is_condition_failed, sdk_error, waitlist, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::{
    is_final_refund_status, Booking, BookingStatus, Delivery, MessageKind, PaymentTask, PaymentTaskKind,
    FINAL_REFUND_STATUSES,
};
use crate::store::{PendingQuery, Settled, Settlement, TaskPage};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::collections::HashMap;

fn pending() -> AttributeValue {
    s(BookingStatus::PendingPayment.as_str())
}

/// What attaching a Checkout Session writes, a hold's ([`attach_checkout`]) or an offer's
/// ([`attach_offer`]) alike: its id and URL on the payment. [`session_attrs`] also holds what
/// both conditions name: the status (`#st = :pending`) and `#via`, which tells the two apart.
const SET_SESSION: &str = "SET #pay.#sid = :sid, #pay.#url = :url";

fn session_attrs(session_id: &str, url: &str) -> (HashMap<String, String>, Item) {
    let names = [
        ("#pay", attr::PAYMENT),
        ("#sid", attr::CHECKOUT_SESSION_ID),
        ("#url", attr::CHECKOUT_URL),
        ("#st", attr::STATUS),
        ("#via", attr::VIA_WAITLIST),
    ];
    let values = [(":sid", s(session_id)), (":url", s(url)), (":pending", pending())];
    (HashMap::from(names.map(|(k, v)| (k.into(), v.into()))), HashMap::from(values.map(|(k, v)| (k.into(), v))))
}

pub(super) async fn attach_checkout(db: &DynamoStore, booking_id: &str, session_id: &str, url: &str) -> Result<bool> {
    // A seat hold of `POST /bookings/` (no `via_waitlist`): one update. A waitlist offer fails
    // its condition and comes back whole: its attach also moves its task and owes its message.
    let (names, values) = session_attrs(session_id, url);
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::booking(booking_id))))
        .update_expression(SET_SESSION)
        .condition_expression("#st = :pending AND attribute_not_exists(#via)")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let old = match result {
        Ok(_) => return Ok(true),
        Err(e) if is_condition_failed(&e) => match e.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(c) => c.item,
            _ => None,
        },
        Err(e) => return Err(sdk_error("UpdateItem", e)),
    };
    match old.map(from_item::<Booking>).transpose()? {
        Some(offer) if offer.status == BookingStatus::PendingPayment && offer.via_waitlist => {
            attach_offer(db, offer, session_id, url).await
        }
        _ => Ok(false),
    }
}

/// A waitlist offer's Checkout Session, in one transaction: the session on the booking (still a
/// pending offer), its `Offer` task replaced by its `Hold` task due when the offer ends, and its
/// `booking.offered` message record. Attached already (the message exists) → `true`, nothing
/// written again.
async fn attach_offer(db: &DynamoStore, mut offer: Booking, session_id: &str, url: &str) -> Result<bool> {
    let Some(payment) = offer.payment.as_mut() else { return Ok(false) };
    payment.checkout_session_id = Some(session_id.to_string());
    payment.checkout_url = Some(url.to_string());
    let expires_at = payment.expires_at;
    let (names, mut values) = session_attrs(session_id, url);
    values.insert(":yes".into(), AttributeValue::Bool(true));
    let update = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::booking(&offer.id))))
        .update_expression(SET_SESSION)
        .condition_expression("#st = :pending AND #via = :yes")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(Error::internal)?;
    let hold = PaymentTask { booking_id: offer.id.clone(), kind: PaymentTaskKind::Hold, due_at: expires_at };
    let hold = Put::builder().table_name(&db.table).set_item(Some(hold.to_item()?)).build().map_err(Error::internal)?;
    let message = Delivery::message(&offer, MessageKind::Offered, crate::time::now());
    let items = vec![
        TransactWriteItem::builder().update(update).build(),
        TransactWriteItem::builder().put(hold).build(),
        TransactWriteItem::builder().put(db.put(&message, ABSENT)?).build(),
    ];
    match db.transact(items, &crate::model::new_id()).await {
        Ok(()) => Ok(true),
        Err(TxFailure::Conditions(reasons)) => Ok(failed(&reasons, 0).is_none()),
        Err(TxFailure::Failed(e)) => Err(e),
    }
}

fn delete(db: &DynamoStore, key: keys::Key) -> Result<TransactWriteItem> {
    let delete =
        Delete::builder().table_name(&db.table).set_key(Some(key_item(key))).build().map_err(Error::internal)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// Index of the event item's update in the transactions that free a hold's seat.
const HOLD_SEAT_AT: usize = 2;
const EXPIRY_SEAT_AT: usize = 3;

pub(super) async fn release_hold(db: &DynamoStore, booking: &Booking, idempotency_key: Option<&str>) -> Result<()> {
    let hold = Delete::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::booking(&booking.id))))
        // The hold is written with `payment.checkout_session_id: null` (only top-level nulls are
        // left out of items): "no session" is a NULL attribute or none.
        .condition_expression(
            "#st = :pending AND (attribute_not_exists(#pay.#sid) OR attribute_type(#pay.#sid, :null_type))",
        )
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_names("#pay", attr::PAYMENT)
        .expression_attribute_names("#sid", attr::CHECKOUT_SESSION_ID)
        .expression_attribute_values(":pending", pending())
        .expression_attribute_values(":null_type", s("NULL"))
        .build()
        .map_err(Error::internal)?;
    // The seat (index HOLD_SEAT_AT) is freed, or handed on, with no time condition: a hold ends
    // whenever it ends.
    let mut items = vec![
        TransactWriteItem::builder().delete(hold).build(),
        delete(db, keys::attendee(&booking.event_id, &booking.user_id))?,
        delete(db, keys::payment_task(&booking.id))?,
    ];
    if let Some(key) = idempotency_key {
        items.push(delete(db, keys::idempotency(&booking.user_id, key))?);
    }
    let now = crate::time::now();
    match waitlist::free_seat(db, &booking.event_id, now, None, items, HOLD_SEAT_AT).await? {
        waitlist::Freed::Done => Ok(()),
        waitlist::Freed::Refused(_) => {
            Err(Error::internal("release_hold: the booking is not a hold without a session"))
        }
    }
}

pub(super) async fn settle_payment(db: &DynamoStore, booking_id: &str, settle: &Settlement) -> Result<Settled> {
    // A waitlist offer whose session opened between the read and the write is read again (its
    // expiry then owes `booking.expired`).
    for _ in 0..3 {
        if let Some(settled) = settle_once(db, booking_id, settle).await? {
            return Ok(settled);
        }
    }
    Err(Error::Unavailable("settling a hold: the booking kept changing".into()))
}

/// One read and one transaction → `None` when the booking, still pending, changed in between.
async fn settle_once(db: &DynamoStore, booking_id: &str, settle: &Settlement) -> Result<Option<Settled>> {
    // The read only finds the keys the transaction touches (the guard, the event); the
    // transaction's condition on the status decides.
    let Some(current) = db.get_as::<Booking>(keys::booking(booking_id)).await? else {
        return Ok(Some(Settled::NotFound));
    };
    // The session, amount and currency of a payment never change once the session is attached;
    // the transaction still names the session in its condition.
    if let Some(session) = &settle.session {
        if !current.payment.as_ref().is_some_and(|p| p.is_paid_by(session)) {
            return Ok(Some(Settled::Foreign(current)));
        }
    }
    if current.status != BookingStatus::PendingPayment || current.payment.is_none() {
        return Ok(Some(Settled::Unchanged(current)));
    }
    let mut settled = current.clone();
    settled.status = settle.to;
    if let Some(payment) = settled.payment.as_mut() {
        payment.settled_by = Some(settle.by.clone());
        if settle.payment_intent.is_some() {
            payment.payment_intent = settle.payment_intent.clone();
        }
    }
    let gsk = keys::user_booking_sort(settle.to.listed_as().as_str(), &current.created_at, &current.id);
    let mut update = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::booking(booking_id))))
        .update_expression("SET #st = :to, #gsk = :gsk, #pay.#by = :by, #pay.#pi = :pi")
        .condition_expression("#st = :pending")
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_names("#gsk", keys::GSI1SK)
        .expression_attribute_names("#pay", attr::PAYMENT)
        .expression_attribute_names("#by", attr::SETTLED_BY)
        .expression_attribute_names("#pi", attr::PAYMENT_INTENT)
        .expression_attribute_values(":to", s(settle.to.as_str()))
        .expression_attribute_values(":gsk", s(gsk))
        .expression_attribute_values(":by", s(&settle.by))
        .expression_attribute_values(":pending", pending());
    // An offer announced to the CRM (its session opened) owes `booking.expired`: whether it was
    // is part of the booking as read.
    let announced = current.via_waitlist && current.has_checkout_session();
    if let Some(session) = &settle.session {
        update = update
            .condition_expression("#st = :pending AND #pay.#sid = :sid")
            .expression_attribute_names("#sid", attr::CHECKOUT_SESSION_ID)
            .expression_attribute_values(":sid", s(&session.id));
    } else if current.via_waitlist && !announced {
        update = update
            .condition_expression(
                "#st = :pending AND (attribute_not_exists(#pay.#sid) OR attribute_type(#pay.#sid, :null_type))",
            )
            .expression_attribute_names("#sid", attr::CHECKOUT_SESSION_ID)
            .expression_attribute_values(":null_type", s("NULL"));
    }
    let intent = settled.payment.as_ref().and_then(|p| p.payment_intent.clone());
    update = match intent {
        Some(pi) => update.expression_attribute_values(":pi", s(pi)),
        None => update.expression_attribute_values(":pi", AttributeValue::Null(true)),
    };
    let mut items = vec![
        TransactWriteItem::builder().update(update.build().map_err(Error::internal)?).build(),
        // The hold task, or an offer's `Offer` task if its session never opened.
        delete(db, keys::payment_task(booking_id))?,
    ];
    let outcome = match settle.to {
        BookingStatus::Confirmed => {
            // Paid: now the CRM is owed its webhook (the stream's MODIFY, or the sweeper).
            let put = Put::builder()
                .table_name(&db.table)
                .set_item(Some(Delivery::pending(&settled, settle.now).to_item()?))
                .build()
                .map_err(Error::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
            match db.transact(items, &crate::model::new_id()).await {
                Ok(()) => return Ok(Some(Settled::Changed(settled))),
                Err(TxFailure::Conditions(reasons)) => reasons,
                Err(TxFailure::Failed(e)) => return Err(e),
            }
        }
        BookingStatus::Expired => {
            // The seat (index EXPIRY_SEAT_AT) is freed, or handed to the next in line.
            items.push(delete(db, keys::attendee(&current.event_id, &current.user_id))?);
            if announced {
                let message = Delivery::message(&settled, MessageKind::Expired, settle.now);
                items.push(TransactWriteItem::builder().put(db.put(&message, ABSENT)?).build());
            }
            match waitlist::free_seat(db, &current.event_id, settle.now, None, items, EXPIRY_SEAT_AT).await? {
                waitlist::Freed::Done => return Ok(Some(Settled::Changed(settled))),
                waitlist::Freed::Refused(reasons) => reasons,
            }
        }
        other => return Err(Error::internal(format!("a payment cannot settle a booking as {}", other.as_str()))),
    };
    if failed(&outcome, 0).is_none() {
        return Err(Error::internal("settling a hold: the event has no seat booked"));
    }
    // Settled meanwhile by another event or the sweep: report it as it now is.
    match db.get_as::<Booking>(keys::booking(booking_id)).await? {
        Some(now) if now.status == BookingStatus::PendingPayment => Ok(None),
        Some(now) => Ok(Some(Settled::Unchanged(now))),
        None => Ok(Some(Settled::NotFound)),
    }
}

pub(super) async fn record_refund(
    db: &DynamoStore,
    booking_id: &str,
    refund_id: &str,
    refund_status: &str,
) -> Result<()> {
    // A status that is not an outcome never replaces the outcome of the same refund: the
    // condition, not a read before it, decides (events and sweeps may arrive out of order).
    let progress = !is_final_refund_status(refund_status);
    let mut update = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::booking(booking_id))))
        .update_expression("SET #pay.#rid = :rid, #pay.#rs = :rs")
        .expression_attribute_names("#pay", attr::PAYMENT)
        .expression_attribute_names("#rid", attr::REFUND_ID)
        .expression_attribute_names("#rs", attr::REFUND_STATUS)
        .expression_attribute_values(":rid", s(refund_id))
        .expression_attribute_values(":rs", s(refund_status));
    update = if progress {
        update
            .condition_expression(
                "attribute_exists(#pay) AND NOT (#pay.#rid = :rid AND #pay.#rs IN (:final0, :final1, :final2))",
            )
            .expression_attribute_values(":final0", s(FINAL_REFUND_STATUSES[0]))
            .expression_attribute_values(":final1", s(FINAL_REFUND_STATUSES[1]))
            .expression_attribute_values(":final2", s(FINAL_REFUND_STATUSES[2]))
    } else {
        update.condition_expression("attribute_exists(#pay)")
    };
    let update = update.build().map_err(Error::internal)?;
    // Only a refund task is done, or the expiry of a cancelled hold's session that turned out
    // paid (the refund is its end); a hold task of the same booking cannot exist (a hold is never
    // refunded), but the condition keeps the rule explicit.
    let task = Delete::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::payment_task(booking_id))))
        .condition_expression("attribute_not_exists(PK) OR #kind IN (:refund, :expire)")
        .expression_attribute_names("#kind", attr::KIND)
        .expression_attribute_values(":refund", s("refund"))
        .expression_attribute_values(":expire", s("expire_checkout"))
        .build()
        .map_err(Error::internal)?;
    let items =
        vec![TransactWriteItem::builder().update(update).build(), TransactWriteItem::builder().delete(task).build()];
    match db.transact(items, &crate::model::new_id()).await {
        Ok(()) => Ok(()),
        // Its refund already has an outcome (the booking exists: every caller just read it).
        Err(TxFailure::Conditions(_)) if progress => Ok(()),
        Err(TxFailure::Conditions(_)) => Err(Error::NotFound("booking")),
        Err(TxFailure::Failed(e)) => Err(e),
    }
}

pub(super) async fn drop_payment_task(db: &DynamoStore, booking_id: &str, kind: PaymentTaskKind) -> Result<()> {
    let kind = serde_dynamo::to_attribute_value(kind).map_err(Error::internal)?;
    let result = db
        .client
        .delete_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::payment_task(booking_id))))
        .condition_expression("#kind = :kind")
        .expression_attribute_names("#kind", attr::KIND)
        .expression_attribute_values(":kind", kind)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Ok(()),
        Err(e) => Err(sdk_error("DeleteItem", e)),
    }
}

/// Query GSI1 `GSI1PK = PAY#DUE#<day> AND GSI1SK BETWEEN :from AND :before`, oldest first.
pub(super) async fn due_payment_tasks(db: &DynamoStore, q: &PendingQuery) -> Result<TaskPage> {
    let partition = keys::due_payments(q.day);
    let start = q
        .after
        .as_ref()
        .map(|p| start_key(0, keys::payment_task(&p.id), &partition, keys::due_payment_sort(&p.at, &p.id)));
    let (items, next) = day_bucket_page(db, q, partition, start).await?;
    Ok(TaskPage { items, next })
}
