//! Client input for events: the request body, its validation, and the partial update it becomes.

use super::event::rating_field;
use super::{new_id, rating, Event, Price};
use crate::error::{Error, Result};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

/// `Some(value)` when the field is present (even `null`), `None` when absent: lets a PATCH tell
/// "set rating to null" from "leave rating alone".
pub fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub fn required<T>(value: Option<T>, field: &str) -> Result<T> {
    value.ok_or_else(|| Error::validation(field, format!("`{field}` is required")))
}

/// Body of `POST /events/` and `PUT|PATCH /events/{id}`. Every field optional so that a missing
/// one is a `validation_failed` naming it, not a serde message; read-only fields are listed so
/// that sending them is a clear 400 rather than a silent ignore.
///
/// In the OpenAPI document (schema `EventUpdate`; the generator derives `EventCreate` from it) the
/// fields carry the rules `into_patch` enforces, and the read-only fields are left out: with
/// `additionalProperties: false` a client sees that sending them is refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EventUpdate, description = "Partial update"))]
pub struct EventInput {
    /// Trimmed; 1-200 characters after trimming.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 200, pattern = r"\S"))]
    pub title: Option<Option<String>>,
    /// At most 5000 characters, kept as written. `null` means "".
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 5000))]
    pub description: Option<Option<String>>,
    /// RFC 3339 date-time. An offset is converted to UTC; input without an offset
    /// (`2025-08-01T10:00:00`, also `2025-08-01T10:00`, `2025-08-01 10:00:00`, fractional seconds)
    /// is read as UTC. Fractional seconds are truncated.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, examples("2025-08-01T10:00:00Z", "2025-08-01T10:00:00")))]
    pub datetime: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = u32, minimum = 1, maximum = 10080))]
    pub duration_minutes: Option<Option<u32>>,
    /// The facilitator's reference in the CRM, trimmed, 1-64 characters.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 64, pattern = r"\S"))]
    pub facilitator_id: Option<Option<String>>,
    /// Trimmed, 1-50 characters; kept as written, matched case-insensitively by
    /// `GET /events/filter`.
    #[serde(default, rename = "type", deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 50, pattern = r"\S"))]
    pub event_type: Option<Option<String>>,
    /// 0.0-5.0 (kept to two decimals), or `null` for no rating.
    #[serde(default, deserialize_with = "rating_field")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>, minimum = 0, maximum = 5))]
    pub rating: Option<Option<f64>>,
    /// Seat limit 1-100000, or `null` for no limit (`seats_left` is then null).
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, minimum = 1, maximum = 100000))]
    pub capacity: Option<Option<u32>>,
    // Checked by [`Price::validate`] rather than serde, for a message that names the rule.
    /// `{amount, currency}` to charge for a seat, or null for free (default). A new price applies
    /// to bookings made after the change. Refused with 400 `validation_failed` (field `price`)
    /// when this deployment has no Stripe configuration.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Price>))]
    pub price: Option<Option<Value>>,
    // Read-only: accepted by the parser only to be rejected with a precise message.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub id: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub seats_booked: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub seats_left: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub owner_id: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub created_at: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
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
    pub price: Option<Option<Price>>,
}

impl EventPatch {
    pub fn is_empty(&self) -> bool {
        *self == EventPatch::default()
    }

    /// It changes the event's time or length: a reschedule its bookings must follow (the event's
    /// `revision` rises and a reschedule job is written with it).
    pub fn reschedules(&self) -> bool {
        self.datetime.is_some() || self.duration_minutes.is_some()
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
        set("price", self.price.as_ref().map(|v| v.as_ref().map(|p| json!(p))));
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
        let price = match self.price {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => Some(Some(Price::validate(&raw)?)),
        };
        Ok(EventPatch {
            price,
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
            price: patch.price.flatten(),
            owner_id: owner_id.to_string(),
            created_at: now,
            updated_at: now,
            status: crate::model::EventStatus::Scheduled,
            cancelled_at: None,
            cancel_reason: None,
            revision: 0,
            waitlist_count: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(serde_json::to_value(ev.view()).unwrap()["seats_left"], Value::Null);
    }
}
