//! Every key of the single table is built here, so the layout in `docs/data-model.md` has exactly
//! one implementation. Generic attribute names (`PK`, `SK`, `GSI1PK`…) let unrelated entities share
//! the table and its indexes.

use crate::time::{self, Timestamp};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2: &str = "GSI2";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const ENTITY: &str = "entity";
pub const TTL: &str = "ttl";

pub mod entity {
    pub const USER: &str = "user";
    pub const EMAIL: &str = "email";
    pub const LOGIN_THROTTLE: &str = "login_throttle";
    pub const EVENT: &str = "event";
    pub const BOOKING: &str = "booking";
    pub const ATTENDEE: &str = "attendee";
    pub const IDEMPOTENCY: &str = "idempotency";
    pub const DELIVERY: &str = "delivery";
    pub const PAYMENT_TASK: &str = "payment_task";
    pub const SESSION: &str = "session";
    pub const JOB: &str = "job";
    /// The [`super::attendee`] guard while its user waits for a seat (not yet booked).
    pub const WAITING: &str = "waiting";
    /// A place in an event's waitlist ([`super::wait_entry`]).
    pub const WAIT_ENTRY: &str = "wait_entry";
}

pub type Key = (String, String);

pub fn user(id: &str) -> Key {
    (format!("USER#{id}"), "PROFILE".into())
}

/// Guard item that makes an email unique: written in the same transaction as the user.
pub fn email(email: &str) -> Key {
    (format!("EMAIL#{email}"), "EMAIL".into())
}

pub fn login_throttle(email: &str) -> Key {
    (format!("LOGIN#{email}"), "THROTTLE".into())
}

/// A refresh-token family (one per login). Its own partition, apart from the user's, so IAM can
/// keep it to the auth function (`dynamodb:LeadingKeys` `SESSION#*`) and a logout or a reuse
/// revokes it with one key write.
pub fn session(family_id: &str) -> Key {
    (format!("SESSION#{family_id}"), "SESSION".into())
}

/// The partition-key prefix of every [`session`]: what the other functions' IAM policies deny.
pub const SESSION_PREFIX: &str = "SESSION#";

pub fn event(id: &str) -> Key {
    (format!("EVENT#{id}"), "EVENT".into())
}

/// GSI1 partition holding every event, sorted by [`event_sort`].
pub const ALL_EVENTS: &str = "EVENTS";

/// GSI2 partition of one event type, case-folded so `yoga` finds `Yoga`.
pub fn event_type(event_type: &str) -> String {
    format!("TYPE#{}", crate::model::fold_type(event_type))
}

pub fn event_sort(datetime: &Timestamp, id: &str) -> String {
    format!("{}#{id}", time::format(datetime))
}

/// The position an [`event_sort`] or [`event_booking_sort`] value stands for (both are
/// `<time>#<id>`), e.g. from a `LastEvaluatedKey`.
pub fn position_from_sort(sort: &str) -> Option<crate::store::Position> {
    let (at, id) = sort.split_once('#')?;
    Some(crate::store::Position { at: time::parse(at)?, id: id.to_string() }).filter(|p| !p.id.is_empty())
}

pub fn booking(id: &str) -> Key {
    (format!("BOOKING#{id}"), "BOOKING".into())
}

/// GSI1 partition of one user's bookings; sort key starts with the status so one `begins_with`
/// query returns only confirmed (or only cancelled) ones.
pub fn user_bookings(user_id: &str) -> String {
    format!("USER#{user_id}#BOOKINGS")
}

pub fn user_booking_sort(status: &str, created_at: &Timestamp, booking_id: &str) -> String {
    format!("{status}#{}#{booking_id}", time::format(created_at))
}

/// GSI2 partition of one event's bookings, oldest first.
pub fn event_bookings(event_id: &str) -> String {
    format!("EVENT#{event_id}#BOOKINGS")
}

pub fn event_booking_sort(created_at: &Timestamp, booking_id: &str) -> String {
    format!("{}#{booking_id}", time::format(created_at))
}

