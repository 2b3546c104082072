//! A Stripe stand-in started in-process (by the tests, and by `make run PAYMENTS=local`): the
//! calls the service makes (`POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! `POST /v1/checkout/sessions/{id}/expire`, `POST /v1/refunds`), answered on a random loopback
//! port the way Stripe answers them, refusals included: [`rules`] holds each rule Stripe enforces
//! with the page of Stripe's documentation it comes from, and [`schema`] checks every form
//! against the request schemas of the operations called (`stripe-standin/openapi/requests.json`,
//! written from Stripe's API reference and compared with Stripe's published OpenAPI description).
//!
//! It records every request (method, path, `Idempotency-Key`, bearer key, form fields, the status
//! it answered) and has the controls a test needs: pay or expire a session as the payer or
//! Stripe's clock would, settle a pending refund, choose how the next refunds turn out, move
//! Stripe's clock, fail the next calls with 500, or stop accepting connections.
//!
//! Every response closes its connection, so "down" really means no request gets through: there
//! are no pooled connections left to reach the old server task.

pub mod rules;
pub mod schema;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The secret key the stand-in accepts (any `Bearer sk_test_…` works; this one is the default).
pub const STUB_SECRET_KEY: &str = "sk_test_stub_0123456789";

/// How far Stripe's clock runs ahead of ours by default, in seconds: enough to show that an
/// `expires_at` computed at exactly the 30-minute minimum from our clock is refused.
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 2;

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct StubRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// Form fields in order (Stripe's bracket notation, decoded).
    pub form: Vec<(String, String)>,
    /// The status the stand-in answered, and Stripe's error code or type when it refused.
    pub status: u16,
    pub error: Option<String>,
}

impl StubRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What the refunds created from now on report (Stripe: a refund is `pending` until the bank
/// confirms it, and may end `succeeded` or `failed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefundOutcome {
    /// `pending` until [`StripeStub::settle_refund`] moves it.
    #[default]
    Pending,
    /// `succeeded` at once.
    Succeeded,
    /// `failed` at once.
    Failed,
}

/// The first request of an `Idempotency-Key`: method, path, form, and its answer.
pub(crate) type Idempotent = (String, String, Vec<(String, String)>, (u16, Value));

#[derive(Default)]
pub(crate) struct State {
    pub(crate) sessions: HashMap<String, Value>,
    pub(crate) refunds: HashMap<String, Value>,
    /// `Idempotency-Key` → the first request's method, path and form, and its answer.
    pub(crate) idempotent: HashMap<String, Idempotent>,
    pub(crate) requests: Vec<StubRequest>,
    pub(crate) fail_next: u32,
    pub(crate) refund_outcome: RefundOutcome,
    pub(crate) clock_skew_secs: i64,
    /// Where sessions' `url` points, `{base}/{id}` (default: Stripe's hosted page).
    pub(crate) checkout_url_base: Option<String>,
    seq: u64,
}

impl State {
    pub(crate) fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_test_{:06}{}", self.seq, &ulid::Ulid::new().to_string()[16..])
    }

    /// Now on Stripe's clock (epoch seconds).
    pub(crate) fn stripe_now(&self) -> i64 {
        let ours = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        ours + self.clock_skew_secs
    }
}

pub struct StripeStub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl StripeStub {
    pub async fn start() -> StripeStub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Stripe stand-in");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let state = State { clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS, ..State::default() };
        let stub = StripeStub { addr, state: Arc::new(Mutex::new(state)), server: Mutex::new(None) };
        stub.serve(listener);
        stub
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let state = self.state.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let state = state.clone();
            async move { handle(&state, req).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.server.lock().unwrap() = Some(task);
    }

    /// `http://127.0.0.1:<port>`: the `STRIPE_API_BASE` of the client under test.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections (`true`: every call fails to connect) or serves again on the
    /// same port.
    pub async fn set_down(&self, down: bool) {
        let running = self.server.lock().unwrap().take();
        if let Some(task) = running {
            task.abort();
            let _ = task.await;
        }
        if !down {
            let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind the Stripe stand-in's port");
            self.serve(listener);
        }
    }

