//! Waitlists in the embedded store: joining, leaving, reading the line, and promotions, under
//! the store's one lock with the conditions of `store/dynamo/waitlist.rs`. A user's guard is
//! either in `attendees` (booked) or in `waiting` (in line), never both: every write here moves a
//! user from one to the other or out, inside one critical section.

use super::{Inner, MemoryStore};
use crate::error::{Error, Result};
use crate::model::{Booking, BookingStatus, Delivery, PaymentTask, PaymentTaskKind, WaitEntry, Waiting};
use crate::store::{Position, WaitPage, MAX_WAITING_PER_LIST};
use crate::time::Timestamp;
use std::ops::Bound;
use std::sync::Arc;

impl Inner {
    /// Place in line of `at` (1: next), counted from the end of the line: a join is last, so
    /// this is O(1) for it, and O(entries behind) at worst (the line is a `BTreeMap`, which has
    /// no rank; DynamoDB answers the same with a `COUNT` Query).
    fn place(&self, event_id: &str, at: &Position) -> u32 {
        let Some(line) = self.waitlists.get(event_id) else { return 0 };
        let behind = line.range((Bound::Excluded(at), Bound::Unbounded)).count();
        u32::try_from(line.len() - behind).unwrap_or(u32::MAX)
    }

    /// Takes the entry out of the line with its guard and the user's list; the event's
    /// `waitlist_count` is the caller's (one update per write).
    fn remove_entry(&mut self, event_id: &str, at: &Position) -> Option<WaitEntry> {
        let line = self.waitlists.get_mut(event_id)?;
        let entry = line.remove(at)?;
        if line.is_empty() {
            self.waitlists.remove(event_id);
        }
        self.waiting.remove(&(event_id.to_string(), entry.user_id.clone()));
        if let Some(mine) = self.user_waiting.get_mut(&entry.user_id) {
            mine.remove(&(entry.joined_at, event_id.to_string()));
            if mine.is_empty() {
                self.user_waiting.remove(&entry.user_id);
            }
        }
        Some(entry)
    }

    fn add_to_waitlist_count(&mut self, event_id: &str, delta: i64) {
        if let Some(event) = self.events.get_mut(event_id) {
            let event = Arc::make_mut(event);
            let count = i64::from(event.waitlist_count) + delta;
            event.waitlist_count = u32::try_from(count.max(0)).unwrap_or(u32::MAX);
        }
    }

    /// Hands free seats of the event to the head of its line, at most `limit`, while a seat is
    /// free, someone waits and the event [promotes](crate::model::Event::promotes_at) at `now`
    /// → the bookings made. Each promotion is what the DynamoDB transaction writes: the entry
    /// and the waiting guard go, the attendee guard, the booking and its delivery record (free)
    /// or `Offer` task (priced) appear, `seats_booked + 1`, `waitlist_count - 1`.
    pub(super) fn promote(&mut self, event_id: &str, now: Timestamp, limit: usize) -> Vec<Booking> {
        let mut made = Vec::new();
        while made.len() < limit {
            let Some(event) = self.events.get(event_id) else { break };
            let seat_free = event.capacity.is_none_or(|c| event.seats_booked < c);
            if event.waitlist_count == 0 || !seat_free || event.bookable_at(now).is_err() || !event.promotes_at(now) {
                break;
            }
            let Some(head) = self.waitlists.get(event_id).and_then(|line| line.keys().next().cloned()) else { break };
            let Some(booking) = self.waitlists[event_id][&head].promoted(event, now) else { break };
            self.remove_entry(event_id, &head);
            if let Some(event) = self.events.get_mut(event_id) {
                let event = Arc::make_mut(event);
                event.seats_booked += 1;
                event.waitlist_count = event.waitlist_count.saturating_sub(1);
            }
            self.attendees.insert((event_id.to_string(), booking.user_id.clone()), booking.id.clone());
            self.event_bookings.entry(event_id.to_string()).or_default().insert(Position::of_booking(&booking));
            match (&booking.payment, booking.status) {
                (Some(_), BookingStatus::PendingPayment) => self.put_task(PaymentTask {
                    booking_id: booking.id.clone(),
                    kind: PaymentTaskKind::Offer,
                    due_at: now,
                }),
                _ => self.put_delivery(Delivery::pending(&booking, now)),
            }
            self.put_booking(booking.clone());
            made.push(booking);
        }
        made
    }
}

