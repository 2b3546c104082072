//! `make run PAYMENTS=local`: paid bookings without a Stripe account or network. The strict Stripe
//! stand-in (crate `stripe-standin`, the one the payments tests use) runs in-process on its own
//! loopback port; the app's Stripe client calls it with a generated `sk_test_…` key, exactly as it
//! calls Stripe. Each Checkout Session's `url` (a booking's `checkout_url`) opens a page served
//! here, `GET /checkout/{session_id}`, standing for Stripe's hosted page:
//!
//! - **Pay** marks the session paid in the stand-in, as the payer completing Stripe's page would,
//!   then sends the `checkout.session.completed` event Stripe would send: the event JSON signed
//!   with the generated `whsec_…` secret over its exact bytes and POSTed over HTTP to this
//!   server's own `/payments/webhook`, so it goes through the same signature check and settlement
//!   as Stripe's. Then the browser goes to the session's `success_url`.
//! - **Cancel** goes back to the session's `cancel_url`, like Stripe's back link: the session stays
//!   open, and the hold ends at its `expires_at` (the sweep expires it), or at once with
//!   `DELETE /bookings/{id}`.
//!
//! It also serves the pages `PAYMENT_SUCCESS_URL` and `PAYMENT_CANCEL_URL` lead to by default
//! (`/payments/success`, `/payments/cancel`); deployed, those are the front end's. Nothing here is
//! built, routed or linked into a request unless `PAYMENTS=local`.

mod page;

pub use page::escape;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rand::Rng;
use serde_json::{json, Value};
use shared::https_client::reqwest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stripe_standin::StripeStub;

/// Why `PAYMENTS=local` cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("PAYMENTS={0:?}: the only value is `local` (or leave it unset to use STRIPE_SECRET_KEY, if any)")]
    UnknownMode(String),
    #[error("PAYMENTS=local runs its own Stripe stand-in and keys: unset {0}, or unset PAYMENTS to use real Stripe")]
    Conflicting(&'static str),
    #[error(transparent)]
    Config(#[from] shared::error::Error),
    #[error("the webhook's HTTP client: {0}")]
    HttpClient(#[from] shared::https_client::Error),
}

/// `PAYMENTS` (blank counts as unset): `true` for `local`.
pub fn local_requested(value: Option<&str>) -> Result<bool, CheckoutError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("local") => Ok(true),
        Some(v) => Err(CheckoutError::UnknownMode(v.to_string())),
    }
}

/// The stand-in, the secrets generated for it, and what the checkout pages need.
pub struct LocalCheckout {
    stub: StripeStub,
    /// `http://127.0.0.1:<port>`: this server, where the webhook goes.
    own: String,
    /// The `Host` values a checkout form may be posted to (loopback only: a DNS-rebinding page
    /// names its own host).
    hosts: [String; 2],
    webhook_secret: String,
    /// The token every checkout form carries: a page of another origin cannot read it.
    csrf: String,
    http: reqwest::Client,
    /// Session id → how `/payments/webhook` answered its `checkout.session.completed`.
    webhooks: Mutex<HashMap<String, String>>,
}

fn random(n: usize) -> String {
    rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(n).map(char::from).collect()
}

impl LocalCheckout {
    /// Starts the stand-in and returns the Stripe client pointed at it. `addr` is where this
    /// server listens; `var` reads the environment (`PAYMENT_SUCCESS_URL`/`PAYMENT_CANCEL_URL`
    /// still apply, and the variables of real Stripe are refused rather than silently ignored).
    pub async fn start(
        addr: SocketAddr,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(Arc<LocalCheckout>, payments::StripeClient), CheckoutError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        for name in ["STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"] {
            if var(name).is_some() {
                return Err(CheckoutError::Conflicting(name));
            }
        }
        let own = format!("http://{addr}");
        let stub = StripeStub::start().await;
        stub.set_checkout_url_base(&format!("{own}/checkout"));
        let (key, api) = (format!("sk_test_local_{}", random(24)), stub.url());
        let success = format!("{own}/payments/success?session_id={{CHECKOUT_SESSION_ID}}");
        let cancel = format!("{own}/payments/cancel");
        let config = payments::StripeConfig::from_lookup(|name| match name {
            "STRIPE_SECRET_KEY" => Some(key.clone()),
            "STRIPE_API_BASE" => Some(api.clone()),
            "PAYMENT_SUCCESS_URL" => var(name).or_else(|| Some(success.clone())),
            "PAYMENT_CANCEL_URL" => var(name).or_else(|| Some(cancel.clone())),
            _ => var(name),
        })?
        .ok_or(shared::error::Error::Config("the local Stripe key was not taken".into()))?;
        let http = shared::https_client::https_client(Duration::from_secs(2), Duration::from_secs(10))?;
        let port = addr.port();
        let local = LocalCheckout {
            stub,
            own,
            hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            webhook_secret: format!("whsec_{}", random(32)),
            csrf: random(32),
            http,
            webhooks: Mutex::new(HashMap::new()),
        };
        Ok((Arc::new(local), payments::StripeClient::new(config)))
    }

    /// The `STRIPE_WEBHOOK_SECRET` of this run: the app's webhook checks it.
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// The stand-in itself (its sessions, requests and controls).
    pub fn stub(&self) -> &StripeStub {
        &self.stub
    }

