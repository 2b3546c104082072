//! The OpenAPI 3.1 document of the API, generated from its types: the request bodies and views
//! (`ToSchema` derives behind the `openapi` feature of `shared`, `auth` and `bookings`), the error
//! codes of `shared::error::Error`, and one `#[utoipa::path]` per route. `gen-openapi` prints it;
//! `make openapi` writes it to functions/auth/openapi.json, which `GET /openapi.json` serves as is
//! (`include_str!`: nothing is built at init, and no Lambda links this crate).

mod conventions;
pub mod errors;
mod examples;
mod params;
mod paths;
mod schemas;

use paths::{auth, bookings, events, operations, sessions, waitlist};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        operations::health,
        operations::openapi,
        auth::register,
        auth::login,
        auth::me,
        sessions::refresh,
        sessions::logout,
        sessions::change_password,
        events::list_events,
        events::create_event,
        events::filter_events,
        events::get_event,
        events::put_event,
        events::patch_event,
        events::delete_event,
        events::cancel_event,
        waitlist::join_waitlist,
        waitlist::leave_waitlist,
        waitlist::list_waitlist,
        bookings::list_event_bookings,
        bookings::list_bookings,
        bookings::create_booking,
        bookings::get_booking,
        bookings::cancel_booking,
        bookings::get_booking_calendar,
        operations::stripe_webhook,
    ),
    components(schemas(shared::openapi::Id, shared::model::Role, schemas::EventBooking, schemas::EventCreate))
)]
struct Api;

/// The document as a JSON value.
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(Api::openapi()).expect("an OpenApi serialises");
    conventions::apply(&mut doc);
    doc
}

/// The document as `functions/auth/openapi.json` holds it.
pub fn render() -> String {
    let mut out = serde_json::to_string_pretty(&document()).expect("a JSON value serialises");
    out.push('\n');
    out
}
