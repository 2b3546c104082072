//! The payment provider port (Stripe Checkout is the one adapter, in the `payments` crate), the
//! Stripe webhook events this service acts on, and the `Stripe-Signature` check.
//!
//! The port is a trait object so that [`crate::App`] stays one type whether or not payments are
//! configured, and so that only the binaries that call Stripe link an HTTP client.

use crate::error::{Error, Result};
use crate::model::{Booking, BookingStatus};
use crate::store::{SessionRef, Store};
use crate::time::Timestamp;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// What a Checkout Session for one booking is created with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutRequest<'a> {
    /// `client_reference_id`, `metadata[booking_id]` and the `Idempotency-Key`.
    pub booking_id: &'a str,
    /// The product line's name: the event's title.
    pub description: &'a str,
    pub amount: u64,
    pub currency: &'a str,
    pub customer_email: &'a str,
    pub expires_at: Timestamp,
}

impl<'a> CheckoutRequest<'a> {
    /// The session of `booking`'s payment: the event's title, the price and the hold's end as
    /// the booking recorded them, so every retry for the booking sends the same parameters
    /// (Stripe replays the first answer of an `Idempotency-Key` only for identical ones).
    /// `None` for a free booking.
    pub fn for_booking(booking: &'a Booking) -> Option<CheckoutRequest<'a>> {
        let payment = booking.payment.as_ref()?;
        Some(CheckoutRequest {
            booking_id: &booking.id,
            description: &booking.event.title,
            amount: payment.amount,
            currency: &payment.currency,
            customer_email: &booking.user_email,
            expires_at: payment.expires_at,
        })
    }
}

/// Stripe's answer to a Checkout Session request, telling apart a request Stripe refuses as such
/// from one it could not serve: the same request can never succeed after a refusal, while an
/// outage ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckoutAnswer {
    Created(Box<CheckoutSession>),
    /// A 400 (`invalid_request_error`): the parameter Stripe named, e.g. `expires_at` when the
    /// session would end under 30 minutes (or over 24 hours) after Stripe creates it.
    Refused {
        param: Option<String>,
    },
}

/// A Checkout Session as Stripe returns it (the fields this service reads).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    /// `open`, `complete` or `expired`.
    #[serde(default)]
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<std::collections::HashMap<String, String>>,
    #[serde(default)]
    pub amount_total: Option<u64>,
    #[serde(default)]
    pub currency: Option<String>,
}

impl CheckoutSession {
    /// The booking this session says it pays for: `metadata.booking_id`, which only the creator
    /// of a session sets. Never `client_reference_id`: a Payment Link or pricing table on the same
    /// account lets the buyer choose it. A claim only: the session must also be the one recorded
    /// on that booking ([`CheckoutSession::reference`]).
    pub fn booking_id(&self) -> Option<&str> {
        self.metadata.as_ref().and_then(|m| m.get("booking_id")).map(String::as_str).filter(|id| !id.is_empty())
    }

    /// What must match the booking's payment before this session settles anything.
    pub fn reference(&self) -> SessionRef {
        SessionRef { id: self.id.clone(), amount_total: self.amount_total, currency: self.currency.clone() }
    }

    pub fn is_paid(&self) -> bool {
        self.status.as_deref() == Some("complete") && self.payment_status.as_deref() == Some("paid")
    }

    pub fn is_expired(&self) -> bool {
        self.status.as_deref() == Some("expired")
    }
}

/// A refund as Stripe returns it (and as `refund.updated` / `refund.failed` carry it).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Refund {
    pub id: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
}

impl Refund {
    /// Stripe will not move this money back by itself: an operator must act.
    pub fn is_lost(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "canceled")
    }
}

/// The `alarm` field of the ERROR log line written when a refund ends `failed` or `canceled`: a
/// CloudWatch metric filter on `{ $.fields.alarm = "refund_failed" }` (JSON logs) counts them.
pub const REFUND_FAILED_ALARM: &str = "refund_failed";

/// The log line operators are paged for: Stripe reports a refund it will not complete.
pub fn raise_refund_alarm(booking_id: &str, refund: &Refund) {
    tracing::error!(
        alarm = REFUND_FAILED_ALARM,
        booking_id = %booking_id,
        refund_id = %refund.id,
        refund_status = %refund.status,
        "refund failed at Stripe: the payment is not returned; refund it by hand (Dashboard) and tell the attendee"
    );
}

/// The payment sweep lives in its own module; its names stay reachable from here.
pub use crate::payment_sweep::{expire_cancelled_hold, sweep_payments, PaymentSweepReport};

