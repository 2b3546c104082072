//! Lambda entry point of `POST /payments/webhook`: secrets, configuration, store and Stripe client
//! are built once per execution environment (the HTTP client itself on its first call: only a payment that
//! lands after its hold ended needs Stripe here, for the refund). All logic lives in the library.
//!
//! Its secrets are the webhook's signing secret and Stripe's key (`STRIPE_WEBHOOK_SECRET` /
//! `STRIPE_SECRET_KEY`, or the Secrets Manager secrets their `_ID` variables name). It gets no JWT
//! key: Stripe sends no token, and nothing here verifies one.

use lambda_http::{run, service_fn, Error, Request};
use payments::{StripeClient, StripeConfig};
use shared::config::Config;
use shared::secrets::{self, Secrets};
use shared::store::DynamoStore;
use shared::App;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let secrets = Secrets::load(&[secrets::STRIPE_WEBHOOK_SECRET, secrets::STRIPE_SECRET_KEY]).await?;
    let config = Config::from_lookup(|name| secrets.var(name))?;
    let store = DynamoStore::for_lambda(config.require_table()?)?;
    let mut app = App::new(store, &config)?;
    match StripeConfig::from_lookup(|name| secrets.var(name))?.map(StripeClient::new) {
        Some(client) => app = app.with_payments(Arc::new(client)),
        None => {
            tracing::warn!(
                "no Stripe key (STRIPE_SECRET_KEY / _ID): a payment landing after its hold ended cannot be refunded"
            )
        }
    }
    if app.stripe_webhook_secret.is_none() {
        tracing::error!("no webhook signing secret (STRIPE_WEBHOOK_SECRET / _ID): every webhook will be refused");
    }
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(payments::router(app, req).await) })).await
}
