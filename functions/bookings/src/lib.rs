//! The `bookings` function: book a seat atomically, booking history (with the caller's waitlist
//! entries), cancel, a booking's calendar file, and an event's attendee list. `router` is what the Lambda binary and the local
//! server both call.

pub mod calendar;
pub mod handler;
pub mod history;
mod ics;

pub use handler::router;
