//! The `auth` function: registration, login, sessions (refresh, logout, password change), the
//! caller's profile, plus `/health` and `/openapi.json`. `router` is what the Lambda binary and
//! the local server both call.

pub mod handler;
pub mod sessions;

pub use handler::router;
