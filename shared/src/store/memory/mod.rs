//! The embedded store: the local default and the fast test backend. One lock makes every
//! operation atomic (readers share it, a writer holds it alone), and each checks the same rules,
//! in the same order, as the DynamoDB transaction it mirrors, so both adapters answer alike.
//! Ordered indexes (a `BTreeSet` of positions per list) make every list cost O(log n + page),
//! like an index query.

mod bookings;
mod deliveries;
mod events;
mod jobs;
mod payments;
mod sessions;
mod users;
mod waitlist;

use super::{
    Actor, BookingContext, BookingMessages, BookingPage, Claim, Claimed, EventPage, EventQuery, PendingPage,
    PendingQuery, Position, Rotated, Rotation, Settled, Settlement, Store, TaskPage,
};
use crate::error::{Error, Result};
use crate::model::{
    Booking, BookingStatus, CancelReason, Delivery, Event, EventPatch, IdempotencyRecord, Job, LoginThrottle,
    MessageKind, PaymentTask, Role, Session, User, WaitEntry,
};
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// (event id, user id) → booking id, while the booking holds a seat.
    attendees: HashMap<(String, String), String>,
    /// Per event, its waitlist in line order (`joined_at`, then user id).
    waitlists: HashMap<String, BTreeMap<Position, WaitEntry>>,
    /// (event id, user id) → `joined_at` while the user waits: the guard DynamoDB keeps on the
    /// attendee key with entity `waiting`. Never holds a key `attendees` holds.
    waiting: HashMap<(String, String), Timestamp>,
    /// Per user, their waitlist entries by (joined_at, event id): the user's `waiting` list.
    user_waiting: HashMap<String, BTreeSet<(Timestamp, String)>>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    deliveries: HashMap<String, Delivery>,
    /// Every other CRM message of a booking, by (booking id, its key's sort key).
    messages: BTreeMap<(String, String), Delivery>,
    /// Message records without a final outcome, by (booked_at, message id
    /// ([`crate::keys::pending_message_id`])): the pending index.
    pending_deliveries: BTreeSet<Position>,
    /// At most one payment task per booking, and the due-payments index by (due_at, booking id).
    payment_tasks: HashMap<String, PaymentTask>,
    due_tasks: BTreeSet<Position>,
    /// Lifecycle jobs by event id, and the due-jobs index by (due_at, event id).
    jobs: HashMap<String, Job>,
    due_jobs: BTreeSet<Position>,
    /// Epoch seconds of the last eviction of expired throttles / idempotency records.
    swept_throttles: i64,
    swept_idempotency: i64,
    swept_sessions: i64,
}

/// How often (seconds) expired entries are dropped: each sweep walks its whole map, so it runs at
/// most once a minute, amortised over the writes that trigger it.
const SWEEP_EVERY_SECS: i64 = 60;

impl Inner {
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

