//! Lambda entry point of the CRM sweeper, run by an EventBridge schedule every 10 minutes: one
//! [`crm_notifier::run_sweeps`] per invocation (the sweep of the pending delivery index, with the
//! stream handler's notifier, configuration and lease; `make run` runs the same function on a
//! shorter interval). The schedule's event carries nothing the sweep needs.
//!
//! Its own crate (not a second binary of `crm-notifier`): every function is `functions/<binary>`
//! with one `main.rs`, which is what `template.yaml`'s `BuildProperties: Binary` and its test
//! expect, and this binary does not link the stream event types it never receives.
//!
//! Its secrets, the CRM signing key and Stripe's key, are read at init (`CRM_WEBHOOK_SECRET` /
//! `STRIPE_SECRET_KEY`, or the Secrets Manager secrets their `_ID` variables name).
//!
//! With a Stripe key, each run first does the payment sweep
//! ([`shared::payments::sweep_payments`]): seat holds whose time is up are confirmed or expired
//! from their Checkout Session's state at Stripe (a lost webhook), refunds Stripe has not
//! acknowledged are asked for again, and waitlist offers whose session could not be opened when
//! they were promoted (Stripe down) are opened (with `PAYMENT_SUCCESS_URL` / `PAYMENT_CANCEL_URL`
//! as the bookings function's sessions). Its report is the CRM report's `payments` field. Bookings it
//! confirms get their CRM delivery record in the same transaction; the stream, or the CRM sweep
//! right after, delivers them.

// Same deep future nesting as the stream handler (see its main.rs).
#![recursion_limit = "256"]

use crm_notifier::{run_sweeps, CrmConfig, Notifier, PaymentSweep, SweepConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use payments::{StripeClient, StripeConfig};
use serde_json::Value;
use shared::secrets::{self, Secrets};
use shared::store::DynamoStore;
use std::time::SystemTime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let secrets = Secrets::load(&[secrets::CRM_WEBHOOK_SECRET, secrets::STRIPE_SECRET_KEY]).await?;
    let crm = CrmConfig::from_lookup(|name| secrets.var(name))?;
    let config = SweepConfig::from_env()?;
    let store = DynamoStore::for_lambda(table)?;
    let stripe = StripeConfig::from_lookup(|name| secrets.var(name))?.map(StripeClient::new);
    let notifier = Notifier::from_config(store, &crm)?;
    let (notifier, config, stripe) = (&notifier, &config, &stripe);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // One attempt per booking and sweep: no backoff waits, only the function's deadline.
        // Lambda always hands out a deadline in the future; a local emulator (`cargo lambda
        // watch`) sends one already past, which would end every sweep before its first Query.
        // Without it the run is still bounded: every call has a timeout, and a sweeper killed
        // mid-delivery leaves a lease that expires for the next sweep.
        let deadline = Some(event.context.deadline()).filter(|d| *d > SystemTime::now());
        if deadline.is_none() {
            lambda_runtime::tracing::warn!("the invocation's deadline has passed already; sweeping without one");
        }
        // Bookings the payment sweep confirms are delivered by the stream (their CRM record is
        // written in the same transaction), so nothing is handed on here.
        let payments =
            stripe.as_ref().map(|provider| PaymentSweep { provider, lookback_days: payments::SWEEP_LOOKBACK_DAYS });
        let report = run_sweeps(notifier, config, payments, deadline, &|_| {}).await?;
        // A failed payment sweep fails the invocation (after the CRM sweep ran), so it is counted.
        if let Some(e) = &report.payment_error {
            return Err(format!("payment sweep failed: {e}").into());
        }
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
