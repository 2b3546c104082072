//! Waitlists: joining, leaving, reading the line, clearing a cancelled event's line, and (in
//! `handoff`) the promotions, inside the write that frees a seat or in batches of
//! [`PROMOTIONS_PER_WRITE`](crate::store::PROMOTIONS_PER_WRITE). Layout in docs/data-model.md:
//! an entry `EVENT#<e>`/`WAIT#<joined_at>#<user>` (GSI1: the user's `waiting#…`), the user's
//! attendee guard with entity `waiting`, and `waitlist_count` on the event item, which every
//! join, leave, promotion and clear changes in the same transaction.

mod handoff;

pub(super) use handoff::{free_seat, promote_waitlist, with_nobody_waits, Freed, NOBODY_WAITS};

use super::items::{attr, from_item, key_item, n, s, tag, Entity, Item, WaitingGuard, ABSENT, EXISTS};
use super::{events, failed, sdk_error, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys::{self, entity};
use crate::model::{booking_cutoff, EventStatus, WaitEntry, Waiting};
use crate::store::{Position, WaitPage, MAX_WAITING_PER_LIST};
use crate::time::{self, Timestamp};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, ReturnValuesOnConditionCheckFailure, Select, TransactWriteItem, Update,
};

/// Entries one clearing transaction deletes: two items each (entry, guard) and the event's count,
/// under DynamoDB's 100 items per transaction.
const CLEARED_PER_WRITE: usize = 49;

fn tx_update(update: Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(update).build()
}

fn tx_delete(delete: Delete) -> TransactWriteItem {
    TransactWriteItem::builder().delete(delete).build()
}

pub(super) async fn join_waitlist(db: &DynamoStore, entry: &WaitEntry, now: Timestamp) -> Result<u32> {
    // The event is open and not cancelled, and full or its free seats are promised to the line
    // ([`Event::waitlist_open_at`]), as a condition: refused otherwise, and the returned event
    // says why.
    let count = with_nobody_waits(Update::builder(), now)
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(&entry.event_id))))
        .update_expression("ADD #wl :one")
        .condition_expression(format!(
            "{EXISTS} AND (attribute_not_exists(#st) OR #st <> :cancelled) AND #dt > :cutoff \
             AND ((attribute_exists(#cap) AND #seats >= #cap) OR NOT {NOBODY_WAITS})"
        ))
        .expression_attribute_names("#wl", attr::WAITLIST_COUNT)
        .expression_attribute_names("#st", attr::STATUS)
        .expression_attribute_names("#dt", attr::DATETIME)
        .expression_attribute_names("#cap", attr::CAPACITY)
        .expression_attribute_names("#seats", attr::SEATS_BOOKED)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":cancelled", s(EventStatus::Cancelled.as_str()))
        .expression_attribute_values(":cutoff", s(time::format(&booking_cutoff(now))))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(Error::internal)?;
    let guard =
        WaitingGuard { event_id: &entry.event_id, user_id: &entry.user_id, joined_at: time::format(&entry.joined_at) };
    let items = vec![
        tx_update(count),
        TransactWriteItem::builder().put(db.put(entry, ABSENT)?).build(),
        TransactWriteItem::builder().put(db.put(&guard, ABSENT)?).build(),
    ];
    let reasons = match db.transact(items, &crate::model::new_id()).await {
        Ok(()) => return position_after_join(db, &entry.event_id).await,
        Err(TxFailure::Conditions(reasons)) => reasons,
        Err(TxFailure::Failed(e)) => return Err(e),
    };
    // The contract's order: the event's reasons, then the user's.
    if let Some(returned) = failed(&reasons, 0) {
        let event = events::event_after_failure(db, returned.clone(), &entry.event_id)
            .await?
            .ok_or(Error::NotFound("event"))?;
        event.bookable_at(now)?;
        if !event.waitlist_open_at(now) {
            return Err(Error::SeatsAvailable);
        }
    }
    if let Some(Some(old)) = failed(&reasons, 2) {
        return Err(if tag(old) == Some(entity::WAITING) { Error::AlreadyWaiting } else { Error::AlreadyBooked });
    }
    if failed(&reasons, 1).is_some() {
        return Err(Error::AlreadyWaiting);
    }
    Err(Error::internal("the join condition failed for a full, open event"))
}

