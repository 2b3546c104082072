//! The outcome of the CRM webhook for a booking.

use crate::time::{self, serde_ts, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Outcome of the CRM webhook for one booking; keyed by the booking id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub booking_id: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[serde(default)]
    pub last_http_status: Option<u16>,
    /// Why the last attempt did not deliver; `None` once delivered. Only the category is stored
    /// and shown: the client's error text (resolver, TLS, socket detail) goes to the log alone.
    /// Records written before this field carried a free-text `last_error`, which is ignored.
    #[serde(default)]
    pub last_failure: Option<FailureKind>,
    #[serde(default, with = "serde_ts::option")]
    pub delivered_at: Option<Timestamp>,
    #[serde(with = "serde_ts")]
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// 2xx received.
    Delivered,
    /// Retryable failure so far; the stream or the local retry loop will try again.
    Retrying,
    /// The CRM answered a non-retryable 4xx: not sent again.
    Failed,
}

/// Category of a failed CRM delivery attempt, as stored and shown in `crm_status.last_failure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No answer within the connect or request timeout. Retried.
    Timeout,
    /// No HTTP answer for another reason: name resolution, connection refused or reset, TLS
    /// handshake, or the request could not be written. Retried.
    Connection,
    /// The CRM answered 408, 429 or a 5xx (`last_http_status` says which). Retried.
    HttpStatus,
    /// The CRM answered any other non-2xx: a 4xx other than 408 and 429, or a 3xx (redirects are
    /// not followed). Permanent: the status is `failed` and the booking is not sent again.
    Rejected,
}

impl Delivery {
    pub fn view(&self) -> Value {
        json!({
            "status": self.status,
            "attempts": self.attempts,
            "last_http_status": self.last_http_status,
            "last_failure": self.last_failure,
            "delivered_at": self.delivered_at.as_ref().map(time::format),
        })
    }
}
