//! How each entity lies in the single table, declared once per entity next to its type: its
//! primary key, the index keys it carries and its `entity` tag (the shape modyne gives entities),
//! plus the attribute names the adapter's expressions use. Keys themselves are built in
//! `crate::keys`; nothing else in the adapter spells an attribute name.

use crate::error::{Error, Result};
use crate::keys::{self, entity, Key};
use crate::model::{Booking, Delivery, Event, IdempotencyRecord, Job, PaymentTask, Session, User};
use crate::store::Position;
use crate::time::Timestamp;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

/// Entity attributes named in key conditions, condition and update expressions. Each is a field
/// as serde writes it; `attribute_names_are_the_serialised_fields` keeps them so.
pub(super) mod attr {
    pub const STATUS: &str = "status";
    pub const SEATS_BOOKED: &str = "seats_booked";
    pub const CAPACITY: &str = "capacity";
    pub const DATETIME: &str = "datetime";
    pub const OWNER_ID: &str = "owner_id";
    pub const RATING: &str = "rating";
    pub const CANCELLED_AT: &str = "cancelled_at";
    pub const USER_ID: &str = "user_id";
    pub const ATTEMPTS: &str = "attempts";
    pub const WINDOW_START: &str = "window_start";
    pub const TTL: &str = crate::keys::TTL;
    pub const ROLE: &str = "role";
    pub const BOOKING_ID: &str = "booking_id";
    pub const BOOKED_AT: &str = "booked_at";
    pub const UPDATED_AT: &str = "updated_at";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const LEASE_OWNER: &str = "lease_owner";
    pub const PAYMENT: &str = "payment";
    pub const CHECKOUT_SESSION_ID: &str = "checkout_session_id";
    pub const CHECKOUT_URL: &str = "checkout_url";
    pub const PAYMENT_INTENT: &str = "payment_intent";
    pub const SETTLED_BY: &str = "settled_by";
    pub const REFUND_STATUS: &str = "refund_status";
    pub const REFUND_ID: &str = "refund_id";
    pub const KIND: &str = "kind";
    pub const PASSWORD_HASH: &str = "password_hash";
    pub const SESSION_EPOCH: &str = "session_epoch";
    pub const GENERATION: &str = "generation";
    pub const TOKEN_HASH: &str = "token_hash";
    pub const REVOKED: &str = "revoked";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const SEQUENCE: &str = "sequence";
    pub const SEQ: &str = "seq";
    pub const CANCEL_REASON: &str = "cancel_reason";
    pub const REVISION: &str = "revision";
    /// A booking's event snapshot (a map).
    pub const EVENT: &str = "event";
    pub const CURSOR: &str = "cursor";
    pub const PASS_STARTED_AT: &str = "pass_started_at";
    pub const DUE_AT: &str = "due_at";
    pub const PASSES: &str = "passes";
}

/// Conditions on the item's existence, by its partition key.
pub(super) const ABSENT: &str = "attribute_not_exists(PK)";
pub(super) const EXISTS: &str = "attribute_exists(PK)";

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key_item((pk, sk): Key) -> Item {
    HashMap::from([(keys::PK.to_string(), s(pk)), (keys::SK.to_string(), s(sk))])
}

pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(Error::internal)
}

/// The entity tag of a stored item (`entity` attribute), to sort out a mixed batch read.
pub(super) fn tag(item: &Item) -> Option<&str> {
    match item.get(keys::ENTITY) {
        Some(AttributeValue::S(t)) => Some(t),
        _ => None,
    }
}

/// A stored entity: what it is called, where it lives, and which index entries it has.
pub(super) trait Entity: Serialize {
    const TAG: &'static str;
    fn key(&self) -> Key;
    /// Its index key attributes (`GSI1PK`, `GSI1SK`, …) and their values.
    fn index_attrs(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The item to write: the entity's fields (a `null` is left out, so "no capacity" is an
    /// absent attribute as `attribute_not_exists(capacity)` expects), its keys and tag, checked
    /// against DynamoDB's limits before DynamoDB sees it.
    fn to_item(&self) -> Result<Item> {
        let mut item: Item = serde_dynamo::to_item(self).map_err(Error::internal)?;
        item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
        item.extend(key_item(self.key()));
        item.insert(keys::ENTITY.to_string(), s(Self::TAG));
        for (name, value) in self.index_attrs() {
            item.insert(name.to_string(), s(value));
        }
        crate::limits::check_item(&item)?;
        Ok(item)
    }
}

impl Entity for User {
    const TAG: &'static str = entity::USER;
    fn key(&self) -> Key {
        keys::user(&self.id)
    }
}

/// A refresh-token family: its own partition, no index entries (nothing lists sessions).
impl Entity for Session {
    const TAG: &'static str = entity::SESSION;
    fn key(&self) -> Key {
        keys::session(&self.family_id)
    }
}

/// Makes an email unique: written in the same transaction as its user.
#[derive(Serialize)]
pub(super) struct EmailGuard<'a> {
    #[serde(skip)]
    pub email: &'a str,
    pub user_id: &'a str,
}

