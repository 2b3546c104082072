//! Domain types, their API views and the validation of client input. Nothing here knows about
//! DynamoDB or HTTP; the stores persist these types with serde and the handlers render `view()`s.

use crate::error::{Error, Result};
use crate::time::{self, serde_ts, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Attendee,
    Facilitator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Attendee => "attendee",
            Role::Facilitator => "facilitator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "attendee" => Some(Role::Attendee),
            "facilitator" => Some(Role::Facilitator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A stored account. `password_hash` is persisted but never part of [`User::view`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
}

impl User {
    pub fn view(&self) -> Value {
        json!({ "id": self.id, "name": self.name, "email": self.email, "role": self.role })
    }
}

pub fn normalize_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(Error::validation("email", "must be a valid email address"))
    }
}

pub fn validate_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > 100 {
        return Err(Error::validation("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_string())
}

pub fn validate_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(Error::validation("password", "must be 8 to 128 characters"));
    }
    Ok(())
}

/// `Some(value)` when the field is present (even `null`), `None` when absent: lets a PATCH tell
/// "set rating to null" from "leave rating alone".
pub fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A rating as stored and compared: 0.0–5.0 kept to two decimals (4.567 → 4.57, 1e-200 → 0).
/// Rounding first keeps every stored rating a short decimal that DynamoDB's number type can hold
/// (it refuses magnitudes below 1e-130), and the filter reads its threshold the same way.
pub fn rating(raw: f64) -> Result<f64> {
    let rounded = (raw * 100.0).round() / 100.0 + 0.0; // `+ 0.0` turns -0.0 into 0.0
    if rounded.is_finite() && (0.0..=5.0).contains(&rounded) {
        Ok(rounded)
    } else {
        Err(Error::validation("rating", "must be a number from 0.0 to 5.0 (kept to two decimals), or null"))
    }
}

pub fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| Error::validation(field, format!("`{field}` is required")))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(with = "serde_ts")]
    pub datetime: Timestamp,
    pub duration_minutes: u32,
    pub facilitator_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub rating: Option<f64>,
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub seats_booked: u32,
    pub owner_id: String,
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
}

/// Bookings close when the event starts: an event is bookable at `now` while it starts after
/// `booking_cutoff(now)`. The one place that rule lives; the stores turn the cutoff into their
/// write condition (DynamoDB: `datetime > :cutoff`).
pub fn booking_cutoff(now: Timestamp) -> Timestamp {
    now
}

/// A booking can be cancelled (its seat freed) while the event starts after `cancel_cutoff(now)`.
pub fn cancel_cutoff(now: Timestamp) -> Timestamp {
    now
}

/// A type as matched: trimmed and case-folded, so `Yoga` and ` yoga` are one type.
pub fn fold_type(event_type: &str) -> String {
    event_type.trim().to_lowercase()
}

impl Event {
    /// → `EventStarted` once bookings have closed.
    pub fn bookable_at(&self, now: Timestamp) -> Result<()> {
        if self.datetime > booking_cutoff(now) {
            Ok(())
        } else {
            Err(Error::EventStarted)
        }
    }

    /// → `EventStarted` once cancelling is no longer possible.
    pub fn cancellable_at(&self, now: Timestamp) -> Result<()> {
        if self.datetime > cancel_cutoff(now) {
            Ok(())
        } else {
            Err(Error::EventStarted)
        }
    }

    /// → `EventFull` when every seat is taken (an event without capacity never is).
    pub fn has_free_seat(&self) -> Result<()> {
        if self.capacity.is_some_and(|c| self.seats_booked >= c) {
            Err(Error::EventFull)
        } else {
            Ok(())
        }
    }

    pub fn seats_left(&self) -> Option<u32> {
        self.capacity.map(|c| c.saturating_sub(self.seats_booked))
    }

    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "datetime": time::format(&self.datetime),
            "duration_minutes": self.duration_minutes,
            "facilitator_id": self.facilitator_id,
            "type": self.event_type,
            "rating": self.rating,
            "capacity": self.capacity,
            "seats_booked": self.seats_booked,
            "seats_left": self.seats_left(),
            "owner_id": self.owner_id,
            "created_at": time::format(&self.created_at),
            "updated_at": time::format(&self.updated_at),
        })
    }

    pub fn snapshot(&self) -> EventSnapshot {
        EventSnapshot {
            id: self.id.clone(),
            title: self.title.clone(),
            datetime: self.datetime,
            duration_minutes: self.duration_minutes,
            event_type: self.event_type.clone(),
            facilitator_id: self.facilitator_id.clone(),
        }
    }
}

