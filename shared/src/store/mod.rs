//! The persistence port. Two adapters implement it with the same semantics: [`dynamo::DynamoStore`]
//! (single table, conditional writes and transactions) and [`memory::MemoryStore`] (one lock, the
//! same conditions). The contract tests in `tests/` run every case against both.

pub mod dynamo;
pub mod memory;
mod messages;
mod outcomes;

use crate::error::Result;
use crate::model::{
    Booking, BookingStatus, CancelReason, Delivery, Event, EventPatch, IdempotencyRecord, Job, Role, Session, User,
    WaitEntry, Waiting,
};
pub use crate::policy::Actor;
use crate::time::Timestamp;
use std::future::Future;
use std::sync::Arc;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;
pub use messages::{possible_messages, MAX_RESCHEDULES_LISTED};
pub use outcomes::{
    Claim, Claimed, PendingPage, PendingQuery, Rotated, Rotation, SessionRef, Settled, Settlement, TaskPage,
};

/// Index entries one list page may evaluate before it stops short of `limit` items (with a
/// `Link` to continue): a sparse filter costs a bounded amount per page.
pub const MAX_EVALUATED_PER_PAGE: usize = 1000;

/// Promotions in one transaction ([`Store::promote_waitlist`]): each is 4 items (the entry
/// deleted, the guard turned into an attendee guard, the booking, its delivery record or offer
/// task) besides the one event update, and DynamoDB allows 100 items per transaction; 20 keeps
/// each write small and the event item's contention short.
pub const PROMOTIONS_PER_WRITE: usize = 20;

/// Upper bound on one user's `waiting` list in `GET /bookings/`.
pub const MAX_WAITING_PER_LIST: usize = 100;

/// Upper bound on one booking-history list; documented in docs/data-model.md.
pub const MAX_BOOKINGS_PER_LIST: usize = 100;

/// A place in an ordered list. Every list the store pages is ordered by a time, then an id:
/// events by `datetime`, an event's bookings by `created_at`. Each adapter turns it into its own
/// key (DynamoDB: an `ExclusiveStartKey`; embedded: a `BTreeSet` bound), and cursors carry it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub at: Timestamp,
    pub id: String,
}

impl Position {
    pub fn of_event(e: &Event) -> Position {
        Position { at: e.datetime, id: e.id.clone() }
    }

    pub fn of_booking(b: &Booking) -> Position {
        Position { at: b.created_at, id: b.id.clone() }
    }

    /// A delivery record's place in the pending index (`None` for records from before it).
    pub fn of_pending(d: &Delivery) -> Option<Position> {
        d.booked_at.map(|at| Position { at, id: d.pending_id() })
    }

