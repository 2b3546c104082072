//! Bodies the handlers write with `json!` or keep private: declared here, field for field, so the
//! document states them. Each names the handler that writes it; the contract tests hold the
//! handlers to these shapes through schemathesis's response checks.
#![allow(dead_code)] // schemas, never built

use payments::handler::Effect;
use serde_json::json;
use shared::model::{BookingView, Role, WaitingView};
use shared::openapi::{Id, UtcTime};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

// `User::view`.
/// An account as the API shows it (never the password hash).
#[derive(ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub id: Id,
    pub name: String,
    /// Lower-case.
    #[schema(format = Email)]
    pub email: String,
    pub role: Role,
}

// `POST /auth/login` and `POST /auth/refresh` (auth handler).
/// Tokens of a login.
#[derive(ToSchema)]
pub struct Token {
    /// HS256 JWT; send as `Authorization: Bearer <token>`.
    pub access_token: String,
    #[schema(inline)]
    pub token_type: TokenType,
    /// Lifetime in seconds (default 3600).
    #[schema(minimum = 1)]
    pub expires_in: u64,
    /// Opaque, at least 128 bits of randomness, valid 30 days; spent by `POST /auth/refresh`,
    /// which answers a new one. Added by the sessions routes (contract v3).
    pub refresh_token: String,
}

/// The one token type issued.
#[derive(ToSchema)]
pub enum TokenType {
    Bearer,
}

