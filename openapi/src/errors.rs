//! The error body of every response and the codes each response may carry, taken from
//! `shared::error::Error`: a code exists in the document only if `Error::code` returns it.

use serde_json::{json, Value};
use shared::error::Error;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// One value of every variant, with the message a client would see. The exhaustive match stops
/// compiling when a variant is added, so the document cannot fall behind the type.
pub fn every_error() -> Vec<Error> {
    fn exhaustive(e: &Error) {
        match e {
            Error::InvalidJson(_)
            | Error::Validation { .. }
            | Error::UnknownField(_)
            | Error::Unauthorized(_)
            | Error::InvalidCredentials
            | Error::Forbidden(_)
            | Error::NotFound(_)
            | Error::MethodNotAllowed(_)
            | Error::EmailTaken
            | Error::AlreadyBooked
            | Error::EventFull
            | Error::EventStarted
            | Error::EventHasBookings
            | Error::EventCancelled
            | Error::SeatsAvailable
            | Error::AlreadyWaiting
            | Error::CapacityBelowBooked
            | Error::AlreadyCancelled
            | Error::IdempotencyKeyReused
            | Error::InvalidSignature(_)
            | Error::PaymentProviderUnavailable(_)
            | Error::StatusChanged
            | Error::PayloadTooLarge
            | Error::TooManyAttempts { .. }
            | Error::Internal(_)
            | Error::Unavailable(_)
            | Error::Config(_) => {}
        }
    }
    let all = vec![
        Error::InvalidJson("request body is not valid JSON for this route".into()),
        Error::validation("rating", "must be a number from 0.0 to 5.0 (kept to two decimals), or null"),
        Error::UnknownField("nickname".into()),
        Error::Unauthorized("missing bearer token"),
        Error::InvalidCredentials,
        Error::Forbidden("not allowed"),
        Error::NotFound("event"),
        Error::MethodNotAllowed("GET"),
        Error::EmailTaken,
        Error::AlreadyBooked,
        Error::EventFull,
        Error::EventStarted,
        Error::EventHasBookings,
        Error::EventCancelled,
        Error::SeatsAvailable,
        Error::AlreadyWaiting,
        Error::CapacityBelowBooked,
        Error::AlreadyCancelled,
        Error::IdempotencyKeyReused,
        Error::InvalidSignature("signature does not match"),
        Error::PaymentProviderUnavailable("stripe".into()),
        Error::StatusChanged,
        Error::PayloadTooLarge,
        Error::TooManyAttempts { retry_after_secs: 60 },
        Error::Internal("detail".into()),
        Error::Unavailable("detail".into()),
        Error::Config("detail".into()),
    ];
    all.iter().for_each(exhaustive);
    all
}

/// Every code, once, in the order of the enum.
pub fn codes() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for e in every_error() {
        if !out.contains(&e.code()) {
            out.push(e.code());
        }
    }
    out
}

/// The body `Error::body` writes for the first variant with `code`: the example of a response.
pub fn example(code: &str) -> Option<Value> {
    every_error().into_iter().find(|e| e.code() == code).map(|e| e.body())
}

/// Component `Error`: `{"error": {"code", "message", "field"?}}`.
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "additionalProperties": false,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": false,
                "properties": {
                    "code": {
                        "type": "string",
                        "enum": codes(),
                        "description": "Stable machine-readable code (snake_case)."
                    },
                    "message": {
                        "type": "string",
                        "description": "Human-readable text; never a stack trace or internal detail."
                    },
                    "field": {
                        "type": "string",
                        "description": "Present for `validation_failed` and `unknown_field`: the offending body field, query parameter or header (`body` when the whole body is at fault)."
                    }
                }
            }
        }
    })
}

/// `Error` with its `code` narrowed to what one response can carry.
pub fn narrowed(errors: &[Error]) -> RefOr<Schema> {
    let mut codes: Vec<&str> = Vec::new();
    for e in errors {
        if !codes.contains(&e.code()) {
            codes.push(e.code());
        }
    }
    let code = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes));
    let error = ObjectBuilder::new().property("code", code);
    AllOfBuilder::new().item(Ref::from_schema_name("Error")).item(ObjectBuilder::new().property("error", error)).into()
}

/// Response bodies for `body = inline(…)` in the operations, one per set of codes.
macro_rules! error_bodies {
    ($($(#[$doc:meta])* $name:ident: $($err:expr),+;)+) => {$(
        $(#[$doc])*
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                narrowed(&[$($err),+])
            }
        }
        impl ToSchema for $name {}
    )+};
}

error_bodies! {
    /// A JSON body that does not parse, has an unknown property or breaks a rule.
    BadBody: Error::InvalidJson(String::new()), Error::validation("", ""), Error::UnknownField(String::new());
    /// A query parameter or header that breaks a rule, or a query parameter the route does not define.
    BadParam: Error::validation("", "");
    Unauthorized: Error::Unauthorized("");
    InvalidCredentials: Error::InvalidCredentials;
    /// `POST /auth/password`: a wrong current password, or a bad token.
    CredentialsOrToken: Error::InvalidCredentials, Error::Unauthorized("");
    Forbidden: Error::Forbidden("");
    NotFound: Error::NotFound("");
    EmailTaken: Error::EmailTaken;
    CapacityBelowBooked: Error::CapacityBelowBooked;
    EventHasBookings: Error::EventHasBookings;
    BookingConflict: Error::EventStarted, Error::EventFull, Error::AlreadyBooked, Error::AlreadyWaiting, Error::IdempotencyKeyReused, Error::EventCancelled;
    /// `POST /events/{id}/waitlist`, in the order they are answered.
    WaitlistConflict: Error::EventCancelled, Error::EventStarted, Error::SeatsAvailable, Error::AlreadyBooked, Error::AlreadyWaiting;
    /// `POST /events/{id}/cancel`: cancelled already, or started.
    EventCancelConflict: Error::EventCancelled, Error::EventStarted;
    /// `PUT`/`PATCH /events/{id}`: capacity below the seats booked, a cancelled event, a move
    /// into the past while bookings hold seats.
    EventUpdateConflict: Error::CapacityBelowBooked, Error::EventCancelled, Error::EventStarted;
    CancelConflict: Error::AlreadyCancelled, Error::EventStarted;
    BadWebhook: Error::InvalidSignature(""), Error::InvalidJson(String::new());
    PaymentProviderUnavailable: Error::PaymentProviderUnavailable(String::new());
    TooManyAttempts: Error::TooManyAttempts { retry_after_secs: 1 };
    PayloadTooLarge: Error::PayloadTooLarge;
    Internal: Error::internal("");
    Unavailable: Error::Unavailable(String::new());
    MethodNotAllowed: Error::MethodNotAllowed("");
}
