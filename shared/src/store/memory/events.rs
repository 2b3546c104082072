//! Events and the two event lists in the embedded store: the conditions of
//! `store/dynamo/events.rs`, checked under the store's one lock.

use super::{Inner, MemoryStore};
use crate::error::{Error, Result};
use crate::model::{fold_type, Event, EventPatch, Job, JobKind};
use crate::store::{Actor, EventPage, EventQuery, Position, MAX_EVALUATED_PER_PAGE};
use crate::time::Timestamp;
use std::ops::Bound;
use std::sync::Arc;

impl Inner {
    pub(super) fn index_event(&mut self, e: &Event) {
        self.events_by_time.insert(Position::of_event(e));
        self.events_by_type.entry(fold_type(&e.event_type)).or_default().insert(Position::of_event(e));
    }

    pub(super) fn unindex_event(&mut self, e: &Event) {
        self.events_by_time.remove(&Position::of_event(e));
        if let Some(set) = self.events_by_type.get_mut(&fold_type(&e.event_type)) {
            set.remove(&Position::of_event(e));
        }
    }
}

pub(super) fn create_event(store: &MemoryStore, event: &Event) -> Result<()> {
    let mut db = store.lock()?;
    if db.events.contains_key(&event.id) {
        return Err(Error::internal(format!("event {} already exists", event.id)));
    }
    db.index_event(event);
    db.events.insert(event.id.clone(), Arc::new(event.clone()));
    Ok(())
}

pub(super) fn get_event(store: &MemoryStore, id: &str) -> Result<Option<Event>> {
    Ok(store.read()?.events.get(id).map(|e| Event::clone(e)))
}

pub(super) fn get_events(store: &MemoryStore, ids: &[String]) -> Result<Vec<Event>> {
    let db = store.read()?;
    Ok(ids.iter().filter_map(|id| db.events.get(id).map(|e| Event::clone(e))).collect())
}

pub(super) fn update_event(
    store: &MemoryStore,
    id: &str,
    patch: &EventPatch,
    actor: Actor<'_>,
    now: Timestamp,
) -> Result<Event> {
    let mut db = store.lock()?;
    let event = db.events.get(id).ok_or(Error::NotFound("event"))?;
    actor.check(event)?;
    event.may_change()?;
    if let Some(start) = patch.datetime {
        event.may_reschedule_to(start, now)?;
    }
    if let Some(Some(cap)) = patch.capacity {
        if cap < event.seats_booked {
            return Err(Error::CapacityBelowBooked);
        }
    }
    let old = Arc::clone(event);
    let mut new = patch.apply(&old)?;
    new.updated_at = now;
    let revision = db.jobs.get(id).map_or(0, |j| j.revision) + 1;
    if patch.reschedules() {
        new.revision += 1;
        db.put_job(Job::new(id, JobKind::Reschedule, revision, now));
    } else if old.waitlist_count > 0 && more_seats(&old, &new) {
        // The new seats go to the waitlist (by the job's batches, PROMOTIONS_PER_WRITE per
        // write); a reschedule job already there promotes too, so it is kept.
        if db.jobs.get(id).is_none_or(|j| j.kind == JobKind::Promote) {
            db.put_job(Job::new(id, JobKind::Promote, revision, now));
        }
    }
    db.unindex_event(&old);
    db.index_event(&new);
    db.events.insert(id.to_string(), Arc::new(new.clone()));
    Ok(new)
}