/// Body of `POST /events/` and `PUT|PATCH /events/{id}`. Every field optional so that a missing
/// one is a `validation_failed` naming it, not a serde message; read-only fields are listed so
/// that sending them is a clear 400 rather than a silent ignore.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    #[serde(default, deserialize_with = "present")]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub datetime: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub duration_minutes: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub facilitator_id: Option<Option<String>>,
    #[serde(default, rename = "type", deserialize_with = "present")]
    pub event_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub rating: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    pub capacity: Option<Option<u32>>,
    // Read-only: accepted by the parser only to be rejected with a precise message.
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub seats_booked: Option<Value>,
    #[serde(default)]
    pub seats_left: Option<Value>,
    #[serde(default)]
    pub owner_id: Option<Value>,
    #[serde(default)]
    pub created_at: Option<Value>,
    #[serde(default)]
    pub updated_at: Option<Value>,
}

/// A validated partial update; `None` leaves the field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub datetime: Option<Timestamp>,
    pub duration_minutes: Option<u32>,
    pub facilitator_id: Option<String>,
    pub event_type: Option<String>,
    pub rating: Option<Option<f64>>,
    pub capacity: Option<Option<u32>>,
}

impl EventPatch {
    pub fn is_empty(&self) -> bool {
        *self == EventPatch::default()
    }

    /// Every field the patch changes, named as the event's stored attribute, with its new value
    /// (`None`: remove it, as a `null` rating or capacity is stored). The one list both stores
    /// derive their update from: the embedded store through [`EventPatch::apply`], DynamoDB as
    /// the `SET` / `REMOVE` clauses of one UpdateItem.
    pub fn changes(&self) -> Vec<(&'static str, Option<Value>)> {
        let mut out = Vec::new();
        let mut set = |name: &'static str, value: Option<Option<Value>>| {
            if let Some(v) = value {
                out.push((name, v));
            }
        };
        set("title", self.title.as_ref().map(|v| Some(json!(v))));
        set("description", self.description.as_ref().map(|v| Some(json!(v))));
        set("datetime", self.datetime.as_ref().map(|v| Some(json!(time::format(v)))));
        set("duration_minutes", self.duration_minutes.map(|v| Some(json!(v))));
        set("facilitator_id", self.facilitator_id.as_ref().map(|v| Some(json!(v))));
        set("type", self.event_type.as_ref().map(|v| Some(json!(v))));
        set("rating", self.rating.map(|v| v.map(|r| json!(r))));
        set("capacity", self.capacity.map(|v| v.map(|c| json!(c))));
        out
    }

    /// The event with [`EventPatch::changes`] applied.
    pub fn apply(&self, ev: &Event) -> Result<Event> {
        let mut value = serde_json::to_value(ev).map_err(Error::internal)?;
        for (name, change) in self.changes() {
            value[name] = change.unwrap_or(Value::Null);
        }
        serde_json::from_value(value).map_err(Error::internal)
    }
}

fn non_null<T>(field: &str, v: Option<Option<T>>) -> Result<Option<T>> {
    match v {
        None => Ok(None),
        Some(None) => Err(Error::validation(field, format!("`{field}` cannot be null"))),
        Some(Some(v)) => Ok(Some(v)),
    }
}

fn bounded_text(field: &str, v: String, min: usize, max: usize, trim: bool) -> Result<String> {
    let v = if trim { v.trim().to_string() } else { v };
    let n = v.chars().count();
    if n < min || n > max {
        return Err(Error::validation(field, format!("must be {min} to {max} characters")));
    }
    Ok(v)
}

impl EventInput {
    fn reject_read_only(&self) -> Result<()> {
        let read_only = [
            ("id", &self.id),
            ("seats_booked", &self.seats_booked),
            ("seats_left", &self.seats_left),
            ("owner_id", &self.owner_id),
            ("created_at", &self.created_at),
            ("updated_at", &self.updated_at),
        ];
        for (field, value) in read_only {
            if value.is_some() {
                return Err(Error::validation(field, format!("`{field}` is read-only")));
            }
        }
        Ok(())
    }

    pub fn into_patch(self) -> Result<EventPatch> {
        self.reject_read_only()?;
        let title = non_null("title", self.title)?.map(|v| bounded_text("title", v, 1, 200, true)).transpose()?;
        let description = match self.description {
            None => None,
            Some(None) => Some(String::new()),
            Some(Some(v)) => Some(bounded_text("description", v, 0, 5000, false)?),
        };
        let datetime = non_null("datetime", self.datetime)?
            .map(|v| {
                time::parse(&v).ok_or_else(|| {
                    Error::validation("datetime", "must be an RFC 3339 date-time, e.g. 2025-08-01T10:00:00Z")
                })
            })
            .transpose()?;
        let duration_minutes = non_null("duration_minutes", self.duration_minutes)?;
        if let Some(d) = duration_minutes {
            if !(1..=10080).contains(&d) {
                return Err(Error::validation("duration_minutes", "must be 1 to 10080"));
            }
        }
        let facilitator_id = non_null("facilitator_id", self.facilitator_id)?
            .map(|v| bounded_text("facilitator_id", v, 1, 64, true))
            .transpose()?;
        let event_type =
            non_null("type", self.event_type)?.map(|v| bounded_text("type", v, 1, 50, true)).transpose()?;
        let rating = match self.rating {
            Some(Some(r)) => Some(Some(rating(r)?)),
            other => other,
        };
        if let Some(Some(c)) = self.capacity {
            if !(1..=100_000).contains(&c) {
                return Err(Error::validation("capacity", "must be 1 to 100000, or null"));
            }
        }
        Ok(EventPatch {
            title,
            description,
            datetime,
            duration_minutes,
            facilitator_id,
            event_type,
            rating,
            capacity: self.capacity,
        })
    }

