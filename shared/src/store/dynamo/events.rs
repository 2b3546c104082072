//! Events: one item each, listed through GSI1 (all events by time) and GSI2 (one type's).

use super::items::{
    attr, event_index_attrs, from_item, key_item, n, position_of, s, start_key, Entity, Item, ABSENT, EXISTS,
};
use super::{failed, is_condition_failed, sdk_error, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::{cancel_cutoff, Event, EventPatch, EventStatus};
use crate::store::{Actor, EventPage, EventQuery, Position, MAX_EVALUATED_PER_PAGE};
use crate::time::{self, Timestamp};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) async fn create_event(db: &DynamoStore, event: &Event) -> Result<()> {
    let result = db
        .client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(event.to_item()?))
        .condition_expression(ABSENT)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Err(Error::internal(format!("event {} already exists", event.id))),
        Err(e) => Err(sdk_error("PutItem", e)),
    }
}

pub(super) async fn get_event(db: &DynamoStore, id: &str) -> Result<Option<Event>> {
    db.get_as(keys::event(id)).await
}

pub(super) async fn get_events(db: &DynamoStore, ids: &[String]) -> Result<Vec<Event>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let items = db.batch_get(ids.iter().map(|id| keys::event(id)).collect()).await?;
    items.into_iter().map(from_item).collect()
}

pub(super) async fn update_event(
    db: &DynamoStore,
    id: &str,
    patch: &EventPatch,
    actor: Actor<'_>,
    now: Timestamp,
) -> Result<Event> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut values: Item = HashMap::new();
    let (mut set, mut remove) = (Vec::new(), Vec::new());
    let mut assign = |name: &str, value: Option<AttributeValue>| {
        names.insert(format!("#{name}"), name.to_string());
        match value {
            Some(v) => {
                values.insert(format!(":{name}"), v);
                set.push(format!("#{name} = :{name}"));
            }
            None => remove.push(format!("#{name}")),
        }
    };
    // The patch's own list of changes, then the index keys that follow from them.
    for (name, value) in patch.changes() {
        assign(name, value.map(serde_dynamo::to_attribute_value).transpose().map_err(Error::internal)?);
    }
    for (name, value) in event_index_attrs(id, patch.datetime.as_ref(), patch.event_type.as_deref()) {
        assign(name, Some(s(value)));
    }
    assign("updated_at", Some(s(time::format(&now))));
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    let mut condition = EXISTS.to_string();
    condition.push_str(&actor_condition(actor, &mut names, &mut values));
    // `Event::may_change`: a cancelled event stays as it was cancelled.
    names.insert("#st".into(), attr::STATUS.into());
    values.insert(":cancelled".into(), s(EventStatus::Cancelled.as_str()));
    condition.push_str(" AND (attribute_not_exists(#st) OR #st <> :cancelled)");
    if let Some(Some(cap)) = patch.capacity {
        names.insert("#seats".into(), attr::SEATS_BOOKED.into());
        values.insert(":newcap".into(), n(cap));
        condition.push_str(" AND (attribute_not_exists(#seats) OR #seats <= :newcap)");
    }
    // `Event::may_reschedule_to`: into the past only without bookings.
    if patch.datetime.is_some_and(|start| start <= cancel_cutoff(now)) {
        names.insert("#seats".into(), attr::SEATS_BOOKED.into());
        values.insert(":zero".into(), n(0));
        condition.push_str(" AND (attribute_not_exists(#seats) OR #seats = :zero)");
    }
    crate::limits::check_values(&values)?;
    let rule = |e: &Event| {
        e.may_change()?;
        patch.datetime.map_or(Ok(()), |start| e.may_reschedule_to(start, now))
    };
    if patch.reschedules() {
        names.insert("#revision".into(), attr::REVISION.into());
        values.insert(":one".into(), n(1));
        expression.push_str(" ADD #revision :one");
        let update = event_update(db, id, expression, condition, names, values)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().update(super::jobs::reschedule_job(db, id, now)?).build(),
        ];
        return match db.transact(items, &crate::model::new_id()).await {
            // The answer shows the event as committed (its new revision included).
            Ok(()) => db.get_as(keys::event(id)).await?.ok_or(Error::NotFound("event")),
            Err(TxFailure::Failed(e)) => Err(e),
            Err(TxFailure::Conditions(reasons)) => {
                let old = failed(&reasons, 0).cloned().flatten();
                Err(explain_event_write(db, old, id, actor, &rule, Error::CapacityBelowBooked).await)
            }
        };
    }
    // A capacity increase while users wait frees seats that are theirs: the promote job is
    // written in the same transaction. The common PATCH pays for nothing more than a condition:
    // the update first goes out on condition that it promotes nobody, and only its refusal for
    // that reason sends the transaction.
    let plain = (condition.clone(), names.clone(), values.clone());
    if let Some(new_capacity) = patch.capacity {
        names.insert("#wlc".into(), attr::WAITLIST_COUNT.into());
        names.insert("#wlcap".into(), attr::CAPACITY.into());
        values.insert(":wlzero".into(), n(0));
        let not_raised = match new_capacity {
            Some(cap) => {
                values.insert(":wlnewcap".into(), n(cap));
                "attribute_not_exists(#wlcap) OR #wlcap >= :wlnewcap"
            }
            None => "attribute_not_exists(#wlcap)",
        };
        condition.push_str(&format!(" AND (attribute_not_exists(#wlc) OR #wlc = :wlzero OR {not_raised})"));
    }
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(id))))
        .update_expression(expression.clone())
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names.clone()))
        .set_expression_attribute_values(Some(values.clone()))
        .return_values(ReturnValue::AllNew)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let old = match result {
        Ok(out) => return from_item(out.attributes.unwrap_or_default()),
        Err(e) if is_condition_failed(&e) => match e.into_service_error() {
            UpdateItemError::ConditionalCheckFailedException(c) => c.item,
            _ => None,
        },
        Err(e) => return Err(sdk_error("UpdateItem", e)),
    };
    let raised_with_waiters = match (event_after_failure(db, old.clone(), id).await?, patch.capacity) {
        (Some(e), Some(new_capacity)) => {
            let allowed =
                actor.check(&e).and_then(|()| rule(&e)).is_ok() && new_capacity.is_none_or(|cap| e.seats_booked <= cap);
            let raised = match (e.capacity, new_capacity) {
                (Some(old), Some(new)) => new > old,
                (Some(_), None) => true,
                (None, _) => false,
            };
            allowed && raised && e.waitlist_count > 0
        }
        _ => false,
    };
    if !raised_with_waiters {
        return Err(explain_event_write(db, old, id, actor, &rule, Error::CapacityBelowBooked).await);
    }
    let (plain_condition, plain_names, plain_values) = plain;
    let update = event_update(db, id, expression, plain_condition, plain_names, plain_values)?;
    // The job may replace a promote job (a worker holding it loses it), never a reschedule job
    // (whose batches promote too) or a cancel job (the event's update then fails anyway).
    let job = crate::model::Job::new(id, crate::model::JobKind::Promote, 0, now);
    let job = aws_sdk_dynamodb::types::Put::builder()
        .table_name(&db.table)
        .set_item(Some(job.to_item()?))
        .condition_expression("attribute_not_exists(PK) OR #kind = :promote")
        .expression_attribute_names("#kind", attr::KIND)
        .expression_attribute_values(":promote", s("promote"))
        .build()
        .map_err(Error::internal)?;
    let mut items =
        vec![TransactWriteItem::builder().update(update).build(), TransactWriteItem::builder().put(job).build()];
    for _ in 0..2 {
        match db.transact(items.clone(), &crate::model::new_id()).await {
            Ok(()) => return db.get_as(keys::event(id)).await?.ok_or(Error::NotFound("event")),
            Err(TxFailure::Failed(e)) => return Err(e),
            Err(TxFailure::Conditions(reasons)) => {
                if let Some(returned) = failed(&reasons, 0) {
                    return Err(explain_event_write(
                        db,
                        returned.clone(),
                        id,
                        actor,
                        &rule,
                        Error::CapacityBelowBooked,
                    )
                    .await);
                }
                // Another job of the event runs (a reschedule's promotes): the update alone.
                items.truncate(1);
            }
        }
    }
    Err(Error::internal("update_event: the job condition failed without a job"))
}