    /// The next `n` requests get a 500 `api_error` (recorded, nothing created).
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }

    /// How far Stripe's clock runs ahead of ours (negative: behind).
    pub fn set_clock_skew(&self, secs: i64) {
        self.state.lock().unwrap().clock_skew_secs = secs;
    }

    /// How the refunds created from now on turn out.
    pub fn refund_outcome(&self, outcome: RefundOutcome) {
        self.state.lock().unwrap().refund_outcome = outcome;
    }

    /// A pending refund ends (`succeeded` or `failed`, as the bank answers). Returns the refund
    /// as Stripe's `refund.updated` event carries it.
    pub fn settle_refund(&self, refund_id: &str, status: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        let r = state.refunds.get_mut(refund_id).expect("settle_refund: no such refund");
        r["status"] = json!(status);
        if status == "failed" {
            r["failure_reason"] = json!("expired_or_canceled_card");
        }
        r.clone()
    }

    pub fn requests(&self) -> Vec<StubRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests to `method` `path` (exact path).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<StubRequest> {
        self.requests().into_iter().filter(|r| r.method == method && r.path == path).collect()
    }

    /// Every request the stand-in refused with a 4xx: what real Stripe would have refused too.
    pub fn refused(&self) -> Vec<StubRequest> {
        self.requests().into_iter().filter(|r| (400..500).contains(&r.status)).collect()
    }

    pub fn session_creates(&self) -> Vec<StubRequest> {
        self.requests_to("POST", "/v1/checkout/sessions")
    }

    pub fn refund_requests(&self) -> Vec<StubRequest> {
        self.requests_to("POST", "/v1/refunds")
    }

    /// How many sessions exist (created once per `Idempotency-Key`).
    pub fn session_count(&self) -> usize {
        self.state.lock().unwrap().sessions.len()
    }

    pub fn refund_count(&self) -> usize {
        self.state.lock().unwrap().refunds.len()
    }

    pub fn session(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().sessions.get(id).cloned()
    }

    pub fn refund(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().refunds.get(id).cloned()
    }

    /// The session created for `booking_id` (its `metadata.booking_id`).
    pub fn session_for(&self, booking_id: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state.sessions.values().find(|s| s["metadata"]["booking_id"] == booking_id).cloned()
    }

    /// The payer completed the Checkout page: `complete`/`paid` with a new PaymentIntent. Returns
    /// the session as Stripe's `checkout.session.completed` event carries it.
    pub fn pay(&self, session_id: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        let pi = state.next_id("pi");
        let s = state.sessions.get_mut(session_id).expect("pay: no such session");
        s["status"] = json!("complete");
        s["payment_status"] = json!("paid");
        s["payment_intent"] = json!(pi);
        s.clone()
    }

    /// The session ended unpaid (its `expires_at` passed): as `checkout.session.expired` carries it.
    pub fn expire(&self, session_id: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        let s = state.sessions.get_mut(session_id).expect("expire: no such session");
        s["status"] = json!("expired");
        s.clone()
    }

    /// A session created on the same Stripe account by something else (a Payment Link, a
    /// pricing table, another integration), completed and paid: `fields` are merged into it
    /// (e.g. `client_reference_id` typed by the buyer, `metadata`). As its
    /// `checkout.session.completed` event carries it.
    pub fn foreign_paid_session(&self, amount: u64, currency: &str, fields: Value) -> Value {
        let mut state = self.state.lock().unwrap();
        let (id, pi) = (state.next_id("cs"), state.next_id("pi"));
        let mut session = json!({
            "id": id, "object": "checkout.session", "url": null, "status": "complete",
            "payment_status": "paid", "payment_intent": pi, "mode": "payment", "amount_total": amount,
            "currency": currency, "client_reference_id": null, "metadata": {}, "created": state.stripe_now(),
            "expires_at": state.stripe_now() + 86_400,
        });
        if let (Some(s), Some(extra)) = (session.as_object_mut(), fields.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        state.sessions.insert(id, session.clone());
        session
    }

    /// Sessions created from now on get `url` = `{base}/{id}` (`make run PAYMENTS=local` points
    /// it at the local server's checkout page) instead of Stripe's hosted page.
    pub fn set_checkout_url_base(&self, base: &str) {
        self.state.lock().unwrap().checkout_url_base = Some(base.trim_end_matches('/').to_string());
    }

    /// [`StripeStub::pay`], only for a session that still takes payment: `open` and before its
    /// `expires_at` on Stripe's clock (<https://docs.stripe.com/api/checkout/sessions/object#checkout_session_object-expires_at>).
    /// Checked and paid under one lock, so two payers cannot both pay it. `None`: nothing changed.
    pub fn pay_if_open(&self, session_id: &str) -> Option<Value> {
        let mut state = self.state.lock().unwrap();
        let now = state.stripe_now();
        let open = state
            .sessions
            .get(session_id)
            .is_some_and(|s| s["status"] == "open" && s["expires_at"].as_i64().is_some_and(|e| now < e));
        if !open {
            return None;
        }
        let pi = state.next_id("pi");
        let s = state.sessions.get_mut(session_id)?;
        s["status"] = json!("complete");
        s["payment_status"] = json!("paid");
        s["payment_intent"] = json!(pi);
        Some(s.clone())
    }
}

impl Drop for StripeStub {
    fn drop(&mut self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
        }
    }
}

async fn handle(state: &Mutex<State>, req: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut recorded = StubRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
        content_type: header("content-type"),
        form: url::form_urlencoded::parse(&bytes).into_owned().collect(),
        status: 0,
        error: None,
    };
    let (status, body) = rules::answer(&mut state.lock().unwrap(), &recorded);
    recorded.status = status;
    recorded.error = body["error"]["code"].as_str().or_else(|| body["error"]["type"].as_str()).map(str::to_string);
    state.lock().unwrap().requests.push(recorded);
    let mut resp = axum::response::Response::new(axum::body::Body::from(body.to_string()));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
    headers.insert("connection", http::HeaderValue::from_static("close"));
    headers.insert("request-id", http::HeaderValue::from_static("req_stub"));
    resp
}
