//! The small types the [`Store`](super::Store) methods take and answer besides entities: a
//! session rotation, a claim on a CRM message, a payment settlement, and the pages of the two
//! work indexes (pending CRM messages, due payment tasks).

use super::Position;
use crate::model::{Booking, BookingStatus, Delivery, PaymentTask};
use crate::time::Timestamp;

/// One refresh: the family's live token as read (`generation`, `token_hash`) and its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation<'a> {
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub generation: u32,
    pub token_hash: &'a str,
    pub new_hash: &'a str,
    pub session_epoch: u64,
    pub now: Timestamp,
}

/// What [`Store::rotate_session`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotated {
    /// The family's live token is now generation `generation + 1`.
    Done,
    /// The family changed since it was read: another refresh spent the same token first (or it
    /// was revoked, or expired). Nothing written.
    FamilyChanged,
    /// The user's password changed since: every family of the user is dead. Nothing written.
    PasswordChanged,
}

/// A claim on a booking's delivery record for one attempt: `owner` (a fresh token per attempt)
/// may POST until `until`; see [`Store::claim_delivery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    pub owner: &'a str,
    pub now: Timestamp,
    pub until: Timestamp,
}

/// What a [`Claim`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claimed {
    /// The caller holds the lease; the record as it now stands (this attempt counted).
    Won(Delivery),
    /// The CRM already answered for good: nothing to send.
    Final(Delivery),
    /// Another sender holds the lease, or the CRM asked to wait: not before `until`.
    Busy { until: Timestamp },
}

impl Claimed {
    /// The answer to a claim refused for `current` (the record as it stood), read at `now`.
    pub fn refused(current: Delivery, now: Timestamp) -> Claimed {
        if current.status.is_final() {
            Claimed::Final(current)
        } else {
            Claimed::Busy { until: current.lease_until.unwrap_or(now) }
        }
    }
}

/// Where [`Store::settle_payment`] takes a pending booking.
#[derive(Clone, Debug, PartialEq)]
pub struct Settlement {
    /// `Confirmed` or `Expired`.
    pub to: BookingStatus,
    /// The Stripe event id, or `sweep`: recorded as `payment.settled_by`.
    pub by: String,
    pub payment_intent: Option<String>,
    pub now: Timestamp,
    /// The Checkout Session a webhook reports: the booking is settled only when it is the session
    /// recorded on it, for its amount and currency (`None`: the sweep, which asked Stripe about
    /// the recorded session itself).
    pub session: Option<SessionRef>,
}

/// A Checkout Session as a webhook names it: what must match the booking's payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub id: String,
    pub amount_total: Option<u64>,
    pub currency: Option<String>,
}

/// What [`Store::settle_payment`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Settled {
    /// The booking as it now is.
    Changed(Booking),
    /// It was not pending any more (a replay, or a later event than this one won): as it is.
    Unchanged(Booking),
    /// The session is not the one this service created for the booking (another integration,
    /// a Payment Link, another amount or currency): nothing changed, whatever the status.
    Foreign(Booking),
    NotFound,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPage {
    pub items: Vec<PaymentTask>,
    pub next: Option<Position>,
}

/// One page request of [`Store::pending_deliveries`] (and [`Store::due_payment_tasks`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingQuery {
    pub day: chrono::NaiveDate,
    /// Inclusive.
    pub from: Timestamp,
    /// Exclusive: only bookings older than the sweep's minimum age.
    pub before: Timestamp,
    /// Exclusive start: where the previous page stopped.
    pub after: Option<Position>,
    pub limit: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PendingPage {
    /// As the index holds them (GSI: eventually consistent); a claim is the authority.
    pub items: Vec<Delivery>,
    pub next: Option<Position>,
}