pub(super) async fn delete_event(db: &DynamoStore, id: &str, actor: Actor<'_>) -> Result<()> {
    let mut names = HashMap::from([("#seats".to_string(), attr::SEATS_BOOKED.to_string())]);
    let mut values: Item = HashMap::from([(":zero".to_string(), n(0))]);
    // Nor while users wait: their entries live in the event's partition (a cancelled event's
    // job clears them first).
    names.insert("#wl".into(), attr::WAITLIST_COUNT.into());
    let condition = format!(
        "{EXISTS}{} AND (attribute_not_exists(#seats) OR #seats = :zero) AND (attribute_not_exists(#wl) OR #wl = :zero)",
        actor_condition(actor, &mut names, &mut values)
    );
    let result = db
        .client
        .delete_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(id))))
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => {
            let old = match e.into_service_error() {
                DeleteItemError::ConditionalCheckFailedException(c) => c.item,
                _ => None,
            };
            Err(explain_event_write(db, old, id, actor, &|_| Ok(()), Error::EventHasBookings).await)
        }
        Err(e) => Err(sdk_error("DeleteItem", e)),
    }
}

/// One page of an event list: index queries until the page holds `limit` events (and whether
/// more remain is known), the index ends, or [`MAX_EVALUATED_PER_PAGE`] entries were evaluated.
/// Without a rating filter that is one query of `limit + 1`; with one, queries grow (at least
/// 100 entries, then doubling) so a sparse filter costs at most four calls.
pub(super) async fn list_events(db: &DynamoStore, q: &EventQuery) -> Result<EventPage> {
    let (ix, index, partition) = match &q.event_type {
        Some(t) => (1, keys::GSI2, keys::event_type(t)),
        None => (0, keys::GSI1, keys::ALL_EVENTS.to_string()),
    };
    let (pk_attr, sk_attr) = [(keys::GSI1PK, keys::GSI1SK), (keys::GSI2PK, keys::GSI2SK)][ix];
    // Every sort key starts with a year's four digits and ends before "~".
    let lo = q.from.map(|t| time::format(&t)).unwrap_or_else(|| "0".into());
    let hi = q.to.map(|t| format!("{}#~", time::format(&t))).unwrap_or_else(|| "~".into());
    if let Some(min) = q.min_rating {
        crate::limits::check_number(attr::RATING, &min.to_string())?;
    }
    let mut start =
        q.after.as_ref().map(|p| start_key(ix, keys::event(&p.id), &partition, keys::event_sort(&p.at, &p.id)));
    // A filter may match few entries: start with a larger first query so a sparse page costs at
    // most four calls (100 + 200 + 400 + 300 entries) whatever the limit.
    let first = if q.min_rating.is_some() { (q.limit + 1).max(100) } else { q.limit + 1 };
    let (mut items, mut evaluated, mut chunk) = (Vec::<Arc<Event>>::new(), 0usize, first);
    loop {
        let budget = MAX_EVALUATED_PER_PAGE.saturating_sub(evaluated).max(1);
        let mut request = db
            .client
            .query()
            .table_name(&db.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_names("#sk", sk_attr)
            .expression_attribute_values(":pk", s(&partition))
            .expression_attribute_values(":lo", s(&lo))
            .expression_attribute_values(":hi", s(&hi))
            .scan_index_forward(true)
            .limit(i32::try_from(chunk.min(budget)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.take());
        if let Some(min) = q.min_rating {
            request = request
                .filter_expression("#rating >= :min")
                .expression_attribute_names("#rating", attr::RATING)
                .expression_attribute_values(":min", n(min));
        }
        let out = request.send().await.map_err(|e| sdk_error("Query", e))?;
        evaluated += usize::try_from(out.scanned_count).unwrap_or_default();
        for item in out.items.unwrap_or_default() {
            items.push(Arc::new(from_item::<Event>(item)?));
        }
        if items.len() > q.limit {
            items.truncate(q.limit);
            let next = items.last().map(|e| Position::of_event(e));
            return Ok(EventPage { items, next });
        }
        match out.last_evaluated_key {
            None => return Ok(EventPage { items, next: None }),
            Some(last) if evaluated >= MAX_EVALUATED_PER_PAGE => {
                return Ok(EventPage { items, next: position_of(ix, &last) });
            }
            Some(last) => start = Some(last),
        }
        chunk *= 2;
    }
}

/// The event as it is now, from the item DynamoDB returned with the failed condition or, when
/// it returned none, from a fresh read: only failure paths pay for this read.
pub(super) async fn event_after_failure(db: &DynamoStore, returned: Option<Item>, id: &str) -> Result<Option<Event>> {
    match returned.filter(|item| !item.is_empty()) {
        Some(item) => Ok(Some(from_item(item)?)),
        None => db.get_as(keys::event(id)).await,
    }
}

/// Why a conditional write of an event failed: it is gone (404), the actor may not change it
/// (403), it breaks `rule` (a cancelled event: 409), or else the write's own condition
/// (`otherwise`) was broken.
pub(super) async fn explain_event_write(
    db: &DynamoStore,
    returned: Option<Item>,
    id: &str,
    actor: Actor<'_>,
    rule: &(dyn Fn(&Event) -> Result<()> + Sync),
    otherwise: Error,
) -> Error {
    match event_after_failure(db, returned, id).await {
        Ok(None) => Error::NotFound("event"),
        Ok(Some(event)) => actor.check(&event).and_then(|()| rule(&event)).err().unwrap_or(otherwise),
        Err(e) => e,
    }
}

/// The conditional update of the event's item inside a transaction. A refusal returns the item
/// as it was, so its cause is explained without another read ([`event_after_failure`]).
pub(super) fn event_update(
    db: &DynamoStore,
    id: &str,
    expression: String,
    condition: String,
    names: HashMap<String, String>,
    values: Item,
) -> Result<Update> {
    Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(id))))
        .update_expression(expression)
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(Error::internal)
}

pub(super) fn actor_condition(actor: Actor<'_>, names: &mut HashMap<String, String>, values: &mut Item) -> String {
    match actor {
        Actor::Admin => String::new(),
        Actor::Owner(id) => {
            names.insert("#owner".into(), attr::OWNER_ID.into());
            values.insert(":owner".into(), s(id));
            " AND #owner = :owner".into()
        }
    }
}
