//! `make run`: the whole API on 127.0.0.1:${PORT:-3000}. Embedded store unless TABLE_NAME is set.
//!
//! On SIGTERM or Ctrl-C (SIGINT) it stops accepting connections, lets the requests in flight
//! finish, then waits up to [`local_server::server::DRAIN_TIMEOUT`] for the CRM deliveries still
//! running in the background, and exits 0.
//!
//! With `STRIPE_SECRET_KEY` set, priced events take payments through Stripe Checkout
//! (`STRIPE_API_BASE` may point at a stub); with `PAYMENTS=local` instead, through an in-process
//! Stripe stand-in and a local checkout page ([`local_server::checkout`]). Either way the deployed
//! sweeper's work (payments, then CRM redelivery) runs every `LOCAL_SWEEP_INTERVAL_SECONDS`
//! ([`local_server::sweeps`]). Everything after the choice of store is [`local_server::serve`].

use shared::config::Config;
use shared::store::{DynamoStore, MemoryStore};
use std::future::Future;

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
    let config = Config::from_parts(secret)?.with_previous_jwt_secrets(env("JWT_PREVIOUS_SECRETS").as_deref())?;
    // Bound before payments are set up: the local checkout's URLs name the actual port.
    let port: u16 = env("PORT").map(|p| p.parse()).transpose()?.unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let var = |name: &str| std::env::var(name).ok();
    // The signal handlers are installed once set up, before the first request can arrive: from
    // then on a SIGTERM no longer kills the process outright.
    match config.table_name.clone() {
        Some(table) => {
            tracing::info!(%table, "store: DynamoDB");
            let store = DynamoStore::from_env(table).await;
            local_server::serve(store, config, false, listener, var, shutdown_signal).await
        }
        None => {
            tracing::info!("store: embedded (in memory; data is lost on exit)");
            local_server::serve(MemoryStore::new(), config, true, listener, var, shutdown_signal).await
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C); the handlers are registered on the call.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: shutting down after the requests in flight");
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("Ctrl-C: shutting down after the requests in flight"),
            // Without a handler there is nothing to wait for: run until killed.
            Err(_) => std::future::pending().await,
        }
    })
}