// `GET /health`.
#[derive(ToSchema)]
pub struct Health {
    #[schema(inline)]
    pub status: HealthStatus,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// Body of `POST /events/{id}/cancel`, optional (no body is the same as `{}`).
#[derive(ToSchema)]
pub struct EventCancel {
    /// Why, shown to attendees as the event's `cancel_reason`; trimmed, and an empty one counts as
    /// none. At most 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

// `DELETE /events/{id}`.
#[derive(ToSchema)]
pub struct Deleted {
    #[schema(inline)]
    pub msg: DeletedMsg,
}

#[derive(ToSchema)]
pub enum DeletedMsg {
    #[schema(rename = "Event deleted successfully")]
    Deleted,
}

// `GET /bookings/` (bookings handler, `History`).
/// The caller's bookings, split by whether the event has started, and the waitlists the caller
/// is on.
#[derive(ToSchema)]
pub struct BookingHistory {
    /// Event not started yet; ascending by event time (ties by booking id).
    pub upcoming: Vec<BookingView<'static>>,
    /// Event time reached; descending by event time (ties by booking id).
    pub past: Vec<BookingView<'static>>,
    /// The caller's waitlist entries (at most 100), oldest first, each with its current place in
    /// line and its event's current details. Listed with the default `status` only (empty with
    /// `cancelled` or `expired`). A promoted entry leaves this list as its booking appears in
    /// `upcoming`.
    pub waiting: Vec<WaitingView<'static>>,
}

/// Body of `POST /events/{id}/waitlist`, optional: nothing to send (the event is in the path,
/// the caller in the token); no body is the same as `{}`.
#[derive(ToSchema)]
pub struct WaitlistJoin {}

// `DELETE /events/{id}/waitlist` (events handler, `waitlist::leave`).
#[derive(ToSchema)]
pub struct WaitlistLeft {
    #[schema(inline)]
    pub msg: WaitlistLeftMsg,
}

#[derive(ToSchema)]
pub enum WaitlistLeftMsg {
    #[schema(rename = "Left the waitlist")]
    Left,
}

// Bookings handler, `AttendeeBooking`; `conventions` makes it `allOf: [Booking, this]`.
#[derive(ToSchema)]
pub struct EventBooking {
    #[schema(inline)]
    pub attendee: Attendee,
    /// The booking's `booking.confirmed` message (the v2 field): null while no delivery attempt
    /// has been recorded, or when no CRM is configured.
    pub crm_status: Option<DeliveryStatus>,
    /// Every CRM message of the booking (`booking.confirmed`, `booking.rescheduled` per
    /// reschedule (the last 10), `booking.cancelled`), in send order: each goes out only once the
    /// ones before it are final. Empty for a booking the CRM never hears of (a hold, unpaid).
    pub crm_messages: Vec<shared::model::MessageView<'static>>,
}

#[derive(ToSchema)]
pub struct Attendee {
    pub name: String,
    #[schema(format = Email)]
    pub email: String,
}

// `Delivery::view`.
/// State of the CRM webhook for one booking.
#[derive(ToSchema)]
pub struct DeliveryStatus {
    /// `delivered`: 2xx received; `retrying`: retryable failure so far; `failed`: the CRM
    /// answered a non-retryable 4xx.
    #[schema(inline)]
    pub status: DeliveryState,
    #[schema(minimum = 0)]
    pub attempts: u32,
    /// HTTP status of the CRM's last answer; null when the last attempt got no answer
    /// (`timeout`, `connection`).
    pub last_http_status: Option<u16>,
    /// Why the last attempt did not deliver; null once delivered. `timeout`: no answer within
    /// the connect or request timeout (retried). `connection`: no HTTP answer for another reason,
    /// such as name resolution, connection refused or reset, or TLS (retried). `http_status`: the
    /// CRM answered 408, 429 or a 5xx, see `last_http_status` (retried). `rejected`: the CRM
    /// answered any other non-2xx, a 4xx other than 408 and 429 or a 3xx (redirects are not
    /// followed); permanent, `status` is `failed`. The underlying error text is logged, never
    /// returned.
    #[schema(inline)]
    pub last_failure: Option<shared::model::FailureKind>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<UtcTime>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DeliveryState {
    Delivered,
    Retrying,
    Failed,
}

/// A Stripe event as Stripe sends it (only the fields read here are listed). Acted on:
/// `checkout.session.completed` (with `payment_status: paid`) and
/// `checkout.session.async_payment_succeeded` confirm the booking; `checkout.session.expired` and
/// `checkout.session.async_payment_failed` expire it and release its seat; `refund.updated` and
/// `refund.failed` update `payment.refund_status`. Every other type is acknowledged and ignored.
#[derive(ToSchema)]
pub struct StripeEvent {
    #[schema(example = "evt_1QabcDEFghiJKL")]
    pub id: String,
    #[schema(rename = "type", example = "checkout.session.completed")]
    pub event_type: String,
    #[schema(inline)]
    pub data: StripeEventData,
}

#[derive(ToSchema)]
pub struct StripeEventData {
    /// The Checkout Session (or refund): `id`, `status`, `payment_status`, `payment_intent`,
    /// `amount_total`, `currency`, `client_reference_id` and `metadata.booking_id` (the booking
    /// id) are read.
    #[schema(value_type = Object)]
    pub object: serde_json::Value,
}

// Payments handler, `Received`.
/// The webhook's acknowledgement.
#[derive(ToSchema)]
pub struct WebhookReceived {
    /// Always `true`.
    pub received: bool,
    /// `confirmed`/`expired`: the booking changed; `refund_requested`: paid after the hold had
    /// ended (cancelled or expired), so the payment is refunded; `refund_updated`: a refund's
    /// status changed; `none`: a replay, an out-of-order event, an ignored type or an unknown
    /// booking.
    #[schema(inline)]
    pub effect: Effect,
    /// Left out when the event names no booking.
    #[schema(nullable = false)]
    pub booking_id: Option<Id>,
}

/// Body of `POST /events/`: `EventInput` (schema `EventUpdate`) with the fields creation requires
/// and the defaults it fills in.
pub struct EventCreate;

impl utoipa::PartialSchema for EventCreate {
    fn schema() -> RefOr<Schema> {
        let mut schema = <shared::model::EventInput as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.required = vec!["title".into(), "datetime".into(), "type".into()];
            object.description = Some(EVENT_INPUT.into());
            for (field, default) in [("duration_minutes", json!(60)), ("description", json!(""))] {
                if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) {
                    property.default = Some(default);
                }
            }
            if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut("facilitator_id") {
                property.description = Some(
                    "The facilitator's reference in the CRM, trimmed, 1-64 characters. Default: the creating user's id."
                        .into(),
                );
            }
        }
        schema
    }
}

impl ToSchema for EventCreate {}

/// What the create and update bodies share.
pub const EVENT_INPUT: &str = "Read-only event fields (`id`, `seats_booked`, `seats_left`, `owner_id`, `created_at`, `updated_at`) are rejected with 400 `validation_failed` naming the field; any other unknown property is 400 `unknown_field`. `title`, `datetime`, `duration_minutes`, `facilitator_id` and `type` cannot be null (400 `validation_failed`).";