pub(super) fn join_waitlist(store: &MemoryStore, entry: &WaitEntry, now: Timestamp) -> Result<u32> {
    let mut db = store.lock()?;
    let event = db.events.get(&entry.event_id).ok_or(Error::NotFound("event"))?;
    event.bookable_at(now)?;
    if !event.waitlist_open_at(now) {
        return Err(Error::SeatsAvailable);
    }
    let guard = (entry.event_id.clone(), entry.user_id.clone());
    if db.attendees.contains_key(&guard) {
        return Err(Error::AlreadyBooked);
    }
    if db.waiting.contains_key(&guard) {
        return Err(Error::AlreadyWaiting);
    }
    let at = entry.position();
    db.waiting.insert(guard, entry.joined_at);
    db.user_waiting.entry(entry.user_id.clone()).or_default().insert((entry.joined_at, entry.event_id.clone()));
    db.waitlists.entry(entry.event_id.clone()).or_default().insert(at.clone(), entry.clone());
    db.add_to_waitlist_count(&entry.event_id, 1);
    Ok(db.place(&entry.event_id, &at))
}

pub(super) fn leave_waitlist(store: &MemoryStore, event_id: &str, user_id: &str) -> Result<()> {
    let mut db = store.lock()?;
    let Some(joined_at) = db.waiting.get(&(event_id.to_string(), user_id.to_string())).copied() else {
        return Err(Error::NotFound("waitlist entry"));
    };
    if db.remove_entry(event_id, &Position { at: joined_at, id: user_id.to_string() }).is_none() {
        return Err(Error::internal("waiting guard without its waitlist entry"));
    }
    db.add_to_waitlist_count(event_id, -1);
    Ok(())
}

pub(super) fn waitlist(
    store: &MemoryStore,
    event_id: &str,
    after: Option<&Position>,
    limit: usize,
) -> Result<WaitPage> {
    let db = store.read()?;
    let Some(line) = db.waitlists.get(event_id) else {
        return Ok(WaitPage { items: Vec::new(), first_position: 1, next: None });
    };
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let first_position = match after {
        None => 1,
        Some(after) => {
            u32::try_from(line.range((Bound::Unbounded, Bound::Included(after))).count() + 1).unwrap_or(u32::MAX)
        }
    };
    let mut items: Vec<WaitEntry> =
        line.range((start, Bound::Unbounded)).take(limit + 1).map(|(_, e)| e.clone()).collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(WaitEntry::position) } else { None };
    Ok(WaitPage { items, first_position, next })
}

pub(super) fn user_waitlist(store: &MemoryStore, user_id: &str) -> Result<Vec<Waiting>> {
    let db = store.read()?;
    let Some(mine) = db.user_waiting.get(user_id) else { return Ok(Vec::new()) };
    Ok(mine
        .iter()
        .take(MAX_WAITING_PER_LIST)
        .filter_map(|(joined_at, event_id)| {
            let at = Position { at: *joined_at, id: user_id.to_string() };
            let entry = db.waitlists.get(event_id)?.get(&at)?.clone();
            Some(Waiting { position: db.place(event_id, &at), entry })
        })
        .collect())
}

pub(super) fn promote_waitlist(store: &MemoryStore, event_id: &str, now: Timestamp, limit: usize) -> Result<u32> {
    let mut promoted = 0;
    // One lock per write of at most PROMOTIONS_PER_WRITE, as DynamoDB splits them: other
    // requests run between the writes.
    while (promoted as usize) < limit {
        let chunk = (limit - promoted as usize).min(crate::store::PROMOTIONS_PER_WRITE);
        let made = store.lock()?.promote(event_id, now, chunk).len();
        promoted += u32::try_from(made).unwrap_or(u32::MAX);
        if made < chunk {
            break;
        }
    }
    Ok(promoted)
}

pub(super) fn clear_waitlist(store: &MemoryStore, event_id: &str, limit: usize) -> Result<u32> {
    let mut db = store.lock()?;
    let heads: Vec<Position> =
        db.waitlists.get(event_id).map(|line| line.keys().take(limit).cloned().collect()).unwrap_or_default();
    let cleared = heads.iter().filter(|at| db.remove_entry(event_id, at).is_some()).count();
    db.add_to_waitlist_count(event_id, -i64::try_from(cleared).unwrap_or(i64::MAX));
    Ok(u32::try_from(cleared).unwrap_or(u32::MAX))
}
