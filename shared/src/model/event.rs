//! The stored event, its booking and cancelling rules, its view, and the snapshot a booking keeps.

use super::Price;
use crate::error::{Error, Result};
use crate::time::{serde_ts, Rfc3339, Timestamp};
use serde::{Deserialize, Serialize};

/// What every bad rating is told, in a body or in the filter's query, whatever made it bad (not a
/// number, `null` in the query, empty, out of range).
pub const RATING_RULE: &str = "must be a number from 0 to 5 (kept to two decimals)";

/// A rating as stored and compared: 0.0–5.0 kept to two decimals (4.567 → 4.57, 1e-200 → 0).
/// Rounding first keeps every stored rating a short decimal that DynamoDB's number type can hold
/// (it refuses magnitudes below 1e-130), and the filter reads its threshold the same way.
pub fn rating(raw: f64) -> Result<f64> {
    let rounded = (raw * 100.0).round() / 100.0 + 0.0; // `+ 0.0` turns -0.0 into 0.0
    if rounded.is_finite() && (0.0..=5.0).contains(&rounded) {
        Ok(rounded)
    } else {
        Err(Error::validation("rating", RATING_RULE))
    }
}

/// The filter's `rating` as the query gives it: read like a stored rating; anything else,
/// `rating=` and `rating=null` included, is the one [`RATING_RULE`] 400.
pub fn rating_text(raw: &str) -> Result<f64> {
    rating(raw.trim().parse::<f64>().map_err(|_| Error::validation("rating", RATING_RULE))?)
}

/// A body's `rating`: present or not (as [`super::event_input::present`]), `null` clears it, and
/// a value of any other type is refused with the [`RATING_RULE`] (still `invalid_json`, as every
/// wrong type).
pub fn rating_field<'de, D>(d: D) -> std::result::Result<Option<Option<f64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(Some(None)),
        Some(v) => v.as_f64().map(|r| Some(Some(r))).ok_or_else(|| serde::de::Error::custom(RATING_RULE)),
    }
}