/// The patch raised the capacity (`None` is unlimited).
fn more_seats(old: &Event, new: &Event) -> bool {
    match (old.capacity, new.capacity) {
        (Some(before), Some(after)) => after > before,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

pub(super) fn delete_event(store: &MemoryStore, id: &str, actor: Actor<'_>) -> Result<()> {
    let mut db = store.lock()?;
    let event = db.events.get(id).ok_or(Error::NotFound("event"))?;
    actor.check(event)?;
    // Nor while users wait: their entries belong to the event (a cancelled event's job clears
    // them first).
    if event.seats_booked > 0 || event.waitlist_count > 0 {
        return Err(Error::EventHasBookings);
    }
    if let Some(event) = db.events.remove(id) {
        db.unindex_event(&event);
    }
    Ok(())
}

pub(super) fn list_events(store: &MemoryStore, q: &EventQuery) -> Result<EventPage> {
    let db = store.read()?;
    let index = match &q.event_type {
        Some(t) => db.events_by_type.get(t),
        None => Some(&db.events_by_time),
    };
    let Some(index) = index else {
        return Ok(EventPage::default());
    };
    // The key condition: the time range, after the cursor.
    let from = q.from.map(|at| Position { at, id: String::new() });
    let start = match (&q.after, &from) {
        (Some(after), Some(from)) if after < from => Bound::Included(from),
        (Some(after), _) => Bound::Excluded(after),
        (None, Some(from)) => Bound::Included(from),
        (None, None) => Bound::Unbounded,
    };
    // Entries are evaluated in order until the page holds `limit` events and one more proves
    // that more remain, the range ends, or the page's evaluation budget is spent; then the
    // position of the last evaluated entry is where the next page starts.
    let mut items: Vec<Arc<Event>> = Vec::with_capacity(q.limit.min(64));
    let mut last_evaluated: Option<&Position> = None;
    for (evaluated, p) in
        index.range((start, Bound::Unbounded)).take_while(|p| q.to.is_none_or(|to| p.at <= to)).enumerate()
    {
        if evaluated == MAX_EVALUATED_PER_PAGE {
            return Ok(EventPage { items, next: last_evaluated.cloned() });
        }
        last_evaluated = Some(p);
        let Some(event) = db.events.get(&p.id) else { continue };
        if q.min_rating.is_none_or(|min| event.rating.is_some_and(|r| r >= min)) {
            if items.len() == q.limit {
                let next = items.last().map(|e| Position::of_event(e));
                return Ok(EventPage { items, next });
            }
            items.push(Arc::clone(event));
        }
    }
    Ok(EventPage { items, next: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Booking, BookingStatus};
    use crate::store::Store;

    /// A page shares the store's events; a booking made after the page was taken must not
    /// change the page (copy on write), and the store must have the new count.
    #[tokio::test]
    async fn a_page_keeps_its_events_while_a_booking_changes_the_stored_one() {
        let store = MemoryStore::new();
        let now = crate::time::now();
        let event = crate::seed::sample_events("owner", now).into_iter().find(|e| e.datetime > now).unwrap();
        store.create_event(&event).await.unwrap();
        let page = store.list_events(&EventQuery { limit: 50, ..EventQuery::default() }).await.unwrap();
        let before = page.items.iter().find(|e| e.id == event.id).unwrap().clone();
        assert_eq!(before.seats_booked, 0);
        let booking = Booking {
            via_waitlist: false,
            id: "01BOOKING".into(),
            event_id: event.id.clone(),
            user_id: "u1".into(),
            user_name: "U".into(),
            user_email: "u@x.io".into(),
            status: BookingStatus::Confirmed,
            created_at: now,
            cancelled_at: None,
            event: event.snapshot(),
            payment: None,
            cancel_reason: None,
            sequence: 0,
        };
        store.create_booking(&booking, None, now).await.unwrap();
        assert_eq!(before.seats_booked, 0, "the page taken before the booking changed");
        assert_eq!(store.get_event(&event.id).await.unwrap().unwrap().seats_booked, 1);
        let again = store.list_events(&EventQuery { limit: 50, ..EventQuery::default() }).await.unwrap();
        assert_eq!(again.items.iter().find(|e| e.id == event.id).unwrap().seats_booked, 1);
        // The two pages hold different allocations now; the first one is still whole.
        assert!(!Arc::ptr_eq(&before, again.items.iter().find(|e| e.id == event.id).unwrap()));
    }
}
