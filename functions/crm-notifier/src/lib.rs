//! The `crm-notifier` function: tells the facilitator's CRM about every booking once it is confirmed
//! (a free one when it is made, a paid one when its payment succeeds), and of each later change it
//! owes a message for (a cancellation, a reschedule), in order ([`messages`])
//! (docs/api.md, "CRM webhook"). Deployed it consumes the table's DynamoDB stream ([`handle_batch`]),
//! and `crm-sweeper` runs [`run_sweeps`] (the payment sweep, then [`sweep`]) every 10 minutes for
//! whatever the stream did not deliver; locally the same [`Notifier`] runs in the background after
//! each booking and cancellation ([`booking_hook`]), and `make run` runs the same [`run_sweeps`] on a shorter
//! interval.

pub mod clock;
pub mod config;
pub mod error;
pub mod handler;
pub mod jobs;
pub mod local;
pub mod messages;
pub mod notifier;
pub mod offers;
pub mod scheduled;
pub mod signing;
pub mod sweep;
pub mod webhook;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::CrmConfig;
pub use error::{Error, Result};
pub use handler::{handle_batch, handle_batch_within};
pub use local::{booking_hook, PendingDeliveries, RetryPolicy};
pub use messages::{BookingOutcome, MessageOutcome};
pub use notifier::{Backoff, Budget, Notifier, Outcome};
pub use scheduled::{run_sweeps, PaymentSweep, SweepsReport};
pub use signing::SigningKey;
pub use sweep::{parse_duration, parse_since, sweep, SweepConfig, SweepReport};
pub use webhook::{RetryAfter, SendOutcome, WebhookClient, WebhookPayload};
