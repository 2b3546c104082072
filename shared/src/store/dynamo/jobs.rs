//! An event's cancellation (the event update and its job in one transaction) and the lifecycle
//! job's lease, progress and end: every step a conditional write on the job item.

use super::events::{actor_condition, event_after_failure, event_update};
use super::items::{attr, from_item, key_item, s, Entity, Item, EXISTS};
use super::{failed, is_condition_failed, sdk_error, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::{cancel_cutoff, Event, EventStatus, Job, JobKind};
use crate::store::Actor;
use crate::time::{self, Timestamp};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use std::collections::HashMap;

/// The one condition every job write after the claim carries: the caller still holds the lease
/// and the job is still the one it claimed (a newer change rewrites it without a lease).
const HELD: &str = "#lo = :owner AND #rev = :rev AND #kind = :kind";

pub(super) async fn cancel_event(
    db: &DynamoStore,
    id: &str,
    reason: Option<&str>,
    actor: Actor<'_>,
    now: Timestamp,
) -> Result<Event> {
    let mut names = HashMap::from([
        ("#st".to_string(), attr::STATUS.to_string()),
        ("#cat".to_string(), attr::CANCELLED_AT.to_string()),
        ("#upd".to_string(), attr::UPDATED_AT.to_string()),
        ("#dt".to_string(), attr::DATETIME.to_string()),
        ("#g1pk".to_string(), keys::GSI1PK.to_string()),
        ("#g1sk".to_string(), keys::GSI1SK.to_string()),
        ("#g2pk".to_string(), keys::GSI2PK.to_string()),
        ("#g2sk".to_string(), keys::GSI2SK.to_string()),
    ]);
    let mut values: Item = HashMap::from([
        (":cancelled".to_string(), s(EventStatus::Cancelled.as_str())),
        (":now".to_string(), s(time::format(&now))),
        (":cutoff".to_string(), s(time::format(&cancel_cutoff(now)))),
    ]);
    let mut set = "SET #st = :cancelled, #cat = :now, #upd = :now".to_string();
    if let Some(reason) = reason {
        names.insert("#cr".into(), attr::CANCEL_REASON.into());
        values.insert(":reason".into(), s(reason));
        set.push_str(", #cr = :reason");
    }
    // Out of `GET /events/` (GSI1) and `/events/filter` (GSI2): the index entries go.
    let expression = format!("{set} REMOVE #g1pk, #g1sk, #g2pk, #g2sk");
    // `Event::may_cancel_at` as a condition: not cancelled yet, not started.
    let condition = format!(
        "{EXISTS}{} AND (attribute_not_exists(#st) OR #st <> :cancelled) AND #dt > :cutoff",
        actor_condition(actor, &mut names, &mut values)
    );
    crate::limits::check_values(&values)?;
    let update = event_update(db, id, expression, condition, names, values)?;
    // Replaces a reschedule job still running: the cancel supersedes it.
    let job = Job::new(id, JobKind::Cancel, 0, now);
    let put = Put::builder().table_name(&db.table).set_item(Some(job.to_item()?)).build().map_err(Error::internal)?;
    let items =
        vec![TransactWriteItem::builder().update(update).build(), TransactWriteItem::builder().put(put).build()];
    match db.transact(items, &crate::model::new_id()).await {
        Ok(()) => {}
        Err(TxFailure::Failed(e)) => return Err(e),
        Err(TxFailure::Conditions(reasons)) => {
            let returned = failed(&reasons, 0).cloned().flatten();
            return Err(match event_after_failure(db, returned, id).await? {
                None => Error::NotFound("event"),
                Some(event) => actor
                    .check(&event)
                    .and_then(|()| event.may_cancel_at(now))
                    .err()
                    .unwrap_or_else(|| Error::internal("the cancel condition failed for a cancellable event")),
            });
        }
    }
    // The answer shows the event as committed (seats still to free included).
    db.get_as(keys::event(id)).await?.ok_or(Error::NotFound("event"))
}

/// The job update a reschedule writes in its transaction: a new job, or a reschedule job
/// restarted from the beginning of the index with its revision raised (a worker holding the old
/// one loses it: its lease is removed). It replaces a promote job (its batches promote too), never
/// a cancel job.
pub(super) fn reschedule_job(db: &DynamoStore, event_id: &str, now: Timestamp) -> Result<Update> {
    let now_text = s(time::format(&now));
    Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::job(event_id))))
        .update_expression(
            "SET #entity = :entity, #eid = :eid, #kind = :kind, #changed = :now, #pass = :now, #due = :now, \
             #passes = :zero, #g1pk = :jobs, #g1sk = :sort REMOVE #cur, #lo, #lu ADD #rev :one",
        )
        .condition_expression("attribute_not_exists(PK) OR #kind IN (:kind, :promote)")
        .expression_attribute_names("#entity", keys::ENTITY)
        .expression_attribute_names("#eid", "event_id")
        .expression_attribute_names("#kind", attr::KIND)
        .expression_attribute_names("#changed", "changed_at")
        .expression_attribute_names("#pass", attr::PASS_STARTED_AT)
        .expression_attribute_names("#due", attr::DUE_AT)
        .expression_attribute_names("#passes", attr::PASSES)
        .expression_attribute_names("#g1pk", keys::GSI1PK)
        .expression_attribute_names("#g1sk", keys::GSI1SK)
        .expression_attribute_names("#cur", attr::CURSOR)
        .expression_attribute_names("#lo", attr::LEASE_OWNER)
        .expression_attribute_names("#lu", attr::LEASE_UNTIL)
        .expression_attribute_names("#rev", attr::REVISION)
        .expression_attribute_values(":entity", s(keys::entity::JOB))
        .expression_attribute_values(":eid", s(event_id))
        .expression_attribute_values(":kind", s(kind_name(JobKind::Reschedule)))
        .expression_attribute_values(":promote", s(kind_name(JobKind::Promote)))
        .expression_attribute_values(":now", now_text)
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .expression_attribute_values(":jobs", s(keys::JOBS))
        .expression_attribute_values(":sort", s(keys::job_sort(&now, event_id)))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
        .map_err(Error::internal)
}