    /// A new event owned by `owner_id`; `facilitator_id` defaults to the creator.
    pub fn into_event(self, owner_id: &str, now: Timestamp) -> Result<Event> {
        let patch = self.into_patch()?;
        Ok(Event {
            id: new_id(),
            title: required(patch.title, "title")?,
            description: patch.description.unwrap_or_default(),
            datetime: required(patch.datetime, "datetime")?,
            duration_minutes: patch.duration_minutes.unwrap_or(60),
            facilitator_id: patch.facilitator_id.unwrap_or_else(|| owner_id.to_string()),
            event_type: required(patch.event_type, "type")?,
            rating: patch.rating.flatten(),
            capacity: patch.capacity.flatten(),
            seats_booked: 0,
            owner_id: owner_id.to_string(),
            created_at: now,
            updated_at: now,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Cancelled => "cancelled",
        }
    }
}

/// What a booking remembers of its event, so history and the CRM payload survive event edits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventSnapshot {
    pub id: String,
    pub title: String,
    #[serde(with = "serde_ts")]
    pub datetime: Timestamp,
    pub duration_minutes: u32,
    #[serde(rename = "type")]
    pub event_type: String,
    pub facilitator_id: String,
}

impl EventSnapshot {
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "datetime": time::format(&self.datetime),
            "duration_minutes": self.duration_minutes,
            "type": self.event_type,
            "facilitator_id": self.facilitator_id,
        })
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
}

impl Booking {
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "event_id": self.event_id,
            "user_id": self.user_id,
            "status": self.status,
            "created_at": time::format(&self.created_at),
            "cancelled_at": self.cancelled_at.as_ref().map(time::format),
            "event": self.event.view(),
        })
    }
}

/// Outcome of the CRM webhook for one booking; keyed by the booking id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub booking_id: String,
    pub status: DeliveryStatus,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// 2xx received.
    Delivered,
    /// Retryable failure so far; the stream or the local retry loop will try again.
    Retrying,
    /// The CRM answered a non-retryable 4xx: not sent again.
    Failed,
}

/// Category of a failed CRM delivery attempt, as stored and shown in `crm_status.last_failure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    pub fn view(&self) -> Value {
        json!({
            "status": self.status,
            "attempts": self.attempts,
            "last_http_status": self.last_http_status,
            "last_failure": self.last_failure,
            "delivered_at": self.delivered_at.as_ref().map(time::format),
        })
    }
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

/// Fixed-window counter of login attempts for one email, counted before the password is checked
/// and cleared by a successful login.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginThrottle {
    pub attempts: u32,
    /// Epoch seconds when the window opened.
    pub window_start: i64,
}

impl LoginThrottle {
    /// The 429 for an attempt refused at `now` (epoch seconds): retry when the window closes.
    pub fn refusal(&self, now: i64, window_secs: i64) -> Error {
        Error::TooManyAttempts { retry_after_secs: (self.window_start + window_secs - now).max(1) as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(normalize_email("  Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@@x.io", "ann@x..io"] {
            assert!(normalize_email(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn original_readme_body_becomes_an_event() {
        let input: EventInput = serde_json::from_value(json!({
            "title": "Morning Yoga", "description": "Gentle flow", "type": "Yoga",
            "datetime": "2025-08-01T10:00:00", "facilitator_id": "FAC001", "rating": 4.9
        }))
        .unwrap();
        let ev = input.into_event("u1", time::now()).unwrap();
        assert_eq!(time::format(&ev.datetime), "2025-08-01T10:00:00Z");
        assert_eq!(ev.facilitator_id, "FAC001");
        assert_eq!(ev.duration_minutes, 60);
        assert_eq!(ev.capacity, None);
        assert_eq!(ev.view()["seats_left"], Value::Null);
    }

    #[test]
    fn ratings_keep_two_decimals_within_zero_to_five() {
        for (raw, want) in [(4.567, 4.57), (1e-200, 0.0), (-0.001, 0.0), (5.004, 5.0), (0.005, 0.01), (4.9, 4.9)] {
            let got = rating(raw).unwrap();
            assert_eq!(got, want, "{raw}");
            assert!(got.is_sign_positive(), "{raw} kept a negative zero");
        }
        for bad in [-0.01, 5.01, 6.0, f64::NAN, f64::INFINITY, f64::MAX, -1e300] {
            assert!(rating(bad).is_err(), "{bad} accepted");
        }
    }
}
