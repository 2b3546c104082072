//! `POST /payments/webhook`: Stripe's Checkout Session events, checked against `Stripe-Signature`
//! over the raw body, settle the booking they pay for. No JWT: the signature is the
//! authentication.
//!
//! Every answer Stripe should not retry is 200 (`{"received": true, "effect": …}`): applied,
//! replayed, out of order, of a type this service ignores, or for a booking it does not know.
//! A 400 means the request is not a Stripe event signed with our secret; a 5xx (store or Stripe
//! failure) makes Stripe deliver it again later, which is safe because every effect is
//! conditional on the booking's status.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::error::{Error, Result};
use shared::http::{json_response, method_not_allowed, path, respond, segments, served};
use shared::model::{Booking, BookingStatus};
use shared::payments::{self, CheckoutSession, Refund, StripeEvent, WebhookKind};
use shared::store::{Settled, Settlement};
use shared::{time, App, Store};

pub const SIGNATURE_HEADER: &str = "stripe-signature";

pub async fn router<S: Store>(app: &App<S>, req: Request) -> Response<Body> {
    let path = path(&req);
    // Stripe POSTs to the URL registered for the endpoint, which deploy.md gives without a query:
    // a parameter here is a misregistered URL, refused like on every route so the dashboard's
    // delivery log shows the 400 naming it (the payment sweep still settles holds meanwhile).
    let result = match (segments(&path).as_slice(), req.method()) {
        (["payments", "webhook"], &Method::POST) => served(&req, &[], || webhook(app, &req)).await,
        (["payments", "webhook"], _) => Err(method_not_allowed("POST")),
        _ => Err(Error::NotFound("route")),
    };
    respond(result)
}

/// What a webhook did, in its 200 answer (and the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(rename_all = "snake_case"))]
pub enum Effect {
    /// The hold was paid: the booking is `confirmed` (and its CRM notification is due).
    Confirmed,
    /// The hold ended unpaid: the booking is `expired` and its seat released.
    Expired,
    /// A payment landed for a booking that no longer held a seat (cancelled or expired first):
    /// its refund was requested.
    RefundRequested,
    /// A refund this service asked for changed status at Stripe (`refund.updated`): recorded in
    /// `payment.refund_status`.
    RefundUpdated,
    /// Nothing to do: a replay, an event older than the booking's state, an ignored type, a
    /// booking this service does not know, or a session it did not create for that booking.
    None,
}

#[derive(Serialize)]
struct Received<'a> {
    received: bool,
    effect: Effect,
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_id: Option<&'a str>,
}

async fn webhook<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    // The bytes exactly as Stripe sent them: the signature covers them, not a re-serialisation.
    let body: &[u8] = req.body().as_ref();
    if body.len() > payments::MAX_WEBHOOK_BYTES {
        tracing::warn!(bytes = body.len(), "Stripe webhook refused: body too large");
        return Err(Error::PayloadTooLarge);
    }
    let header = req.headers().get(SIGNATURE_HEADER).map(|v| v.to_str().unwrap_or_default());
    let Some(secret) = app.stripe_webhook_secret.as_deref() else {
        tracing::error!("STRIPE_WEBHOOK_SECRET is not set: every Stripe webhook is refused");
        return Err(Error::InvalidSignature("webhook signatures cannot be checked"));
    };
    if let Err(e) = payments::verify_signature(header, body, secret, time::now().timestamp()) {
        tracing::warn!(reason = %e, "Stripe webhook refused");
        return Err(e);
    }
    let event: StripeEvent =
        serde_json::from_slice(body).map_err(|_| Error::InvalidJson("the body is not a Stripe event".into()))?;
    let (effect, booking_id) = apply(app, &event).await?;
    tracing::info!(event_id = %event.id, event_type = %event.event_type, ?effect, booking_id = booking_id.as_deref().unwrap_or("-"), "Stripe webhook");
    Ok(json_response(StatusCode::OK, &Received { received: true, effect, booking_id: booking_id.as_deref() }))
}