pub(super) async fn get_job(db: &DynamoStore, event_id: &str) -> Result<Option<Job>> {
    db.get_as(keys::job(event_id)).await
}

pub(super) async fn claim_job(
    db: &DynamoStore,
    event_id: &str,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<Job>> {
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::job(event_id))))
        .update_expression("SET #lo = :owner, #lu = :until")
        .condition_expression(format!("{EXISTS} AND (attribute_not_exists(#lo) OR #lu <= :now)"))
        .expression_attribute_names("#lo", attr::LEASE_OWNER)
        .expression_attribute_names("#lu", attr::LEASE_UNTIL)
        .expression_attribute_values(":owner", s(owner))
        .expression_attribute_values(":until", s(time::format(&until)))
        .expression_attribute_values(":now", s(time::format(&now)))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match result {
        Ok(out) => Ok(Some(from_item(out.attributes.unwrap_or_default())?)),
        Err(e) if is_condition_failed(&e) => Ok(None),
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
}

fn held_values(job: &Job, owner: &str) -> Item {
    HashMap::from([
        (":owner".to_string(), s(owner)),
        (":rev".to_string(), AttributeValue::N(job.revision.to_string())),
        (":kind".to_string(), s(kind_name(job.kind))),
    ])
}

fn held_names() -> HashMap<String, String> {
    HashMap::from([
        ("#lo".to_string(), attr::LEASE_OWNER.to_string()),
        ("#rev".to_string(), attr::REVISION.to_string()),
        ("#kind".to_string(), attr::KIND.to_string()),
    ])
}

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Cancel => "cancel",
        JobKind::Reschedule => "reschedule",
        JobKind::Promote => "promote",
    }
}

/// The job's progress (`cursor`, `pass_started_at`, `due_at`, `passes`) written and its lease
/// released, in one conditional update; its MODIFY (without a lease) starts the next batch.
pub(super) async fn save_job(db: &DynamoStore, job: &Job, owner: &str) -> Result<bool> {
    let mut names = held_names();
    let mut values = held_values(job, owner);
    for (k, v) in [
        ("#lu", attr::LEASE_UNTIL),
        ("#cur", attr::CURSOR),
        ("#pass", attr::PASS_STARTED_AT),
        ("#due", attr::DUE_AT),
        ("#passes", attr::PASSES),
        ("#gsk", keys::GSI1SK),
    ] {
        names.insert(k.into(), v.into());
    }
    values.insert(":pass".into(), s(time::format(&job.pass_started_at)));
    values.insert(":due".into(), s(time::format(&job.due_at)));
    values.insert(":passes".into(), AttributeValue::N(job.passes.to_string()));
    values.insert(":gsk".into(), s(keys::job_sort(&job.due_at, &job.event_id)));
    let mut set = "SET #pass = :pass, #due = :due, #passes = :passes, #gsk = :gsk".to_string();
    let mut remove = "REMOVE #lo, #lu".to_string();
    match &job.cursor {
        Some(cursor) => {
            values.insert(":cur".into(), s(cursor));
            set.push_str(", #cur = :cur");
        }
        None => remove.push_str(", #cur"),
    }
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::job(&job.event_id))))
        .update_expression(format!("{set} {remove}"))
        .condition_expression(HELD)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
}

/// The job's work is done: its item deleted while the caller holds it and it is unchanged.
pub(super) async fn finish_job(db: &DynamoStore, job: &Job, owner: &str) -> Result<bool> {
    let result = db
        .client
        .delete_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::job(&job.event_id))))
        .condition_expression(HELD)
        .set_expression_attribute_names(Some(held_names()))
        .set_expression_attribute_values(Some(held_values(job, owner)))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(sdk_error("DeleteItem", e)),
    }
}

/// Jobs due by `now`, oldest first, from the `JOBS` partition of GSI1 (eventually consistent:
/// the claim decides). One Query.
pub(super) async fn due_jobs(db: &DynamoStore, now: Timestamp, limit: usize) -> Result<Vec<Job>> {
    let out = db
        .client
        .query()
        .table_name(&db.table)
        .index_name(keys::GSI1)
        .key_condition_expression("#pk = :pk AND #sk <= :hi")
        .expression_attribute_names("#pk", keys::GSI1PK)
        .expression_attribute_names("#sk", keys::GSI1SK)
        .expression_attribute_values(":pk", s(keys::JOBS))
        .expression_attribute_values(":hi", s(format!("{}#~", time::format(&now))))
        .scan_index_forward(true)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| sdk_error("Query", e))?;
    out.items.unwrap_or_default().into_iter().map(from_item).collect()
}
