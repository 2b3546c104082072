//! The `bookings` function: book a seat atomically, booking history, cancel, and an event's
//! attendee list. `router` is what the Lambda binary and the local server both call.

pub mod handler;

pub use handler::router;
