//! The CRM webhook on the wire: the payload of docs/api.md ("CRM webhook") and one HTTP client that classifies every
//! answer as delivered, worth retrying, or final.

use crate::config::CrmConfig;
use crate::error::{Error, Result};
use crate::signing::SigningKey;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{redirect, StatusCode, Url};
use serde::Serialize;
use shared::https_client::https_client_builder;
use shared::model::{Booking, CancelReason, Delivery, FailureKind, MessageKind};
use shared::time::{self, Timestamp};
use std::sync::OnceLock;
use std::time::Duration;

const USER_AGENT: &str = concat!("ahoum-crm-notifier/", env!("CARGO_PKG_VERSION"));

/// The body of the POST, exactly the fields of docs/api.md "CRM webhook": `type` and the v2
/// fields in every message; a paid booking's also carries `amount` (minor units) and `currency`,
/// the price it was paid at (a free booking's has neither key, so its `booking.confirmed` is the
/// v2 payload plus `type`). `booking.rescheduled` adds `previous_event_datetime`;
/// `booking.cancelled` adds `reason`, `cancelled_at` and, when paid, `refund_status`. A booking
/// made by a waitlist promotion: its `booking.confirmed` adds `"via": "waitlist"`; a priced one's
/// `booking.offered` adds `checkout_url` and `expires_at` (the end of the offer), and its
/// `booking.expired` adds `expires_at`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookPayload<'a> {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub booking_id: &'a str,
    pub user: WebhookUser<'a>,
    pub event_id: &'a str,
    pub facilitator_id: &'a str,
    pub event_title: &'a str,
    pub event_datetime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_event_datetime: Option<String>,
    pub booked_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<CancelReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkout_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `via` of a promoted booking's `booking.confirmed`.
pub const VIA_WAITLIST: &str = "waitlist";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

impl<'a> WebhookPayload<'a> {
    /// `booking.confirmed` built from the booking alone: its event snapshot keeps title and time
    /// as they were booked.
    pub fn from_booking(b: &'a Booking) -> Self {
        WebhookPayload { via: b.via_waitlist.then_some(VIA_WAITLIST), ..Self::common(b) }
    }

    /// The fields every message of `b` carries (its `booking.confirmed` without `via`).
    fn common(b: &'a Booking) -> Self {
        WebhookPayload {
            event_type: MessageKind::Confirmed.event_type(),
            booking_id: &b.id,
            user: WebhookUser { name: &b.user_name, email: &b.user_email },
            event_id: &b.event_id,
            facilitator_id: &b.event.facilitator_id,
            event_title: &b.event.title,
            event_datetime: time::format(&b.event.datetime),
            previous_event_datetime: None,
            booked_at: time::format(&b.created_at),
            amount: b.payment.as_ref().map(|p| p.amount),
            currency: b.payment.as_ref().map(|p| p.currency.as_str()),
            reason: None,
            cancelled_at: None,
            refund_status: None,
            via: None,
            checkout_url: None,
            expires_at: None,
        }
    }

    /// The payload of `message`, the booking as it is when sent (a cancellation's refund status
    /// included), with the event's start as of that message (`event_datetime`).
    pub fn of_message(b: &'a Booking, message: &Delivery, event_datetime: Timestamp) -> Self {
        let base = match message.kind {
            MessageKind::Confirmed => WebhookPayload::from_booking(b),
            _ => WebhookPayload::common(b),
        };
        let mut payload = WebhookPayload {
            event_type: message.kind.event_type(),
            event_datetime: time::format(&event_datetime),
            ..base
        };
        let expires_at = b.payment.as_ref().map(|p| time::format(&p.expires_at));
        match message.kind {
            MessageKind::Rescheduled => {
                payload.previous_event_datetime = message.previous_event_datetime.as_ref().map(time::format);
            }
            MessageKind::Cancelled => {
                payload.reason = b.cancel_reason;
                payload.cancelled_at = b.cancelled_at.as_ref().map(time::format);
                payload.refund_status = b.payment.as_ref().and_then(|p| p.refund_status.as_deref());
            }
            MessageKind::Offered => {
                payload.checkout_url = b.payment.as_ref().and_then(|p| p.checkout_url.as_deref());
                payload.expires_at = expires_at;
            }
            MessageKind::Expired => payload.expires_at = expires_at,
            MessageKind::Confirmed => {}
        }
        payload
    }
}

