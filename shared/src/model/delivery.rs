//! The outcome of the CRM webhook for a booking, and the lease that lets exactly one sender POST
//! it at a time.

use super::Booking;
use crate::time::{self, serde_ts, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The kinds of CRM message a booking can owe, in the payload's `type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A paid waitlist offer: a held seat and its checkout link. First in the send order: an
    /// offer paid at once owes `booking.offered` and `booking.confirmed` at the same sequence.
    Offered,
    /// The booking holds its seat for good (free, or paid): the v2 payload.
    #[default]
    Confirmed,
    /// The event's time or length changed after the booking.
    Rescheduled,
    /// A waitlist offer that ended unpaid.
    Expired,
    /// The booking was cancelled (by its attendee, an admin, or with its event).
    Cancelled,
}

impl MessageKind {
    /// The payload's `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            MessageKind::Confirmed => "booking.confirmed",
            MessageKind::Rescheduled => "booking.rescheduled",
            MessageKind::Offered => "booking.offered",
            MessageKind::Expired => "booking.expired",
            MessageKind::Cancelled => "booking.cancelled",
        }
    }

    /// Upper case, as the message's sort key spells it.
    pub fn key_name(self) -> &'static str {
        match self {
            MessageKind::Confirmed => "CONFIRMED",
            MessageKind::Rescheduled => "RESCHEDULED",
            MessageKind::Offered => "OFFERED",
            MessageKind::Expired => "EXPIRED",
            MessageKind::Cancelled => "CANCELLED",
        }
    }
}

/// Delivery state of one CRM message of a booking. The `booking.confirmed` message is keyed by
/// the booking id alone (its record predates typed messages); the others by booking, kind and,
/// for a reschedule, the booking's `sequence` ([`crate::keys::message`]).
///
/// Written `pending` in the booking's own transaction, so a booking can never exist without a
/// record that says it still has to be delivered. While it is not final it sits in the pending
/// index (one bucket per day of `booked_at`), which the sweeper queries; a final outcome
/// (`delivered`, `failed`) leaves the index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub booking_id: String,
    /// Absent on records from before typed messages: they are all `booking.confirmed`.
    #[serde(default)]
    pub kind: MessageKind,
    /// The booking's `sequence` when the message was owed: messages of one booking go out in
    /// this order (then by kind), and a reschedule's key carries it.
    #[serde(default)]
    pub seq: u32,
    /// A reschedule's new start and the one it replaced (the booking may have moved again since).
    #[serde(default, with = "serde_ts::option")]
    pub event_datetime: Option<Timestamp>,
    #[serde(default, with = "serde_ts::option")]
    pub previous_event_datetime: Option<Timestamp>,
    pub status: DeliveryStatus,
    /// POSTs started (counted when a sender claims the record, before it sends).
    pub attempts: u32,
    #[serde(default)]
    pub last_http_status: Option<u16>,
    /// Why the last attempt did not deliver; `None` once delivered. Only the category is stored
    /// and shown: the client's error text (resolver, TLS, socket detail) goes to the log alone.
    /// Records written before this field carried a free-text `last_error`, which is ignored.
    #[serde(default)]
    pub last_failure: Option<FailureKind>,
    #[serde(default, with = "serde_ts::option")]
    pub delivered_at: Option<Timestamp>,
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
    /// The booking's `created_at` for its `booking.confirmed`, the instant it was owed for any
    /// other message: places a record that is not final in the pending index. Absent on records
    /// written before the index existed (a claim fills it in).
    #[serde(default, with = "serde_ts::option")]
    pub booked_at: Option<Timestamp>,
    /// No sender may claim the record before this instant: with `lease_owner`, a sender is
    /// POSTing it right now; without, the CRM asked to wait (`Retry-After`).
    #[serde(default, with = "serde_ts::option")]
    pub lease_until: Option<Timestamp>,
    /// The claim token of the sender holding the lease.
    #[serde(default)]
    pub lease_owner: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CrmMessageStatus))]
pub enum DeliveryStatus {
    /// No answer from the CRM yet: written with the booking, or the first POST is in flight (or
    /// died with its sender; the lease then expires and the sweeper sends it).
    Pending,
    /// 2xx received. Final.
    Delivered,
    /// Retryable failure so far; the stream retry, the sweeper or the local retry loop will try
    /// again.
    Retrying,
    /// The CRM answered a non-retryable 4xx: not sent again. Final.
    Failed,
}

