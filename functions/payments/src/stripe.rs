//! The Stripe adapter of [`PaymentProvider`]: Checkout Sessions and refunds over Stripe's REST API
//! with plain reqwest + serde, form-encoded bodies in Stripe's bracket notation.
//!
//! Every call has a connect timeout (3 s) and a whole-request timeout (10 s), follows no redirect,
//! and maps every failure (unreachable, timeout, any non-2xx, an answer that does not parse) to
//! [`Error::PaymentProviderUnavailable`]. Its detail and the logs name Stripe's error `type`,
//! `code` and `param` and the `Request-Id`, never the secret key (it only travels in the
//! `Authorization` header) nor Stripe's free-text message (which may quote a masked key).
//!
//! The HTTP client is built on first use, not at init: most invocations of the functions that
//! hold a `StripeClient` (free bookings, webhooks) never call Stripe, and a cold start should not
//! pay for a TLS setup it does not use.

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use shared::error::{Error, Result};
use shared::https_client::reqwest::{self, Method, StatusCode};
use shared::payments::{CheckoutAnswer, CheckoutRequest, CheckoutSession, PaymentProvider, Refund};
use std::sync::OnceLock;
use std::time::Duration;

pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// Where Stripe sends the payer after paying; Stripe replaces `{CHECKOUT_SESSION_ID}` with the
/// session's id.
pub const DEFAULT_SUCCESS_URL: &str = "http://localhost:3000/payments/success?session_id={CHECKOUT_SESSION_ID}";
/// Where the payer goes when leaving the Checkout page without paying.
pub const DEFAULT_CANCEL_URL: &str = "http://localhost:3000/payments/cancel";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach Stripe. `Debug` never shows the secret key.
#[derive(Clone)]
pub struct StripeConfig {
    /// `STRIPE_SECRET_KEY` (`sk_…` or a restricted `rk_…`): the bearer token of every call.
    pub secret_key: String,
    /// `STRIPE_API_BASE`, without a trailing slash (tests point it at a stub).
    pub api_base: String,
    /// `PAYMENT_SUCCESS_URL` and `PAYMENT_CANCEL_URL` of every Checkout Session.
    pub success_url: String,
    pub cancel_url: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"<redacted>")
            .field("api_base", &self.api_base)
            .field("success_url", &self.success_url)
            .field("cancel_url", &self.cancel_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl StripeConfig {
    /// A configuration with the defaults for everything but the key.
    pub fn new(secret_key: impl Into<String>) -> Self {
        StripeConfig {
            secret_key: secret_key.into(),
            api_base: DEFAULT_API_BASE.into(),
            success_url: DEFAULT_SUCCESS_URL.into(),
            cancel_url: DEFAULT_CANCEL_URL.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// From the environment; `None` when `STRIPE_SECRET_KEY` is not set (payments off).
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any variable lookup (tests pass a map). Blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(key) = var("STRIPE_SECRET_KEY") else {
            return Ok(None);
        };
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Config("STRIPE_SECRET_KEY has characters no API key has".into()));
        }
        let mut config = StripeConfig::new(key);
        if let Some(base) = var("STRIPE_API_BASE") {
            let parsed = base.parse::<reqwest::Url>();
            if !matches!(parsed.as_ref().map(|u| u.scheme()), Ok("https" | "http")) {
                return Err(Error::Config("STRIPE_API_BASE must be an http(s) URL".into()));
            }
            config.api_base = base.trim_end_matches('/').to_string();
        }
        for (name, slot) in
            [("PAYMENT_SUCCESS_URL", &mut config.success_url), ("PAYMENT_CANCEL_URL", &mut config.cancel_url)]
        {
            if let Some(url) = var(name) {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    return Err(Error::Config(format!("{name} must be an http(s) URL")));
                }
                *slot = url;
            }
        }
        Ok(Some(config))
    }
}

/// Stripe's REST API as a [`PaymentProvider`]. Build one per process and share it.
pub struct StripeClient {
    config: StripeConfig,
    http: OnceLock<reqwest::Client>,
}

/// Stripe's error body: `{"error": {"type", "code", "param", "message", …}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Default, Deserialize)]
struct StripeError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

/// A non-2xx answer, kept apart from transport failures so `expire` can tell them apart.
enum CallError {
    /// Stripe answered with this status (and error type, where it sent one).
    Refused {
        status: StatusCode,
        kind: Option<String>,
        /// The parameter Stripe blamed, when it named one.
        param: Option<String>,
    },
    Failed(Error),
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Error {
        match e {
            CallError::Refused { status, kind, .. } => Error::PaymentProviderUnavailable(format!(
                "Stripe answered {} ({})",
                status.as_u16(),
                kind.as_deref().unwrap_or("no error type")
            )),
            CallError::Failed(e) => e,
        }
    }
}

