//! The CRM webhook on the wire: the payload of API.md and one HTTP client that classifies every
//! answer as delivered, worth retrying, or final.

use crate::config::CrmConfig;
use crate::error::{Error, Result};
use crate::signing::SigningKey;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{redirect, StatusCode, Url};
use serde::Serialize;
use shared::model::{Booking, FailureKind};
use shared::time;

const USER_AGENT: &str = concat!("ahoum-crm-notifier/", env!("CARGO_PKG_VERSION"));

/// The body of the POST, exactly the fields of API.md "CRM webhook".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookPayload<'a> {
    pub booking_id: &'a str,
    pub user: WebhookUser<'a>,
    pub event_id: &'a str,
    pub facilitator_id: &'a str,
    pub event_title: &'a str,
    pub event_datetime: String,
    pub booked_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebhookUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

impl<'a> WebhookPayload<'a> {
    /// Built from the booking alone: its event snapshot keeps title and time as they were booked.
    pub fn from_booking(b: &'a Booking) -> Self {
        WebhookPayload {
            booking_id: &b.id,
            user: WebhookUser { name: &b.user_name, email: &b.user_email },
            event_id: &b.event_id,
            facilitator_id: &b.event.facilitator_id,
            event_title: &b.event.title,
            event_datetime: time::format(&b.event.datetime),
            booked_at: time::format(&b.created_at),
        }
    }
}

/// What one POST achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx.
    Delivered { status: u16 },
    /// Timeout, connection failure, 408, 429 or 5xx: the CRM may accept it later. `failure` is
    /// what the delivery record keeps; `detail` (the client's error chain) is for the log only.
    Retryable { status: Option<u16>, failure: FailureKind, detail: String },
    /// Any other answer (4xx, and 3xx since redirects are not followed): resending cannot help.
    Permanent { status: u16 },
}

impl SendOutcome {
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

/// One pooled client per process (Lambda init or local server start), reused by every send.
#[derive(Clone, Debug)]
pub struct WebhookClient {
    http: reqwest::Client,
    url: Url,
    signing_key: Option<SigningKey>,
}

impl WebhookClient {
    /// `Ok(None)` when no URL is configured.
    pub fn from_config(config: &CrmConfig) -> Result<Option<Self>> {
        let Some(url) = config.webhook_url.clone() else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            // A redirected POST may be replayed as a GET elsewhere; a moved CRM is a config fix.
            .redirect(redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()
            .map_err(Error::HttpClient)?;
        Ok(Some(WebhookClient { http, url, signing_key: config.signing_key.clone() }))
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub async fn send(&self, booking: &Booking) -> SendOutcome {
        let body = match serde_json::to_vec(&WebhookPayload::from_booking(booking)) {
            Ok(body) => body,
            // Only strings and owned timestamps: serialising cannot fail, but never panic here.
            Err(e) => {
                return SendOutcome::Retryable {
                    status: None,
                    failure: FailureKind::Connection,
                    detail: format!("payload: {e}"),
                }
            }
        };
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", booking.id.as_str())
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = &self.signing_key {
            request = request.header("webhook-signature", key.sign(&booking.id, timestamp, &body));
        }
        match request.body(body).send().await {
            Ok(response) => SendOutcome::classify(response.status()),
            Err(e) => {
                let failure = if e.is_timeout() { FailureKind::Timeout } else { FailureKind::Connection };
                SendOutcome::Retryable { status: None, failure, detail: describe(e) }
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
}