    /// The text a cursor carries: epoch seconds and the id.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.timestamp(), self.id)
    }

    /// The inverse of [`Position::encode`]; `None` for anything it could not have produced.
    pub fn decode(text: &str) -> Option<Position> {
        let (secs, id) = text.split_once('.')?;
        let at = chrono::DateTime::from_timestamp(secs.parse().ok()?, 0)?;
        let id = crate::http::resource_id(id, "cursor").ok()?;
        crate::time::parse(&crate::time::format(&at))?;
        Some(Position { at, id })
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// Case-folded type ([`crate::model::fold_type`]); `None` lists every type.
    pub event_type: Option<String>,
    /// Inclusive; events without a rating never match.
    pub min_rating: Option<f64>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Exclusive start: where the previous page stopped.
    pub after: Option<Position>,
    pub limit: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventPage {
    /// Shared, not copied: the embedded store hands out the events it holds.
    pub items: Vec<Arc<Event>>,
    /// Where to continue; `None` when nothing remains.
    pub next: Option<Position>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BookingPage {
    pub items: Vec<Booking>,
    pub next: Option<Position>,
}

/// A page of an event's waitlist, in line order; `first_position` is the place in line of
/// `items[0]` (1 when the page starts at the head).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitPage {
    pub items: Vec<WaitEntry>,
    pub first_position: u32,
    pub next: Option<Position>,
}

#[derive(Clone, Debug, Default)]
pub struct BookingContext {
    pub event: Option<Event>,
    /// The user holds a booking of this event that counts (its attendee guard exists).
    pub already_booked: bool,
    /// The user is on the event's waitlist (their guard is a `waiting` one): a booking is
    /// refused with `AlreadyWaiting` (leave the waitlist first).
    pub waiting: bool,
    pub idempotency: Option<IdempotencyRecord>,
    /// The booker's account, read in the same call: the booking records their name and email
    /// (for the CRM), which the token does not carry. `None`: the account no longer exists.
    pub user: Option<User>,
}

pub trait Store: Send + Sync + 'static {
    /// Creates the user and its email guard atomically → `EmailTaken` if the email exists.
    fn create_user(&self, user: &User) -> impl Future<Output = Result<()>> + Send;
    fn get_user(&self, id: &str) -> impl Future<Output = Result<Option<User>>> + Send;
    /// An event and a user in one read (the attendee list checks its caller's current role).
    fn event_and_user(
        &self,
        event_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<(Option<Event>, Option<User>)>> + Send;
    fn find_user_by_email(&self, email: &str) -> impl Future<Output = Result<Option<User>>> + Send;
    /// → `NotFound` for an unknown user.
    fn set_user_role(&self, user_id: &str, role: Role) -> impl Future<Output = Result<()>> + Send;

    /// Counts one login attempt for `email` *before* its password is checked, atomically: a new
    /// window of `window_secs` opens when the stored one has expired, and an attempt beyond `max`
    /// in the open window is refused → `TooManyAttempts` (retry after the window ends). Counting
    /// first means parallel guesses cannot all pass a check made before any of them is counted.
    fn count_login_attempt(
        &self,
        email: &str,
        now: Timestamp,
        window_secs: i64,
        max: u32,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Forgets the attempts of `email` (after a successful login).
    fn clear_login_attempts(&self, email: &str) -> impl Future<Output = Result<()>> + Send;

    /// A new refresh-token family (a login), written only if its id is new.
    fn create_session(&self, session: &Session) -> impl Future<Output = Result<()>> + Send;
    fn get_session(&self, family_id: &str) -> impl Future<Output = Result<Option<Session>>> + Send;
    /// A family and the user its token names, in one strongly consistent read (a refresh).
    fn session_and_user(
        &self,
        family_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<(Option<Session>, Option<User>)>> + Send;
    /// Spends the family's live token and makes `r.new_hash` the live one, in one atomic write,
    /// on condition that the family still is as read (generation, hash, not revoked, not expired
    /// at `r.now`, epoch) and the user's `session_epoch` is still `r.session_epoch`.
    fn rotate_session(&self, r: &Rotation<'_>) -> impl Future<Output = Result<Rotated>> + Send;
    /// Marks the family revoked; idempotent, and nothing is written for an unknown family.
    fn revoke_session(&self, family_id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Replaces the password hash and bumps `session_epoch` (revoking every family of the user)
    /// in one write, on condition that the hash is still `old_hash` and the epoch still `epoch`
    /// → `InvalidCredentials` when another change came first (the password the caller proved
    /// is no longer the current one).
    fn change_password(
        &self,
        user_id: &str,
        old_hash: &str,
        new_hash: &str,
        epoch: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    fn create_event(&self, event: &Event) -> impl Future<Output = Result<()>> + Send;
    fn get_event(&self, id: &str) -> impl Future<Output = Result<Option<Event>>> + Send;
    /// Several events in one call; unknown ids are left out.
    fn get_events(&self, ids: &[String]) -> impl Future<Output = Result<Vec<Event>>> + Send;
    /// Applies the patch in place (never rewriting `seats_booked`) → `NotFound`, `Forbidden`,
    /// `CapacityBelowBooked`. A capacity increase while users wait (`waitlist_count > 0`) writes
    /// a [`crate::model::JobKind::Promote`] job in the same transaction (unless the same PATCH
    /// writes a reschedule job, whose batches promote too): the freed seats go to the waitlist
    /// by [`Store::promote_waitlist`], and no direct booking can take them meanwhile (see
    /// [`Store::create_booking`]).
    fn update_event(
        &self,
        id: &str,
        patch: &EventPatch,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Event>> + Send;
    /// → `NotFound`, `Forbidden`, `EventHasBookings` while any booking is confirmed.
    fn delete_event(&self, id: &str, actor: Actor<'_>) -> impl Future<Output = Result<()>> + Send;
    fn list_events(&self, query: &EventQuery) -> impl Future<Output = Result<EventPage>> + Send;
    /// One atomic write: the event becomes `cancelled` (at `now`, with `reason`) and leaves both
    /// event lists, and its [`Job`] of kind cancel is written due now (replacing a reschedule
    /// or promote job) → `NotFound`, `Forbidden`, `EventCancelled`, `EventStarted` (in that
    /// order). Its waitlist is emptied by the cancel job ([`Store::clear_waitlist`]); joining a
    /// cancelled event is refused meanwhile.
    fn cancel_event(
        &self,
        id: &str,
        reason: Option<&str>,
        actor: Actor<'_>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Event>> + Send;

    /// The event's lifecycle job, strongly consistent.
    fn get_job(&self, event_id: &str) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Takes the job for one batch (`lease_owner = owner` until `until`) if it exists and no
    /// lease is running at `now` → the job as it now is, or `None` (gone, or held).
    fn claim_job(
        &self,
        event_id: &str,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<Option<Job>>> + Send;
    /// Writes the job's progress (`cursor`, `pass_started_at`, `due_at`, `passes`) and releases
    /// the lease, if `owner` still holds it and the job is still of this kind and revision →
    /// whether it was written.
    fn save_job(&self, job: &Job, owner: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Deletes the job (its work is done) under the same condition as [`Store::save_job`].
    fn finish_job(&self, job: &Job, owner: &str) -> impl Future<Output = Result<bool>> + Send;
    /// At most `limit` jobs due by `now`, oldest first (an index read: a claim decides).
    fn due_jobs(&self, now: Timestamp, limit: usize) -> impl Future<Output = Result<Vec<Job>>> + Send;

    /// Puts the user at the end of the event's waitlist, in one atomic write: the entry, the
    /// user's guard ([`crate::keys::attendee`], entity `waiting`) and `waitlist_count + 1` on the
    /// event → the entry's place in line (1: next). Refused, first failing in this order:
    /// `NotFound` (event), `EventCancelled`, `EventStarted`, `SeatsAvailable` (a seat is free, or
    /// capacity is unlimited, and the line is empty: [`Event::waitlist_open_at`]), `AlreadyBooked` (the user holds a booking that counts),
    /// `AlreadyWaiting`. A priced event whose free seat no promotion can fill (it starts within
    /// [`crate::model::OFFER_MIN_MINUTES`]) still answers `SeatsAvailable`: book it directly.
    fn join_waitlist(&self, entry: &WaitEntry, now: Timestamp) -> impl Future<Output = Result<u32>> + Send;
    /// Removes the user's entry, guard and count in one atomic write → `NotFound("waitlist
    /// entry")` when they are not waiting (never joined, left, or promoted meanwhile).
    fn leave_waitlist(&self, event_id: &str, user_id: &str) -> impl Future<Output = Result<()>> + Send;
    /// The event's waitlist in line order: at most `limit` entries after `after`.
    fn waitlist(
        &self,
        event_id: &str,
        after: Option<&Position>,
        limit: usize,
    ) -> impl Future<Output = Result<WaitPage>> + Send;
    /// The user's waitlist entries (at most [`MAX_WAITING_PER_LIST`], oldest first), each with its
    /// current place in line. Costs one read per entry for the place (DynamoDB: a `COUNT` Query
    /// of the entries ahead).
    fn user_waitlist(&self, user_id: &str) -> impl Future<Output = Result<Vec<Waiting>>> + Send;
    /// Hands the event's free seats to the first in line, at most [`PROMOTIONS_PER_WRITE`] per
    /// atomic write and at most `limit` in all, while seats are free, users wait and the event
    /// [promotes](Event::promotes_at) at `now` → how many were promoted (0: nothing to do).
    /// Each promotion, in the write: the entry deleted, the guard turned from `waiting` into the
    /// new booking's attendee guard, the booking ([`WaitEntry::promoted`]) with its CRM delivery
    /// record (free) or its `Offer` payment task (priced), `seats_booked + 1`, `waitlist_count - 1`.
    fn promote_waitlist(
        &self,
        event_id: &str,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<u32>> + Send;
    /// Deletes up to `limit` entries (and their guards) from the head of a cancelled event's
    /// waitlist → how many (0: empty). `waitlist_count` goes down with them.
    fn clear_waitlist(&self, event_id: &str, limit: usize) -> impl Future<Output = Result<u32>> + Send;

    /// Everything `POST /bookings/` answers from before writing, in one read: the event, whether
    /// the user already holds a booking for it, and the idempotency record when a key is given.
    fn booking_context(
        &self,
        event_id: &str,
        user_id: &str,
        idempotency_key: Option<&str>,
    ) -> impl Future<Output = Result<BookingContext>> + Send;
    /// One atomic write: booking + attendee guard + seat increment (+ idempotency record), and
    /// the booking's CRM delivery record when it is `confirmed` (free) or its hold task when it
    /// is `pending_payment` (a priced event's seat hold), on condition that the idempotency key is unused (`IdempotencyKeyReused`), the event exists
    /// (`NotFound`), the user holds no confirmed booking (`AlreadyBooked`) and is not waiting
    /// (`AlreadyWaiting`), the event has not started at `now` (`EventStarted`) and has a free
    /// seat that nobody waits for (`EventFull`: `waitlist_count` must be 0 unless the event no
    /// longer [promotes](Event::promotes_at) at `now`). When several fail, the error is the first
    /// in that order.
    fn create_booking(
        &self,
        booking: &Booking,
        idempotency: Option<&IdempotencyRecord>,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;
    fn get_booking(&self, id: &str) -> impl Future<Output = Result<Option<Booking>>> + Send;
    /// One atomic write from the status `booking` has (`confirmed` or `pending_payment`) to
    /// `cancelled` for `reason` ([`Booking::cancelled`]): guard removed, seat released exactly
    /// once; a pending booking's hold task is dropped; a paid confirmed booking gets
    /// `refund_status: requested` and a refund task; a confirmed one owes its CRM a
    /// `booking.cancelled` message (its record written here) → `AlreadyCancelled` (cancelled or
    /// expired already), `EventStarted` (not for `EventCancelled`: the event's cancellation
    /// frees seats even once it started), `NotFound`. When the status or the sequence changed
    /// since `booking` was read (a hold just paid, a reschedule) → `StatusChanged`: the caller
    /// reads the booking again and retries.
    ///
    /// The freed seat goes to the first in line in the same atomic write when users wait and
    /// the event [promotes](Event::promotes_at) at `now` (not for `EventCancelled`): the seat
    /// count does not move, `waitlist_count - 1`, and the promoted booking appears as
    /// [`Store::promote_waitlist`] makes it. There is no moment at which the seat is free while
    /// someone waits.
    fn cancel_booking(
        &self,
        booking: &Booking,
        reason: CancelReason,
        now: Timestamp,
    ) -> impl Future<Output = Result<Booking>> + Send;

    /// One atomic write bringing a booking that holds a seat up to `event`'s time
    /// ([`Booking::rescheduled`]), on condition that its status, sequence and snapshot revision
    /// are still as read (else `StatusChanged`: the caller reads it again), with, for a
    /// `confirmed` booking, its `booking.rescheduled` message record
    /// ([`Booking::rescheduled_message`]) → the booking as written; `NotFound`.
    fn reschedule_booking(
        &self,
        booking: &Booking,
        event: &Event,
        now: Timestamp,
    ) -> impl Future<Output = Result<Booking>> + Send;

    /// A pending booking's Checkout Session, recorded while the booking is still pending
    /// → `false` when it no longer is (nothing written). For a waitlist offer, in the same
    /// write: its `Offer` task becomes its `Hold` task due at `payment.expires_at`, and its
    /// `booking.offered` message record is written.
    fn attach_checkout(
        &self,
        booking_id: &str,
        session_id: &str,
        url: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Undoes a seat hold whose Checkout Session could not be created, in one transaction: the
    /// booking (still pending, without a session), its guard, its hold task and the idempotency
    /// record are deleted and the seat released, so the user may simply try again. The seat is
    /// handed on as in [`Store::cancel_booking`] when users wait.
    fn release_hold(&self, booking: &Booking, idempotency_key: Option<&str>)
        -> impl Future<Output = Result<()>> + Send;
    /// Moves a `pending_payment` booking to `confirmed` (hold task → CRM delivery record) or to
    /// `expired` (seat and guard released, hold task dropped), in one transaction conditional on
    /// the booking still being pending, so a replayed or late webhook changes nothing. An expiry
    /// hands the seat on as in [`Store::cancel_booking`]; a waitlist offer
    /// ([`Booking::via_waitlist`]) whose Checkout Session was opened (so its `booking.offered`
    /// was written) also gets its `booking.expired` message record, and its `Offer` task (if the
    /// session was never opened) is dropped.
    fn settle_payment(&self, booking_id: &str, settle: &Settlement) -> impl Future<Output = Result<Settled>> + Send;
    /// Stripe's answer to a refund request: `payment.refund_status`/`refund_id` set, the refund
    /// task dropped.
    fn record_refund(
        &self,
        booking_id: &str,
        refund_id: &str,
        refund_status: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Deletes the booking's payment task if it is (still) of `kind`: an expired session's task,
    /// done. Nothing written otherwise.
    fn drop_payment_task(
        &self,
        booking_id: &str,
        kind: crate::model::PaymentTaskKind,
    ) -> impl Future<Output = Result<()>> + Send;
    /// One day bucket of the due-payments index: tasks due on `q.day` (UTC) with
    /// `q.from <= due_at < q.before`, oldest first, at most `q.limit` after `q.after`.
    fn due_payment_tasks(&self, q: &PendingQuery) -> impl Future<Output = Result<TaskPage>> + Send;
    /// Newest first, at most `limit`.
    fn list_user_bookings(
        &self,
        user_id: &str,
        status: BookingStatus,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Booking>>> + Send;
    /// Oldest first: at most `limit` bookings after `after`, and the position to continue from
    /// when more remain.
    fn list_event_bookings(
        &self,
        event_id: &str,
        after: Option<&Position>,
        limit: usize,
    ) -> impl Future<Output = Result<BookingPage>> + Send;
    fn get_idempotency(
        &self,
        user_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>>> + Send;

    /// Several bookings in one read (batches of 100 ids); unknown ids are left out.
    fn get_bookings(&self, ids: &[String]) -> impl Future<Output = Result<Vec<Booking>>> + Send;

    fn get_delivery(&self, booking_id: &str) -> impl Future<Output = Result<Option<Delivery>>> + Send;
    fn get_deliveries(&self, booking_ids: &[String]) -> impl Future<Output = Result<Vec<Delivery>>> + Send;
    /// [`Store::claim_message`] for the booking's `booking.confirmed` message.
    fn claim_delivery(&self, booking: &Booking, claim: &Claim<'_>) -> impl Future<Output = Result<Claimed>> + Send {
        async move { self.claim_message(&Delivery::pending(booking, claim.now), claim).await }
    }
    /// One conditional write on the message's own record ([`Delivery::key`]): takes the lease for
    /// one attempt (`lease_owner = claim.owner`, `lease_until = claim.until`, `attempts + 1`) if
    /// the record is not final and its lease (if any) ended by `claim.now`. A missing
    /// `booking.confirmed` record (a booking made before delivery records were written with the
    /// booking) is created `pending` from `message`; any other message must exist (it is written
    /// with the change that owes it). Both the record and the attempt land in the pending index,
    /// so a sender that dies mid-attempt leaves a record the sweeper finds once the lease expired.
    fn claim_message(&self, message: &Delivery, claim: &Claim<'_>) -> impl Future<Output = Result<Claimed>> + Send;
    /// The booking and every CRM message record of it, in one strongly consistent read
    /// (DynamoDB: one Query of its item collection), messages in send order
    /// ([`Delivery::send_order`]).
    fn booking_messages(&self, booking_id: &str) -> impl Future<Output = Result<BookingMessages>> + Send;
    /// The message records of several bookings in one read, for the attendee list: the keys each
    /// can have by its status and `sequence` ([`possible_messages`]), missing ones left out.
    fn get_messages(&self, bookings: &[Booking]) -> impl Future<Output = Result<Vec<Delivery>>> + Send;
    /// Records an attempt's outcome, releasing the lease; returns whether it was written.
    /// A final outcome (`delivered`, `failed`) is written unless the record already says
    /// `delivered`, and leaves the pending index. A `retrying` outcome is written only while
    /// `owner` still holds the lease; its `lease_until`, if any, is when the CRM asked to be
    /// called again (nobody claims it before).
    fn finish_delivery(&self, delivery: &Delivery, owner: &str) -> impl Future<Output = Result<bool>> + Send;
    /// One bucket of the pending index: records without a final outcome whose booking was made on
    /// `q.day` (UTC), `q.from <= booked_at < q.before`, oldest first, at most `q.limit` after
    /// `q.after`. `next` is where to continue when more may remain.
    fn pending_deliveries(&self, q: &PendingQuery) -> impl Future<Output = Result<PendingPage>> + Send;
}

/// A booking and its CRM messages as [`Store::booking_messages`] read them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BookingMessages {
    /// `None`: no such booking (the messages, if any, are orphans).
    pub booking: Option<Booking>,
    /// In send order.
    pub messages: Vec<Delivery>,
}
