//! The `crm-notifier` function: tells the facilitator's CRM about every new confirmed booking
//! (API.md, "CRM webhook"). Deployed it consumes the table's DynamoDB stream ([`handle_batch`]);
//! locally the same [`Notifier`] runs in the background after each booking ([`booking_hook`]).

pub mod config;
pub mod error;
pub mod handler;
pub mod local;
pub mod notifier;
pub mod signing;
pub mod webhook;

pub use config::CrmConfig;
pub use error::{Error, Result};
pub use handler::handle_batch;
pub use local::{booking_hook, PendingDeliveries, RetryPolicy};
pub use notifier::{Notifier, Outcome};
pub use signing::SigningKey;
pub use webhook::{SendOutcome, WebhookClient, WebhookPayload};