/// One confirmed booking per user per event: this item exists exactly while it does.
pub fn attendee(event_id: &str, user_id: &str) -> Key {
    (format!("EVENT#{event_id}"), format!("ATTENDEE#{user_id}"))
}

/// An event's waitlist, in its own partition's sort order: `WAIT#<joined_at>#<user_id>` is FIFO
/// by `joined_at`, ties by user id, so the first in line is one strongly consistent Query
/// (`begins_with(SK, "WAIT#")`, `Limit`) of the base table, never an eventually consistent
/// index. The user's [`attendee`] guard (entity `waiting` while they wait) keeps one entry per
/// user and excludes holding a booking at the same time.
pub fn wait_entry(event_id: &str, joined_at: &Timestamp, user_id: &str) -> Key {
    (format!("EVENT#{event_id}"), format!("{WAIT_PREFIX}{}#{user_id}", time::format(joined_at)))
}

pub const WAIT_PREFIX: &str = "WAIT#";

/// GSI1 sort key of a user's waitlist entries, in their [`user_bookings`] partition (no booking
/// status starts with `waiting#`).
pub fn user_waiting_sort(joined_at: &Timestamp, event_id: &str) -> String {
    format!("{USER_WAITING_PREFIX}{}#{event_id}", time::format(joined_at))
}

pub const USER_WAITING_PREFIX: &str = "waiting#";

pub fn idempotency(user_id: &str, key: &str) -> Key {
    (format!("IDEMPOTENCY#{user_id}#{key}"), "IDEMPOTENCY".into())
}

/// CRM delivery record, in the booking's item collection.
pub fn delivery(booking_id: &str) -> Key {
    (format!("BOOKING#{booking_id}"), "DELIVERY".into())
}

/// Prefix of the GSI1 partitions of delivery records that have no final outcome yet; no other
/// GSI1 partition starts with `CRM#` (`EVENTS`, `USER#<id>#BOOKINGS`).
pub const PENDING_DELIVERIES_PREFIX: &str = "CRM#PENDING#";

/// GSI1 partition of the pending delivery records of bookings made on `day` (UTC), sorted by
/// [`pending_delivery_sort`]. A day per partition keeps each one bounded and lets the sweeper
/// look back a fixed number of days.
pub fn pending_deliveries(day: chrono::NaiveDate) -> String {
    format!("{PENDING_DELIVERIES_PREFIX}{}", day.format("%Y-%m-%d"))
}

/// `<booked_at>#<booking_id>`, like [`event_booking_sort`] (so [`position_from_sort`] reads it).
pub fn pending_delivery_sort(booked_at: &Timestamp, booking_id: &str) -> String {
    format!("{}#{booking_id}", time::format(booked_at))
}

/// One CRM message of a booking, in its item collection: `booking.confirmed` is the
/// [`delivery`] record; a cancellation, offer or expiry happens at most once per booking; a
/// reschedule once per `sequence` the booking reached.
pub fn message(booking_id: &str, kind: crate::model::MessageKind, seq: u32) -> Key {
    use crate::model::MessageKind;
    match kind {
        MessageKind::Confirmed => delivery(booking_id),
        MessageKind::Rescheduled => (format!("BOOKING#{booking_id}"), format!("DELIVERY#RESCHEDULED#{seq:05}")),
        other => (format!("BOOKING#{booking_id}"), format!("DELIVERY#{}", other.key_name())),
    }
}

/// The sort-key range of a booking's item collection that holds the booking and every CRM
/// message of it (`BOOKING` < `DELIVERY` < `DELIVERY#…` < [`MESSAGES_END`]), and not its
/// payment task: what one Query reads to deliver the booking's messages in order.
pub const MESSAGES_START: &str = "BOOKING";
/// Above every `DELIVERY#<KIND>…` sort key (`~` sorts after every upper-case letter and digit),
/// below `PAYMENT_TASK`.
pub const MESSAGES_END: &str = "DELIVERY#~";

