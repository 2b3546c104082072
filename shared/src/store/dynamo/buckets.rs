//! Day-bucketed GSI1 partitions (the pending CRM deliveries, the due payment tasks): one page
//! of one bucket per call.

use super::items::{self, from_item};
use super::{sdk_error, DynamoStore};
use crate::error::Result;
use crate::store::{PendingQuery, Position};
use serde::de::DeserializeOwned;

/// One page of a day-bucketed GSI1 partition (the pending CRM deliveries, the due payment
/// tasks): sort keys `<time>#<id>` in `[q.from, q.before]`, oldest first, from `start` (the
/// previous page's last key). An empty or reversed range is no call at all: DynamoDB refuses
/// `BETWEEN` with its bounds reversed.
pub(super) async fn day_bucket_page<T: DeserializeOwned>(
    db: &DynamoStore,
    q: &PendingQuery,
    partition: String,
    start: Option<items::Item>,
) -> Result<(Vec<T>, Option<Position>)> {
    if q.from >= q.before {
        return Ok((Vec::new(), None));
    }
    let out = db
        .client
        .query()
        .table_name(&db.table)
        .index_name(crate::keys::GSI1)
        .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :before")
        .expression_attribute_names("#pk", crate::keys::GSI1PK)
        .expression_attribute_names("#sk", crate::keys::GSI1SK)
        .expression_attribute_values(":pk", items::s(partition))
        .expression_attribute_values(":from", items::s(crate::time::format(&q.from)))
        .expression_attribute_values(":before", items::s(crate::time::format(&q.before)))
        .scan_index_forward(true)
        .limit(i32::try_from(q.limit.max(1)).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| sdk_error("Query", e))?;
    let items = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_>>()?;
    let next = out.last_evaluated_key.as_ref().and_then(|k| items::position_of(0, k));
    Ok((items, next))
}
