//! CRM message records, in their booking's item collection, and the sparse pending index on GSI1
//! (`CRM#PENDING#<day>` / `<booked_at>#<message id>`, [`keys::pending_message_id`]) that holds
//! them until the CRM has answered for good.

use super::items::{
    attr, from_item, key_item, n, pending_delivery_index_attrs, s, start_key, tag, Entity, Item, ABSENT,
};
use super::{day_bucket_page, is_condition_failed, sdk_error, DynamoStore};
use crate::error::{Error, Result};
use crate::keys::{self, entity};
use crate::model::{Booking, Delivery, DeliveryStatus, MessageKind};
use crate::store::{possible_messages, BookingMessages, Claim, Claimed, PendingPage, PendingQuery};
use crate::time;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

pub(super) async fn get_delivery(db: &DynamoStore, booking_id: &str) -> Result<Option<Delivery>> {
    db.get_as(keys::delivery(booking_id)).await
}

pub(super) async fn get_deliveries(db: &DynamoStore, booking_ids: &[String]) -> Result<Vec<Delivery>> {
    if booking_ids.is_empty() {
        return Ok(Vec::new());
    }
    let items = db.batch_get(booking_ids.iter().map(|id| keys::delivery(id)).collect()).await?;
    items.into_iter().map(from_item).collect()
}

fn status(st: DeliveryStatus) -> aws_sdk_dynamodb::types::AttributeValue {
    s(st.as_str())
}

/// UpdateItem of the message's own item: SET the lease (and whatever a record from before the
/// index lacks), ADD one attempt, if `(it exists, or it is a booking.confirmed record) AND
/// (status is pending/retrying AND the lease, if any, ended)`. The new record comes back on
/// success, the old one on failure (`ALL_OLD`), so one call answers won / final / busy.
pub(super) async fn claim_message(db: &DynamoStore, message: &Delivery, claim: &Claim<'_>) -> Result<Claimed> {
    let booked_at = message.booked_at.unwrap_or(claim.now);
    let [(gpk_name, gpk), (gsk_name, gsk)] = pending_delivery_index_attrs(&message.pending_id(), &booked_at);
    let now = time::format(&claim.now);
    // Only a confirmation may be created by its claim (bookings from before the records); any
    // other message exists from the write that owed it (a missing `status` fails the rest).
    let claimable = "(#st = :pending OR #st = :retrying) AND (attribute_not_exists(#lu) OR #lu <= :now)";
    let condition = if message.kind == MessageKind::Confirmed {
        format!("{ABSENT} OR ({claimable})")
    } else {
        claimable.to_string()
    };
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(message.key())))
        .update_expression(
            "SET #entity = :entity, #bid = :bid, #kind = if_not_exists(#kind, :kind), \
             #seq = if_not_exists(#seq, :seq), #st = if_not_exists(#st, :pending), \
             #bat = if_not_exists(#bat, :bat), #gpk = :gpk, #gsk = :gsk, #lu = :until, #lo = :owner, \
             #upd = :now ADD #att :one",
        )
        .condition_expression(condition)
        .expression_attribute_names("#entity", keys::ENTITY)
        .expression_attribute_names("#bid", attr::BOOKING_ID)
        .expression_attribute_names("#kind", attr::KIND)
        .expression_attribute_names("#seq", attr::SEQ)
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_names("#bat", attr::BOOKED_AT)
        .expression_attribute_names("#gpk", gpk_name)
        .expression_attribute_names("#gsk", gsk_name)
        .expression_attribute_names("#lu", attr::LEASE_UNTIL)
        .expression_attribute_names("#lo", attr::LEASE_OWNER)
        .expression_attribute_names("#upd", attr::UPDATED_AT)
        .expression_attribute_names("#att", attr::ATTEMPTS)
        .expression_attribute_values(":entity", s(entity::DELIVERY))
        .expression_attribute_values(":bid", s(&message.booking_id))
        .expression_attribute_values(":kind", s(serde_kind(message.kind)?))
        .expression_attribute_values(":seq", n(message.seq))
        .expression_attribute_values(":pending", status(DeliveryStatus::Pending))
        .expression_attribute_values(":retrying", status(DeliveryStatus::Retrying))
        .expression_attribute_values(":bat", s(time::format(&booked_at)))
        .expression_attribute_values(":gpk", s(gpk))
        .expression_attribute_values(":gsk", s(gsk))
        .expression_attribute_values(":until", s(time::format(&claim.until)))
        .expression_attribute_values(":owner", s(claim.owner))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":one", n(1))
        .return_values(ReturnValue::AllNew)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(out) => Ok(Claimed::Won(from_item(out.attributes.unwrap_or_default())?)),
        Err(e) if is_condition_failed(&e) => {
            let old: Option<Item> = match e.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                _ => None,
            };
            // DynamoDB returns the old item; read it if an implementation does not.
            let current = match old.filter(|item| !item.is_empty()) {
                Some(item) => from_item(item)?,
                None => db
                    .get_as(message.key())
                    .await?
                    .ok_or_else(|| Error::internal("message claim refused for a record that does not exist"))?,
            };
            Ok(Claimed::refused(current, claim.now))
        }
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
}

