//! Lambda entry point: secrets, configuration and clients are built once per execution
//! environment, then every invocation borrows them. All logic lives in the library. The JWT key
//! and Stripe's key are read at init (`JWT_SECRET` / `STRIPE_SECRET_KEY`, or the Secrets Manager
//! secrets `JWT_SECRET_ID` / `STRIPE_SECRET_KEY_ID` name, fetched concurrently), and the keys
//! still accepted after a rotation (`JWT_PREVIOUS_SECRETS`, or `JWT_PREVIOUS_SECRETS_ID`; optional).
//!
//! With a Stripe key, bookings of priced events open a Stripe Checkout Session; the
//! Stripe client builds its HTTP client on its first call (free bookings never pay for it).

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
    let secrets =
        Secrets::load(&[secrets::JWT_SECRET, secrets::JWT_PREVIOUS_SECRETS, secrets::STRIPE_SECRET_KEY]).await?;
    let config = Config::from_lookup(|name| secrets.var(name))?
        .with_jwt_secret(secrets.require(secrets::JWT_SECRET)?)?
        .with_previous_jwt_secrets(secrets.get(secrets::JWT_PREVIOUS_SECRETS))?;
    let store = DynamoStore::for_lambda(config.require_table()?)?;
    let mut app = App::new(store, &config)?;
    if let Some(stripe) = StripeConfig::from_lookup(|name| secrets.var(name))?.map(StripeClient::new) {
        app = app.with_payments(Arc::new(stripe));
    }
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(bookings::router(app, req).await) })).await
}
