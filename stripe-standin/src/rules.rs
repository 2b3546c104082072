//! What Stripe answers, refusals first. Each rule names the page of Stripe's documentation it
//! comes from; a rule the stand-in did not encode is a rule no test here can catch.

use crate::{schema, RefundOutcome, State, StubRequest};
use serde_json::{json, Value};

/// Stripe's error body: `{"error": {"type", "code"?, "param"?, "message"}}`.
/// <https://docs.stripe.com/api/errors> (types `api_error`, `idempotency_error`,
/// `invalid_request_error`; codes listed at <https://docs.stripe.com/error-codes>).
pub fn stripe_error(status: u16, kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> (u16, Value) {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    (status, json!({ "error": error }))
}

fn invalid(code: &str, param: &str, message: &str) -> (u16, Value) {
    stripe_error(400, "invalid_request_error", Some(code), Some(param), message)
}

/// Stripe's minimum charge per currency, in minor units.
/// <https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts>
/// (the service's own copy, which refuses such prices up front, is `shared::model::min_charge`;
/// they are kept apart on purpose: this one stands for Stripe).
pub const MINIMUM_CHARGE: &[(&str, u64)] = &[
    ("usd", 50),
    ("aed", 200),
    ("aud", 50),
    ("bgn", 100),
    ("brl", 50),
    ("cad", 50),
    ("chf", 50),
    ("czk", 1500),
    ("dkk", 250),
    ("eur", 50),
    ("gbp", 30),
    ("hkd", 400),
    ("huf", 17500),
    ("inr", 50),
    ("jpy", 50),
    ("mxn", 1000),
    ("myr", 200),
    ("nok", 300),
    ("nzd", 50),
    ("pln", 200),
    ("ron", 200),
    ("sek", 300),
    ("sgd", 50),
    ("thb", 1000),
];

/// `expires_at` bounds, from the session's creation on Stripe's clock.
/// <https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at>
/// ("can be anywhere from 30 minutes to 24 hours after Checkout Session creation"), and
/// <https://docs.stripe.com/payments/checkout/managing-limited-inventory>.
pub const EXPIRES_AT_MIN_SECS: i64 = 30 * 60;
pub const EXPIRES_AT_MAX_SECS: i64 = 24 * 60 * 60;

pub(crate) fn answer(state: &mut State, req: &StubRequest) -> (u16, Value) {
    if !req.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer sk_test_")) {
        return stripe_error(401, "invalid_request_error", None, None, "Invalid API Key provided");
    }
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return stripe_error(500, "api_error", None, None, "An unknown error occurred");
    }
    // Idempotent requests: the first answer of a key is replayed for the same request; the same
    // key with another endpoint or other parameters is refused.
    // <https://docs.stripe.com/api/idempotent_requests>, <https://docs.stripe.com/idempotency>
    // ("The idempotency layer compares incoming parameters to those of the original request and
    // errors if they're not the same"); keys are at most 255 characters.
    let replay_key = req.idempotency_key.as_ref().filter(|_| req.method == "POST");
    if let Some(key) = replay_key {
        if key.len() > 255 {
            return invalid("parameter_invalid_string", "Idempotency-Key", "Idempotency keys are up to 255 characters");
        }
        if let Some((method, path, form, first)) = state.idempotent.get(key) {
            if (method, path, form) != (&req.method, &req.path, &req.form) {
                return stripe_error(
                    400,
                    "idempotency_error",
                    None,
                    None,
                    &format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first \
                         used with. Try using a key other than '{key}' if you meant to execute a different request."
                    ),
                );
            }
            return first.clone();
        }
    }
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let operation = match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "checkout", "sessions"]) => schema::Operation::CreateSession,
        ("GET", ["v1", "checkout", "sessions", _]) => schema::Operation::RetrieveSession,
        ("POST", ["v1", "checkout", "sessions", _, "expire"]) => schema::Operation::ExpireSession,
        ("POST", ["v1", "refunds"]) => schema::Operation::CreateRefund,
        _ => return stripe_error(404, "invalid_request_error", None, None, "Unrecognized request URL"),
    };
    // Parameter validation happens before the idempotency layer saves anything (the page above:
    // "If incoming parameters fail validation … no idempotent result is saved").
    if let Err(refusal) = schema::check(operation, &req.form) {
        return refusal;
    }
    let answer = match (operation, segments.as_slice()) {
        (schema::Operation::CreateSession, _) => create_session(state, req),
        (schema::Operation::RetrieveSession, [.., id]) => match state.sessions.get(*id) {
            Some(s) => (200, s.clone()),
            None => missing(id),
        },
        (schema::Operation::ExpireSession, [.., id, _]) => expire_session(state, id),
        (schema::Operation::CreateRefund, _) => create_refund(state, req),
        _ => stripe_error(404, "invalid_request_error", None, None, "Unrecognized request URL"),
    };
    if let Some(key) = replay_key {
        // Stripe keeps the first answer of a key, errors included.
        state.idempotent.insert(key.clone(), (req.method.clone(), req.path.clone(), req.form.clone(), answer.clone()));
    }
    answer
}