/// Settles the booking a verified event is about; see [`Effect`].
pub async fn apply<S: Store>(app: &App<S>, event: &StripeEvent) -> Result<(Effect, Option<String>)> {
    let Some(kind) = WebhookKind::parse(&event.event_type) else {
        return Ok((Effect::None, None));
    };
    if kind == WebhookKind::RefundUpdated {
        return refund_updated(app, event).await;
    }
    let session: CheckoutSession = serde_json::from_value(event.data.object.clone())
        .map_err(|_| Error::InvalidJson("the event's object is not a Checkout Session".into()))?;
    let Some(booking_id) = session.booking_id().map(str::to_string) else {
        // Another integration's session on the same Stripe account.
        tracing::info!(event_id = %event.id, session_id = %session.id, "Checkout Session without a booking id: ignored");
        return Ok((Effect::None, None));
    };
    let to = match kind {
        WebhookKind::RefundUpdated => return Ok((Effect::None, Some(booking_id))),
        WebhookKind::Completed if session.payment_status.as_deref() == Some("paid") => BookingStatus::Confirmed,
        // Completed with a delayed payment method: `async_payment_succeeded`/`_failed` follows.
        WebhookKind::Completed => return Ok((Effect::None, Some(booking_id))),
        WebhookKind::AsyncPaymentSucceeded => BookingStatus::Confirmed,
        WebhookKind::Expired | WebhookKind::AsyncPaymentFailed => BookingStatus::Expired,
    };
    let settlement = Settlement {
        to,
        by: event.id.clone(),
        payment_intent: session.payment_intent.clone(),
        now: time::now(),
        session: Some(session.reference()),
    };
    let effect = match app.store.settle_payment(&booking_id, &settlement).await? {
        Settled::Changed(booking) if booking.status == BookingStatus::Confirmed => {
            tracing::info!(booking_id = %booking.id, event_id = %event.id, "payment received: booking confirmed");
            if let Some(hook) = &app.on_booking {
                hook(&booking);
            }
            Effect::Confirmed
        }
        Settled::Changed(booking) => {
            tracing::info!(booking_id = %booking.id, event_id = %event.id, "hold ended unpaid: booking expired");
            Effect::Expired
        }
        Settled::Unchanged(booking) if to == BookingStatus::Confirmed && needs_refund(&booking) => {
            refund_late_payment(app, booking, &session).await?;
            Effect::RefundRequested
        }
        Settled::Unchanged(_) => Effect::None,
        Settled::Foreign(booking) => {
            // Never confirms, expires or refunds: it is not money this service asked for.
            tracing::warn!(
                booking_id = %booking.id,
                event_id = %event.id,
                session_id = %session.id,
                amount_total = ?session.amount_total,
                currency = ?session.currency,
                "Checkout Session is not the one created for this booking (or another amount or currency): ignored"
            );
            Effect::None
        }
        Settled::NotFound => {
            tracing::warn!(booking_id = %booking_id, event_id = %event.id, session_id = %session.id, "Stripe event for an unknown booking: ignored");
            Effect::None
        }
    };
    Ok((effect, Some(booking_id)))
}

/// Paid, but it no longer holds a seat (cancelled or expired while pending), and no refund was
/// asked for yet (a paid booking cancelled later has `refund_status` from its cancel).
fn needs_refund(booking: &Booking) -> bool {
    matches!(booking.status, BookingStatus::Cancelled | BookingStatus::Expired)
        && booking.payment.as_ref().is_some_and(|p| p.refund_status.is_none())
}

/// The money of a payment that came after its hold ended goes back. Stripe refunds once per
/// booking (`Idempotency-Key: refund-<booking id>`), so a redelivered event asks again safely; a
/// failure answers 5xx, and Stripe's redelivery is the retry.
async fn refund_late_payment<S: Store>(app: &App<S>, mut booking: Booking, session: &CheckoutSession) -> Result<()> {
    let Some(provider) = app.payments.as_deref() else {
        tracing::error!(booking_id = %booking.id, "payment received after its hold ended, and STRIPE_SECRET_KEY is not set: refund it by hand");
        return Err(Error::Config("a late payment needs a refund and no Stripe client is configured".into()));
    };
    if let Some(payment) = booking.payment.as_mut() {
        payment.payment_intent = payment.payment_intent.take().or_else(|| session.payment_intent.clone());
    }
    tracing::warn!(booking_id = %booking.id, status = ?booking.status, session_id = %session.id, "payment received after the hold ended: refunding");
    payments::refund_booking(&app.store, provider, &booking).await?;
    Ok(())
}

/// `refund.updated` / `refund.failed`: the refund named on the booking in its
/// `metadata.booking_id` changed status. Recorded only when it is the refund this service
/// asked for (`payment.refund_id`), and never back to `pending` once it ended; `failed` or
/// `canceled` raises the operators' alarm.
async fn refund_updated<S: Store>(app: &App<S>, event: &StripeEvent) -> Result<(Effect, Option<String>)> {
    let object = &event.data.object;
    let refund: Refund = serde_json::from_value(object.clone())
        .map_err(|_| Error::InvalidJson("the event's object is not a refund".into()))?;
    let Some(booking_id) = object["metadata"]["booking_id"].as_str().filter(|id| !id.is_empty()).map(str::to_string)
    else {
        return Ok((Effect::None, None));
    };
    let Some(booking) = app.store.get_booking(&booking_id).await? else {
        return Ok((Effect::None, Some(booking_id)));
    };
    let Some(payment) = booking.payment.as_ref().filter(|p| p.refund_id.as_deref() == Some(refund.id.as_str())) else {
        tracing::warn!(booking_id = %booking_id, refund_id = %refund.id, "refund event for a refund this booking did not ask for: ignored");
        return Ok((Effect::None, Some(booking_id)));
    };
    let ended = matches!(payment.refund_status.as_deref(), Some("succeeded" | "failed" | "canceled"));
    if payment.refund_status.as_deref() == Some(refund.status.as_str()) || (ended && refund.status == "pending") {
        return Ok((Effect::None, Some(booking_id)));
    }
    app.store.record_refund(&booking_id, &refund.id, &refund.status).await?;
    tracing::info!(booking_id = %booking_id, refund_id = %refund.id, status = %refund.status, "refund status from Stripe");
    if refund.is_lost() {
        payments::raise_refund_alarm(&booking_id, &refund);
    }
    Ok((Effect::RefundUpdated, Some(booking_id)))
}
