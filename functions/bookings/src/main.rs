//! Lambda entry point: configuration and clients are built once per execution environment, then
//! every invocation borrows them. All logic lives in the library.
//!
//! With `STRIPE_SECRET_KEY` set, bookings of priced events open a Stripe Checkout Session; the
//! Stripe client builds its HTTP client on its first call (free bookings never pay for it).

use lambda_http::{run, service_fn, Error, Request};
use shared::config::Config;
use shared::store::DynamoStore;
use shared::App;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let store = DynamoStore::for_lambda(config.require_table()?)?;
    let mut app = App::new(store, &config)?;
    if let Some(stripe) = payments::StripeClient::from_env()? {
        app = app.with_payments(Arc::new(stripe));
    }
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(bookings::router(app, req).await) })).await
}
