//! Stripe Checkout for priced events: [`StripeClient`], the [`PaymentProvider`] the bookings
//! function, the sweeper and the local server hold, and the `payments` function's `router`
//! (`POST /payments/webhook`), which the Lambda binary and the local server both call.
//!
//! [`PaymentProvider`]: shared::payments::PaymentProvider

pub mod handler;
pub mod stripe;

pub use handler::router;
pub use stripe::{StripeClient, StripeConfig};

/// How many days of the due-payments index a payment sweep reads (one Query per day bucket):
/// holds end 31 minutes after booking, so only refunds Stripe kept refusing are ever older.
pub const SWEEP_LOOKBACK_DAYS: u32 = 7;
