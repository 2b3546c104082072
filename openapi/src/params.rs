//! Query and header parameters. The handlers read them by name from the query map
//! (`shared::http::query`); these state their rules.
#![allow(dead_code)] // parameters, never built

use utoipa::IntoParams;

/// `limit` and `cursor`, on every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Page size. Empty or blank is the same as absent (50). Not an integer in 1-100: 400
    /// `validation_failed` (field `limit`).
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<u32>,
    /// Opaque, signed position from the previous page's `Link` header; only valid with the same
    /// route and the same `type`/`rating`/`from`/`to`. Forged, truncated or reused with other
    /// filters: 400 `validation_failed` (field `cursor`).
    pub cursor: Option<String>,
}

/// `from` and `to` of the event lists.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// Only events at or after this instant (RFC 3339; without offset read as UTC). Empty or
    /// blank is the same as absent. Unparseable, or later than `to`: 400 `validation_failed`
    /// (field `from`).
    #[param(value_type = Option<String>, format = DateTime, example = "2025-08-01T00:00:00Z")]
    pub from: Option<String>,
    /// Only events at or before this instant (RFC 3339; without offset read as UTC). Empty or
    /// blank is the same as absent. Unparseable: 400 `validation_failed` (field `to`).
    #[param(value_type = Option<String>, format = DateTime, example = "2025-08-31T23:59:59Z")]
    pub to: Option<String>,
}

/// `GET /events/filter`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    /// Event type, matched case-insensitively (surrounding whitespace ignored). Over 50
    /// characters: 400 `validation_failed` (field `type`).
    #[param(rename = "type", max_length = 50, example = "yoga")]
    pub event_type: Option<String>,
    /// Minimum rating, inclusive (read as stored: two decimals). Not a number, below 0 or above
    /// 5: 400 `validation_failed` (field `rating`).
    #[param(minimum = 0, maximum = 5, example = 4.5)]
    pub rating: Option<f64>,
}

/// `GET /bookings/`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct History {
    /// Which bookings to list (surrounding whitespace ignored; empty or blank is the same as
    /// absent, `confirmed`): `confirmed` also lists `pending_payment` holds; `expired` lists holds
    /// that ended unpaid. Anything else is 400 `validation_failed` (field `status`).
    #[param(inline, default = "confirmed")]
    pub status: Option<ListedStatus>,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ListedStatus {
    Confirmed,
    Cancelled,
    Expired,
}

/// `POST /bookings/`.
#[derive(IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
pub struct IdempotencyKey(
    /// 1-255 visible ASCII characters (0x21-0x7E, surrounding whitespace trimmed); otherwise 400
    /// `validation_failed` (field `Idempotency-Key`). A retry with the same key by the same user
    /// within 24 h returns the first response's status (plus `Idempotent-Replayed: true`) and
    /// books nothing new: a free booking's first body as it was, a paid booking as it is now
    /// (still `pending_payment` with the same `checkout_url`, or `confirmed`, `expired`,
    /// `cancelled`). The same key with a different `event_id` is 409 `idempotency_key_reused`. A
    /// request answered 502 `payment_provider_unavailable` kept nothing, so its key may be sent
    /// again.
    #[param(min_length = 1, max_length = 255, pattern = "^[!-~]+$", example = "3f1c9e2a-booking-retry-1")]
    pub Option<String>,
);

/// `POST /payments/webhook`.
#[derive(IntoParams)]
#[into_params(names("Stripe-Signature"), parameter_in = Header)]
pub struct StripeSignature(
    /// `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` as Stripe sends it. Missing, malformed, stale or
    /// not matching: 400 `invalid_signature`.
    #[param(example = "t=1751445000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd")]
    pub String,
);
