//! Lambda entry point for the table's DynamoDB stream: configuration, the DynamoDB client and the
//! HTTP client are built once per execution environment; every batch borrows them. The CRM
//! signing key and Stripe's key are read at init (`CRM_WEBHOOK_SECRET` / `STRIPE_SECRET_KEY`, or
//! the Secrets Manager secrets their `_ID` variables name). With a Stripe key, a waitlist offer's
//! payment task on the stream opens its Checkout Session; the Stripe client makes its HTTP client
//! (TLS setup) on its first call, so a cold start that opens no offer does not pay for it.

// The stream handler's future nests the store's futures deeply enough that rustc's default
// query depth (128) overflows when laying it out on a cold build.
#![recursion_limit = "256"]

use aws_lambda_events::event::dynamodb::Event;
use crm_notifier::{handle_batch_within, CrmConfig, Notifier};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use payments::{StripeClient, StripeConfig};
use shared::secrets::{self, Secrets};
use shared::store::DynamoStore;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let secrets = Secrets::load(&[secrets::CRM_WEBHOOK_SECRET, secrets::STRIPE_SECRET_KEY]).await?;
    let config = CrmConfig::from_lookup(|name| secrets.var(name))?;
    let store = DynamoStore::for_lambda(table)?;
    let mut notifier = Notifier::from_config(store, &config)?;
    match StripeConfig::from_lookup(|name| secrets.var(name))? {
        Some(stripe) => notifier = notifier.with_payments(Arc::new(StripeClient::new(stripe))),
        None => tracing::info!("no Stripe key (payments off): no waitlist offers to open"),
    }
    let notifier = &notifier;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        // Retries inside the invocation end CRM_RETRY_BUDGET_SECONDS from now, and early enough
        // before the function's timeout to record the last attempt.
        let budget = notifier.budget(Some(event.context.deadline()));
        Ok::<_, Error>(handle_batch_within(notifier, event.payload, budget).await)
    }))
    .await
}
