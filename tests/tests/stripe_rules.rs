//! The stand-in refuses what Stripe refuses (each rule's source is beside it in
//! `stripe-standin/src/rules.rs`), and what the service sent before payments v3 is refused by it:
//! an `expires_at` of booking time + 30 minutes, once Stripe's clock runs 2 s ahead.

use serde_json::Value;
use shared::payments::{CheckoutRequest, PaymentProvider};
use tests::stripe_stub::{RefundOutcome, StripeStub, StripeStubExt, STUB_SECRET_KEY};

async fn post(stub: &StripeStub, path: &str, form: &[(&str, String)], key: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{}{path}", stub.url())).bearer_auth(STUB_SECRET_KEY).form(form);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap())
}

fn session_form(amount: u64, currency: &str, expires_in: i64) -> Vec<(&'static str, String)> {
    let expires_at = chrono::Utc::now().timestamp() + expires_in;
    vec![
        ("mode", "payment".into()),
        ("line_items[0][price_data][currency]", currency.into()),
        ("line_items[0][price_data][unit_amount]", amount.to_string()),
        ("line_items[0][price_data][product_data][name]", "Sound Bath".into()),
        ("line_items[0][quantity]", "1".into()),
        ("metadata[booking_id]", "01B".into()),
        ("expires_at", expires_at.to_string()),
        ("success_url", "http://localhost/ok".into()),
    ]
}

fn error(body: &Value) -> (&str, &str, &str) {
    let e = &body["error"];
    (e["type"].as_str().unwrap_or("-"), e["code"].as_str().unwrap_or("-"), e["param"].as_str().unwrap_or("-"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_refuses_what_stripe_refuses() {
    let stub = StripeStub::start().await;
    let sessions = "/v1/checkout/sessions";
    // expires_at: 30 min to 24 h after creation on Stripe's (skewed) clock.
    for (secs, ok) in
        [(30 * 60, false), (30 * 60 + 1, false), (31 * 60, true), (24 * 3600, true), (24 * 3600 + 60, false)]
    {
        let (code, body) = post(&stub, sessions, &session_form(2500, "eur", secs), None).await;
        if ok {
            assert_eq!(code, 200, "{secs}: {body}");
        } else {
            assert_eq!(
                (code, error(&body)),
                (400, ("invalid_request_error", "parameter_invalid_integer", "expires_at"))
            );
        }
    }
    // Minimum charge per currency.
    for (amount, currency, ok) in
        [(49, "usd", false), (50, "usd", true), (29, "gbp", false), (30, "gbp", true), (1400, "czk", false)]
    {
        let (code, body) = post(&stub, sessions, &session_form(amount, currency, 3600), None).await;
        assert_eq!(code == 200, ok, "{amount} {currency}: {body}");
        if !ok {
            assert_eq!(error(&body).1, "amount_too_small");
        }
    }
    // Required parameters, unknown parameters, wrong types.
    let mut form = session_form(2500, "eur", 3600);
    form.retain(|(k, _)| *k != "mode");
    let (code, body) = post(&stub, sessions, &form, None).await;
    assert_eq!((code, error(&body).1, error(&body).2), (400, "parameter_missing", "mode"));
    let mut form = session_form(2500, "eur", 3600);
    form.push(("payment_intent_datum[capture]", "later".into()));
    let (code, body) = post(&stub, sessions, &form, None).await;
    assert_eq!((code, error(&body).1), (400, "parameter_unknown"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("Received unknown parameter"));
    let mut form = session_form(2500, "eur", 3600);
    form[0].1 = "donation".into();
    assert_eq!(error(&post(&stub, sessions, &form, None).await.1).1, "parameter_invalid_string");
    // Idempotency: same parameters → the first answer; other parameters → idempotency_error.
    let first = post(&stub, sessions, &session_form(2500, "eur", 3600), Some("k1")).await;
    let again = post(&stub, sessions, &session_form(2500, "eur", 3600), Some("k1")).await;
    assert_eq!(first, again);
    let (code, body) = post(&stub, sessions, &session_form(2600, "eur", 3600), Some("k1")).await;
    assert_eq!((code, error(&body).0), (400, "idempotency_error"));
    // Expire only open sessions.
    let sid = first.1["id"].as_str().unwrap().to_string();
    let expire = format!("{sessions}/{sid}/expire");
    assert_eq!(post(&stub, &expire, &[], None).await.0, 200);
    let (code, body) = post(&stub, &expire, &[], None).await;
    assert_eq!(code, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Only Checkout Sessions with a status in [\"open\"]"));
    // Refunds: pending first; a second refund → charge_already_refunded; after a failed one, a new
    // refund is allowed.
    let (_, created) = post(&stub, sessions, &session_form(2500, "eur", 3600), None).await;
    let paid = stub.pay(created["id"].as_str().unwrap());
    let pi = paid["payment_intent"].as_str().unwrap().to_string();
    let (code, refund) = post(&stub, "/v1/refunds", &[("payment_intent", pi.clone())], None).await;
    assert_eq!((code, refund["status"].as_str()), (200, Some("pending")));
    let (code, body) = post(&stub, "/v1/refunds", &[("payment_intent", pi.clone())], None).await;
    assert_eq!((code, error(&body).1), (400, "charge_already_refunded"));
    stub.settle_refund(refund["id"].as_str().unwrap(), "failed");
    stub.refund_outcome(RefundOutcome::Succeeded);
    let (code, again) = post(&stub, "/v1/refunds", &[("payment_intent", pi)], None).await;
    assert_eq!((code, again["status"].as_str()), (200, Some("succeeded")));
}

/// Before payments v3 the session asked for `expires_at` = booking time + 30 minutes: with
/// Stripe's clock 2 s ahead, Stripe refuses it (every paid booking was a 502). What v3 sends, 31
/// minutes, is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_thirty_minute_expiry_is_refused_and_v3s_is_taken() {
    let stub = StripeStub::start().await;
    let client = stub.client();
    let now = shared::time::now();
    let request = |minutes: i64, id: &'static str| CheckoutRequest {
        booking_id: id,
        description: "Sound Bath",
        amount: 2500,
        currency: "eur",
        customer_email: "asha@example.com",
        expires_at: now + chrono::Duration::minutes(minutes),
    };
    let e = client.create_checkout(&request(30, "01OLD")).await.unwrap_err();
    assert_eq!(e.code(), "payment_provider_unavailable");
    let refused = stub.refused();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].error.as_deref(), Some("parameter_invalid_integer"));
    let session = client.create_checkout(&request(shared::model::HOLD_MINUTES, "01NEW")).await.unwrap();
    assert!(session.url.is_some());
}
