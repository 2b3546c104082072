//! The embedded store: the local default and the fast test backend. One lock makes every
//! operation atomic (readers share it, a writer holds it alone), and each checks the same rules,
//! in the same order, as the DynamoDB transaction it mirrors, so both adapters answer alike.
//! Ordered indexes (a `BTreeSet` of positions per list) make every list cost O(log n + page),
//! like an index query.

mod sessions;

use super::{
    Actor, BookingContext, BookingPage, Claim, Claimed, EventPage, EventQuery, PendingPage, PendingQuery, Position,
    Rotated, Rotation, Settled, Settlement, Store, TaskPage, MAX_EVALUATED_PER_PAGE,
};
use crate::error::{Error, Result};
use crate::model::{
    fold_type, is_final_refund_status, Booking, BookingStatus, Delivery, DeliveryStatus, Event, EventPatch,
    IdempotencyRecord, LoginThrottle, PaymentTask, PaymentTaskKind, Role, Session, User, REFUND_REQUESTED,
};
use crate::time::Timestamp;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, User>,
    emails: HashMap<String, String>,
    throttles: HashMap<String, LoginThrottle>,
    /// Refresh-token families by family id.
    sessions: HashMap<String, Session>,
    /// Shared with the pages handed out: a list holds its events by reference count, not by
    /// copy (cloning 20 events was a fifth of a list request). A write to an event a reader
    /// still holds copies it first (`Arc::make_mut`).
    events: HashMap<String, Arc<Event>>,
    /// Every event by (datetime, id), and per case-folded type: the two event lists.
    events_by_time: BTreeSet<Position>,
    events_by_type: HashMap<String, BTreeSet<Position>>,
    bookings: HashMap<String, Booking>,
    /// Per event, its bookings by (created_at, id).
    event_bookings: HashMap<String, BTreeSet<Position>>,
    /// Per user and status, their bookings by (created_at, id).
    user_bookings: HashMap<(String, BookingStatus), BTreeSet<Position>>,
    /// (event id, user id) → booking id, while the booking is confirmed.
    attendees: HashMap<(String, String), String>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    deliveries: HashMap<String, Delivery>,
    /// Delivery records without a final outcome, by (booked_at, booking id): the pending index.
    pending_deliveries: BTreeSet<Position>,
    /// At most one payment task per booking, and the due-payments index by (due_at, booking id).
    payment_tasks: HashMap<String, PaymentTask>,
    due_tasks: BTreeSet<Position>,
    /// Epoch seconds of the last eviction of expired throttles / idempotency records.
    swept_throttles: i64,
    swept_idempotency: i64,
    swept_sessions: i64,
}

/// How often (seconds) expired entries are dropped: each sweep walks its whole map, so it runs at
/// most once a minute, amortised over the writes that trigger it.
const SWEEP_EVERY_SECS: i64 = 60;

impl Inner {
    fn index_event(&mut self, e: &Event) {
        self.events_by_time.insert(Position::of_event(e));
        self.events_by_type.entry(fold_type(&e.event_type)).or_default().insert(Position::of_event(e));
    }

    fn unindex_event(&mut self, e: &Event) {
        self.events_by_time.remove(&Position::of_event(e));
        if let Some(set) = self.events_by_type.get_mut(&fold_type(&e.event_type)) {
            set.remove(&Position::of_event(e));
        }
    }

    fn user_bookings(&mut self, b: &Booking) -> &mut BTreeSet<Position> {
        self.user_bookings.entry((b.user_id.clone(), b.status.listed_as())).or_default()
    }

    /// Replaces the booking, keeping the user's list in step with its status.
    fn put_booking(&mut self, b: Booking) {
        if let Some(old) = self.bookings.get(&b.id).cloned() {
            self.user_bookings(&old).remove(&Position::of_booking(&old));
        }
        self.user_bookings(&b).insert(Position::of_booking(&b));
        self.bookings.insert(b.id.clone(), b);
    }

    fn put_task(&mut self, task: PaymentTask) {
        self.drop_task(&task.booking_id);
        self.due_tasks.insert(Position { at: task.due_at, id: task.booking_id.clone() });
        self.payment_tasks.insert(task.booking_id.clone(), task);
    }

    fn drop_task(&mut self, booking_id: &str) {
        if let Some(old) = self.payment_tasks.remove(booking_id) {
            self.due_tasks.remove(&Position { at: old.due_at, id: old.booking_id });
        }
    }