    /// The checkout and return pages, to merge into the API router (no API route has these paths
    /// but `/payments/…`, where only `/payments/webhook` is routed).
    pub fn routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/checkout/{id}", get(show))
            .route("/checkout/{id}/pay", post(pay))
            .route("/payments/success", get(success))
            .route("/payments/cancel", get(|| async { html(StatusCode::OK, page::cancelled()) }))
            .with_state(self.clone())
    }

    /// The product name Stripe was given for this session (Stripe's page shows it; the session
    /// object does not carry its line items).
    fn product(&self, session: &Value) -> String {
        let booking = session["metadata"]["booking_id"].as_str().unwrap_or_default();
        self.stub
            .session_creates()
            .into_iter()
            .rev()
            .find(|r| r.status == 200 && r.field("metadata[booking_id]") == Some(booking))
            .and_then(|r| r.field("line_items[0][price_data][product_data][name]").map(str::to_string))
            .unwrap_or_default()
    }

    /// A checkout form may only come from this server's own page: a loopback `Host`, a same-origin
    /// `Origin` and `Sec-Fetch-Site` where the browser sends them, and this run's token.
    fn check_form(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), &'static str> {
        let value = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let host = value(header::HOST).filter(|h| self.hosts.iter().any(|ours| ours == h)).ok_or("unexpected Host")?;
        if value(header::ORIGIN).is_some_and(|o| o != format!("http://{host}")) {
            return Err("cross-origin form");
        }
        if headers.get("sec-fetch-site").is_some_and(|v| v != "same-origin") {
            return Err("cross-site form");
        }
        let token = url::form_urlencoded::parse(body).find(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned());
        match token {
            // Compared without an early exit, so timing says nothing about a wrong guess.
            Some(t)
                if t.len() == self.csrf.len()
                    && t.bytes().zip(self.csrf.bytes()).fold(0, |a, (x, y)| a | (x ^ y)) == 0 =>
            {
                Ok(())
            }
            _ => Err("missing or wrong form token"),
        }
    }

    /// The `checkout.session.completed` event Stripe would send for a paid session, signed and
    /// POSTed to this server's own webhook. Returns how the webhook answered.
    async fn send_completed(&self, session: &Value) -> String {
        let now = shared::time::now().timestamp();
        // Stripe's event object <https://docs.stripe.com/api/events/object>.
        let event = json!({
            "id": format!("evt_local_{}", random(24)),
            "object": "event",
            "type": "checkout.session.completed",
            "created": now,
            "livemode": false,
            "pending_webhooks": 1,
            "data": { "object": session },
        });
        let body = event.to_string().into_bytes();
        let signature = shared::payments::sign(&body, &self.webhook_secret, now);
        let sent = self
            .http
            .post(format!("{}/payments/webhook", self.own))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                format!("{status} {}", text.chars().take(300).collect::<String>())
            }
            Err(e) => format!("not delivered ({e}); the payment sweep settles the booking at its expires_at"),
        }
    }
}

async fn show(State(c): State<Arc<LocalCheckout>>, Path(id): Path<String>) -> Response {
    let Some(session) = c.stub.session(&id) else {
        return html(StatusCode::NOT_FOUND, page::not_found());
    };
    let product = c.product(&session);
    let now = shared::time::now().timestamp();
    if session["status"] == "open" && session["expires_at"].as_i64().is_some_and(|e| now < e) {
        html(StatusCode::OK, page::checkout(&session, &product, &c.csrf))
    } else {
        html(StatusCode::OK, page::closed(&session, &product))
    }
}

/// Pays an open session once: a second Pay (or a replayed form) finds it `complete`, sends no
/// second webhook and just goes to `success_url` again.
async fn pay(State(c): State<Arc<LocalCheckout>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(why) = c.check_form(&headers, &body) {
        tracing::warn!(session_id = %id, why, "local checkout: Pay refused");
        return html(StatusCode::FORBIDDEN, page::layout("Refused", &format!("<h1>Refused</h1><p>{why}</p>")));
    }
    let session = match c.stub.pay_if_open(&id) {
        Some(paid) => {
            let answer = c.send_completed(&paid).await;
            tracing::info!(session_id = %id, webhook = %answer, "local checkout: paid, checkout.session.completed sent");
            c.webhooks.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), answer);
            paid
        }
        None => match c.stub.session(&id) {
            Some(s) if s["status"] == "complete" => s,
            Some(s) => return html(StatusCode::CONFLICT, page::closed(&s, &c.product(&s))),
            None => return html(StatusCode::NOT_FOUND, page::not_found()),
        },
    };
    match session["success_url"].as_str() {
        Some(url) => see_other(&url.replace("{CHECKOUT_SESSION_ID}", &id)),
        None => html(StatusCode::OK, page::success(Some(&session), None)),
    }
}

async fn success(State(c): State<Arc<LocalCheckout>>, uri: http::Uri) -> Response {
    let id = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "session_id")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let session = c.stub.session(&id);
    let webhook = c.webhooks.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
    html(StatusCode::OK, page::success(session.as_ref(), webhook.as_deref()))
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => html(StatusCode::OK, page::success(None, None)),
    }
}

/// An HTML answer that nothing else may frame, sniff, cache or run script in.
fn html(status: StatusCode, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not `no-referrer`: with it a browser sends `Origin: null` on the Pay form.
        (header::REFERRER_POLICY, "same-origin"),
    ];
    (status, headers, body).into_response()
}