/// What one POST achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx.
    Delivered { status: u16 },
    /// Timeout, connection failure, 408, 429 or 5xx: the CRM may accept it later. `failure` is
    /// what the delivery record keeps; `detail` (the client's error chain) is for the log only;
    /// `retry_after` is the `Retry-After` of a 429 or 503.
    Retryable { status: Option<u16>, failure: FailureKind, detail: String, retry_after: Option<RetryAfter> },
    /// Any other answer (4xx, and 3xx since redirects are not followed): resending cannot help.
    Permanent { status: u16 },
}

/// A `Retry-After` header (RFC 9110 §10.2.3): a number of seconds, or an HTTP date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    Delay(Duration),
    At(DateTime<Utc>),
}

impl RetryAfter {
    /// `None` for anything else (the header is then ignored and the backoff applies).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return Some(RetryAfter::Delay(Duration::from_secs(value.parse().unwrap_or(u64::MAX))));
        }
        // IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) is an RFC 2822 date.
        DateTime::parse_from_rfc2822(value).ok().map(|t| RetryAfter::At(t.with_timezone(&Utc)))
    }

    /// How long to wait from `now`: zero for a date in the past.
    pub fn delay_from(&self, now: DateTime<Utc>) -> Duration {
        match self {
            RetryAfter::Delay(d) => *d,
            RetryAfter::At(t) => (*t - now).to_std().unwrap_or(Duration::ZERO),
        }
    }
}

impl SendOutcome {
    /// The outcome of an answer with `status` and its headers (for `Retry-After`).
    pub fn from_response(status: StatusCode, headers: &HeaderMap) -> Self {
        let mut outcome = Self::classify(status);
        if let SendOutcome::Retryable { retry_after, .. } = &mut outcome {
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
                *retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(RetryAfter::parse);
            }
        }
        outcome
    }

    pub fn classify(status: StatusCode) -> Self {
        let code = status.as_u16();
        if status.is_success() {
            SendOutcome::Delivered { status: code }
        } else if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            SendOutcome::Retryable {
                status: Some(code),
                failure: FailureKind::HttpStatus,
                detail: format!("CRM answered HTTP {code}"),
                retry_after: None,
            }
        } else {
            SendOutcome::Permanent { status: code }
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendOutcome::Retryable { .. })
    }

    /// The category recorded for this outcome; `None` when delivered.
    pub fn failure(&self) -> Option<FailureKind> {
        match self {
            SendOutcome::Delivered { .. } => None,
            SendOutcome::Retryable { failure, .. } => Some(*failure),
            SendOutcome::Permanent { .. } => Some(FailureKind::Rejected),
        }
    }
}

/// One pooled client per process, reused by every send. Its HTTP client (TLS configuration with
/// the compiled-in roots, connection pool) is built on the first send, as Stripe's is: most
/// sweeper runs and many stream batches send nothing, and building it at init was ~1.5 % of the
/// sweeper's init instructions (docs/benchmarks.md).
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: OnceLock<reqwest::Client>,
    connect_timeout: Duration,
    timeout: Duration,
    url: Url,
    signing_key: Option<SigningKey>,
}

impl WebhookClient {
    /// `Ok(None)` when no URL is configured.
    pub fn from_config(config: &CrmConfig) -> Result<Option<Self>> {
        let Some(url) = config.webhook_url.clone() else {
            return Ok(None);
        };
        Ok(Some(WebhookClient {
            http: OnceLock::new(),
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            url,
            signing_key: config.signing_key.clone(),
        }))
    }

