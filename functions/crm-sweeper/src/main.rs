//! Lambda entry point of the CRM sweeper, run by an EventBridge schedule every 10 minutes: one
//! [`crm_notifier::sweep`] of the pending delivery index per invocation, with the stream handler's
//! notifier, configuration and lease. The schedule's event carries nothing the sweep needs.
//!
//! Its own crate (not a second binary of `crm-notifier`): every function is `functions/<binary>`
//! with one `main.rs`, which is what `template.yaml`'s `BuildProperties: Binary` and its test
//! expect, and this binary does not link the stream event types it never receives.

// Same deep future nesting as the stream handler (see its main.rs).
#![recursion_limit = "256"]

use crm_notifier::{sweep, CrmConfig, Notifier, SweepConfig};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::store::DynamoStore;
use std::time::{Duration, SystemTime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let crm = CrmConfig::from_env()?;
    let config = SweepConfig::from_env()?;
    let store = DynamoStore::from_env(table).await;
    let notifier = Notifier::from_config(store, &crm)?;
    let (notifier, config) = (&notifier, &config);
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
        let budget = notifier.budget_within(Duration::ZERO, deadline);
        let report = sweep(notifier, config, None, budget).await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
