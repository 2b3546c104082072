//! What every payments test file shares: an app with payments on the strict Stripe stand-in,
//! signed webhooks (signatures computed here with hmac/sha2 from Stripe's documentation, not with
//! the crate's signer), and Stripe's event envelope.
#![allow(dead_code)]

use hmac::{Hmac, Mac};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use sha2::Sha256;
use shared::model::{Booking, Role};
use shared::payments::PaymentProvider;
use shared::{App, Store};
use std::sync::{Arc, Mutex};
use tests::stripe_stub::{StripeStub, StripeStubExt};
use tests::*;

pub const WHSEC: &str = "whsec_test_payments_5f1c0a9e7b3d42c8";

pub type AppOf<S> = Arc<App<S>>;

/// An app with payments on the stub and a booking hook that records whom it was called for (the
/// local server delivers the CRM webhook from that hook).
pub struct Paid<S> {
    pub app: AppOf<S>,
    pub stub: StripeStub,
    pub hooked: Arc<Mutex<Vec<String>>>,
}

impl<S: Store> Paid<S> {
    pub async fn new(store: S) -> Paid<S> {
        let stub = StripeStub::start().await;
        let mut config = tests::config();
        config.stripe_webhook_secret = Some(WHSEC.into());
        let hooked: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = hooked.clone();
        let app = App::new(store, &config)
            .unwrap()
            .with_payments(Arc::new(stub.client()))
            .with_booking_hook(Arc::new(move |b: &Booking| seen.lock().unwrap().push(b.id.clone())));
        Paid { app: Arc::new(app), stub, hooked }
    }

    pub fn hooked(&self) -> Vec<String> {
        self.hooked.lock().unwrap().clone()
    }

    pub fn provider(&self) -> &dyn PaymentProvider {
        self.app.payments.as_deref().unwrap()
    }

    /// A priced event (25.00 EUR) created through the API by a new facilitator.
    pub async fn event(&self, capacity: Option<u32>) -> String {
        let (_, owner) = user(&self.app, Role::Facilitator).await;
        let body = json!({
            "title": "Sound Bath", "type": "Meditation", "datetime": in_days(10), "capacity": capacity,
            "price": {"amount": 2500, "currency": "eur"},
        });
        let resp = call(&self.app, request("POST", "/events", Some(&owner), Some(body))).await;
        assert_eq!(status(&resp), 201, "{:?}", json(&resp));
        assert_eq!(json(&resp)["price"], json!({"amount": 2500, "currency": "eur"}));
        json(&resp)["id"].as_str().unwrap().to_string()
    }

    pub async fn book(&self, token: &str, event_id: &str) -> Response<Body> {
        call(&self.app, request("POST", "/bookings/", Some(token), Some(json!({"event_id": event_id})))).await
    }

    /// A pending booking by a new attendee: (booking JSON, token, its Checkout Session id).
    pub async fn hold(&self, event_id: &str) -> (Value, String, String) {
        let (_, token) = user(&self.app, Role::Attendee).await;
        let resp = self.book(&token, event_id).await;
        assert_eq!(status(&resp), 201, "{:?}", json(&resp));
        let booking = json(&resp);
        assert_eq!(booking["status"], "pending_payment");
        let session = self.stub.session_for(booking["id"].as_str().unwrap()).expect("a session for the hold");
        (booking, token, session["id"].as_str().unwrap().to_string())
    }

    pub async fn booking(&self, id: &str) -> Booking {
        self.app.store.get_booking(id).await.unwrap().expect("booking exists")
    }

    pub async fn seats_booked(&self, event_id: &str) -> u64 {
        let resp = call(&self.app, request("GET", &format!("/events/{event_id}"), None, None)).await;
        json(&resp)["seats_booked"].as_u64().unwrap()
    }

    /// Delivers a signed webhook: (status, body).
    pub async fn deliver(&self, body: &str) -> (u16, Value) {
        let t = shared::time::now().timestamp();
        let resp = call(&self.app, webhook(body, Some(&stripe_signature(body, WHSEC, t)))).await;
        (status(&resp), json(&resp))
    }

    /// Delivers a signed webhook and returns its `effect`, asserting the 200.
    pub async fn effect(&self, body: &str) -> String {
        let (code, answer) = self.deliver(body).await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["received"], true, "{answer}");
        answer["effect"].as_str().unwrap().to_string()
    }
}

/// `Stripe-Signature` as Stripe documents it, computed here: `t=<unix>,v1=<hex HMAC-SHA256>` keyed
/// with the whole `whsec_…` string over `"{t}.{body}"`.
pub fn stripe_signature(body: &str, secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

pub fn webhook(body: &str, signature: Option<&str>) -> Request {
    let mut b = http::Request::builder()
        .method("POST")
        .uri("/payments/webhook")
        .header("content-type", "application/json; charset=utf-8");
    if let Some(sig) = signature {
        b = b.header("stripe-signature", sig);
    }
    b.body(Body::Text(body.to_string())).unwrap()
}

/// A Stripe event around a Checkout Session, as Stripe serialises it (pretty-printed: the
/// signature covers the raw bytes, whitespace included).
pub fn stripe_event(event_id: &str, event_type: &str, session: &Value) -> String {
    serde_json::to_string_pretty(&json!({
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": shared::time::now().timestamp(),
        "data": {"object": session},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
    }))
    .unwrap()
}

pub fn evt() -> String {
    format!("evt_{}", shared::model::new_id())
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}