/// The place in line of an entry that just joined: the count right after the commit, read
/// strongly consistent. Exact unless another user joined in the same second with a smaller id
/// (ahead: one more) or after it and before this read (one too many); an exact rank would read
/// every entry ahead (a COUNT Query), which a 10,000-long line makes 4 calls and ~500 RRU.
async fn position_after_join(db: &DynamoStore, event_id: &str) -> Result<u32> {
    let out = db
        .client
        .get_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(event_id))))
        .projection_expression("#wl")
        .expression_attribute_names("#wl", attr::WAITLIST_COUNT)
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))?;
    let count = out.item.as_ref().and_then(|i| i.get(attr::WAITLIST_COUNT)).and_then(|v| v.as_n().ok());
    Ok(count.and_then(|c| c.parse().ok()).unwrap_or(1).max(1))
}

pub(super) async fn leave_waitlist(db: &DynamoStore, event_id: &str, user_id: &str) -> Result<()> {
    let gone = Error::NotFound("waitlist entry");
    // The guard names the entry (its `joined_at`); the transaction's conditions decide.
    let Some(guard) = db.get(keys::attendee(event_id, user_id)).await? else { return Err(gone) };
    let joined = match (tag(&guard), guard.get(attr::JOINED_AT)) {
        (Some(entity::WAITING), Some(AttributeValue::S(j))) => j.clone(),
        _ => return Err(gone),
    };
    let joined_at = time::parse(&joined).ok_or_else(|| Error::internal("waiting guard without a time"))?;
    let items = vec![
        tx_delete(waiting_guard_delete(db, event_id, user_id, &joined)?),
        tx_delete(entry_delete(db, keys::wait_entry(event_id, &joined_at, user_id))?),
        tx_update(count_down(db, event_id, 1)?),
    ];
    match db.transact(items, &crate::model::new_id()).await {
        Ok(()) => Ok(()),
        // Promoted or gone meanwhile.
        Err(TxFailure::Conditions(_)) => Err(gone),
        Err(TxFailure::Failed(e)) => Err(e),
    }
}

/// Deletes the user's guard while it still is the wait that joined at `joined`.
fn waiting_guard_delete(db: &DynamoStore, event_id: &str, user_id: &str, joined: &str) -> Result<Delete> {
    Delete::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::attendee(event_id, user_id))))
        .condition_expression("#entity = :waiting AND #joined = :joined")
        .expression_attribute_names("#entity", keys::ENTITY)
        .expression_attribute_names("#joined", attr::JOINED_AT)
        .expression_attribute_values(":waiting", s(entity::WAITING))
        .expression_attribute_values(":joined", s(joined))
        .build()
        .map_err(Error::internal)
}

fn entry_delete(db: &DynamoStore, key: keys::Key) -> Result<Delete> {
    Delete::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(key)))
        .condition_expression(EXISTS)
        .build()
        .map_err(Error::internal)
}

/// `waitlist_count - k` on an event that exists and counts at least `k`.
fn count_down(db: &DynamoStore, event_id: &str, k: usize) -> Result<Update> {
    Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::event(event_id))))
        .update_expression("ADD #wl :minus")
        .condition_expression(format!("{EXISTS} AND #wl >= :k"))
        .expression_attribute_names("#wl", attr::WAITLIST_COUNT)
        .expression_attribute_values(":minus", n(-(k as i64)))
        .expression_attribute_values(":k", n(k))
        .build()
        .map_err(Error::internal)
}

/// The first `limit` entries of the line, strongly consistent (the base table, never an index):
/// what a promotion hands seats to.
pub(super) async fn head(db: &DynamoStore, event_id: &str, limit: usize) -> Result<Vec<WaitEntry>> {
    let out = line_query(db, event_id)
        .consistent_read(true)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| sdk_error("Query", e))?;
    out.items.unwrap_or_default().into_iter().map(from_item).collect()
}

fn line_query(db: &DynamoStore, event_id: &str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    db.client
        .query()
        .table_name(&db.table)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :wait)")
        .expression_attribute_names("#pk", keys::PK)
        .expression_attribute_names("#sk", keys::SK)
        .expression_attribute_values(":pk", s(keys::event(event_id).0))
        .expression_attribute_values(":wait", s(keys::WAIT_PREFIX))
        .scan_index_forward(true)
}

