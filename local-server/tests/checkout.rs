//! The local checkout of `make run PAYMENTS=local` (local_server::checkout), served on a real
//! loopback port with the Stripe stand-in behind it. The webhook endpoint here is a recorder that
//! checks each delivery's `Stripe-Signature` the way `/payments/webhook` does; the whole path
//! through the real webhook, in a real browser, is scripts/checkout-browser-test.py.

use local_server::checkout::{local_requested, CheckoutError, LocalCheckout};
use serde_json::Value;
use shared::payments::{CheckoutRequest, PaymentProvider};
use std::sync::{Arc, Mutex};

/// The checkout pages on a free port, and every webhook delivery they made (body, verified).
struct Harness {
    base: String,
    local: Arc<LocalCheckout>,
    client: payments::StripeClient,
    deliveries: Arc<Mutex<Vec<Value>>>,
}

async fn harness() -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (local, client) = LocalCheckout::start(addr, |_| None).await.unwrap();
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let (recorded, secret) = (deliveries.clone(), local.webhook_secret().to_string());
    let webhook = move |headers: http::HeaderMap, body: axum::body::Bytes| {
        let (recorded, secret) = (recorded.clone(), secret.clone());
        async move {
            let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
            let now = shared::time::now().timestamp();
            if shared::payments::verify_signature(signature, &body, &secret, now).is_err() {
                return (http::StatusCode::BAD_REQUEST, "bad signature");
            }
            recorded.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            (http::StatusCode::OK, "{\"received\":true}")
        }
    };
    let app = local.routes().route("/payments/webhook", axum::routing::post(webhook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Harness { base: format!("http://{addr}"), local, client, deliveries }
}

impl Harness {
    /// A session as the bookings function opens one (its expiry 31 minutes out on our clock).
    async fn session(&self, booking_id: &str, title: &str) -> String {
        let expires_at = shared::time::now() + chrono::Duration::minutes(31);
        let request = CheckoutRequest {
            booking_id,
            description: title,
            amount: 1500,
            currency: "eur",
            customer_email: "asha@example.com",
            expires_at,
        };
        self.client.create_checkout(&request).await.unwrap().id
    }

    /// The page of a session, and the token its Pay form carries.
    async fn page(&self, id: &str) -> (u16, String, Option<String>) {
        let resp = http_client().get(format!("{}/checkout/{id}", self.base)).send().await.unwrap();
        let status = resp.status().as_u16();
        let html = resp.text().await.unwrap();
        let token = html.split("name=\"csrf\" value=\"").nth(1).and_then(|t| t.split('"').next()).map(str::to_string);
        (status, html, token)
    }

    async fn pay(&self, id: &str, form: &str, origin: Option<&str>) -> reqwest::Response {
        let mut req = http_client()
            .post(format!("{}/checkout/{id}/pay", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send().await.unwrap()
    }

    fn deliveries(&self) -> Vec<Value> {
        self.deliveries.lock().unwrap().clone()
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_open_the_local_page_which_shows_the_title_as_text() {
    let h = harness().await;
    let id = h.session("B1", "<script>alert(1)</script> & Gong").await;
    let session = h.local.stub().session(&id).unwrap();
    assert_eq!(session["url"], format!("{}/checkout/{id}", h.base));
    assert_eq!(session["success_url"], format!("{}/payments/success?session_id={{CHECKOUT_SESSION_ID}}", h.base));
    assert_eq!(session["cancel_url"], format!("{}/payments/cancel", h.base));
    let (status, html, token) = h.page(&id).await;
    assert_eq!(status, 200);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Gong"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("15.00 EUR"));
    assert!(token.is_some_and(|t| t.len() >= 32));
    let (status, _, _) = h.page("cs_test_nope").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pays_pay_once_and_send_one_signed_completed_event() {
    let h = Arc::new(harness().await);
    let id = h.session("B2", "Sound Bath").await;
    let (_, _, token) = h.page(&id).await;
    let form = format!("csrf={}", token.unwrap());
    // All spawned before any is awaited: eight Pays in flight at once.
    let pays: Vec<_> = (0..8)
        .map(|_| {
            let (h, id, form) = (h.clone(), id.clone(), form.clone());
            tokio::spawn(async move {
                let resp = h.pay(&id, &form, Some(&h.base)).await;
                (resp.status().as_u16(), resp.headers().get("location").map(|l| l.to_str().unwrap().to_string()))
            })
        })
        .collect();
    let success = format!("{}/payments/success?session_id={id}", h.base);
    for pay in pays {
        assert_eq!(pay.await.unwrap(), (303, Some(success.clone())), "every Pay ends on success_url");
    }
    let deliveries = h.deliveries();
    let intents: Vec<&Value> = deliveries.iter().map(|e| &e["data"]["object"]["payment_intent"]).collect();
    assert_eq!(deliveries.len(), 1, "one payment and one checkout.session.completed for 8 Pays, got {intents:?}");
    let event = &deliveries[0];
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], "checkout.session.completed");
    let session = &event["data"]["object"];
    assert_eq!((session["id"].as_str(), session["status"].as_str()), (Some(id.as_str()), Some("complete")));
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(session["metadata"]["booking_id"], "B2");
    assert!(session["payment_intent"].as_str().is_some_and(|pi| pi.starts_with("pi_")));
    // The session as Stripe now reports it is the one the event carried.
    assert_eq!(&h.local.stub().session(&id).unwrap(), session);
    let page = http_client().get(&success).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Payment received") && page.contains("B2") && page.contains("200 "), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forms_from_elsewhere_and_closed_sessions_pay_nothing() {
    let h = harness().await;
    let id = h.session("B3", "Sound Bath").await;
    let (_, _, token) = h.page(&id).await;
    let form = format!("csrf={}", token.unwrap());
    assert_eq!(h.pay(&id, "csrf=guess", Some(&h.base)).await.status(), 403, "a wrong token");
    assert_eq!(h.pay(&id, "", None).await.status(), 403, "no token");
    assert_eq!(h.pay(&id, &form, Some("http://evil.example")).await.status(), 403, "another origin");
    let rebound = http_client()
        .post(format!("{}/checkout/{id}/pay", h.base))
        .header("host", "evil.example")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403, "a Host that is not this server's (DNS rebinding)");
    assert_eq!(h.local.stub().session(&id).unwrap()["status"], "open", "nothing paid");

    // Expired (a cancel, or its expires_at): nothing to pay, no event.
    h.local.stub().expire(&id);
    assert_eq!(h.pay(&id, &form, Some(&h.base)).await.status(), 409);
    let (status, html, token) = h.page(&id).await;
    assert_eq!(status, 200);
    assert!(html.contains("expired") && token.is_none(), "{html}");
    assert_eq!(h.pay("cs_test_nope", &form, Some(&h.base)).await.status(), 404);
    assert!(h.deliveries().is_empty());
    assert_eq!(h.local.stub().session(&id).unwrap()["payment_status"], "unpaid");
}

#[tokio::test]
async fn payments_local_is_the_only_mode_and_does_not_mix_with_real_stripe() {
    assert!(!local_requested(None).unwrap());
    assert!(!local_requested(Some(" ")).unwrap());
    assert!(local_requested(Some("local")).unwrap());
    assert!(matches!(local_requested(Some("stripe")), Err(CheckoutError::UnknownMode(_))));
    let addr = "127.0.0.1:3000".parse().unwrap();
    let key = |name: &str| (name == "STRIPE_SECRET_KEY").then(|| "sk_test_real".to_string());
    assert!(matches!(LocalCheckout::start(addr, key).await, Err(CheckoutError::Conflicting("STRIPE_SECRET_KEY"))));
}