/// `scheduled` until the owner cancels the event (`POST /events/{id}/cancel`); never back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventStatus {
    #[default]
    Scheduled,
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Scheduled => "scheduled",
            EventStatus::Cancelled => "cancelled",
        }
    }
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
    /// `None`: free. Bookings made after a change pay the new price.
    #[serde(default)]
    pub price: Option<Price>,
    pub owner_id: String,
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
    #[serde(default)]
    pub status: EventStatus,
    #[serde(default, with = "serde_ts::option")]
    pub cancelled_at: Option<Timestamp>,
    /// The owner's words when cancelling (≤ 500 characters), shown to attendees.
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// Raised by every change of `datetime` or `duration_minutes`: a booking whose snapshot has
    /// an older revision still shows the old time (the reschedule fan-out brings it up to date).
    #[serde(default)]
    pub revision: u32,
    /// Users on the waitlist. Kept on the event item by every join, leave and promotion, in the
    /// same write: a seat may only be freed (not handed on) while this is 0, and a direct booking
    /// is refused while it is not (see [`Event::promotes_at`]).
    #[serde(default)]
    pub waitlist_count: u32,
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
    /// → `EventCancelled` for a cancelled event, `EventStarted` once bookings have closed.
    pub fn bookable_at(&self, now: Timestamp) -> Result<()> {
        if self.status == EventStatus::Cancelled {
            Err(Error::EventCancelled)
        } else if self.datetime > booking_cutoff(now) {
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

    /// The owner may cancel it (`POST /events/{id}/cancel`) → `EventCancelled` once cancelled,
    /// `EventStarted` from its start; the same rule the stores write as a condition.
    pub fn may_cancel_at(&self, now: Timestamp) -> Result<()> {
        if self.status == EventStatus::Cancelled {
            Err(Error::EventCancelled)
        } else if self.datetime > cancel_cutoff(now) {
            Ok(())
        } else {
            Err(Error::EventStarted)
        }
    }

    /// → `EventCancelled`: a cancelled event is never changed again (only deleted).
    pub fn may_change(&self) -> Result<()> {
        if self.status == EventStatus::Cancelled {
            Err(Error::EventCancelled)
        } else {
            Ok(())
        }
    }

    /// A new start at or before `now` is refused while bookings hold seats (`EventStarted`): they
    /// could neither attend nor cancel. The same rule the stores write as a condition.
    pub fn may_reschedule_to(&self, start: Timestamp, now: Timestamp) -> Result<()> {
        if start <= cancel_cutoff(now) && self.seats_booked > 0 {
            Err(Error::EventStarted)
        } else {
            Ok(())
        }
    }

    /// This event as its cancellation at `now` leaves it (out of both event lists).
    pub fn cancelled(&self, reason: Option<&str>, now: Timestamp) -> Event {
        let mut e = self.clone();
        e.status = EventStatus::Cancelled;
        e.cancelled_at = Some(now);
        e.cancel_reason = reason.map(str::to_string);
        e.updated_at = now;
        e
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

    /// The event as the API shows it, serialised straight from borrowed fields (no JSON tree).
    pub fn view(&self) -> EventView<'_> {
        EventView {
            id: &self.id,
            title: &self.title,
            description: &self.description,
            datetime: Rfc3339(&self.datetime),
            duration_minutes: self.duration_minutes,
            facilitator_id: &self.facilitator_id,
            event_type: &self.event_type,
            rating: self.rating,
            capacity: self.capacity,
            seats_booked: self.seats_booked,
            seats_left: self.seats_left(),
            price: self.price.as_ref(),
            owner_id: &self.owner_id,
            created_at: Rfc3339(&self.created_at),
            updated_at: Rfc3339(&self.updated_at),
            status: self.status,
            cancelled_at: self.cancelled_at.as_ref().map(Rfc3339),
            cancel_reason: self.cancel_reason.as_deref(),
            bookings_to_cancel: (self.status == EventStatus::Cancelled).then_some(self.seats_booked),
            waitlist_count: self.waitlist_count,
        }
    }

    /// Whether a seat freed at `now` goes to the first in line: always for a free event that has
    /// not started; for a priced one only while a Checkout Session can still be opened before the
    /// start ([`crate::model::offer_expiry`] is `Some`). Outside that window a freed seat stays
    /// free for direct booking, and a direct booking is allowed although users wait.
    pub fn promotes_at(&self, now: Timestamp) -> bool {
        match self.price {
            None => self.datetime > booking_cutoff(now),
            Some(_) => crate::model::offer_expiry(self.datetime, now).is_some(),
        }
    }

    /// Whether a user may join the waitlist at `now` (once the event is bookable): every seat is
    /// taken, or free seats are already promised to the line (a capacity increase whose promote
    /// job has not handed them all out yet: a direct booking is refused meanwhile, so the
    /// newcomer queues behind the others rather than being told to book a seat they cannot).
    pub fn waitlist_open_at(&self, now: Timestamp) -> bool {
        self.capacity.is_some_and(|c| self.seats_booked >= c) || (self.waitlist_count > 0 && self.promotes_at(now))
    }

    pub fn snapshot(&self) -> EventSnapshot {
        EventSnapshot {
            id: self.id.clone(),
            title: self.title.clone(),
            datetime: self.datetime,
            duration_minutes: self.duration_minutes,
            event_type: self.event_type.clone(),
            facilitator_id: self.facilitator_id.clone(),
            revision: self.revision,
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
    /// The event's `revision` this snapshot was taken at.
    #[serde(default)]
    pub revision: u32,
}

impl EventSnapshot {
    pub fn view(&self) -> EventSnapshotView<'_> {
        EventSnapshotView {
            id: &self.id,
            title: &self.title,
            datetime: Rfc3339(&self.datetime),
            duration_minutes: self.duration_minutes,
            event_type: &self.event_type,
            facilitator_id: &self.facilitator_id,
        }
    }
}

/// The event JSON of the API, in the contract's field order.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Event))]
pub struct EventView<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub id: &'a str,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub title: &'a str,
    #[cfg_attr(feature = "openapi", schema(max_length = 5000))]
    pub description: &'a str,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub datetime: Rfc3339<'a>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10080))]
    pub duration_minutes: u32,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub facilitator_id: &'a str,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub event_type: &'a str,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 5))]
    pub rating: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub capacity: Option<u32>,
    /// Seats taken: confirmed bookings plus unexpired `pending_payment` holds.
    pub seats_booked: u32,
    /// `capacity - seats_booked`; null when `capacity` is null.
    pub seats_left: Option<u32>,
    /// The price of a seat, or null for a free event.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Price>))]
    pub price: Option<&'a Price>,
    /// The user who created the event.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub owner_id: &'a str,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub created_at: Rfc3339<'a>,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub updated_at: Rfc3339<'a>,
    pub status: EventStatus,
    /// When the owner cancelled it (RFC 3339 UTC); null unless cancelled.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub cancelled_at: Option<Rfc3339<'a>>,
    /// The owner's reason, if given; null unless cancelled.
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub cancel_reason: Option<&'a str>,
    /// Bookings of a cancelled event still holding a seat, which the cancellation has yet to
    /// cancel (and refund); 0 once done. Null unless cancelled.
    pub bookings_to_cancel: Option<u32>,
    /// Users waiting for a seat (`POST /events/{id}/waitlist`).
    pub waitlist_count: u32,
}

