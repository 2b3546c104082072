//! One booking → at most one successful POST, remembered in the booking's delivery record.
//!
//! The record is read before sending and written after. Between the two the CRM may have
//! accepted the POST while our write fails; the choice made here is that the CRM's final answer
//! (2xx, or a permanent 4xx) wins over the bookkeeping: the write error is logged at `error`
//! level and the outcome is still returned as final, so neither the stream nor the local retry
//! loop re-POSTs because of a store hiccup. The SDK has already retried transient DynamoDB errors
//! by then. What remains is at-least-once, not a loop: if Lambda re-runs the whole batch for an
//! unrelated reason (timeout, crash) before the record exists, the CRM gets the same
//! `webhook-id` again and can drop the duplicate.

use crate::config::CrmConfig;
use crate::error::Result;
use crate::webhook::{SendOutcome, WebhookClient};
use shared::model::{Booking, Delivery, DeliveryStatus};
use shared::store::Store;
use shared::time;

/// Result of [`Notifier::deliver`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The delivery record already says delivered: nothing was sent.
    AlreadyDelivered,
    /// The CRM already rejected this booking permanently: nothing was sent.
    AlreadyFailed,
    /// No `CRM_WEBHOOK_URL`: nothing was sent and nothing recorded.
    NotConfigured,
    /// The CRM was called; its answer is recorded.
    Sent(SendOutcome),
}

impl Outcome {
    /// Whether the caller should try this booking again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Outcome::Sent(s) if s.is_retryable())
    }
}

pub struct Notifier<S> {
    store: S,
    client: Option<WebhookClient>,
}

impl<S: Store> Notifier<S> {
    /// `client: None` disables sending (no CRM configured).
    pub fn new(store: S, client: Option<WebhookClient>) -> Self {
        Notifier { store, client }
    }

    pub fn from_config(store: S, config: &CrmConfig) -> Result<Self> {
        Ok(Self::new(store, WebhookClient::from_config(config)?))
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Sends the webhook unless the CRM already answered for good (delivered, or rejected), then
    /// records the answer.
    /// `Err` only when the store could not be read, or a retryable failure could not be recorded;
    /// both mean "try this booking again".
    pub async fn deliver(&self, booking: &Booking) -> Result<Outcome> {
        let Some(client) = &self.client else {
            tracing::info!(booking_id = %booking.id, "CRM_WEBHOOK_URL is not set; CRM notification skipped");
            return Ok(Outcome::NotConfigured);
        };
        let previous = self.store.get_delivery(&booking.id).await?;
        match previous.as_ref().map(|d| d.status) {
            Some(DeliveryStatus::Delivered) => {
                tracing::info!(booking_id = %booking.id, "CRM already notified; not sent again");
                return Ok(Outcome::AlreadyDelivered);
            }
            Some(DeliveryStatus::Failed) => {
                tracing::info!(booking_id = %booking.id, "CRM rejected this booking before; not sent again");
                return Ok(Outcome::AlreadyFailed);
            }
            Some(DeliveryStatus::Retrying) | None => {}
        }
        let attempts = previous.map_or(0, |d| d.attempts) + 1;
        let sent = client.send(booking).await;
        let record = delivery_record(&booking.id, attempts, &sent);
        match &sent {
            SendOutcome::Delivered { status } => {
                tracing::info!(booking_id = %booking.id, status, attempts, "CRM notified");
            }
            SendOutcome::Retryable { status, failure, detail } => {
                tracing::warn!(
                    booking_id = %booking.id,
                    ?status,
                    ?failure,
                    error = %detail,
                    attempts,
                    "CRM notification failed; will retry"
                );
            }
            SendOutcome::Permanent { status } => {
                tracing::warn!(booking_id = %booking.id, status, attempts, "CRM rejected the notification; not retried");
            }
        }
        match self.store.put_delivery(&record).await {
            Ok(true) => {}
            // Only a concurrent delivery of the same booking can get here: it already won.
            Ok(false) => {
                tracing::info!(booking_id = %booking.id, "delivery already recorded as delivered")
            }
            Err(e) if sent.is_retryable() => return Err(e.into()),
            Err(e) => tracing::error!(
                booking_id = %booking.id,
                error = %e,
                outcome = ?sent,
                "CRM answered but the delivery record could not be written; a redelivery of this \
                 booking would POST again with the same webhook-id"
            ),
        }
        Ok(Outcome::Sent(sent))
    }
}

fn delivery_record(booking_id: &str, attempts: u32, sent: &SendOutcome) -> Delivery {
    let now = time::now();
    let (status, last_http_status, delivered_at) = match sent {
        SendOutcome::Delivered { status } => (DeliveryStatus::Delivered, Some(*status), Some(now)),
        SendOutcome::Retryable { status, .. } => (DeliveryStatus::Retrying, *status, None),
        SendOutcome::Permanent { status } => (DeliveryStatus::Failed, Some(*status), None),
    };
    Delivery {
        booking_id: booking_id.to_string(),
        status,
        attempts,
        last_http_status,
        // The category only: the error text was logged above and stays out of the store and API.
        last_failure: sent.failure(),
        delivered_at,
        updated_at: now,
    }
}