/// The three Stripe calls the service makes (four with expiring a session). Every error is
/// [`Error::PaymentProviderUnavailable`]: Stripe unreachable, or an answer other than 2xx.
pub trait PaymentProvider: Send + Sync {
    /// `POST /v1/checkout/sessions`, mode `payment`, with `Idempotency-Key` = the booking id.
    fn create_checkout<'a>(&'a self, req: &'a CheckoutRequest<'a>) -> BoxFuture<'a, Result<CheckoutSession>>;
    /// [`PaymentProvider::create_checkout`], with Stripe's refusal of the request (400) as
    /// [`CheckoutAnswer::Refused`] rather than an error. The default knows no refusal: every
    /// failure is an error, to be retried.
    fn create_checkout_or_refusal<'a>(&'a self, req: &'a CheckoutRequest<'a>) -> BoxFuture<'a, Result<CheckoutAnswer>> {
        Box::pin(async move { self.create_checkout(req).await.map(|s| CheckoutAnswer::Created(Box::new(s))) })
    }
    /// `GET /v1/checkout/sessions/{id}`.
    fn retrieve_checkout<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<CheckoutSession>>;
    /// `POST /v1/checkout/sessions/{id}/expire`; a session that is no longer open is returned as
    /// it is (Stripe refuses to expire it), so the caller learns whether it was paid meanwhile.
    fn expire_checkout<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<CheckoutSession>>;
    /// `POST /v1/refunds` of the whole payment, with `Idempotency-Key` = `refund-<booking id>`.
    fn refund<'a>(&'a self, payment_intent: &'a str, booking_id: &'a str) -> BoxFuture<'a, Result<Refund>>;
}

/// The webhook events acted on; every other type is acknowledged and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookKind {
    /// `checkout.session.completed` (acted on only with `payment_status: paid`; a delayed
    /// payment method completes `unpaid` and is settled by `async_payment_succeeded`).
    Completed,
    AsyncPaymentSucceeded,
    Expired,
    AsyncPaymentFailed,
    /// `refund.updated` / `refund.failed`: a refund this service asked for changed status.
    RefundUpdated,
}

impl WebhookKind {
    pub fn parse(event_type: &str) -> Option<WebhookKind> {
        Some(match event_type {
            "checkout.session.completed" => WebhookKind::Completed,
            "checkout.session.async_payment_succeeded" => WebhookKind::AsyncPaymentSucceeded,
            "checkout.session.expired" => WebhookKind::Expired,
            "checkout.session.async_payment_failed" => WebhookKind::AsyncPaymentFailed,
            "refund.updated" | "refund.failed" => WebhookKind::RefundUpdated,
            _ => return None,
        })
    }
}

/// A Stripe event (`{"id", "type", "data": {"object": …}}`), its object left as JSON until the
/// type says it is a Checkout Session.
#[derive(Clone, Debug, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: StripeEventData,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StripeEventData {
    pub object: serde_json::Value,
}

