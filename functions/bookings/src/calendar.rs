//! `GET /bookings/{id}/calendar.ics`: the booking as an RFC 5545 calendar file (one VEVENT) for
//! calendar apps. The one route whose success body is not JSON; its errors are JSON like all.

use crate::ics::Writer;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::error::{Error, Result};
use shared::http::{authenticate, resource_id};
use shared::model::{Booking, BookingStatus, Event};
use shared::policy;
use shared::{time, App, Store};

pub const CONTENT_TYPE: &str = "text/calendar; charset=utf-8";

/// §3.7.3: "the identifier for the product that created the iCalendar object", in the FPI form.
const PRODID: &str = "-//Ahoum//Booking API//EN";

/// Visible as `GET /bookings/{id}` is (`policy::visible_booking`), in two DynamoDB reads whoever
/// asks: the booking, then its event (its booker), or its event and the caller's account in one
/// BatchGetItem (anyone else: an admin sees it, everyone else hears the same 404).
pub async fn calendar<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let id = resource_id(id, "booking")?;
    let booking = app.store.get_booking(&id).await?.ok_or(Error::NotFound("booking"))?;
    let event = if booking.user_id == caller.id {
        app.store.get_event(&booking.event_id).await?
    } else {
        let (event, user) = app.store.event_and_user(&booking.event_id, &caller.id).await?;
        policy::may_see_others_booking(&caller, user)?;
        event
    };
    let mut resp = Response::new(Body::Text(render(&booking, event.as_ref(), time::now())));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(resp)
}

/// §3.8.1.11 STATUS for a VEVENT: a held seat not yet paid is `TENTATIVE`; a booking that no
/// longer holds one (cancelled, or a hold that ended unpaid) is `CANCELLED`.
fn status(booking: &Booking) -> &'static str {
    match booking.status {
        BookingStatus::Confirmed => "CONFIRMED",
        BookingStatus::PendingPayment => "TENTATIVE",
        BookingStatus::Cancelled | BookingStatus::Expired => "CANCELLED",
    }
}

/// The calendar file. The times come from the booking's snapshot of its event, which a
/// reschedule updates in the same write that raises `sequence`: DTSTART/DTEND and SEQUENCE
/// always change together, as §3.8.7.4 asks. SUMMARY and DESCRIPTION are the event's current
/// title and description (the snapshot's title once the event is deleted; no DESCRIPTION then,
/// nor when it is empty).
pub fn render(booking: &Booking, event: Option<&Event>, now: time::Timestamp) -> String {
    let snapshot = &booking.event;
    let start = snapshot.datetime;
    let end = start + chrono::Duration::minutes(i64::from(snapshot.duration_minutes));
    let title = event.map_or(snapshot.title.as_str(), |e| e.title.as_str());
    let description = event.map_or("", |e| e.description.as_str());
    let mut w = Writer::new();
    w.raw("BEGIN", "VCALENDAR");
    w.text("PRODID", PRODID);
    w.raw("VERSION", "2.0");
    w.raw("CALSCALE", "GREGORIAN");
    w.raw("METHOD", "PUBLISH");
    w.raw("BEGIN", "VEVENT");
    // §3.8.4.7: globally unique and the same for every version of this booking's event entry,
    // so a calendar app replaces its copy instead of adding a second one. TEXT, like PRODID.
    w.text("UID", &format!("{}@ahoum", booking.id));
    // §3.8.7.2: with a METHOD, when this calendar object was created.
    w.utc("DTSTAMP", &now);
    w.utc("DTSTART", &start);
    w.utc("DTEND", &end);
    w.raw("SEQUENCE", &booking.sequence.to_string());
    w.raw("STATUS", status(booking));
    w.text("SUMMARY", title);
    if !description.is_empty() {
        w.text("DESCRIPTION", description);
    }
    w.raw("END", "VEVENT");
    w.raw("END", "VCALENDAR");
    w.finish()
}