/// A message's id in the pending index: the booking id for `booking.confirmed` (its entries
/// predate typed messages and keep their place), else `<booking id>#<sort key after DELIVERY#>`
/// (`…#CANCELLED`, `…#RESCHEDULED#00002`), so that two messages of one booking are two entries,
/// and a position names the item it stands for ([`pending_message_key`]).
pub fn pending_message_id(booking_id: &str, sort_key: &str) -> String {
    match sort_key.strip_prefix("DELIVERY#") {
        Some(rest) => format!("{booking_id}#{rest}"),
        None => booking_id.to_string(),
    }
}

/// The primary key of the message a [`pending_message_id`] names.
pub fn pending_message_key(id: &str) -> Key {
    match id.split_once('#') {
        Some((booking_id, rest)) => (format!("BOOKING#{booking_id}"), format!("DELIVERY#{rest}")),
        None => delivery(id),
    }
}

/// A booking's payment task (seat hold or refund), in the booking's item collection.
pub fn payment_task(booking_id: &str) -> Key {
    (format!("BOOKING#{booking_id}"), "PAYMENT_TASK".into())
}

/// Prefix of the GSI1 partitions of payment tasks; no other GSI1 partition starts with `PAY#`.
pub const DUE_PAYMENTS_PREFIX: &str = "PAY#DUE#";

/// GSI1 partition of the payment tasks due on `day` (UTC), sorted by [`due_payment_sort`].
pub fn due_payments(day: chrono::NaiveDate) -> String {
    format!("{DUE_PAYMENTS_PREFIX}{}", day.format("%Y-%m-%d"))
}

/// `<due_at>#<booking_id>` (so [`position_from_sort`] reads it).
pub fn due_payment_sort(due_at: &Timestamp, booking_id: &str) -> String {
    format!("{}#{booking_id}", time::format(due_at))
}

/// An event's lifecycle job (cancel or reschedule fan-out), beside the event in its partition.
pub fn job(event_id: &str) -> Key {
    (format!("EVENT#{event_id}"), "JOB".into())
}

/// GSI1 partition of every lifecycle job, by [`job_sort`]: the sweeper's due-jobs query. Jobs
/// are few at any time (one per event being cancelled or rescheduled) and short-lived.
pub const JOBS: &str = "JOBS";

/// `<due_at>#<event_id>` (so [`position_from_sort`] reads it).
pub fn job_sort(due_at: &Timestamp, event_id: &str) -> String {
    format!("{}#{event_id}", time::format(due_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageKind;

    /// A pending-index position names its message's item: the sweep's `ExclusiveStartKey` must
    /// carry the primary key of the entry the previous page ended on (DynamoDB accepts only what
    /// a `LastEvaluatedKey` would hold), and two messages of one booking are two entries.
    #[test]
    fn a_pending_message_id_names_its_item_and_sorts_inside_the_messages_range() {
        let id = "01KBK3ZQ7M4XR2D9T6VW8YHN5A";
        let mut seen = std::collections::BTreeSet::new();
        for (kind, seq) in [
            (MessageKind::Confirmed, 0),
            (MessageKind::Rescheduled, 1),
            (MessageKind::Rescheduled, 12),
            (MessageKind::Offered, 0),
            (MessageKind::Expired, 0),
            (MessageKind::Cancelled, 3),
        ] {
            let key = message(id, kind, seq);
            let pending = pending_message_id(id, &key.1);
            assert_eq!(pending_message_key(&pending), key, "{kind:?}");
            assert!(seen.insert(pending.clone()), "{pending} twice");
            let sort = pending_delivery_sort(&crate::time::now(), &pending);
            assert_eq!(position_from_sort(&sort).map(|p| p.id), Some(pending));
            assert!(MESSAGES_START < key.1.as_str() && key.1.as_str() < MESSAGES_END, "{key:?}");
        }
        assert_eq!(pending_message_id(id, "DELIVERY"), id, "booking.confirmed keeps its entry");
        assert!(MESSAGES_END < payment_task(id).1.as_str(), "the payment task stays out of the read");
        assert!(MESSAGES_START <= booking(id).1.as_str());
    }
}
