//! `auth` function's operational routes and the `payments` webhook.

use crate::errors::*;
use crate::params::StripeSignature;
use crate::schemas::{Health, StripeEvent, WebhookReceived};

#[utoipa::path(
    get, path = "/health", operation_id = "health", tag = "operations", summary = "Liveness check",
    description = "Does not touch the database.",
    responses((status = 200, description = "Service is up.", body = Health, example = json!({"status": "ok"})))
)]
pub fn health() {}

#[utoipa::path(
    get, path = "/openapi.json", operation_id = "openapi", tag = "operations", summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The OpenAPI document.", body = Object))
)]
pub fn openapi() {}

#[utoipa::path(
    post, path = "/payments/webhook", operation_id = "stripeWebhook", tag = "payments", summary = "Stripe Checkout events",
    description = "Called by Stripe, not by clients. No bearer token: the `Stripe-Signature` header authenticates the raw body. `t=<unix seconds>,v1=<hex HMAC-SHA256>` where the HMAC is keyed with the whole webhook signing secret (`whsec_…`, used as text) over `{t}.{raw body}`; any of several `v1` values may match (the expected signature is computed once and compared with each in constant time), and `t` must be within 300 s of the server's clock. Anything else is 400 `invalid_signature` and has no effect. Every event is safe to deliver again and in any order: a booking only moves out of `pending_payment` once (a seat is released once), and a 2xx is returned for replays, ignored types and unknown bookings so Stripe stops retrying. A 5xx makes Stripe deliver it again later. Bodies over 256 KiB are 413 `payload_too_large` before any signature work. An event acts only on the session this service created for the booking named in `data.object.metadata.booking_id` (the session id recorded on it, the same `amount_total` and `currency`); any other session (a Payment Link, another integration, `client_reference_id` alone) is 200 with effect `none`. `refund.updated` / `refund.failed` for the refund recorded on a booking update `payment.refund_status` (effect `refund_updated`).",
    params(StripeSignature),
    request_body(content = StripeEvent, description = "The raw Stripe event; the signature covers these exact bytes.", example = crate::examples::stripe_event),
    responses(
        (status = 200, description = "Acknowledged: applied, already applied, ignored, or for an unknown booking.", body = WebhookReceived, example = json!({"received": true, "effect": "confirmed", "booking_id": "01J8Z5B1C2D3E4F5G6H7J8K9M0"})),
        (status = 400, description = "`invalid_signature`: `Stripe-Signature` missing, malformed, older or newer than 300 s, or not made with this deployment's webhook secret (also every request while no secret is configured); `invalid_json`: correctly signed, but not a Stripe event or its object not a Checkout Session.", body = inline(BadWebhook)),
        (status = 413, description = "`payload_too_large`: the body is over 256 KiB (262144 bytes), refused before any signature work.", body = inline(PayloadTooLarge)),
        (status = 502, description = "A payment arrived for a booking whose hold had already ended and the refund could not be requested from Stripe; Stripe delivers the event again later.", body = inline(PaymentProviderUnavailable)),
    )
)]
pub fn stripe_webhook() {}