impl StripeClient {
    pub fn new(config: StripeConfig) -> Self {
        StripeClient { config, http: OnceLock::new() }
    }

    /// `None` when `STRIPE_SECRET_KEY` is not set.
    pub fn from_env() -> Result<Option<Self>> {
        Ok(StripeConfig::from_env()?.map(StripeClient::new))
    }

    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    fn http(&self) -> Result<&reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = shared::https_client::https_client_builder(self.config.connect_timeout, self.config.timeout)
            .and_then(|b| Ok(b.redirect(reqwest::redirect::Policy::none()).build()?))
            .map_err(|e| Error::PaymentProviderUnavailable(format!("HTTP client: {e}")))?;
        // A concurrent first call may have won; either client is as good.
        Ok(self.http.get_or_init(|| client))
    }

    /// One call: bearer auth, form body for POSTs, `Idempotency-Key` when given.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> std::result::Result<T, CallError> {
        let op = format!("{method} {}", redact_ids(path));
        let url = format!("{}{path}", self.config.api_base);
        let mut req =
            self.http().map_err(CallError::Failed)?.request(method.clone(), url).bearer_auth(&self.config.secret_key);
        if method == Method::POST {
            req = req.form(form);
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let resp = req.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            tracing::warn!(stripe_call = %op, error = %e.without_url(), "Stripe unreachable");
            CallError::Failed(Error::PaymentProviderUnavailable(format!("Stripe {why}: {op}")))
        })?;
        let status = resp.status();
        let request_id = resp.headers().get("request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let body = resp.bytes().await.map_err(|e| {
            tracing::warn!(stripe_call = %op, error = %e.without_url(), "Stripe answer not read");
            CallError::Failed(Error::PaymentProviderUnavailable(format!("Stripe answer not read: {op}")))
        })?;
        if !status.is_success() {
            let err = serde_json::from_slice::<ErrorBody>(&body).map(|b| b.error).unwrap_or_default();
            tracing::warn!(
                stripe_call = %op,
                status = status.as_u16(),
                error_type = err.kind.as_deref().unwrap_or("-"),
                error_code = err.code.as_deref().unwrap_or("-"),
                param = err.param.as_deref().unwrap_or("-"),
                %request_id,
                "Stripe refused"
            );
            return Err(CallError::Refused { status, kind: err.kind, param: err.param });
        }
        serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(stripe_call = %op, %request_id, error = %e, "Stripe answer not understood");
            CallError::Failed(Error::PaymentProviderUnavailable(format!("Stripe answer not understood: {op}")))
        })
    }

    async fn create(&self, req: &CheckoutRequest<'_>) -> Result<CheckoutSession> {
        match self.create_or_refusal(req).await? {
            CheckoutAnswer::Created(session) => Ok(*session),
            CheckoutAnswer::Refused { param } => Err(Error::PaymentProviderUnavailable(format!(
                "Stripe answered 400 (invalid_request_error, param {})",
                param.as_deref().unwrap_or("-")
            ))),
        }
    }

    /// A 400 is Stripe refusing these parameters (schema, `expires_at` window, minimum charge, an
    /// `Idempotency-Key` first used with others): the same request would be refused again. Every
    /// other failure (401, 409 from a concurrent request with the key, 429, 5xx, the network)
    /// may pass later.
    async fn create_or_refusal(&self, req: &CheckoutRequest<'_>) -> Result<CheckoutAnswer> {
        let form = checkout_form(req, &self.config);
        match self.call::<CheckoutSession>(Method::POST, "/v1/checkout/sessions", &form, Some(req.booking_id)).await {
            Ok(session) => {
                tracing::info!(booking_id = %req.booking_id, session_id = %session.id, "Checkout Session created");
                Ok(CheckoutAnswer::Created(Box::new(session)))
            }
            Err(CallError::Refused { status, param, .. }) if status == StatusCode::BAD_REQUEST => {
                Ok(CheckoutAnswer::Refused { param })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn retrieve(&self, session_id: &str) -> Result<CheckoutSession> {
        let path = format!("/v1/checkout/sessions/{}", path_id(session_id)?);
        Ok(self.call(Method::GET, &path, &[], None).await?)
    }

    async fn expire(&self, session_id: &str) -> Result<CheckoutSession> {
        let path = format!("/v1/checkout/sessions/{}/expire", path_id(session_id)?);
        match self.call::<CheckoutSession>(Method::POST, &path, &[], None).await {
            Ok(session) => Ok(session),
            // Stripe expires only open sessions (400 otherwise): one that completed or expired
            // meanwhile is returned as it is, so the caller learns whether it was paid.
            Err(CallError::Refused { status, .. }) if status == StatusCode::BAD_REQUEST => {
                let session = self.retrieve(session_id).await?;
                if session.status.as_deref() == Some("open") {
                    return Err(Error::PaymentProviderUnavailable("Stripe refused to expire an open session".into()));
                }
                Ok(session)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn refund_intent(&self, payment_intent: &str, booking_id: &str) -> Result<Refund> {
        let form = [("payment_intent", payment_intent.to_string()), ("metadata[booking_id]", booking_id.to_string())];
        let key = format!("refund-{booking_id}");
        Ok(self.call(Method::POST, "/v1/refunds", &form, Some(&key)).await?)
    }
}

impl PaymentProvider for StripeClient {
    fn create_checkout<'a>(&'a self, req: &'a CheckoutRequest<'a>) -> BoxFuture<'a, Result<CheckoutSession>> {
        self.create(req).boxed()
    }

    fn create_checkout_or_refusal<'a>(&'a self, req: &'a CheckoutRequest<'a>) -> BoxFuture<'a, Result<CheckoutAnswer>> {
        self.create_or_refusal(req).boxed()
    }

    fn retrieve_checkout<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<CheckoutSession>> {
        self.retrieve(session_id).boxed()
    }

    fn expire_checkout<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<CheckoutSession>> {
        self.expire(session_id).boxed()
    }

    fn refund<'a>(&'a self, payment_intent: &'a str, booking_id: &'a str) -> BoxFuture<'a, Result<Refund>> {
        self.refund_intent(payment_intent, booking_id).boxed()
    }
}