fn missing(id: &str) -> (u16, Value) {
    stripe_error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        Some("session"),
        &format!("No such checkout.session: '{id}'"),
    )
}

/// Only an `open` session can be expired.
/// <https://docs.stripe.com/api/checkout/sessions/expire> ("A Checkout Session can be expired
/// when it is in one of these statuses: open … Returns an error if the Checkout Session has
/// already expired or isn't in an expireable state").
fn expire_session(state: &mut State, id: &str) -> (u16, Value) {
    match state.sessions.get_mut(id) {
        Some(s) if s["status"] == "open" => {
            s["status"] = json!("expired");
            (200, s.clone())
        }
        Some(s) => stripe_error(
            400,
            "invalid_request_error",
            None,
            None,
            &format!("Only Checkout Sessions with a status in [\"open\"] can be expired (status: {}).", s["status"]),
        ),
        None => missing(id),
    }
}

fn create_session(state: &mut State, req: &StubRequest) -> (u16, Value) {
    // Required parameters of a one-off payment built from `price_data`: `mode`, and per line
    // `quantity`, `price_data.currency`, `price_data.product_data.name` (or `product`), and an
    // amount. <https://docs.stripe.com/api/checkout/sessions/create> (`success_url` is required
    // unless `ui_mode` is embedded). Missing → `parameter_missing`
    // <https://docs.stripe.com/error-codes#parameter-missing>.
    for required in [
        "mode",
        "success_url",
        "line_items[0][quantity]",
        "line_items[0][price_data][currency]",
        "line_items[0][price_data][unit_amount]",
        "line_items[0][price_data][product_data][name]",
    ] {
        if req.field(required).is_none_or(str::is_empty) {
            return invalid("parameter_missing", required, &format!("Missing required param: {required}."));
        }
    }
    let currency = req.field("line_items[0][price_data][currency]").unwrap_or_default().to_string();
    let unit: u64 = req.field("line_items[0][price_data][unit_amount]").and_then(|a| a.parse().ok()).unwrap_or(0);
    let quantity: u64 = req.field("line_items[0][quantity]").and_then(|a| a.parse().ok()).unwrap_or(0);
    let amount = unit.saturating_mul(quantity);
    // The total must reach the currency's minimum charge.
    // <https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts>,
    // <https://docs.stripe.com/error-codes#amount-too-small>.
    if let Some((_, min)) = MINIMUM_CHARGE.iter().find(|(c, _)| *c == currency) {
        if amount < *min {
            return invalid(
                "amount_too_small",
                "line_items[0][price_data][unit_amount]",
                &format!(
                    "The Checkout Session's total amount due must add up to at least {min} {currency} (minor units)."
                ),
            );
        }
    }
    // `expires_at`: 30 minutes to 24 hours after the session is created, on Stripe's clock
    // (ours may lag it, and the request takes time to arrive): see [`EXPIRES_AT_MIN_SECS`].
    let created = state.stripe_now();
    let expires_at: i64 = match req.field("expires_at") {
        None => created + EXPIRES_AT_MAX_SECS,
        Some(e) => e.parse().unwrap_or(0),
    };
    if !(created + EXPIRES_AT_MIN_SECS..=created + EXPIRES_AT_MAX_SECS).contains(&expires_at) {
        return invalid(
            "parameter_invalid_integer",
            "expires_at",
            "The `expires_at` timestamp must be between 30 minutes and 24 hours after the Checkout Session is created.",
        );
    }
    let id = state.next_id("cs");
    let mut metadata = serde_json::Map::new();
    for (k, v) in &req.form {
        if let Some(name) = k.strip_prefix("metadata[").and_then(|k| k.strip_suffix(']')) {
            metadata.insert(name.to_string(), json!(v));
        }
    }
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "url": format!("{}/{id}", state.checkout_url_base.as_deref().unwrap_or("https://checkout.stripe.com/c/pay")),
        "status": "open",
        "payment_status": "unpaid",
        "payment_intent": null,
        "mode": req.field("mode"),
        "amount_total": amount,
        "currency": currency,
        "customer_email": req.field("customer_email"),
        "client_reference_id": req.field("client_reference_id"),
        "metadata": metadata,
        "created": created,
        "expires_at": expires_at,
        "success_url": req.field("success_url"),
        "cancel_url": req.field("cancel_url"),
    });
    state.sessions.insert(id, session.clone());
    (200, session)
}

