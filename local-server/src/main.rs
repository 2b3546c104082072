//! `make run`: the whole API on 127.0.0.1:${PORT:-3000}. Embedded store unless TABLE_NAME is set.

use shared::config::Config;
use shared::store::{DynamoStore, MemoryStore};
use shared::{seed, App, Store};
use std::sync::Arc;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = run().await {
        tracing::error!("{e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let secret = match env("JWT_SECRET") {
        Some(s) => s.into_bytes(),
        None => {
            use rand::Rng;
            let s: String =
                rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(48).map(char::from).collect();
            tracing::warn!("JWT_SECRET is not set: generated a random one; tokens are valid until this process exits");
            s.into_bytes()
        }
    };
    let config = Config::from_parts(secret)?;
    match config.table_name.clone() {
        Some(table) => {
            tracing::info!(%table, "store: DynamoDB");
            serve(DynamoStore::from_env(table).await, config, false).await
        }
        None => {
            tracing::info!("store: embedded (in memory; data is lost on exit)");
            serve(MemoryStore::new(), config, true).await
        }
    }
}

async fn serve<S: Store + Clone>(
    store: S,
    config: Config,
    seed_default: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut app = App::new(store.clone(), &config)?;
    let mut owner = seed::SAMPLE_OWNER.to_string();
    if let (Some(email), Some(password)) = (env("BOOTSTRAP_ADMIN_EMAIL"), env("BOOTSTRAP_ADMIN_PASSWORD")) {
        owner = seed::bootstrap_admin(&store, &app.passwords, &email, &password).await?;
        tracing::info!(%email, "bootstrap admin ready");
    }
    let seed_events = env("SEED_SAMPLE_EVENTS").map(|v| v != "0" && v != "false").unwrap_or(seed_default);
    if seed_events {
        let created = seed::seed_events(&store, &owner).await?;
        tracing::info!(created, "sample events seeded");
    }
    let crm = crm_notifier::CrmConfig::from_env()?;
    if crm.webhook_url.is_some() {
        let notifier = Arc::new(crm_notifier::Notifier::from_config(store.clone(), &crm)?);
        app = app.with_booking_hook(crm_notifier::booking_hook(notifier, crm_notifier::RetryPolicy::default()));
        tracing::info!("CRM webhook: delivering in the background after each booking");
    } else {
        tracing::info!("CRM webhook: CRM_WEBHOOK_URL not set, nothing is sent");
    }
    let port: u16 = env("PORT").map(|p| p.parse()).transpose()?.unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, local_server::router(Arc::new(app)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
