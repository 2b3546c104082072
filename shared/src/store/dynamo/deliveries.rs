//! CRM delivery records, in their booking's item collection, and the sparse pending index on GSI1
//! (`CRM#PENDING#<day>` / `<booked_at>#<booking_id>`) that holds them until the CRM has answered
//! for good.

use super::items::{attr, from_item, key_item, n, pending_delivery_index_attrs, s, start_key, Entity, Item, ABSENT};
use super::{day_bucket_page, is_condition_failed, sdk_error, DynamoStore};
use crate::error::{Error, Result};
use crate::keys::{self, entity};
use crate::model::{Booking, Delivery, DeliveryStatus};
use crate::store::{Claim, Claimed, PendingPage, PendingQuery};
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

/// UpdateItem: SET the lease (and whatever a record from before the index lacks), ADD one
/// attempt, if `attribute_not_exists(PK) OR (status is pending/retrying AND the lease, if any,
/// ended)`. The new record comes back on success, the old one on failure (`ALL_OLD`), so one call
/// answers won / final / busy.
pub(super) async fn claim_delivery(db: &DynamoStore, booking: &Booking, claim: &Claim<'_>) -> Result<Claimed> {
    let [(gpk_name, gpk), (gsk_name, gsk)] = pending_delivery_index_attrs(&booking.id, &booking.created_at);
    let now = time::format(&claim.now);
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::delivery(&booking.id))))
        .update_expression(
            "SET #entity = :entity, #bid = :bid, #st = if_not_exists(#st, :pending), \
             #bat = if_not_exists(#bat, :bat), #gpk = :gpk, #gsk = :gsk, #lu = :until, #lo = :owner, \
             #upd = :now ADD #att :one",
        )
        .condition_expression(format!(
            "{ABSENT} OR ((#st = :pending OR #st = :retrying) AND (attribute_not_exists(#lu) OR #lu <= :now))"
        ))
        .expression_attribute_names("#entity", keys::ENTITY)
        .expression_attribute_names("#bid", attr::BOOKING_ID)
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_names("#bat", attr::BOOKED_AT)
        .expression_attribute_names("#gpk", gpk_name)
        .expression_attribute_names("#gsk", gsk_name)
        .expression_attribute_names("#lu", attr::LEASE_UNTIL)
        .expression_attribute_names("#lo", attr::LEASE_OWNER)
        .expression_attribute_names("#upd", attr::UPDATED_AT)
        .expression_attribute_names("#att", attr::ATTEMPTS)
        .expression_attribute_values(":entity", s(entity::DELIVERY))
        .expression_attribute_values(":bid", s(&booking.id))
        .expression_attribute_values(":pending", status(DeliveryStatus::Pending))
        .expression_attribute_values(":retrying", status(DeliveryStatus::Retrying))
        .expression_attribute_values(":bat", s(time::format(&booking.created_at)))
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
                None => get_delivery(db, &booking.id)
                    .await?
                    .ok_or_else(|| Error::internal("delivery claim refused for a record that does not exist"))?,
            };
            Ok(Claimed::refused(current, claim.now))
        }
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
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
        .map(|p| start_key(0, keys::delivery(&p.id), &partition, keys::pending_delivery_sort(&p.at, &p.id)));
    let (items, next) = day_bucket_page(db, q, partition, start).await?;
    Ok(PendingPage { items, next })
}
