//! `GET /bookings/`: the caller's bookings, split by whether the event has started, and the
//! waitlists they are on, each with its event's current details.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::error::{Error, Result};
use shared::http::{authenticate, json_response, query};
use shared::model::{Booking, BookingStatus, BookingView, Event, Waiting, WaitingView};
use shared::store::MAX_BOOKINGS_PER_LIST;
use shared::time::Rfc3339;
use shared::{time, App, Store};
use std::collections::HashMap;

/// The query parameters of `GET /bookings/`.
pub const LIST_PARAMS: &[&str] = &["status"];

#[derive(Serialize)]
struct History<'a> {
    upcoming: Vec<BookingView<'a>>,
    past: Vec<BookingView<'a>>,
    waiting: Vec<WaitingView<'a>>,
}

/// The booking with its event's current details where the event still exists.
fn with_current_event(mut booking: Booking, events: &HashMap<String, Event>) -> Booking {
    if let Some(e) = events.get(&booking.event_id) {
        booking.event = e.snapshot();
    }
    booking
}

/// One index query for the bookings (newest first, capped) and, beside it, the caller's waitlist
/// entries with their places (one index query, one count per entry); then one batch read of
/// every event either names. `waiting` belongs to the default view (what the caller holds or
/// waits for now); a list of cancelled or expired bookings leaves it empty and does not read it.
pub async fn list<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let params = query(req);
    // `confirmed` lists the bookings that hold a seat: pending payments too.
    let status = match params.get("status").map(|s| s.trim()) {
        None | Some("") | Some("confirmed") => BookingStatus::Confirmed,
        Some("cancelled") => BookingStatus::Cancelled,
        Some("expired") => BookingStatus::Expired,
        Some(_) => return Err(Error::validation("status", "must be `confirmed`, `cancelled` or `expired`")),
    };
    let bookings = app.store.list_user_bookings(&caller.id, status, MAX_BOOKINGS_PER_LIST);
    let (bookings, waiting) = if status == BookingStatus::Confirmed {
        tokio::try_join!(bookings, app.store.user_waitlist(&caller.id))?
    } else {
        (bookings.await?, Vec::new())
    };
    let mut ids: Vec<String> = bookings.iter().map(|b| b.event_id.clone()).collect();
    ids.extend(waiting.iter().map(|w| w.entry.event_id.clone()));
    ids.sort();
    ids.dedup();
    let events: HashMap<String, Event> = if ids.is_empty() {
        HashMap::new()
    } else {
        app.store.get_events(&ids).await?.into_iter().map(|e| (e.id.clone(), e)).collect()
    };
    let now = time::now();
    let (mut upcoming, mut past): (Vec<Booking>, Vec<Booking>) =
        bookings.into_iter().map(|b| with_current_event(b, &events)).partition(|b| b.event.datetime > now);
    upcoming.sort_by(|a, b| (a.event.datetime, &a.id).cmp(&(b.event.datetime, &b.id)));
    past.sort_by(|a, b| (b.event.datetime, &b.id).cmp(&(a.event.datetime, &a.id)));
    // An entry shows its event as it is now; an entry whose event is gone (deleted since) has
    // nothing to show and is left out.
    let snapshots: Vec<(&Waiting, shared::model::EventSnapshot)> =
        waiting.iter().filter_map(|w| events.get(&w.entry.event_id).map(|e| (w, e.snapshot()))).collect();
    let history = History {
        upcoming: upcoming.iter().map(Booking::view).collect(),
        past: past.iter().map(Booking::view).collect(),
        waiting: snapshots
            .iter()
            .map(|(w, snapshot)| WaitingView {
                event_id: &w.entry.event_id,
                position: w.position,
                joined_at: Rfc3339(&w.entry.joined_at),
                event: snapshot.view(),
            })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &history))
}
