//! The `events` function: browse, filter, page and manage events, and their waitlists. `router` is what the Lambda
//! binary and the local server both call.

pub mod handler;
pub mod waitlist;

pub use handler::router;
