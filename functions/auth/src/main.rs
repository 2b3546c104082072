//! Lambda entry point: secrets, configuration and clients are built once per execution
//! environment, then every invocation borrows them. All logic lives in the library. The JWT key is
//! read at init (`JWT_SECRET`, or the Secrets Manager secret `JWT_SECRET_ID` names), and the keys
//! still accepted after a rotation (`JWT_PREVIOUS_SECRETS`, or `JWT_PREVIOUS_SECRETS_ID`; optional).

use lambda_http::{run, service_fn, Error, Request};
use shared::config::Config;
use shared::secrets::{self, Secrets};
use shared::store::DynamoStore;
use shared::App;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let secrets = Secrets::load(&[secrets::JWT_SECRET, secrets::JWT_PREVIOUS_SECRETS]).await?;
    let config = Config::from_lookup(|name| secrets.var(name))?
        .with_jwt_secret(secrets.require(secrets::JWT_SECRET)?)?
        .with_previous_jwt_secrets(secrets.get(secrets::JWT_PREVIOUS_SECRETS))?;
    let store = DynamoStore::for_lambda(config.require_table()?)?;
    let app = App::new(store, &config)?;
    let app = &app;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(auth::router(app, req).await) })).await
}
