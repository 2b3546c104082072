//! The `auth` function: registration, login, the caller's profile, plus `/health` and
//! `/openapi.json`. `router` is what the Lambda binary and the local server both call.

pub mod handler;

pub use handler::router;
