//! An event's waitlist: who waits for a seat, in the order seats are handed out (`joined_at`,
//! then user id), and the views of the waitlist routes.

use super::{Booking, Event, EventSnapshotView, Payment};
use crate::store::Position;
use crate::time::{serde_ts, Rfc3339, Timestamp};
use serde::{Deserialize, Serialize};

/// One user waiting for a seat of a full event. It carries what the booking a promotion makes
/// needs (the user's name and email for the CRM), so the promoting write reads nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitEntry {
    pub event_id: String,
    pub user_id: String,
    pub user_name: String,
    pub user_email: String,
    #[serde(with = "serde_ts")]
    pub joined_at: Timestamp,
}

impl WaitEntry {
    /// The place in line: `joined_at`, ties broken by user id (both stores order by it).
    pub fn position(&self) -> Position {
        Position { at: self.joined_at, id: self.user_id.clone() }
    }

    /// The booking a promotion at `now` makes of this entry for `event`: `confirmed` for a free
    /// event; for a priced one a `pending_payment` offer ([`Payment::offer`]), or `None` when the
    /// event starts too soon for one (nobody is promoted then).
    pub fn promoted(&self, event: &Event, now: Timestamp) -> Option<Booking> {
        let payment = match &event.price {
            None => None,
            Some(price) => Some(Payment::offer(price, event.datetime, now)?),
        };
        let booking = Booking::new(event, &self.user_id, &self.user_name, &self.user_email, payment, now);
        Some(Booking { via_waitlist: true, ..booking })
    }

    /// `GET /events/{id}/waitlist` (owner or admin).
    pub fn view(&self, position: u32) -> WaitEntryView<'_> {
        WaitEntryView {
            position,
            user_id: &self.user_id,
            name: &self.user_name,
            email: &self.user_email,
            joined_at: Rfc3339(&self.joined_at),
        }
    }

    /// `201` of `POST /events/{id}/waitlist`.
    pub fn joined_view(&self, position: u32) -> JoinedView<'_> {
        JoinedView { event_id: &self.event_id, user_id: &self.user_id, position, joined_at: Rfc3339(&self.joined_at) }
    }
}

/// One of a user's waitlist entries with its place in line (1: next), as
/// [`crate::store::Store::user_waitlist`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub entry: WaitEntry,
    pub position: u32,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WaitlistJoined))]
pub struct JoinedView<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub event_id: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub user_id: &'a str,
    /// Place in line when joining; 1 is next.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub position: u32,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub joined_at: Rfc3339<'a>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WaitlistEntry))]
pub struct WaitEntryView<'a> {
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub position: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub user_id: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub joined_at: Rfc3339<'a>,
}

/// An entry of `waiting` in `GET /bookings/`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Waiting))]
pub struct WaitingView<'a> {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::Id))]
    pub event_id: &'a str,
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub position: u32,
    #[cfg_attr(feature = "openapi", schema(inline, value_type = crate::openapi::UtcTime))]
    pub joined_at: Rfc3339<'a>,
    #[cfg_attr(feature = "openapi", schema(value_type = EventSnapshotView))]
    pub event: EventSnapshotView<'a>,
}
