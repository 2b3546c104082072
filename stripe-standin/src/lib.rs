//! A Stripe stand-in started in-process (by the tests, and by `make run PAYMENTS=local`): the four calls the service makes
//! (`POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! `POST /v1/checkout/sessions/{id}/expire`, `POST /v1/refunds`), answered the way Stripe documents
//! them, on a random loopback port. It records every request (method, path, `Idempotency-Key`,
//! bearer key, form fields) and has controls a test needs: pay or expire a session as the payer or
//! Stripe's clock would, fail the next calls with 500, or stop accepting connections.
//!
//! Like Stripe, a request repeated with an `Idempotency-Key` seen before gets the first answer
//! again and creates nothing; expiring a session that is not `open` is a 400; a payment refunded
//! once refuses a second refund under another key (`charge_already_refunded`).
//!
//! Every response closes its connection, so "down" really means no request gets through: there
//! are no pooled connections left to reach the old server task.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The secret key the stub accepts (any `Bearer sk_test_…` works; this one is the default).
pub const STUB_SECRET_KEY: &str = "sk_test_stub_0123456789";

/// One request as the stub received it.
#[derive(Clone, Debug)]
pub struct StubRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// Form fields in order (Stripe's bracket notation, decoded).
    pub form: Vec<(String, String)>,
    /// The status the stub answered.
    pub status: u16,
}

impl StubRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Value>,
    refunds: HashMap<String, Value>,
    /// `Idempotency-Key` → the first answer (status, body).
    idempotent: HashMap<String, (u16, Value)>,
    /// payment_intent → refund id.
    refunded: HashMap<String, String>,
    requests: Vec<StubRequest>,
    fail_next: u32,
    seq: u64,
}

impl State {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_test_{:06}{}", self.seq, &ulid::Ulid::new().to_string()[16..])
    }
}

pub struct StripeStub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl StripeStub {
    pub async fn start() -> StripeStub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Stripe stub");
        let addr = listener.local_addr().unwrap();
        let stub = StripeStub { addr, state: Arc::default(), server: Mutex::new(None) };
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
            let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind the Stripe stub's port");
            self.serve(listener);
        }
    }

    /// The next `n` requests get a 500 `api_error` (recorded, nothing created).
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }

    pub fn requests(&self) -> Vec<StubRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests to `method` `path` (exact path).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<StubRequest> {
        self.requests().into_iter().filter(|r| r.method == method && r.path == path).collect()
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

    /// The session created for `booking_id` (its `client_reference_id`).
    pub fn session_for(&self, booking_id: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state.sessions.values().find(|s| s["client_reference_id"] == booking_id).cloned()
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
}

impl Drop for StripeStub {
    fn drop(&mut self) {
        if let Some(task) = self.server.lock().unwrap().take() {
            task.abort();
        }
    }
}

fn stripe_error(status: u16, kind: &str, code: Option<&str>, message: &str) -> (u16, Value) {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    (status, json!({ "error": error }))
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
    };
    let (status, body) = answer(&mut state.lock().unwrap(), &recorded);
    recorded.status = status;
    state.lock().unwrap().requests.push(recorded);
    let mut resp = axum::response::Response::new(axum::body::Body::from(body.to_string()));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
    let headers = resp.headers_mut();
    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
    headers.insert("connection", http::HeaderValue::from_static("close"));
    headers.insert("request-id", http::HeaderValue::from_static("req_stub"));
    resp
}

fn answer(state: &mut State, req: &StubRequest) -> (u16, Value) {
    if !req.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer sk_test_")) {
        return stripe_error(401, "invalid_request_error", None, "Invalid API Key provided");
    }
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return stripe_error(500, "api_error", None, "An unknown error occurred");
    }
    let replay_key = req.idempotency_key.as_ref().filter(|_| req.method == "POST");
    if let Some(first) = replay_key.and_then(|k| state.idempotent.get(k)) {
        return first.clone();
    }
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let answer = match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "checkout", "sessions"]) => create_session(state, req),
        ("GET", ["v1", "checkout", "sessions", id]) => match state.sessions.get(*id) {
            Some(s) => (200, s.clone()),
            None => missing(id),
        },
        ("POST", ["v1", "checkout", "sessions", id, "expire"]) => match state.sessions.get_mut(*id) {
            Some(s) if s["status"] == "open" => {
                s["status"] = json!("expired");
                (200, s.clone())
            }
            Some(s) => stripe_error(
                400,
                "invalid_request_error",
                None,
                &format!(
                    "Only Checkout Sessions with a status in [\"open\"] can be expired (status: {}).",
                    s["status"]
                ),
            ),
            None => missing(id),
        },
        ("POST", ["v1", "refunds"]) => create_refund(state, req),
        _ => stripe_error(404, "invalid_request_error", None, "Unrecognized request URL"),
    };
    if let Some(key) = replay_key {
        // Stripe keeps the first answer of a key, errors included (500s excepted).
        state.idempotent.insert(key.clone(), answer.clone());
    }
    answer
}

fn missing(id: &str) -> (u16, Value) {
    stripe_error(404, "invalid_request_error", Some("resource_missing"), &format!("No such checkout.session: '{id}'"))
}

fn create_session(state: &mut State, req: &StubRequest) -> (u16, Value) {
    for required in
        ["mode", "success_url", "line_items[0][price_data][currency]", "line_items[0][price_data][unit_amount]"]
    {
        if req.field(required).is_none() {
            return stripe_error(
                400,
                "invalid_request_error",
                Some("parameter_missing"),
                &format!("Missing required param: {required}."),
            );
        }
    }
    let amount: u64 = req.field("line_items[0][price_data][unit_amount]").and_then(|a| a.parse().ok()).unwrap_or(0);
    let expires_at: i64 = req.field("expires_at").and_then(|e| e.parse().ok()).unwrap_or(0);
    let id = state.next_id("cs");
    let booking = req.field("metadata[booking_id]").unwrap_or_default();
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "url": format!("https://checkout.stripe.com/c/pay/{id}"),
        "status": "open",
        "payment_status": "unpaid",
        "payment_intent": null,
        "mode": req.field("mode"),
        "amount_total": amount,
        "currency": req.field("line_items[0][price_data][currency]"),
        "customer_email": req.field("customer_email"),
        "client_reference_id": req.field("client_reference_id"),
        "metadata": {"booking_id": booking},
        "expires_at": expires_at,
        "success_url": req.field("success_url"),
        "cancel_url": req.field("cancel_url"),
    });
    state.sessions.insert(id, session.clone());
    (200, session)
}

fn create_refund(state: &mut State, req: &StubRequest) -> (u16, Value) {
    let Some(pi) = req.field("payment_intent").map(str::to_string) else {
        return stripe_error(400, "invalid_request_error", Some("parameter_missing"), "Missing payment_intent.");
    };
    let paid = state.sessions.values().find(|s| s["payment_intent"] == pi.as_str()).cloned();
    let Some(session) = paid else {
        return stripe_error(
            400,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such payment_intent: '{pi}'"),
        );
    };
    if state.refunded.contains_key(&pi) {
        return stripe_error(400, "invalid_request_error", Some("charge_already_refunded"), "Already refunded.");
    }
    let id = state.next_id("re");
    let refund = json!({
        "id": id,
        "object": "refund",
        "amount": session["amount_total"],
        "currency": session["currency"],
        "payment_intent": pi,
        "status": "succeeded",
        "metadata": {"booking_id": req.field("metadata[booking_id]")},
    });
    state.refunded.insert(pi, id.clone());
    state.refunds.insert(id, refund.clone());
    (200, refund)
}