    /// The seat and the user's one booking of the event, given back.
    fn release_seat(&mut self, b: &Booking) {
        if let Some(event) = self.events.get_mut(&b.event_id) {
            let event = Arc::make_mut(event);
            event.seats_booked = event.seats_booked.saturating_sub(1);
        }
        self.attendees.remove(&(b.event_id.clone(), b.user_id.clone()));
    }

    /// Stores a delivery record and keeps the pending index in step: in it while not final.
    fn put_delivery(&mut self, d: Delivery) {
        if let Some(p) = Position::of_pending(&d) {
            if d.status.is_final() {
                self.pending_deliveries.remove(&p);
            } else {
                self.pending_deliveries.insert(p);
            }
        }
        self.deliveries.insert(d.booking_id.clone(), d);
    }

    /// Drops throttle windows that have closed. DynamoDB does the same with the item's TTL.
    fn evict_throttles(&mut self, now: i64, window_secs: i64) {
        if now - self.swept_throttles >= SWEEP_EVERY_SECS {
            self.throttles.retain(|_, t| t.window_start > now - window_secs);
            self.swept_throttles = now;
        }
    }

    /// Drops idempotency records past their 24 h life (DynamoDB: the `ttl` attribute).
    fn evict_idempotency(&mut self, now: Timestamp) {
        if now.timestamp() - self.swept_idempotency >= SWEEP_EVERY_SECS {
            self.idempotency.retain(|_, r| r.is_live(now));
            self.swept_idempotency = now.timestamp();
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// For operations that write (or read, then write on what they read).
    fn lock(&self) -> Result<RwLockWriteGuard<'_, Inner>> {
        self.inner.write().map_err(|_| Error::internal("memory store lock poisoned"))
    }

    /// For operations that only read: concurrent requests do not wait for each other.
    fn read(&self) -> Result<RwLockReadGuard<'_, Inner>> {
        self.inner.read().map_err(|_| Error::internal("memory store lock poisoned"))
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
        Ok(self.read()?.users.get(id).cloned())
    }

    async fn event_and_user(&self, event_id: &str, user_id: &str) -> Result<(Option<Event>, Option<User>)> {
        let db = self.read()?;
        Ok((db.events.get(event_id).map(|e| Event::clone(e)), db.users.get(user_id).cloned()))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let db = self.read()?;
        Ok(db.emails.get(email).and_then(|id| db.users.get(id)).cloned())
    }

    async fn set_user_role(&self, user_id: &str, role: Role) -> Result<()> {
        let mut db = self.lock()?;
        let user = db.users.get_mut(user_id).ok_or(Error::NotFound("user"))?;
        user.role = role;
        Ok(())
    }

    async fn count_login_attempt(&self, email: &str, now: Timestamp, window_secs: i64, max: u32) -> Result<()> {
        let mut db = self.lock()?;
        let now = now.timestamp();
        db.evict_throttles(now, window_secs);
        let entry = db.throttles.entry(email.to_string()).or_insert(LoginThrottle { attempts: 0, window_start: now });
        if entry.window_start <= now - window_secs {
            *entry = LoginThrottle { attempts: 0, window_start: now };
        }
        if entry.attempts >= max {
            return Err(entry.refusal(now, window_secs));
        }
        entry.attempts += 1;
        Ok(())
    }

    async fn clear_login_attempts(&self, email: &str) -> Result<()> {
        self.lock()?.throttles.remove(email);
        Ok(())
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        sessions::create_session(self, session)
    }

    async fn get_session(&self, family_id: &str) -> Result<Option<Session>> {
        sessions::get_session(self, family_id)
    }

    async fn session_and_user(&self, family_id: &str, user_id: &str) -> Result<(Option<Session>, Option<User>)> {
        sessions::session_and_user(self, family_id, user_id)
    }

    async fn rotate_session(&self, r: &Rotation<'_>) -> Result<Rotated> {
        sessions::rotate_session(self, r)
    }

    async fn revoke_session(&self, family_id: &str) -> Result<()> {
        sessions::revoke_session(self, family_id)
    }

    async fn change_password(&self, user_id: &str, old_hash: &str, new_hash: &str, epoch: u64) -> Result<()> {
        sessions::change_password(self, user_id, old_hash, new_hash, epoch)
    }