impl Entity for EmailGuard<'_> {
    const TAG: &'static str = entity::EMAIL;
    fn key(&self) -> Key {
        keys::email(self.email)
    }
}

/// A fresh login-attempt window; DynamoDB's TTL removes it once closed.
#[derive(Serialize)]
pub(super) struct LoginWindow<'a> {
    #[serde(skip)]
    pub email: &'a str,
    pub attempts: u32,
    pub window_start: i64,
    pub ttl: i64,
}

impl Entity for LoginWindow<'_> {
    const TAG: &'static str = entity::LOGIN_THROTTLE;
    fn key(&self) -> Key {
        keys::login_throttle(self.email)
    }
}

/// An event's index attributes that follow from its time and its type: GSI1 lists all events and
/// GSI2 one type's, both by time, then id. Given only what changed, it returns only what moves,
/// so an update rewrites the same attributes a put writes.
pub(super) fn event_index_attrs(
    id: &str,
    datetime: Option<&Timestamp>,
    event_type: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut attrs = Vec::new();
    if let Some(at) = datetime {
        let sort = keys::event_sort(at, id);
        attrs.extend([
            (keys::GSI1PK, keys::ALL_EVENTS.to_string()),
            (keys::GSI1SK, sort.clone()),
            (keys::GSI2SK, sort),
        ]);
    }
    if let Some(t) = event_type {
        attrs.push((keys::GSI2PK, keys::event_type(t)));
    }
    attrs
}

impl Entity for Event {
    const TAG: &'static str = entity::EVENT;
    fn key(&self) -> Key {
        keys::event(&self.id)
    }
    fn index_attrs(&self) -> Vec<(&'static str, String)> {
        event_index_attrs(&self.id, Some(&self.datetime), Some(&self.event_type))
    }
}

impl Entity for Booking {
    const TAG: &'static str = entity::BOOKING;
    fn key(&self) -> Key {
        keys::booking(&self.id)
    }
    /// GSI1: the user's bookings by status, then time; GSI2: the event's bookings by time.
    fn index_attrs(&self) -> Vec<(&'static str, String)> {
        vec![
            (keys::GSI1PK, keys::user_bookings(&self.user_id)),
            (keys::GSI1SK, keys::user_booking_sort(self.status.listed_as().as_str(), &self.created_at, &self.id)),
            (keys::GSI2PK, keys::event_bookings(&self.event_id)),
            (keys::GSI2SK, keys::event_booking_sort(&self.created_at, &self.id)),
        ]
    }
}

/// One confirmed booking per user per event: this item exists exactly while it does.
#[derive(Serialize)]
pub(super) struct AttendeeGuard<'a> {
    #[serde(skip)]
    pub event_id: &'a str,
    #[serde(skip)]
    pub user_id: &'a str,
    pub booking_id: &'a str,
}

impl Entity for AttendeeGuard<'_> {
    const TAG: &'static str = entity::ATTENDEE;
    fn key(&self) -> Key {
        keys::attendee(self.event_id, self.user_id)
    }
}

impl Entity for IdempotencyRecord {
    const TAG: &'static str = entity::IDEMPOTENCY;
    fn key(&self) -> Key {
        keys::idempotency(&self.user_id, &self.key)
    }
}

impl Entity for Delivery {
    const TAG: &'static str = entity::DELIVERY;
    fn key(&self) -> Key {
        Delivery::key(self)
    }
    /// GSI1, sparse: the pending deliveries of the booking's day, while the record is not final.
    /// A final record is written without them (a whole-item put), which takes it out of the index.
    fn index_attrs(&self) -> Vec<(&'static str, String)> {
        match self.booked_at {
            Some(at) if !self.status.is_final() => pending_delivery_index_attrs(&self.pending_id(), &at).to_vec(),
            _ => Vec::new(),
        }
    }
}

