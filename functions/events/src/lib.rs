//! The `events` function: browse, filter, page and manage events. `router` is what the Lambda
//! binary and the local server both call.

pub mod handler;

pub use handler::router;
