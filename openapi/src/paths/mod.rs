//! One `#[utoipa::path]` per served (method, path): the routers are `match` statements, so the
//! operations are declared on these stubs, grouped by the function that serves them.

// The stubs are never called: only their attributes matter.
#![allow(dead_code)]

pub mod auth;
pub mod bookings;
pub mod events;
pub mod operations;
pub mod sessions;
pub mod waitlist;