/// A refund of a whole payment.
/// <https://docs.stripe.com/api/refunds/create>; statuses `pending`, `requires_action`,
/// `succeeded`, `failed`, `canceled` <https://docs.stripe.com/api/refunds/object#refund_object-status>;
/// a payment refunded in full refuses another refund, `charge_already_refunded`
/// <https://docs.stripe.com/error-codes#charge-already-refunded>; a failed refund returns the
/// money to the balance and the payment may be refunded again
/// <https://docs.stripe.com/refunds#failed-refunds>.
fn create_refund(state: &mut State, req: &StubRequest) -> (u16, Value) {
    let Some(pi) = req.field("payment_intent").map(str::to_string) else {
        // The API takes `charge` or `payment_intent`; this service only ever sends the latter.
        return invalid("parameter_missing", "payment_intent", "Missing required param: payment_intent.");
    };
    let paid = state.sessions.values().find(|s| s["payment_intent"] == pi.as_str()).cloned();
    let Some(session) = paid else {
        return invalid("resource_missing", "payment_intent", &format!("No such payment_intent: '{pi}'"));
    };
    let live = state
        .refunds
        .values()
        .any(|r| r["payment_intent"] == pi.as_str() && !matches!(r["status"].as_str(), Some("failed" | "canceled")));
    if live {
        return stripe_error(
            400,
            "invalid_request_error",
            Some("charge_already_refunded"),
            None,
            &format!("Charge for PaymentIntent {pi} has already been refunded."),
        );
    }
    let id = state.next_id("re");
    let status = match state.refund_outcome {
        RefundOutcome::Pending => "pending",
        RefundOutcome::Succeeded => "succeeded",
        RefundOutcome::Failed => "failed",
    };
    let mut metadata = serde_json::Map::new();
    for (k, v) in &req.form {
        if let Some(name) = k.strip_prefix("metadata[").and_then(|k| k.strip_suffix(']')) {
            metadata.insert(name.to_string(), json!(v));
        }
    }
    let refund = json!({
        "id": id,
        "object": "refund",
        "amount": session["amount_total"],
        "currency": session["currency"],
        "payment_intent": pi,
        "status": status,
        "failure_reason": if status == "failed" { json!("expired_or_canceled_card") } else { Value::Null },
        "created": state.stripe_now(),
        "metadata": metadata,
    });
    state.refunds.insert(id, refund.clone());
    (200, refund)
}