    async fn create_event(&self, event: &Event) -> Result<()> {
        let mut db = self.lock()?;
        if db.events.contains_key(&event.id) {
            return Err(Error::internal(format!("event {} already exists", event.id)));
        }
        db.index_event(event);
        db.events.insert(event.id.clone(), Arc::new(event.clone()));
        Ok(())
    }

    async fn get_event(&self, id: &str) -> Result<Option<Event>> {
        Ok(self.read()?.events.get(id).map(|e| Event::clone(e)))
    }

    async fn get_events(&self, ids: &[String]) -> Result<Vec<Event>> {
        let db = self.read()?;
        Ok(ids.iter().filter_map(|id| db.events.get(id).map(|e| Event::clone(e))).collect())
    }

    async fn update_event(&self, id: &str, patch: &EventPatch, actor: Actor<'_>, now: Timestamp) -> Result<Event> {
        let mut db = self.lock()?;
        let event = db.events.get(id).ok_or(Error::NotFound("event"))?;
        actor.check(event)?;
        if let Some(Some(cap)) = patch.capacity {
            if cap < event.seats_booked {
                return Err(Error::CapacityBelowBooked);
            }
        }
        let old = Arc::clone(event);
        let mut new = patch.apply(&old)?;
        new.updated_at = now;
        db.unindex_event(&old);
        db.index_event(&new);
        db.events.insert(id.to_string(), Arc::new(new.clone()));
        Ok(new)
    }

    async fn delete_event(&self, id: &str, actor: Actor<'_>) -> Result<()> {
        let mut db = self.lock()?;
        let event = db.events.get(id).ok_or(Error::NotFound("event"))?;
        actor.check(event)?;
        if event.seats_booked > 0 {
            return Err(Error::EventHasBookings);
        }
        if let Some(event) = db.events.remove(id) {
            db.unindex_event(&event);
        }
        Ok(())
    }