impl DeliveryStatus {
    /// Whether the CRM has answered for good: the booking is never sent again.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryStatus::Delivered | DeliveryStatus::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// Category of a failed CRM delivery attempt, as stored and shown in `crm_status.last_failure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FailureKind {
    /// No answer within the connect or request timeout. Retried.
    Timeout,
    /// No HTTP answer for another reason: name resolution, connection refused or reset, TLS
    /// handshake, or the request could not be written. Retried.
    Connection,
    /// The CRM answered 408, 429 or a 5xx (`last_http_status` says which). Retried.
    HttpStatus,
    /// The CRM answered any other non-2xx: a 4xx other than 408 and 429, or a 3xx (redirects are
    /// not followed). Permanent: the status is `failed` and the booking is not sent again.
    Rejected,
}

impl Delivery {
    /// The record written with a new booking: nothing sent yet, in the pending index.
    pub fn pending(booking: &Booking, now: Timestamp) -> Delivery {
        Delivery {
            booking_id: booking.id.clone(),
            kind: MessageKind::Confirmed,
            seq: booking.sequence,
            event_datetime: None,
            previous_event_datetime: None,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_http_status: None,
            last_failure: None,
            delivered_at: None,
            updated_at: now,
            booked_at: Some(booking.created_at),
            lease_until: None,
            lease_owner: None,
        }
    }

    /// Another message the booking owes from `now` on (written in the same transaction as the
    /// change that causes it), in the pending index from that instant; `seq` is the booking's
    /// `sequence` after the change.
    pub fn message(booking: &Booking, kind: MessageKind, now: Timestamp) -> Delivery {
        Delivery { kind, booked_at: Some(now), ..Delivery::pending(booking, now) }
    }

    /// Its item's sort key within the booking's collection.
    pub fn key(&self) -> crate::keys::Key {
        crate::keys::message(&self.booking_id, self.kind, self.seq)
    }

    /// The Standard Webhooks `webhook-id`: unique per message, the same on every retry of it.
    /// `booking.confirmed` keeps the booking id, as v2 receivers deduplicate on it.
    pub fn webhook_id(&self) -> String {
        match self.kind {
            MessageKind::Confirmed => self.booking_id.clone(),
            MessageKind::Rescheduled => format!("{}:rescheduled:{}", self.booking_id, self.seq),
            kind => format!("{}:{}", self.booking_id, &kind.event_type()["booking.".len()..]),
        }
    }

    /// Its id in the pending index ([`crate::keys::pending_message_id`]).
    pub fn pending_id(&self) -> String {
        crate::keys::pending_message_id(&self.booking_id, &self.key().1)
    }

    /// The order a booking's messages go out in: by the booking's `sequence` when each was owed,
    /// then by kind (a confirmation before anything else owed at the same sequence).
    pub fn send_order(&self) -> (u32, MessageKind) {
        (self.seq, self.kind)
    }

    /// Whether a sender other than the holder may claim it at `now`.
    pub fn claimable_at(&self, now: Timestamp) -> bool {
        !self.status.is_final() && self.lease_until.is_none_or(|until| until <= now)
    }

    /// One entry of `crm_messages` in the API: every message, `pending` ones included (the
    /// owner sees what is still owed).
    pub fn message_view(&self) -> MessageView<'_> {
        MessageView {
            event_type: self.kind.event_type(),
            status: self.status,
            attempts: self.attempts,
            last_http_status: self.last_http_status,
            last_failure: self.last_failure,
            delivered_at: self.delivered_at.as_ref().map(time::Rfc3339),
        }
    }

    /// `crm_status` in the API: `null` until the CRM has answered once (a `pending` record), as
    /// for bookings that have no record at all.
    pub fn view(&self) -> Value {
        if self.status == DeliveryStatus::Pending {
            return Value::Null;
        }
        json!({
            "status": self.status,
            "attempts": self.attempts,
            "last_http_status": self.last_http_status,
            "last_failure": self.last_failure,
            "delivered_at": self.delivered_at.as_ref().map(time::format),
        })
    }
}

/// One CRM message of a booking as its event's owner sees it (`crm_messages`), in send order.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CrmMessage))]
pub struct MessageView<'a> {
    /// The payload's `type`: `booking.confirmed`, `booking.rescheduled`, `booking.cancelled`
    /// (`booking.offered`, `booking.expired` with waitlists).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "booking.cancelled"))]
    pub event_type: &'static str,
    /// `pending`: owed, no answer yet (or waiting for an earlier message of the booking);
    /// `delivered`: 2xx; `retrying`: a retryable failure so far; `failed`: the CRM answered a
    /// non-retryable 4xx (not sent again).
    pub status: DeliveryStatus,
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub attempts: u32,
    /// HTTP status of the CRM's last answer; null without one.
    pub last_http_status: Option<u16>,
    /// As in `crm_status`.
    pub last_failure: Option<FailureKind>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub delivered_at: Option<time::Rfc3339<'a>>,
}