    /// The message record with this key, whatever its kind.
    fn message(&self, (pk, sk): &crate::keys::Key) -> Option<&Delivery> {
        let booking_id = pk.strip_prefix("BOOKING#")?;
        if sk == "DELIVERY" {
            self.deliveries.get(booking_id)
        } else {
            self.messages.get(&(booking_id.to_string(), sk.clone()))
        }
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
        if d.kind == MessageKind::Confirmed {
            self.deliveries.insert(d.booking_id.clone(), d);
        } else {
            self.messages.insert((d.booking_id.clone(), d.key().1), d);
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
    async fn join_waitlist(&self, entry: &crate::model::WaitEntry, now: Timestamp) -> Result<u32> {
        waitlist::join_waitlist(self, entry, now)
    }

    async fn leave_waitlist(&self, event_id: &str, user_id: &str) -> Result<()> {
        waitlist::leave_waitlist(self, event_id, user_id)
    }

    async fn waitlist(&self, event_id: &str, after: Option<&Position>, limit: usize) -> Result<super::WaitPage> {
        waitlist::waitlist(self, event_id, after, limit)
    }

    async fn user_waitlist(&self, user_id: &str) -> Result<Vec<crate::model::Waiting>> {
        waitlist::user_waitlist(self, user_id)
    }

    async fn promote_waitlist(&self, event_id: &str, now: Timestamp, limit: usize) -> Result<u32> {
        waitlist::promote_waitlist(self, event_id, now, limit)
    }

    async fn clear_waitlist(&self, event_id: &str, limit: usize) -> Result<u32> {
        waitlist::clear_waitlist(self, event_id, limit)
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        users::create_user(self, user)
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        users::get_user(self, id)
    }

    async fn event_and_user(&self, event_id: &str, user_id: &str) -> Result<(Option<Event>, Option<User>)> {
        users::event_and_user(self, event_id, user_id)
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        users::find_user_by_email(self, email)
    }

    async fn set_user_role(&self, user_id: &str, role: Role) -> Result<()> {
        users::set_user_role(self, user_id, role)
    }

    async fn count_login_attempt(&self, email: &str, now: Timestamp, window_secs: i64, max: u32) -> Result<()> {
        users::count_login_attempt(self, email, now, window_secs, max)
    }

    async fn clear_login_attempts(&self, email: &str) -> Result<()> {
        users::clear_login_attempts(self, email)
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
        events::create_event(self, event)
    }

    async fn get_event(&self, id: &str) -> Result<Option<Event>> {
        events::get_event(self, id)
    }

    async fn get_events(&self, ids: &[String]) -> Result<Vec<Event>> {
        events::get_events(self, ids)
    }

    async fn update_event(&self, id: &str, patch: &EventPatch, actor: Actor<'_>, now: Timestamp) -> Result<Event> {
        events::update_event(self, id, patch, actor, now)
    }

    async fn delete_event(&self, id: &str, actor: Actor<'_>) -> Result<()> {
        events::delete_event(self, id, actor)
    }

    async fn list_events(&self, q: &EventQuery) -> Result<EventPage> {
        events::list_events(self, q)
    }

    async fn cancel_event(&self, id: &str, reason: Option<&str>, actor: Actor<'_>, now: Timestamp) -> Result<Event> {
        jobs::cancel_event(self, id, reason, actor, now)
    }

    async fn get_job(&self, event_id: &str) -> Result<Option<Job>> {
        jobs::get_job(self, event_id)
    }

    async fn claim_job(&self, event_id: &str, owner: &str, now: Timestamp, until: Timestamp) -> Result<Option<Job>> {
        jobs::claim_job(self, event_id, owner, now, until)
    }

    async fn save_job(&self, job: &Job, owner: &str) -> Result<bool> {
        jobs::save_job(self, job, owner)
    }

    async fn finish_job(&self, job: &Job, owner: &str) -> Result<bool> {
        jobs::finish_job(self, job, owner)
    }

    async fn due_jobs(&self, now: Timestamp, limit: usize) -> Result<Vec<Job>> {
        jobs::due_jobs(self, now, limit)
    }

    async fn booking_context(
        &self,
        event_id: &str,
        user_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<BookingContext> {
        bookings::booking_context(self, event_id, user_id, idempotency_key)
    }

    async fn create_booking(
        &self,
        booking: &Booking,
        idempotency: Option<&IdempotencyRecord>,
        now: Timestamp,
    ) -> Result<()> {
        bookings::create_booking(self, booking, idempotency, now)
    }

    async fn get_booking(&self, id: &str) -> Result<Option<Booking>> {
        bookings::get_booking(self, id)
    }

    async fn cancel_booking(&self, booking: &Booking, reason: CancelReason, now: Timestamp) -> Result<Booking> {
        bookings::cancel_booking(self, booking, reason, now)
    }

    async fn reschedule_booking(&self, booking: &Booking, event: &Event, now: Timestamp) -> Result<Booking> {
        bookings::reschedule_booking(self, booking, event, now)
    }

    async fn drop_payment_task(&self, booking_id: &str, kind: crate::model::PaymentTaskKind) -> Result<()> {
        let mut db = self.lock()?;
        if db.payment_tasks.get(booking_id).is_some_and(|t| t.kind == kind) {
            db.drop_task(booking_id);
        }
        Ok(())
    }

    async fn attach_checkout(&self, booking_id: &str, session_id: &str, url: &str) -> Result<bool> {
        payments::attach_checkout(self, booking_id, session_id, url)
    }

    async fn release_hold(&self, booking: &Booking, idempotency_key: Option<&str>) -> Result<()> {
        payments::release_hold(self, booking, idempotency_key)
    }

    async fn settle_payment(&self, booking_id: &str, settle: &Settlement) -> Result<Settled> {
        payments::settle_payment(self, booking_id, settle)
    }

    async fn record_refund(&self, booking_id: &str, refund_id: &str, refund_status: &str) -> Result<()> {
        payments::record_refund(self, booking_id, refund_id, refund_status)
    }

    async fn due_payment_tasks(&self, q: &PendingQuery) -> Result<TaskPage> {
        payments::due_payment_tasks(self, q)
    }

    async fn list_user_bookings(&self, user_id: &str, status: BookingStatus, limit: usize) -> Result<Vec<Booking>> {
        bookings::list_user_bookings(self, user_id, status, limit)
    }

    async fn list_event_bookings(&self, event_id: &str, after: Option<&Position>, limit: usize) -> Result<BookingPage> {
        bookings::list_event_bookings(self, event_id, after, limit)
    }

    async fn get_idempotency(&self, user_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        bookings::get_idempotency(self, user_id, key)
    }

    async fn get_delivery(&self, booking_id: &str) -> Result<Option<Delivery>> {
        deliveries::get_delivery(self, booking_id)
    }

    async fn get_deliveries(&self, booking_ids: &[String]) -> Result<Vec<Delivery>> {
        deliveries::get_deliveries(self, booking_ids)
    }

    async fn get_bookings(&self, ids: &[String]) -> Result<Vec<Booking>> {
        bookings::get_bookings(self, ids)
    }

    async fn claim_message(&self, message: &Delivery, claim: &Claim<'_>) -> Result<Claimed> {
        deliveries::claim_message(self, message, claim)
    }

    async fn booking_messages(&self, booking_id: &str) -> Result<BookingMessages> {
        deliveries::booking_messages(self, booking_id)
    }

    async fn get_messages(&self, bookings: &[Booking]) -> Result<Vec<Delivery>> {
        deliveries::get_messages(self, bookings)
    }

    async fn finish_delivery(&self, delivery: &Delivery, owner: &str) -> Result<bool> {
        deliveries::finish_delivery(self, delivery, owner)
    }

    async fn pending_deliveries(&self, q: &PendingQuery) -> Result<PendingPage> {
        deliveries::pending_deliveries(self, q)
    }
}
