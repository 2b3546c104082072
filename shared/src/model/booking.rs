//! Bookings, their status, and the stored first response of an idempotent booking request.

use super::{EventSnapshot, EventSnapshotView, Payment, PaymentView};
use crate::time::{serde_ts, Rfc3339, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
/// `pending_payment`: a priced event's seat, held until the payment succeeds or
/// `payment.expires_at`; `confirmed`; `expired`: the hold ended unpaid and its seat was released;
/// `cancelled`.
pub enum BookingStatus {
    /// A paid event's seat, held until the payment succeeds or `payment.expires_at`.
    PendingPayment,
    Confirmed,
    /// A hold that ended without payment; its seat was released.
    Expired,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::PendingPayment => "pending_payment",
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Expired => "expired",
            BookingStatus::Cancelled => "cancelled",
        }
    }

    /// The list a booking in this status appears in: a pending booking holds a seat, so it is
    /// listed (and indexed) with the confirmed ones, and paying for it moves nothing.
    pub fn listed_as(self) -> BookingStatus {
        match self {
            BookingStatus::PendingPayment => BookingStatus::Confirmed,
            other => other,
        }
    }

    /// Holds a seat and the user's one booking of the event.
    pub fn holds_seat(self) -> bool {
        matches!(self, BookingStatus::PendingPayment | BookingStatus::Confirmed)
    }
}

/// Who cancelled a booking, as `cancel_reason` in the API and the CRM's `booking.cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CancelReason {
    /// The booker cancelled it.
    Attendee,
    /// An admin cancelled another user's booking.
    Admin,
    /// Its event was cancelled (`POST /events/{id}/cancel`).
    EventCancelled,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Attendee => "attendee",
            CancelReason::Admin => "admin",
            CancelReason::EventCancelled => "event_cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub id: String,
    pub event_id: String,
    pub user_id: String,
    pub user_name: String,
    pub user_email: String,
    pub status: BookingStatus,
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    #[serde(default, with = "serde_ts::option")]
    pub cancelled_at: Option<Timestamp>,
    pub event: EventSnapshot,
    /// `None` for a free event's booking.
    #[serde(default)]
    pub payment: Option<Payment>,
    /// Set with `cancelled_at`; absent on bookings cancelled before reasons were kept.
    #[serde(default)]
    pub cancel_reason: Option<CancelReason>,
    /// Raised by each change attendees must hear of (a reschedule, the cancellation): the
    /// calendar file's `SEQUENCE`, and the order of the booking's CRM messages.
    #[serde(default)]
    pub sequence: u32,
    /// Made by a promotion from the event's waitlist (its CRM `booking.confirmed` says
    /// `"via": "waitlist"`; a priced one is an offer: `booking.offered`, then `booking.expired`
    /// if unpaid).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_waitlist: bool,
}

impl Booking {
    /// A new booking of `event` as it now is, made at `now`: `pending_payment` when it carries a
    /// `payment` (a priced event's seat hold), else `confirmed`.
    pub fn new(
        event: &super::Event,
        user_id: &str,
        user_name: &str,
        user_email: &str,
        payment: Option<super::Payment>,
        now: Timestamp,
    ) -> Booking {
        Booking {
            id: super::new_id(),
            event_id: event.id.clone(),
            user_id: user_id.to_string(),
            user_name: user_name.to_string(),
            user_email: user_email.to_string(),
            status: if payment.is_some() { BookingStatus::PendingPayment } else { BookingStatus::Confirmed },
            created_at: now,
            cancelled_at: None,
            event: event.snapshot(),
            payment,
            cancel_reason: None,
            sequence: 0,
            via_waitlist: false,
        }
    }

    /// This booking as a cancel leaves it: `cancelled` at `now` for `reason`, its sequence raised,
    /// and a paid confirmed one's refund owed (`refund_status: requested`).
    pub fn cancelled(&self, reason: CancelReason, now: Timestamp) -> Booking {
        let mut b = self.clone();
        if let (BookingStatus::Confirmed, Some(payment)) = (b.status, b.payment.as_mut()) {
            payment.refund_status = Some(super::REFUND_REQUESTED.into());
        }
        b.status = BookingStatus::Cancelled;
        b.cancelled_at = Some(now);
        b.cancel_reason = Some(reason);
        b.sequence += 1;
        b
    }

    /// This booking as the reschedule of its event leaves it: the event's details as `event`
    /// now has them (time, length, revision), and its sequence raised when its time or length
    /// actually moved (a PATCH that sends the same time changes nothing attendees must hear).
    pub fn rescheduled(&self, event: &super::Event) -> Booking {
        let mut b = self.clone();
        b.event = event.snapshot();
        b.sequence += u32::from(self.moved_by(event));
        b
    }

    /// The event's time or length differs from what this booking shows.
    pub fn moved_by(&self, event: &super::Event) -> bool {
        self.event.datetime != event.datetime || self.event.duration_minutes != event.duration_minutes
    }

    /// A Checkout Session was opened for its payment (someone may still pay it while it is open).
    pub fn has_checkout_session(&self) -> bool {
        self.payment.as_ref().is_some_and(|p| p.checkout_session_id.is_some())
    }

    /// The `booking.rescheduled` message this booking owes after [`Booking::rescheduled`] moved
    /// it from `previous` (its old start) at `now`.
    pub fn rescheduled_message(&self, previous: Timestamp, now: Timestamp) -> super::Delivery {
        let mut d = super::Delivery::message(self, super::MessageKind::Rescheduled, now);
        d.event_datetime = Some(self.event.datetime);
        d.previous_event_datetime = Some(previous);
        d
    }

    pub fn view(&self) -> BookingView<'_> {
        BookingView {
            id: &self.id,
            event_id: &self.event_id,
            user_id: &self.user_id,
            status: self.status,
            created_at: Rfc3339(&self.created_at),
            cancelled_at: self.cancelled_at.as_ref().map(Rfc3339),
            cancel_reason: self.cancel_reason,
            event: self.event.view(),
            payment: self.payment.as_ref().map(Payment::view),
        }
    }
}

/// The booking JSON of the API, in the contract's field order.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Booking))]
pub struct BookingView<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub id: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub event_id: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub user_id: &'a str,
    pub status: BookingStatus,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub created_at: Rfc3339<'a>,
    /// Set when the booking was cancelled (RFC 3339 UTC), else null.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub cancelled_at: Option<Rfc3339<'a>>,
    /// Who cancelled it; null unless cancelled.
    pub cancel_reason: Option<CancelReason>,
    #[cfg_attr(feature = "openapi", schema(value_type = EventSnapshotView))]
    pub event: EventSnapshotView<'a>,
    /// Null for a free event's booking.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<PaymentView>))]
    pub payment: Option<PaymentView<'a>>,
}

/// The first response to a `POST /bookings/` carrying an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub user_id: String,
    pub key: String,
    /// SHA-256 of the request body, to tell a retry from a different request reusing the key.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    /// Epoch seconds; DynamoDB's TTL attribute.
    pub ttl: i64,
}

pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

impl IdempotencyRecord {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.ttl > now.timestamp()
    }
}
