//! The one error type of the service. Every failure a client can cause has its own variant, so the
//! HTTP status and the contract's error code are decided here and nowhere else.

use http::StatusCode;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("you already hold a confirmed booking for this event")]
    AlreadyBooked,
    #[error("the event has no free seat left")]
    EventFull,
    #[error("the event has already started")]
    EventStarted,
    #[error("the event still has confirmed bookings")]
    EventHasBookings,
    /// The event was cancelled by its owner: no booking, update or second cancel.
    #[error("the event is cancelled")]
    EventCancelled,
    /// `POST /events/{id}/waitlist` while a seat can be booked directly (or capacity is unlimited).
    #[error("the event has free seats: book one instead of waiting")]
    SeatsAvailable,
    /// Already on the event's waitlist (joining again, or booking while waiting: leave first).
    #[error("you are already on this event's waitlist")]
    AlreadyWaiting,
    #[error("capacity cannot be lower than the seats already booked")]
    CapacityBelowBooked,
    #[error("the booking is already cancelled")]
    AlreadyCancelled,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// The `Stripe-Signature` of a webhook is missing, malformed, stale or wrong.
    #[error("{0}")]
    InvalidSignature(&'static str),
    /// Stripe could not be reached or refused: nothing was kept of the request.
    #[error("the payment provider is unavailable, retry later")]
    PaymentProviderUnavailable(String),
    /// The booking changed status between the read and the write (a hold was paid or expired
    /// meanwhile); the handler reads it again and retries.
    #[error("the booking changed meanwhile, retry")]
    StatusChanged,
    #[error("request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("too many failed attempts, retry later")]
    TooManyAttempts { retry_after_secs: u64 },
    /// Server-side failure: the detail is logged, never sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
    /// A dependency is throttling or down: the client may retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Bad configuration at start-up: the process refuses to run.
    #[error("configuration error: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation { field: field.into(), message: message.into() }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        use Error::*;
        match self {
            InvalidJson(_) | Validation { .. } | UnknownField(_) | InvalidSignature(_) => StatusCode::BAD_REQUEST,
            Unauthorized(_) | InvalidCredentials => StatusCode::UNAUTHORIZED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            EmailTaken | AlreadyBooked | EventFull | EventStarted | EventHasBookings | CapacityBelowBooked
            | AlreadyCancelled | IdempotencyKeyReused | EventCancelled | SeatsAvailable | AlreadyWaiting => {
                StatusCode::CONFLICT
            }
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Internal(_) | Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Unavailable(_) | StatusChanged => StatusCode::SERVICE_UNAVAILABLE,
            PaymentProviderUnavailable(_) => StatusCode::BAD_GATEWAY,
        }
    }

    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            InvalidJson(_) => "invalid_json",
            Validation { .. } => "validation_failed",
            UnknownField(_) => "unknown_field",
            Unauthorized(_) => "unauthorized",
            InvalidCredentials => "invalid_credentials",
            Forbidden(_) => "forbidden",
            NotFound(_) => "not_found",
            MethodNotAllowed(_) => "method_not_allowed",
            EmailTaken => "email_taken",
            AlreadyBooked => "already_booked",
            EventFull => "event_full",
            EventStarted => "event_started",
            EventHasBookings => "event_has_bookings",
            EventCancelled => "event_cancelled",
            SeatsAvailable => "seats_available",
            AlreadyWaiting => "already_waiting",
            CapacityBelowBooked => "capacity_below_booked",
            AlreadyCancelled => "already_cancelled",
            IdempotencyKeyReused => "idempotency_key_reused",
            InvalidSignature(_) => "invalid_signature",
            PaymentProviderUnavailable(_) => "payment_provider_unavailable",
            PayloadTooLarge => "payload_too_large",
            TooManyAttempts { .. } => "too_many_attempts",
            Internal(_) | Config(_) => "internal",
            Unavailable(_) | StatusChanged => "unavailable",
        }
    }

    /// The JSON body of the contract. Server-side details never leave the process.
    pub fn body(&self) -> serde_json::Value {
        let message = match self {
            Error::Internal(_) | Error::Config(_) => "internal server error".to_string(),
            Error::Unavailable(_) => "service temporarily unavailable, retry later".to_string(),
            Error::PaymentProviderUnavailable(_) => {
                "the payment provider is unavailable; nothing was booked, retry later".to_string()
            }
            other => other.to_string(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let Error::Validation { field, .. } | Error::UnknownField(field) = self {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}
