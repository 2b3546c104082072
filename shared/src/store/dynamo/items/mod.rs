//! How each entity lies in the single table, declared once per entity next to its type: its
//! primary key, the index keys it carries and its `entity` tag (the shape modyne gives entities),
//! plus the attribute names the adapter's expressions use. Keys themselves are built in
//! `crate::keys`; nothing else in the adapter spells an attribute name.

use crate::error::{Error, Result};
use crate::keys::{self, entity, Key};
use crate::model::{Booking, Delivery, Event, IdempotencyRecord, Job, PaymentTask, Session, User, WaitEntry};
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
    pub const WAITLIST_COUNT: &str = "waitlist_count";
    pub const PRICE: &str = "price";
    pub const JOINED_AT: &str = "joined_at";
    pub const VIA_WAITLIST: &str = "via_waitlist";
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

/// A place in an event's waitlist: in the event's partition, so the head of the line is one
/// strongly consistent Query of the base table; GSI1 lists it among its user's bookings
/// (`waiting#…` sorts apart from every booking status).
impl Entity for WaitEntry {
    const TAG: &'static str = entity::WAIT_ENTRY;
    fn key(&self) -> Key {
        keys::wait_entry(&self.event_id, &self.joined_at, &self.user_id)
    }
    fn index_attrs(&self) -> Vec<(&'static str, String)> {
        vec![
            (keys::GSI1PK, keys::user_bookings(&self.user_id)),
            (keys::GSI1SK, keys::user_waiting_sort(&self.joined_at, &self.event_id)),
        ]
    }
}

/// The attendee guard's other shape: its user waits for a seat (entity `waiting`). One item
/// per user and event, so waiting and holding a booking exclude each other; `joined_at` names
/// the entry, so a promotion turns exactly this wait into the attendee guard.
#[derive(Serialize)]
pub(super) struct WaitingGuard<'a> {
    #[serde(skip)]
    pub event_id: &'a str,
    #[serde(skip)]
    pub user_id: &'a str,
    pub joined_at: String,
}

impl Entity for WaitingGuard<'_> {
    const TAG: &'static str = entity::WAITING;
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
mod tests;