    async fn list_events(&self, q: &EventQuery) -> Result<EventPage> {
        let db = self.read()?;
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

    async fn booking_context(
        &self,
        event_id: &str,
        user_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<BookingContext> {
        let db = self.read()?;
        Ok(BookingContext {
            event: db.events.get(event_id).map(|e| Event::clone(e)),
            already_booked: db.attendees.contains_key(&(event_id.to_string(), user_id.to_string())),
            idempotency: idempotency_key
                .and_then(|k| db.idempotency.get(&(user_id.to_string(), k.to_string())).cloned()),
            user: db.users.get(user_id).cloned(),
        })
    }

    async fn create_booking(
        &self,
        booking: &Booking,
        idempotency: Option<&IdempotencyRecord>,
        now: Timestamp,
    ) -> Result<()> {
        let mut db = self.lock()?;
        db.evict_idempotency(now);
        if let Some(rec) = idempotency {
            let existing = db.idempotency.get(&(rec.user_id.clone(), rec.key.clone()));
            if existing.is_some_and(|r| r.is_live(now)) {
                return Err(Error::IdempotencyKeyReused);
            }
        }
        let event = db.events.get(&booking.event_id).ok_or(Error::NotFound("event"))?;
        let guard = (booking.event_id.clone(), booking.user_id.clone());
        if db.attendees.contains_key(&guard) {
            return Err(Error::AlreadyBooked);
        }
        event.bookable_at(now)?;
        event.has_free_seat()?;
        if db.bookings.contains_key(&booking.id) {
            return Err(Error::internal("booking id collision"));
        }
        if let Some(event) = db.events.get_mut(&booking.event_id) {
            Arc::make_mut(event).seats_booked += 1;
        }
        db.attendees.insert(guard, booking.id.clone());
        db.event_bookings.entry(booking.event_id.clone()).or_default().insert(Position::of_booking(booking));
        db.user_bookings(booking).insert(Position::of_booking(booking));
        db.bookings.insert(booking.id.clone(), booking.clone());
        if let Some(rec) = idempotency {
            db.idempotency.insert((rec.user_id.clone(), rec.key.clone()), rec.clone());
        }
        match (&booking.payment, booking.status) {
            (Some(payment), BookingStatus::PendingPayment) => db.put_task(PaymentTask {
                booking_id: booking.id.clone(),
                kind: PaymentTaskKind::Hold,
                due_at: payment.expires_at,
            }),
            _ => db.put_delivery(Delivery::pending(booking, now)),
        }
        Ok(())
    }

    async fn get_booking(&self, id: &str) -> Result<Option<Booking>> {
        Ok(self.read()?.bookings.get(id).cloned())
    }

    async fn cancel_booking(&self, booking: &Booking, now: Timestamp) -> Result<Booking> {
        let mut db = self.lock()?;
        let current = db.bookings.get(&booking.id).ok_or(Error::NotFound("booking"))?;
        if !current.status.holds_seat() {
            return Err(Error::AlreadyCancelled);
        }
        if current.status != booking.status {
            return Err(Error::StatusChanged);
        }
        let event = db.events.get(&current.event_id).ok_or(Error::NotFound("event"))?;
        event.cancellable_at(now)?;
        if event.seats_booked == 0 {
            return Err(Error::internal("confirmed booking on an event with no seats booked"));
        }
        let mut b = current.clone();
        db.release_seat(&b);
        db.drop_task(&b.id);
        if let (BookingStatus::Confirmed, Some(payment)) = (b.status, b.payment.as_mut()) {
            payment.refund_status = Some(REFUND_REQUESTED.into());
            db.put_task(PaymentTask { booking_id: b.id.clone(), kind: PaymentTaskKind::Refund, due_at: now });
        }
        b.status = BookingStatus::Cancelled;
        b.cancelled_at = Some(now);
        db.put_booking(b.clone());
        Ok(b)
    }

    async fn attach_checkout(&self, booking_id: &str, session_id: &str, url: &str) -> Result<bool> {
        let mut db = self.lock()?;
        let Some(b) = db.bookings.get_mut(booking_id).filter(|b| b.status == BookingStatus::PendingPayment) else {
            return Ok(false);
        };
        let Some(payment) = b.payment.as_mut() else {
            return Ok(false);
        };
        payment.checkout_session_id = Some(session_id.to_string());
        payment.checkout_url = Some(url.to_string());
        Ok(true)
    }

    async fn release_hold(&self, booking: &Booking, idempotency_key: Option<&str>) -> Result<()> {
        let mut db = self.lock()?;
        let held = db.bookings.get(&booking.id).is_some_and(|b| {
            b.status == BookingStatus::PendingPayment
                && b.payment.as_ref().is_some_and(|p| p.checkout_session_id.is_none())
        });
        if !held {
            return Err(Error::internal("release_hold: the booking is not a hold without a session"));
        }
        db.release_seat(booking);
        db.drop_task(&booking.id);
        if let Some(b) = db.bookings.remove(&booking.id) {
            db.user_bookings(&b).remove(&Position::of_booking(&b));
            if let Some(index) = db.event_bookings.get_mut(&b.event_id) {
                index.remove(&Position::of_booking(&b));
            }
        }
        if let Some(key) = idempotency_key {
            db.idempotency.remove(&(booking.user_id.clone(), key.to_string()));
        }
        Ok(())
    }

    async fn settle_payment(&self, booking_id: &str, settle: &Settlement) -> Result<Settled> {
        let mut db = self.lock()?;
        let Some(current) = db.bookings.get(booking_id).cloned() else {
            return Ok(Settled::NotFound);
        };
        if let Some(session) = &settle.session {
            if !current.payment.as_ref().is_some_and(|p| p.is_paid_by(session)) {
                return Ok(Settled::Foreign(current));
            }
        }
        if current.status != BookingStatus::PendingPayment || current.payment.is_none() {
            return Ok(Settled::Unchanged(current));
        }
        let mut b = current;
        match settle.to {
            BookingStatus::Confirmed => {
                db.put_delivery(Delivery::pending(&b, settle.now));
            }
            BookingStatus::Expired => db.release_seat(&b),
            other => return Err(Error::internal(format!("a payment cannot settle a booking as {}", other.as_str()))),
        }
        db.drop_task(&b.id);
        b.status = settle.to;
        if let Some(payment) = b.payment.as_mut() {
            payment.settled_by = Some(settle.by.clone());
            payment.payment_intent = settle.payment_intent.clone().or(payment.payment_intent.take());
        }
        db.put_booking(b.clone());
        Ok(Settled::Changed(b))
    }

    async fn record_refund(&self, booking_id: &str, refund_id: &str, refund_status: &str) -> Result<()> {
        let mut db = self.lock()?;
        let b = db.bookings.get_mut(booking_id).ok_or(Error::NotFound("booking"))?;
        if let Some(payment) = b.payment.as_mut() {
            let ended = payment.refund_id.as_deref() == Some(refund_id)
                && payment.refund_status.as_deref().is_some_and(is_final_refund_status);
            if ended && !is_final_refund_status(refund_status) {
                return Ok(());
            }
            payment.refund_id = Some(refund_id.to_string());
            payment.refund_status = Some(refund_status.to_string());
        }
        if db.payment_tasks.get(booking_id).is_some_and(|t| t.kind == PaymentTaskKind::Refund) {
            db.drop_task(booking_id);
        }
        Ok(())
    }

    async fn due_payment_tasks(&self, q: &PendingQuery) -> Result<TaskPage> {
        let db = self.read()?;
        let day_start = q.day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(|| Error::internal("bad day"))?;
        let day_end = day_start + chrono::Duration::days(1);
        let (from, before) = (q.from.max(day_start), q.before.min(day_end));
        if from >= before {
            return Ok(TaskPage::default());
        }
        let lower = Position { at: from, id: String::new() };
        let start = match &q.after {
            Some(after) if *after >= lower => Bound::Excluded(after),
            _ => Bound::Included(&lower),
        };
        let mut items: Vec<PaymentTask> = db
            .due_tasks
            .range((start, Bound::Unbounded))
            .take_while(|p| p.at < before)
            .take(q.limit + 1)
            .filter_map(|p| db.payment_tasks.get(&p.id).cloned())
            .collect();
        let more = items.len() > q.limit;
        items.truncate(q.limit);
        let next = if more { items.last().map(|t| Position { at: t.due_at, id: t.booking_id.clone() }) } else { None };
        Ok(TaskPage { items, next })
    }

    async fn list_user_bookings(&self, user_id: &str, status: BookingStatus, limit: usize) -> Result<Vec<Booking>> {
        let db = self.read()?;
        let Some(index) = db.user_bookings.get(&(user_id.to_string(), status)) else {
            return Ok(Vec::new());
        };
        Ok(index.iter().rev().take(limit).filter_map(|p| db.bookings.get(&p.id).cloned()).collect())
    }

    async fn list_event_bookings(&self, event_id: &str, after: Option<&Position>, limit: usize) -> Result<BookingPage> {
        let db = self.read()?;
        let Some(index) = db.event_bookings.get(event_id) else {
            return Ok(BookingPage::default());
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut page: Vec<Booking> = index
            .range((start, Bound::Unbounded))
            .take(limit + 1)
            .filter_map(|p| db.bookings.get(&p.id).cloned())
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next = if more { page.last().map(Position::of_booking) } else { None };
        Ok(BookingPage { items: page, next })
    }

    async fn get_idempotency(&self, user_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        Ok(self.read()?.idempotency.get(&(user_id.to_string(), key.to_string())).cloned())
    }

    async fn get_delivery(&self, booking_id: &str) -> Result<Option<Delivery>> {
        Ok(self.read()?.deliveries.get(booking_id).cloned())
    }

    async fn get_deliveries(&self, booking_ids: &[String]) -> Result<Vec<Delivery>> {
        let db = self.read()?;
        Ok(booking_ids.iter().filter_map(|id| db.deliveries.get(id).cloned()).collect())
    }

    async fn get_bookings(&self, ids: &[String]) -> Result<Vec<Booking>> {
        let db = self.read()?;
        Ok(ids.iter().filter_map(|id| db.bookings.get(id).cloned()).collect())
    }

    async fn claim_delivery(&self, booking: &Booking, claim: &Claim<'_>) -> Result<Claimed> {
        let mut db = self.lock()?;
        let mut record = match db.deliveries.get(&booking.id) {
            None => Delivery::pending(booking, claim.now),
            Some(current) if current.claimable_at(claim.now) => current.clone(),
            Some(current) => return Ok(Claimed::refused(current.clone(), claim.now)),
        };
        record.booked_at = record.booked_at.or(Some(booking.created_at));
        record.attempts += 1;
        record.lease_until = Some(claim.until);
        record.lease_owner = Some(claim.owner.to_string());
        record.updated_at = claim.now;
        db.put_delivery(record.clone());
        Ok(Claimed::Won(record))
    }

    async fn finish_delivery(&self, delivery: &Delivery, owner: &str) -> Result<bool> {
        let mut db = self.lock()?;
        let current = db.deliveries.get(&delivery.booking_id);
        let allowed = if delivery.status.is_final() {
            current.is_none_or(|d| d.status != DeliveryStatus::Delivered)
        } else {
            current.is_some_and(|d| d.lease_owner.as_deref() == Some(owner))
        };
        if allowed {
            db.put_delivery(delivery.clone());
        }
        Ok(allowed)
    }

    async fn pending_deliveries(&self, q: &PendingQuery) -> Result<PendingPage> {
        let db = self.read()?;
        let day_start = q.day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(|| Error::internal("bad day"))?;
        let day_end = day_start + chrono::Duration::days(1);
        let (from, before) = (q.from.max(day_start), q.before.min(day_end));
        if from >= before {
            return Ok(PendingPage::default());
        }
        let lower = Position { at: from, id: String::new() };
        let start = match &q.after {
            Some(after) if *after >= lower => Bound::Excluded(after),
            _ => Bound::Included(&lower),
        };
        let mut items = Vec::new();
        let mut more = false;
        for p in db.pending_deliveries.range((start, Bound::Unbounded)).take_while(|p| p.at < before) {
            if items.len() == q.limit {
                more = true;
                break;
            }
            items.extend(db.deliveries.get(&p.id).cloned());
        }
        let next = if more { items.last().and_then(Position::of_pending) } else { None };
        Ok(PendingPage { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn record(user: &str, key: &str, now: Timestamp) -> IdempotencyRecord {
        IdempotencyRecord {
            user_id: user.into(),
            key: key.into(),
            request_hash: "h".into(),
            status: 201,
            body: "{}".into(),
            created_at: now,
            ttl: now.timestamp() + crate::model::IDEMPOTENCY_TTL_SECS,
        }
    }

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
        };
        store.create_booking(&booking, None, now).await.unwrap();
        assert_eq!(before.seats_booked, 0, "the page taken before the booking changed");
        assert_eq!(store.get_event(&event.id).await.unwrap().unwrap().seats_booked, 1);
        let again = store.list_events(&EventQuery { limit: 50, ..EventQuery::default() }).await.unwrap();
        assert_eq!(again.items.iter().find(|e| e.id == event.id).unwrap().seats_booked, 1);
        // The two pages hold different allocations now; the first one is still whole.
        assert!(!Arc::ptr_eq(&before, again.items.iter().find(|e| e.id == event.id).unwrap()));
    }

    #[tokio::test]
    async fn closed_throttle_windows_are_evicted() {
        let store = MemoryStore::new();
        let t0 = crate::time::now();
        for i in 0..50 {
            store.count_login_attempt(&format!("u{i}@x.io"), t0, 900, 10).await.unwrap();
        }
        assert_eq!(store.lock().unwrap().throttles.len(), 50);
        // Still inside the window: nothing may go.
        store.count_login_attempt("late@x.io", t0 + Duration::seconds(800), 900, 10).await.unwrap();
        assert_eq!(store.lock().unwrap().throttles.len(), 51);
        // Past it: the 50 closed windows are dropped, the live one and the new one stay.
        store.count_login_attempt("new@x.io", t0 + Duration::seconds(901), 900, 10).await.unwrap();
        let left: Vec<String> = store.lock().unwrap().throttles.keys().cloned().collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[tokio::test]
    async fn expired_idempotency_records_are_evicted() {
        let store = MemoryStore::new();
        let t0 = crate::time::now();
        store.lock().unwrap().idempotency.insert(("u".into(), "k".into()), record("u", "k", t0));
        let event = Event {
            id: "E".into(),
            title: "t".into(),
            description: String::new(),
            datetime: t0 + Duration::days(30),
            duration_minutes: 60,
            facilitator_id: "F".into(),
            event_type: "Yoga".into(),
            rating: None,
            capacity: None,
            seats_booked: 0,
            price: None,
            owner_id: "O".into(),
            created_at: t0,
            updated_at: t0,
        };
        store.create_event(&event).await.unwrap();
        let book = |user: &str, at: Timestamp| Booking {
            id: crate::model::new_id(),
            event_id: "E".into(),
            user_id: user.into(),
            user_name: "n".into(),
            user_email: "e@x.io".into(),
            status: BookingStatus::Confirmed,
            created_at: at,
            cancelled_at: None,
            event: event.snapshot(),
            payment: None,
        };
        store.create_booking(&book("a", t0), None, t0 + Duration::hours(23)).await.unwrap();
        assert_eq!(store.lock().unwrap().idempotency.len(), 1, "a live record was evicted");
        store.create_booking(&book("b", t0), None, t0 + Duration::hours(25)).await.unwrap();
        assert!(store.lock().unwrap().idempotency.is_empty(), "an expired record was kept");
    }
}
