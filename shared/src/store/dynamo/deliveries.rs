//! CRM delivery records, in their booking's item collection.

use super::items::{attr, from_item, Entity, ABSENT};
use super::{is_condition_failed, sdk_error, DynamoStore};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::{Delivery, DeliveryStatus};

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

pub(super) async fn put_delivery(db: &DynamoStore, delivery: &Delivery) -> Result<bool> {
    let delivered = serde_dynamo::to_attribute_value(DeliveryStatus::Delivered).map_err(Error::internal)?;
    let result = db
        .client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(delivery.to_item()?))
        .condition_expression(format!("{ABSENT} OR #st <> :delivered"))
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_values(":delivered", delivered)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(sdk_error("PutItem", e)),
    }
}