/// What a booking shows of its event.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EventSnapshot))]
/// The booked event: its current details while it exists, else those at booking time.
pub struct EventSnapshotView<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub id: &'a str,
    pub title: &'a str,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub datetime: Rfc3339<'a>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10080))]
    pub duration_minutes: u32,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub facilitator_id: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_keep_two_decimals_within_zero_to_five() {
        for (raw, want) in [(4.567, 4.57), (1e-200, 0.0), (-0.001, 0.0), (5.004, 5.0), (0.005, 0.01), (4.9, 4.9)] {
            let got = rating(raw).unwrap();
            assert_eq!(got, want, "{raw}");
            assert!(got.is_sign_positive(), "{raw} kept a negative zero");
        }
        assert_eq!(rating_text(" 4.567 ").unwrap(), 4.57);
        for bad in ["", " ", "null", "abc", "NaN", "inf", "-1", "5.01", "4,5"] {
            let err = rating_text(bad).unwrap_err();
            assert_eq!(err.body()["error"]["message"], RATING_RULE, "{bad:?}");
        }
        assert_eq!(rating(5.01).unwrap_err().body()["error"]["message"], RATING_RULE);
        let e = Event {
            waitlist_count: 0,
            id: "E".into(),
            title: "t".into(),
            description: String::new(),
            datetime: crate::time::parse("2025-08-01T10:00:00Z").unwrap(),
            duration_minutes: 60,
            facilitator_id: "F".into(),
            event_type: "Yoga".into(),
            rating: Some(4.5),
            capacity: Some(3),
            seats_booked: 1,
            price: None,
            owner_id: "O".into(),
            created_at: crate::time::parse("2025-07-01T10:00:00Z").unwrap(),
            updated_at: crate::time::parse("2025-07-02T10:00:00Z").unwrap(),
            status: EventStatus::Scheduled,
            cancelled_at: None,
            cancel_reason: None,
            revision: 0,
        };
        assert_eq!(
            serde_json::to_string(&e.view()).unwrap(),
            r#"{"id":"E","title":"t","description":"","datetime":"2025-08-01T10:00:00Z","duration_minutes":60,"facilitator_id":"F","type":"Yoga","rating":4.5,"capacity":3,"seats_booked":1,"seats_left":2,"price":null,"owner_id":"O","created_at":"2025-07-01T10:00:00Z","updated_at":"2025-07-02T10:00:00Z","status":"scheduled","cancelled_at":null,"cancel_reason":null,"bookings_to_cancel":null,"waitlist_count":0}"#
        );
        for bad in [-0.01, 5.01, 6.0, f64::NAN, f64::INFINITY, f64::MAX, -1e300] {
            assert!(rating(bad).is_err(), "{bad} accepted");
        }
    }
}