    /// The HTTP client, built once: rustls on aws-lc-rs (the AWS SDK's crypto stack) with the
    /// webpki roots. Fails only with a broken TLS setup (unreachable in practice).
    fn http(&self) -> Result<&reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = https_client_builder(self.connect_timeout, self.timeout)
            .map_err(Error::HttpClient)?
            // A redirected POST may be replayed as a GET elsewhere; a moved CRM is a config fix.
            .redirect(redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| Error::HttpClient(e.into()))?;
        // A concurrent first send may have won; either client is as good.
        Ok(self.http.get_or_init(|| client))
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs `payload` signed for `webhook_id` (the message's, stable across its retries).
    pub async fn send(&self, webhook_id: &str, payload: &WebhookPayload<'_>) -> SendOutcome {
        let body = match serde_json::to_vec(payload) {
            Ok(body) => body,
            // Only strings and owned timestamps: serialising cannot fail, but never panic here.
            Err(e) => {
                return SendOutcome::Retryable {
                    status: None,
                    failure: FailureKind::Connection,
                    detail: format!("payload: {e}"),
                    retry_after: None,
                }
            }
        };
        let http = match self.http() {
            Ok(http) => http,
            Err(e) => {
                return SendOutcome::Retryable {
                    status: None,
                    failure: FailureKind::Connection,
                    detail: e.to_string(),
                    retry_after: None,
                }
            }
        };
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = http
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = &self.signing_key {
            request = request.header("webhook-signature", key.sign(webhook_id, timestamp, &body));
        }
        match request.body(body).send().await {
            Ok(response) => SendOutcome::from_response(response.status(), response.headers()),
            Err(e) => {
                let failure = if e.is_timeout() { FailureKind::Timeout } else { FailureKind::Connection };
                SendOutcome::Retryable { status: None, failure, detail: describe(e), retry_after: None }
            }
        }
    }
}

/// The error with its causes ("operation timed out", "Connection refused"), without the URL,
/// which may carry a token. For the log only: it names hosts, addresses and TLS internals.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_contract_says() {
        for code in [200, 201, 202, 204] {
            assert!(matches!(
                SendOutcome::classify(StatusCode::from_u16(code).unwrap()),
                SendOutcome::Delivered { .. }
            ));
        }
        for code in [408, 429, 500, 502, 503, 504] {
            let outcome = SendOutcome::classify(StatusCode::from_u16(code).unwrap());
            assert!(outcome.is_retryable(), "{code}");
            assert_eq!(outcome.failure(), Some(FailureKind::HttpStatus), "{code}");
        }
        for code in [301, 302, 400, 401, 403, 404, 410, 422] {
            let outcome = SendOutcome::classify(StatusCode::from_u16(code).unwrap());
            assert_eq!(outcome, SendOutcome::Permanent { status: code });
            assert_eq!(outcome.failure(), Some(FailureKind::Rejected), "{code}");
        }
        assert_eq!(SendOutcome::classify(StatusCode::OK).failure(), None);
    }

    #[test]
    fn retry_after_is_read_from_429_and_503_only() {
        let now = time::parse("2026-01-05T09:30:00Z").unwrap();
        assert_eq!(RetryAfter::parse(" 2 "), Some(RetryAfter::Delay(Duration::from_secs(2))));
        let date = RetryAfter::parse("Mon, 05 Jan 2026 09:30:45 GMT").unwrap();
        assert_eq!(date.delay_from(now), Duration::from_secs(45));
        assert_eq!(RetryAfter::parse("Mon, 05 Jan 2026 09:00:00 GMT").unwrap().delay_from(now), Duration::ZERO);
        for junk in ["", "-1", "1.5", "soon", "2026-01-05T09:30:45Z"] {
            assert_eq!(RetryAfter::parse(junk), None, "{junk:?}");
        }
        let headers = |v: &str| HeaderMap::from_iter([(RETRY_AFTER, HeaderValue::from_str(v).unwrap())]);
        let retry_after =
            |code: u16, v: &str| match SendOutcome::from_response(StatusCode::from_u16(code).unwrap(), &headers(v)) {
                SendOutcome::Retryable { retry_after, .. } => retry_after,
                other => panic!("{code}: {other:?}"),
            };
        assert_eq!(retry_after(429, "7"), Some(RetryAfter::Delay(Duration::from_secs(7))));
        assert_eq!(retry_after(503, "7"), Some(RetryAfter::Delay(Duration::from_secs(7))));
        assert_eq!(retry_after(500, "7"), None, "only 429 and 503 carry a Retry-After we honour");
        assert_eq!(retry_after(429, "later"), None);
        assert_eq!(SendOutcome::from_response(StatusCode::GONE, &headers("7")), SendOutcome::Permanent { status: 410 });
    }
}