/// The form of `POST /v1/checkout/sessions` for one booking, in Stripe's bracket notation.
pub fn checkout_form(req: &CheckoutRequest<'_>, config: &StripeConfig) -> Vec<(&'static str, String)> {
    vec![
        ("mode", "payment".into()),
        ("line_items[0][price_data][currency]", req.currency.into()),
        ("line_items[0][price_data][unit_amount]", req.amount.to_string()),
        ("line_items[0][price_data][product_data][name]", req.description.into()),
        ("line_items[0][quantity]", "1".into()),
        ("client_reference_id", req.booking_id.into()),
        ("metadata[booking_id]", req.booking_id.into()),
        ("customer_email", req.customer_email.into()),
        ("expires_at", req.expires_at.timestamp().to_string()),
        ("success_url", config.success_url.clone()),
        ("cancel_url", config.cancel_url.clone()),
    ]
}

/// A Stripe id as a path segment: ids are `[A-Za-z0-9_]`; anything else would change the path.
fn path_id(id: &str) -> Result<&str> {
    if !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(Error::PaymentProviderUnavailable("not a Stripe id".into()))
    }
}

/// The path with its Stripe ids replaced by `{id}`: log lines that group by operation.
fn redact_ids(path: &str) -> String {
    path.split('/').map(|s| if s.contains('_') && s.len() > 8 { "{id}" } else { s }).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn configuration_reads_the_environment_and_hides_the_key() {
        let vars = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            move |name: &str| map.get(name).cloned()
        };
        assert!(StripeConfig::from_lookup(vars(&[])).unwrap().is_none());
        assert!(StripeConfig::from_lookup(vars(&[("STRIPE_SECRET_KEY", "  ")])).unwrap().is_none());
        let c = StripeConfig::from_lookup(vars(&[("STRIPE_SECRET_KEY", "sk_test_123")])).unwrap().unwrap();
        assert_eq!((c.api_base.as_str(), c.success_url.as_str()), (DEFAULT_API_BASE, DEFAULT_SUCCESS_URL));
        assert!(!format!("{c:?}").contains("sk_test_123"));
        let c = StripeConfig::from_lookup(vars(&[
            ("STRIPE_SECRET_KEY", "sk_test_123"),
            ("STRIPE_API_BASE", "http://127.0.0.1:9999/"),
            ("PAYMENT_SUCCESS_URL", "https://app.example.com/paid?s={CHECKOUT_SESSION_ID}"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.api_base, "http://127.0.0.1:9999");
        assert_eq!(c.success_url, "https://app.example.com/paid?s={CHECKOUT_SESSION_ID}");
        assert_eq!(c.cancel_url, DEFAULT_CANCEL_URL);
        for bad in [("STRIPE_API_BASE", "ftp://x"), ("STRIPE_API_BASE", "nope"), ("PAYMENT_CANCEL_URL", "/relative")] {
            let e = StripeConfig::from_lookup(vars(&[("STRIPE_SECRET_KEY", "sk_test_123"), bad])).unwrap_err();
            assert_eq!(e.code(), "internal", "{bad:?}");
        }
    }

    #[test]
    fn ids_in_paths_are_plain_stripe_ids() {
        assert_eq!(path_id("cs_test_a1B2").unwrap(), "cs_test_a1B2");
        for bad in ["", "cs/../x", "cs?x=1", "cs test", "cs%2F"] {
            assert!(path_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(redact_ids("/v1/checkout/sessions/cs_test_a1B2c3/expire"), "/v1/checkout/sessions/{id}/expire");
    }
}