/// The message kind as serde stores it in the record.
fn serde_kind(kind: MessageKind) -> Result<String> {
    match serde_json::to_value(kind).map_err(Error::internal)? {
        serde_json::Value::String(text) => Ok(text),
        other => Err(Error::internal(format!("message kind serialised as {other}"))),
    }
}

/// One strongly consistent Query of the booking's item collection, `SK BETWEEN BOOKING AND
/// DELIVERY#~`: the booking and its message records, not its payment task. Paged, although a
/// booking's messages fit one page by far (a reschedule's record is well under 1 KB).
pub(super) async fn booking_messages(db: &DynamoStore, booking_id: &str) -> Result<BookingMessages> {
    let (pk, _) = keys::booking(booking_id);
    let mut found = BookingMessages::default();
    let mut start = None;
    loop {
        let out = db
            .client
            .query()
            .table_name(&db.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":first", s(keys::MESSAGES_START))
            .expression_attribute_values(":last", s(keys::MESSAGES_END))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        for item in out.items.unwrap_or_default() {
            match tag(&item) {
                Some(entity::BOOKING) => found.booking = Some(from_item(item)?),
                Some(entity::DELIVERY) => found.messages.push(from_item(item)?),
                _ => {}
            }
        }
        match out.last_evaluated_key.filter(|k| !k.is_empty()) {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    found.messages.sort_by_key(Delivery::send_order);
    Ok(found)
}

/// BatchGetItem of every key the bookings' messages can have ([`possible_messages`]).
pub(super) async fn get_messages(db: &DynamoStore, bookings: &[Booking]) -> Result<Vec<Delivery>> {
    let keys: Vec<_> = bookings
        .iter()
        .flat_map(|b| possible_messages(b).into_iter().map(|(kind, seq)| keys::message(&b.id, kind, seq)))
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: Vec<Delivery> = db.batch_get(keys).await?.into_iter().map(from_item).collect::<Result<_>>()?;
    found.sort_by(|a, b| (&a.booking_id, a.send_order()).cmp(&(&b.booking_id, b.send_order())));
    Ok(found)
}

/// PutItem of the whole record: a final one carries no index attributes (it leaves the pending
/// index) and is written unless the record says delivered; a retrying one only by the lease holder.
pub(super) async fn finish_delivery(db: &DynamoStore, delivery: &Delivery, owner: &str) -> Result<bool> {
    let put = db.client.put_item().table_name(&db.table).set_item(Some(delivery.to_item()?));
    let put = if delivery.status.is_final() {
        put.condition_expression(format!("{ABSENT} OR #st <> :delivered"))
            .expression_attribute_names("#st", attr::STATUS)
            .expression_attribute_values(":delivered", status(DeliveryStatus::Delivered))
    } else {
        put.condition_expression("#lo = :owner")
            .expression_attribute_names("#lo", attr::LEASE_OWNER)
            .expression_attribute_values(":owner", s(owner))
    };
    match put.send().await {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(sdk_error("PutItem", e)),
    }
}

/// Query GSI1 `GSI1PK = CRM#PENDING#<day> AND GSI1SK BETWEEN :from AND :before`, oldest first.
/// `:before` is a bare timestamp: every `<before>#<id>` sorts after it, so the range excludes it.
pub(super) async fn pending_deliveries(db: &DynamoStore, q: &PendingQuery) -> Result<PendingPage> {
    let partition = keys::pending_deliveries(q.day);
    let start = q
        .after
        .as_ref()
        .map(|p| start_key(0, keys::pending_message_key(&p.id), &partition, keys::pending_delivery_sort(&p.at, &p.id)));
    let (items, next) = day_bucket_page(db, q, partition, start).await?;
    Ok(PendingPage { items, next })
}
