//! The embedded store: the local default and the fast test backend. One mutex makes every
//! operation atomic, and each checks the same conditions, in the same order, as the DynamoDB
//! transaction it mirrors, so both adapters answer alike.

use super::{Actor, BookingPage, EventPage, EventQuery, Store};
use crate::error::{Error, Result};
use crate::keys;
use crate::model::{
    Booking, BookingStatus, Delivery, DeliveryStatus, Event, EventPatch, IdempotencyRecord, LoginThrottle, Role, User,
};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, User>,
    emails: HashMap<String, String>,
    throttles: HashMap<String, LoginThrottle>,
    events: HashMap<String, Event>,
    bookings: HashMap<String, Booking>,
    /// (event id, user id) → booking id, while the booking is confirmed.
    attendees: HashMap<(String, String), String>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    deliveries: HashMap<String, Delivery>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| Error::internal("memory store lock poisoned"))
    }
}

impl Store for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<()> {
        let mut db = self.lock()?;
        if db.emails.contains_key(&user.email) {
            return Err(Error::EmailTaken);
        }
        db.emails.insert(user.email.clone(), user.id.clone());
        db.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.lock()?.users.get(id).cloned())
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let db = self.lock()?;
        Ok(db.emails.get(email).and_then(|id| db.users.get(id)).cloned())
    }

    async fn set_user_role(&self, user_id: &str, role: Role) -> Result<()> {
        let mut db = self.lock()?;
        let user = db.users.get_mut(user_id).ok_or(Error::NotFound("user"))?;
        user.role = role;
        Ok(())
    }

    async fn login_throttle(&self, email: &str) -> Result<Option<LoginThrottle>> {
        Ok(self.lock()?.throttles.get(email).cloned())
    }

    async fn record_login_failure(&self, email: &str, now: Timestamp, window_secs: i64) -> Result<LoginThrottle> {
        let mut db = self.lock()?;
        let now = now.timestamp();
        let entry = db.throttles.entry(email.to_string()).or_insert(LoginThrottle { failures: 0, window_start: now });
        if entry.window_start <= now - window_secs {
            *entry = LoginThrottle { failures: 0, window_start: now };
        }
        entry.failures += 1;
        Ok(entry.clone())
    }

    async fn clear_login_failures(&self, email: &str) -> Result<()> {
        self.lock()?.throttles.remove(email);
        Ok(())
    }

    async fn create_event(&self, event: &Event) -> Result<()> {
        let mut db = self.lock()?;
        if db.events.contains_key(&event.id) {
            return Err(Error::internal(format!("event {} already exists", event.id)));
        }
        db.events.insert(event.id.clone(), event.clone());
        Ok(())
    }

    async fn get_event(&self, id: &str) -> Result<Option<Event>> {
        Ok(self.lock()?.events.get(id).cloned())
    }

    async fn get_events(&self, ids: &[String]) -> Result<Vec<Event>> {
        let db = self.lock()?;
        Ok(ids.iter().filter_map(|id| db.events.get(id).cloned()).collect())
    }

    async fn update_event(&self, id: &str, patch: &EventPatch, actor: Actor<'_>, now: Timestamp) -> Result<Event> {
        let mut db = self.lock()?;
        let event = db.events.get_mut(id).ok_or(Error::NotFound("event"))?;
        actor.check(event)?;
        if let Some(Some(cap)) = patch.capacity {
            if cap < event.seats_booked {
                return Err(Error::CapacityBelowBooked);
            }
        }
        patch.apply(event);
        event.updated_at = now;
        Ok(event.clone())
    }

    async fn delete_event(&self, id: &str, actor: Actor<'_>) -> Result<()> {
        let mut db = self.lock()?;
        let event = db.events.get(id).ok_or(Error::NotFound("event"))?;
        actor.check(event)?;
        if event.seats_booked > 0 {
            return Err(Error::EventHasBookings);
        }
        db.events.remove(id);
        Ok(())
    }

    async fn list_events(&self, q: &EventQuery) -> Result<EventPage> {
        let db = self.lock()?;
        let lo = q.from.map(|t| crate::time::format(&t)).unwrap_or_default();
        let hi = q.to.map(|t| format!("{}#~", crate::time::format(&t)));
        // The key condition: partition (all / one type) and sort-key range, after the cursor.
        let mut candidates: Vec<(String, &Event)> = db
            .events
            .values()
            .filter(|e| match &q.event_type {
                Some(t) => e.event_type.trim().to_lowercase() == *t,
                None => true,
            })
            .map(|e| (e.sort_key(), e))
            .filter(|(k, _)| *k >= lo && hi.as_ref().is_none_or(|hi| k <= hi))
            .filter(|(k, _)| q.after.as_ref().is_none_or(|a| k > a))
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        // Like DynamoDB: `limit + 1` items are evaluated, then the rating filter applies.
        let evaluated = &candidates[..candidates.len().min(q.limit + 1)];
        let matched: Vec<&(String, &Event)> = evaluated
            .iter()
            .filter(|(_, e)| q.min_rating.is_none_or(|min| e.rating.is_some_and(|r| r >= min)))
            .collect();
        let page = if matched.len() > q.limit {
            EventPage {
                items: matched[..q.limit].iter().map(|(_, e)| (*e).clone()).collect(),
                next: Some(matched[q.limit - 1].0.clone()),
            }
        } else {
            EventPage {
                items: matched.iter().map(|(_, e)| (*e).clone()).collect(),
                next: (evaluated.len() == q.limit + 1).then(|| evaluated[q.limit].0.clone()),
            }
        };
        Ok(page)
    }

    async fn booking_context(
        &self,
        event_id: &str,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(Option<Event>, Option<IdempotencyRecord>)> {
        let db = self.lock()?;
        let record = idempotency.and_then(|(u, k)| db.idempotency.get(&(u.to_string(), k.to_string())).cloned());
        Ok((db.events.get(event_id).cloned(), record))
    }

    async fn create_booking(
        &self,
        booking: &Booking,
        idempotency: Option<&IdempotencyRecord>,
        now: Timestamp,
    ) -> Result<()> {
        let mut db = self.lock()?;
        if let Some(rec) = idempotency {
            let existing = db.idempotency.get(&(rec.user_id.clone(), rec.key.clone()));
            if existing.is_some_and(|r| r.is_live(now)) {
                return Err(Error::IdempotencyKeyReused);
            }
        }
        let event = db.events.get(&booking.event_id).ok_or(Error::NotFound("event"))?;
        if event.datetime <= now {
            return Err(Error::EventStarted);
        }
        if event.capacity.is_some_and(|c| event.seats_booked >= c) {
            return Err(Error::EventFull);
        }
        let guard = (booking.event_id.clone(), booking.user_id.clone());
        if db.attendees.contains_key(&guard) {
            return Err(Error::AlreadyBooked);
        }
        if db.bookings.contains_key(&booking.id) {
            return Err(Error::internal("booking id collision"));
        }
        if let Some(event) = db.events.get_mut(&booking.event_id) {
            event.seats_booked += 1;
        }
        db.attendees.insert(guard, booking.id.clone());
        db.bookings.insert(booking.id.clone(), booking.clone());
        if let Some(rec) = idempotency {
            db.idempotency.insert((rec.user_id.clone(), rec.key.clone()), rec.clone());
        }
        Ok(())
    }

    async fn get_booking(&self, id: &str) -> Result<Option<Booking>> {
        Ok(self.lock()?.bookings.get(id).cloned())
    }

    async fn cancel_booking(&self, booking: &Booking, now: Timestamp) -> Result<Booking> {
        let mut db = self.lock()?;
        let current = db.bookings.get(&booking.id).ok_or(Error::NotFound("booking"))?;
        if current.status != BookingStatus::Confirmed {
            return Err(Error::AlreadyCancelled);
        }
        let event = db.events.get(&current.event_id).ok_or(Error::NotFound("event"))?;
        if event.datetime <= now {
            return Err(Error::EventStarted);
        }
        if event.seats_booked == 0 {
            return Err(Error::internal("confirmed booking on an event with no seats booked"));
        }
        let event_id = current.event_id.clone();
        let user_id = current.user_id.clone();
        if let Some(event) = db.events.get_mut(&event_id) {
            event.seats_booked -= 1;
        }
        db.attendees.remove(&(event_id, user_id));
        let b = db.bookings.get_mut(&booking.id).ok_or(Error::NotFound("booking"))?;
        b.status = BookingStatus::Cancelled;
        b.cancelled_at = Some(now);
        Ok(b.clone())
    }

    async fn list_user_bookings(&self, user_id: &str, status: BookingStatus, limit: usize) -> Result<Vec<Booking>> {
        let db = self.lock()?;
        let mut list: Vec<Booking> =
            db.bookings.values().filter(|b| b.user_id == user_id && b.status == status).cloned().collect();
        list.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        list.truncate(limit);
        Ok(list)
    }

    async fn list_event_bookings(&self, event_id: &str, after: Option<&str>, limit: usize) -> Result<BookingPage> {
        let db = self.lock()?;
        let mut list: Vec<(String, &Booking)> = db
            .bookings
            .values()
            .filter(|b| b.event_id == event_id)
            .map(|b| (keys::event_booking_sort(&b.created_at, &b.id), b))
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let more = list.len() > limit;
        list.truncate(limit);
        let next = if more { list.last().map(|(k, _)| k.clone()) } else { None };
        Ok(BookingPage { items: list.into_iter().map(|(_, b)| b.clone()).collect(), next })
    }

    async fn get_idempotency(&self, user_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        Ok(self.lock()?.idempotency.get(&(user_id.to_string(), key.to_string())).cloned())
    }

    async fn get_delivery(&self, booking_id: &str) -> Result<Option<Delivery>> {
        Ok(self.lock()?.deliveries.get(booking_id).cloned())
    }

    async fn get_deliveries(&self, booking_ids: &[String]) -> Result<Vec<Delivery>> {
        let db = self.lock()?;
        Ok(booking_ids.iter().filter_map(|id| db.deliveries.get(id).cloned()).collect())
    }

    async fn put_delivery(&self, delivery: &Delivery) -> Result<bool> {
        let mut db = self.lock()?;
        if db.deliveries.get(&delivery.booking_id).is_some_and(|d| d.status == DeliveryStatus::Delivered) {
            return Ok(false);
        }
        db.deliveries.insert(delivery.booking_id.clone(), delivery.clone());
        Ok(true)
    }
}