/// How old a signed webhook may be (Stripe's libraries use the same default).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// The largest webhook body accepted (413 above it, before any signature work). Stripe's events
/// are a few KiB; a Checkout Session with its line items stays far below this.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// How many HMACs [`verify_signature`] has computed in this process: one per call that gets
/// that far, whatever the header holds (tests read it).
pub static HMAC_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// HMAC-SHA256 keyed with the whole webhook secret string (`whsec_…`, not decoded) of
/// `"{t}.{body}"`: the tag every `v1` is compared with.
pub fn expected_signature(body: &[u8], secret: &str, t: i64) -> [u8; 32] {
    HMAC_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Equal without an early exit: the time taken says nothing about where two tags differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` over the raw body: the expected tag
/// ([`expected_signature`]) is computed once and compared in constant time with every `v1`
/// (Stripe sends several while a secret is being rolled), so a header stuffed with signatures
/// costs one HMAC like any other; `t` must be within [`SIGNATURE_TOLERANCE_SECS`] of `now`.
pub fn verify_signature(header: Option<&str>, body: &[u8], secret: &str, now: i64) -> Result<()> {
    let header = header.ok_or(Error::InvalidSignature("Stripe-Signature header is missing"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(decode_hex(v)),
            _ => {}
        }
    }
    let t = timestamp.ok_or(Error::InvalidSignature("Stripe-Signature has no timestamp"))?;
    if signatures.is_empty() {
        return Err(Error::InvalidSignature("Stripe-Signature has no v1 signature"));
    }
    if (now - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(Error::InvalidSignature("Stripe-Signature timestamp is outside the tolerance"));
    }
    let expected = expected_signature(body, secret, t);
    // Every candidate is compared (no early exit either): the count of v1 values is all it shows.
    let matched = signatures.iter().fold(false, |any, sig| constant_time_eq(&expected, sig) | any);
    if matched {
        Ok(())
    } else {
        Err(Error::InvalidSignature("Stripe-Signature does not match"))
    }
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `Stripe-Signature` for `body` at `t`: what Stripe sends, for tests and local tools.
pub fn sign(body: &[u8], secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Asks Stripe for the full refund of a cancelled paid booking and records Stripe's answer
/// (`payment.refund_status`, `refund_id`), which also ends its refund task. Safe to repeat: the
/// `Idempotency-Key` is per booking, so Stripe refunds once however often this runs.
pub async fn refund_booking<S: Store>(store: &S, provider: &dyn PaymentProvider, booking: &Booking) -> Result<Refund> {
    let payment = booking.payment.as_ref().ok_or_else(|| Error::internal("refund of a free booking"))?;
    let intent = match &payment.payment_intent {
        Some(pi) => pi.clone(),
        // Confirmed by a webhook that did not carry it: the session knows.
        None => {
            let session_id = payment
                .checkout_session_id
                .as_deref()
                .ok_or_else(|| Error::internal("paid booking without a Checkout Session"))?;
            provider
                .retrieve_checkout(session_id)
                .await?
                .payment_intent
                .ok_or_else(|| Error::PaymentProviderUnavailable("the paid session has no payment_intent".into()))?
        }
    };
    let refund = provider.refund(&intent, &booking.id).await?;
    store.record_refund(&booking.id, &refund.id, &refund.status).await?;
    tracing::info!(booking_id = %booking.id, refund_id = %refund.id, status = %refund.status, "refund requested");
    if refund.is_lost() {
        raise_refund_alarm(&booking.id, &refund);
    }
    Ok(refund)
}

/// A hold cancelled while its payment landed: the payment goes back in full, as a cancelled paid
/// booking's does ([`refund_booking`], the same `Idempotency-Key`: the webhook of that payment
/// finds the refund asked for, or asks for the same one, never a second). `session` is the hold's
/// Checkout Session as Stripe answered its expiry, which names the payment.
pub async fn refund_paid_hold<S: Store>(
    store: &S,
    provider: &dyn PaymentProvider,
    hold: &Booking,
    session: CheckoutSession,
) -> Result<Refund> {
    tracing::warn!(booking_id = %hold.id, session_id = %session.id, "cancelled hold was paid at Stripe: refunding");
    let mut paid = hold.clone();
    if let Some(p) = paid.payment.as_mut() {
        p.payment_intent = session.payment_intent.or(p.payment_intent.take());
    }
    refund_booking(store, provider, &paid).await
}

/// Where a hold whose time is up goes, from its Checkout Session as Stripe reports it: paid →
/// `confirmed`; expired → `expired`; still open → expired at Stripe first (which answers with the
/// session as it ends: a payment that landed meanwhile still confirms). `None`: leave it (a
/// delayed payment method is still processing; its `async_payment_*` event settles it).
pub async fn settle_expired_hold(
    provider: &dyn PaymentProvider,
    session_id: Option<&str>,
) -> Result<Option<(BookingStatus, Option<String>)>> {
    let Some(session_id) = session_id else {
        // The function stopped between the hold and the session: nobody can pay it.
        return Ok(Some((BookingStatus::Expired, None)));
    };
    let mut session = provider.retrieve_checkout(session_id).await?;
    if session.status.as_deref() == Some("open") {
        session = provider.expire_checkout(session_id).await?;
    }
    Ok(if session.is_paid() {
        Some((BookingStatus::Confirmed, session.payment_intent))
    } else if session.is_expired() {
        Some((BookingStatus::Expired, None))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn signatures_are_checked_as_stripe_documents() {
        let body = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
        let now = 1_700_000_000;
        let good = sign(body, SECRET, now);
        assert!(verify_signature(Some(&good), body, SECRET, now).is_ok());
        assert!(verify_signature(Some(&good), body, SECRET, now + 300).is_ok());
        let other = sign(body, "whsec_other", now);
        let other_v1 = other.split_once(",v1=").unwrap().1;
        // Any of several v1 values may match.
        let both = format!("{good},v1={other_v1}");
        assert!(verify_signature(Some(&both), body, SECRET, now).is_ok());
        for (header, at) in [
            (None, now),
            (Some(other.clone()), now),
            (Some(good.clone()), now + 301),
            (Some(good.clone()), now - 301),
            (Some(good.replace("t=", "x=")), now),
            (Some(format!("t={now}")), now),
            (Some("garbage".to_string()), now),
        ] {
            let e = verify_signature(header.as_deref(), body, SECRET, at).unwrap_err();
            assert_eq!(e.code(), "invalid_signature", "{header:?}");
        }
        // One HMAC per check, however many v1 values the header holds.
        let many: String = std::iter::once(format!("t={now}"))
            .chain((0..200).map(|_| format!("v1={}", "ab".repeat(32))))
            .collect::<Vec<_>>()
            .join(",");
        let before = HMAC_COUNT.load(std::sync::atomic::Ordering::Relaxed);
        assert!(verify_signature(Some(&many), body, SECRET, now).is_err());
        assert_eq!(HMAC_COUNT.load(std::sync::atomic::Ordering::Relaxed) - before, 1);
        // The body is signed byte for byte.
        assert!(
            verify_signature(Some(&good), br#"{"id":"evt_1","type":"checkout.session.expired"}"#, SECRET, now).is_err()
        );
    }
}
