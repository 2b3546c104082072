//! Lambda entry point for the table's DynamoDB stream: configuration, the DynamoDB client and the
//! HTTP client are built once per execution environment; every batch borrows them. The CRM
//! signing key is read at init (`CRM_WEBHOOK_SECRET`, or the Secrets Manager secret
//! `CRM_WEBHOOK_SECRET_ID` names).

// The stream handler's future nests the store's futures deeply enough that rustc's default
// query depth (128) overflows when laying it out on a cold build.
#![recursion_limit = "256"]

use aws_lambda_events::event::dynamodb::Event;
use crm_notifier::{handle_batch_within, CrmConfig, Notifier};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use shared::secrets::{self, Secrets};
use shared::store::DynamoStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let secrets = Secrets::load(&[secrets::CRM_WEBHOOK_SECRET]).await?;
    let config = CrmConfig::from_lookup(|name| secrets.var(name))?;
    let store = DynamoStore::for_lambda(table)?;
    let notifier = Notifier::from_config(store, &config)?;
    let notifier = &notifier;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        // Retries inside the invocation end CRM_RETRY_BUDGET_SECONDS from now, and early enough
        // before the function's timeout to record the last attempt.
        let budget = notifier.budget(Some(event.context.deadline()));
        Ok::<_, Error>(handle_batch_within(notifier, event.payload, budget).await)
    }))
    .await
}