/// How many entries of the line sort at or before `through` (a wait entry's sort key): a
/// `Select COUNT` Query, paged (1 MB per call, ~2,500 entries), strongly consistent.
async fn count_through(db: &DynamoStore, event_id: &str, through: String) -> Result<u32> {
    let (mut count, mut start) = (0u32, None::<Item>);
    loop {
        let out = db
            .client
            .query()
            .table_name(&db.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :wait AND :through")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_names("#sk", keys::SK)
            .expression_attribute_values(":pk", s(keys::event(event_id).0))
            .expression_attribute_values(":wait", s(keys::WAIT_PREFIX))
            .expression_attribute_values(":through", s(&through))
            .select(Select::Count)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        count += u32::try_from(out.count).unwrap_or_default();
        match out.last_evaluated_key {
            Some(last) => start = Some(last),
            None => return Ok(count),
        }
    }
}

pub(super) async fn waitlist(
    db: &DynamoStore,
    event_id: &str,
    after: Option<&Position>,
    limit: usize,
) -> Result<WaitPage> {
    let start = after.map(|p| key_item(keys::wait_entry(event_id, &p.at, &p.id)));
    // One more than asked tells whether another page exists.
    let page = line_query(db, event_id)
        .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .send();
    // A page after the head starts one past the entries up to `after` (counted, as the cursor
    // carries only the place, not the rank: an entry promoted meanwhile is no longer counted).
    let ahead = async {
        match after {
            Some(p) => count_through(db, event_id, keys::wait_entry(event_id, &p.at, &p.id).1).await,
            None => Ok(0),
        }
    };
    let (page, ahead) = tokio::join!(page, ahead);
    let page = page.map_err(|e| sdk_error("Query", e))?;
    let mut items: Vec<WaitEntry> = page.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_>>()?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(WaitEntry::position) } else { None };
    Ok(WaitPage { items, first_position: ahead? + 1, next })
}

pub(super) async fn user_waitlist(db: &DynamoStore, user_id: &str) -> Result<Vec<Waiting>> {
    let out = db
        .client
        .query()
        .table_name(&db.table)
        .index_name(keys::GSI1)
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :waiting)")
        .expression_attribute_names("#pk", keys::GSI1PK)
        .expression_attribute_names("#sk", keys::GSI1SK)
        .expression_attribute_values(":pk", s(keys::user_bookings(user_id)))
        .expression_attribute_values(":waiting", s(keys::USER_WAITING_PREFIX))
        .scan_index_forward(true)
        .limit(i32::try_from(MAX_WAITING_PER_LIST).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| sdk_error("Query", e))?;
    let entries: Vec<WaitEntry> = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_>>()?;
    // Each place is a COUNT of the entries ahead, in the event's partition; the events differ,
    // so the counts run side by side, 16 at a time (a list holds up to 100).
    use futures::stream::{self, StreamExt, TryStreamExt};
    let lines: Vec<(String, String)> = entries.iter().map(|e| (e.event_id.clone(), e.key().1)).collect();
    let places: Vec<u32> = stream::iter(lines)
        .map(|(event_id, through)| async move { count_through(db, &event_id, through).await })
        .buffered(16)
        .try_collect()
        .await?;
    Ok(entries.into_iter().zip(places).map(|(entry, position)| Waiting { entry, position: position.max(1) }).collect())
}

pub(super) async fn clear_waitlist(db: &DynamoStore, event_id: &str, limit: usize) -> Result<u32> {
    let mut cleared = 0usize;
    let mut raced = 0u32;
    while cleared < limit {
        let entries = head(db, event_id, (limit - cleared).min(CLEARED_PER_WRITE)).await?;
        if entries.is_empty() {
            break;
        }
        let mut items = vec![tx_update(count_down(db, event_id, entries.len())?)];
        for e in &entries {
            items.push(tx_delete(entry_delete(db, e.key())?));
            items.push(tx_delete(waiting_guard_delete(db, event_id, &e.user_id, &time::format(&e.joined_at))?));
        }
        match db.transact(items, &crate::model::new_id()).await {
            Ok(()) => cleared += entries.len(),
            // One of them left meanwhile: read the line again.
            Err(TxFailure::Conditions(reasons)) if failed(&reasons, 0).is_none() && raced < 5 => {
                raced += 1;
                tokio::time::sleep(super::backoff(raced)).await;
            }
            Err(TxFailure::Conditions(_)) => {
                return Err(Error::internal("clear_waitlist: the event's count and its line disagree"))
            }
            Err(TxFailure::Failed(e)) => return Err(e),
        }
    }
    Ok(u32::try_from(cleared).unwrap_or(u32::MAX))
}