/// The pending-index entry of a message record: GSI1 in the `CRM#PENDING#<day>` bucket of the
/// day it was owed (a confirmation: the booking was made), sorted by that instant, then the
/// message id ([`keys::pending_message_id`]: unique per message, so it also names the item).
pub(super) fn pending_delivery_index_attrs(message_id: &str, booked_at: &Timestamp) -> [(&'static str, String); 2] {
    [
        (keys::GSI1PK, keys::pending_deliveries(booked_at.date_naive())),
        (keys::GSI1SK, keys::pending_delivery_sort(booked_at, message_id)),
    ]
}

impl Entity for PaymentTask {
    const TAG: &'static str = entity::PAYMENT_TASK;
    fn key(&self) -> Key {
        keys::payment_task(&self.booking_id)
    }
    /// GSI1: the due-payments bucket of the day it falls due, by that instant, then booking id.
    fn index_attrs(&self) -> Vec<(&'static str, String)> {
        vec![
            (keys::GSI1PK, keys::due_payments(self.due_at.date_naive())),
            (keys::GSI1SK, keys::due_payment_sort(&self.due_at, &self.booking_id)),
        ]
    }
}

/// An event's lifecycle job: GSI1 in the one `JOBS` partition by due time, so the sweeper finds
/// the due ones with one Query.
impl Entity for Job {
    const TAG: &'static str = entity::JOB;
    fn key(&self) -> Key {
        keys::job(&self.event_id)
    }
    fn index_attrs(&self) -> Vec<(&'static str, String)> {
        vec![(keys::GSI1PK, keys::JOBS.to_string()), (keys::GSI1SK, keys::job_sort(&self.due_at, &self.event_id))]
    }
}

/// `ExclusiveStartKey` of an index query resuming after `position`: the item's primary key and
/// its index key (`partition`, and the sort value `sort` built from the position).
pub(super) fn start_key(index: usize, primary: Key, partition: &str, sort: String) -> Item {
    let (pk, sk) = [(keys::GSI1PK, keys::GSI1SK), (keys::GSI2PK, keys::GSI2SK)][index];
    let mut key = key_item(primary);
    key.insert(pk.to_string(), s(partition));
    key.insert(sk.to_string(), s(sort));
    key
}

/// The position a `LastEvaluatedKey` stands for, read from its index sort key.
pub(super) fn position_of(index: usize, last_evaluated: &Item) -> Option<Position> {
    match last_evaluated.get([keys::GSI1SK, keys::GSI2SK][index]) {
        Some(AttributeValue::S(sort)) => keys::position_from_sort(sort),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BookingStatus, DeliveryStatus, LoginThrottle};

    fn event() -> Event {
        let now = crate::time::now();
        Event {
            waitlist_count: 0,
            id: "E1".into(),
            title: "t".into(),
            description: String::new(),
            datetime: now,
            duration_minutes: 60,
            facilitator_id: "F".into(),
            event_type: " Yoga".into(),
            rating: Some(4.5),
            capacity: Some(3),
            seats_booked: 0,
            price: None,
            owner_id: "U".into(),
            created_at: now,
            updated_at: now,
            status: crate::model::EventStatus::Scheduled,
            cancelled_at: None,
            cancel_reason: None,
            revision: 0,
        }
    }

    #[test]
    fn items_drop_nulls_and_carry_keys_indexes_and_tag() {
        let ev = Event { rating: None, capacity: None, ..event() };
        let item = ev.to_item().unwrap();
        assert!(!item.contains_key("capacity") && !item.contains_key("rating"));
        assert_eq!(item.get("PK"), Some(&s("EVENT#E1")));
        assert_eq!(item.get("GSI1PK"), Some(&s("EVENTS")));
        assert_eq!(item.get("GSI2PK"), Some(&s("TYPE#yoga")));
        assert_eq!(item.get("entity"), Some(&s("event")));
        assert_eq!(from_item::<Event>(item).unwrap(), ev);
        let guard = AttendeeGuard { event_id: "E1", user_id: "U1", booking_id: "B1" }.to_item().unwrap();
        assert_eq!((guard.get("SK"), guard.len()), (Some(&s("ATTENDEE#U1")), 4), "{guard:?}");
    }

    #[test]
    fn attribute_names_are_the_serialised_fields() {
        let ev = serde_json::to_value(event()).unwrap();
        for name in [attr::SEATS_BOOKED, attr::CAPACITY, attr::DATETIME, attr::OWNER_ID, attr::RATING] {
            assert!(ev.get(name).is_some(), "Event has no field {name}");
        }
        let e = event();
        let booking = serde_json::to_value(Booking {
            via_waitlist: false,
            id: "B".into(),
            event_id: "E1".into(),
            user_id: "U".into(),
            user_name: "n".into(),
            user_email: "e@x.io".into(),
            status: BookingStatus::Cancelled,
            created_at: e.created_at,
            cancelled_at: Some(e.created_at),
            event: e.snapshot(),
            payment: None,
            cancel_reason: None,
            sequence: 0,
        })
        .unwrap();
        let user = serde_json::to_value(User {
            id: "U".into(),
            name: "n".into(),
            email: "e@x.io".into(),
            role: crate::model::Role::Admin,
            password_hash: "h".into(),
            created_at: e.created_at,
            session_epoch: 0,
        })
        .unwrap();
        for name in [attr::ROLE, attr::PASSWORD_HASH, attr::SESSION_EPOCH] {
            assert!(user.get(name).is_some(), "User has no field {name}");
        }
        let (session, _) = Session::start("U", 0, e.created_at);
        let session = serde_json::to_value(&session).unwrap();
        for name in [
            attr::USER_ID,
            attr::GENERATION,
            attr::TOKEN_HASH,
            attr::SESSION_EPOCH,
            attr::REVOKED,
            attr::EXPIRES_AT,
            attr::TTL,
        ] {
            assert!(session.get(name).is_some(), "Session has no field {name}");
        }
        assert_eq!(ABSENT, format!("attribute_not_exists({})", keys::PK));
        assert_eq!(EXISTS, format!("attribute_exists({})", keys::PK));
        for name in [attr::STATUS, attr::CANCELLED_AT, attr::USER_ID] {
            assert!(booking.get(name).is_some(), "Booking has no field {name}");
        }
        let throttle = serde_json::to_value(LoginThrottle { attempts: 1, window_start: 0 }).unwrap();
        for name in [attr::ATTEMPTS, attr::WINDOW_START] {
            assert!(throttle.get(name).is_some(), "LoginThrottle has no field {name}");
        }
        let window =
            serde_json::to_value(LoginWindow { email: "a@b.io", attempts: 1, window_start: 0, ttl: 9 }).unwrap();
        assert_eq!(window, serde_json::json!({"attempts": 1, "window_start": 0, "ttl": 9}));
        assert_eq!(serde_json::to_value(DeliveryStatus::Delivered).unwrap(), serde_json::json!("delivered"));
        let mut delivery = Delivery::pending(&serde_json::from_value(booking).unwrap(), e.created_at);
        delivery.lease_until = Some(e.created_at);
        delivery.lease_owner = Some("claim".into());
        let delivery = serde_json::to_value(&delivery).unwrap();
        for name in [
            attr::STATUS,
            attr::ATTEMPTS,
            attr::BOOKING_ID,
            attr::BOOKED_AT,
            attr::UPDATED_AT,
            attr::LEASE_UNTIL,
            attr::KIND,
            attr::SEQ,
        ] {
            assert!(delivery.get(name).is_some(), "Delivery has no field {name}");
        }
        assert!(delivery.get(attr::LEASE_OWNER).is_some(), "Delivery has no field {}", attr::LEASE_OWNER);
        for status in
            [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Retrying, DeliveryStatus::Failed]
        {
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
        }
    }

    #[test]
    fn delivery_records_are_in_the_pending_index_until_final() {
        let e = event();
        let booking = Booking {
            via_waitlist: false,
            id: "01KBK3ZQ7M4XR2D9T6VW8YHN5A".into(),
            event_id: "E1".into(),
            user_id: "U".into(),
            user_name: "n".into(),
            user_email: "e@x.io".into(),
            status: BookingStatus::Confirmed,
            created_at: crate::time::parse("2026-01-05T09:30:00Z").unwrap(),
            cancelled_at: None,
            event: e.snapshot(),
            payment: None,
            cancel_reason: None,
            sequence: 0,
        };
        let mut d = Delivery::pending(&booking, e.created_at);
        let item = d.to_item().unwrap();
        assert_eq!(item.get("PK"), Some(&s("BOOKING#01KBK3ZQ7M4XR2D9T6VW8YHN5A")));
        assert_eq!(item.get("SK"), Some(&s("DELIVERY")));
        assert_eq!(item.get("GSI1PK"), Some(&s("CRM#PENDING#2026-01-05")));
        assert_eq!(item.get("GSI1SK"), Some(&s("2026-01-05T09:30:00Z#01KBK3ZQ7M4XR2D9T6VW8YHN5A")));
        assert!(!item.contains_key("GSI2PK") && !item.contains_key("lease_owner"), "{item:?}");
        assert_eq!(from_item::<Delivery>(item).unwrap(), d);
        d.status = DeliveryStatus::Retrying;
        assert!(d.to_item().unwrap().contains_key("GSI1PK"), "retrying stays pending");
        for status in [DeliveryStatus::Delivered, DeliveryStatus::Failed] {
            d.status = status;
            let item = d.to_item().unwrap();
            assert!(!item.contains_key("GSI1PK") && !item.contains_key("GSI1SK"), "{status:?} left in the index");
        }
        // A record from before the index (no booked_at) has no entry until a claim adds one.
        d.status = DeliveryStatus::Retrying;
        d.booked_at = None;
        assert!(!d.to_item().unwrap().contains_key("GSI1PK"));
        assert!(keys::pending_deliveries(booking.created_at.date_naive()).starts_with(keys::PENDING_DELIVERIES_PREFIX));
    }
}
