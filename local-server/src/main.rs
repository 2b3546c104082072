//! `make run`: the whole API on 127.0.0.1:${PORT:-3000}. Embedded store unless TABLE_NAME is set.
//!
//! On SIGTERM or Ctrl-C (SIGINT) it stops accepting connections, lets the requests in flight
//! finish, then waits up to [`DRAIN_TIMEOUT`] for the CRM deliveries still running in the
//! background, and exits 0.
//!
//! With `STRIPE_SECRET_KEY` set, priced events take payments through Stripe Checkout
//! (`STRIPE_API_BASE` may point at a stub); with `PAYMENTS=local` instead, through an in-process
//! Stripe stand-in and a local checkout page ([`local_server::checkout`]). Either way a payment
//! sweep runs every [`PAYMENT_SWEEP_EVERY`]: the scheduled sweeper's job when deployed.

use local_server::checkout;
use shared::config::Config;
use shared::store::{DynamoStore, MemoryStore};
use shared::{seed, App, Store};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a stopping server waits for background CRM deliveries after the last request. A
/// delivery still running then is abandoned (its record, if any, says `retrying`).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often holds whose time is up are settled from Stripe and unanswered refunds retried.
const PAYMENT_SWEEP_EVERY: Duration = Duration::from_secs(60);

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
    let deliveries = crm_notifier::PendingDeliveries::new();
    if crm.webhook_url.is_some() {
        let notifier = Arc::new(crm_notifier::Notifier::from_config(store.clone(), &crm)?);
        app = app.with_booking_hook(deliveries.hook(notifier, crm_notifier::RetryPolicy::default()));
        tracing::info!("CRM webhook: delivering in the background after each booking");
    } else {
        tracing::info!("CRM webhook: CRM_WEBHOOK_URL not set, nothing is sent");
    }
    // Bound before payments are set up: the local checkout's URLs name the actual port.
    let port: u16 = env("PORT").map(|p| p.parse()).transpose()?.unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let mut local_checkout = None;
    let stripe = if checkout::local_requested(env("PAYMENTS").as_deref())? {
        let (local, client) = checkout::LocalCheckout::start(listener.local_addr()?, env).await?;
        app.stripe_webhook_secret = Some(local.webhook_secret().to_string());
        tracing::info!("payments: PAYMENTS=local, a Stripe stand-in that applies Stripe's rules and moves no money; a booking's checkout_url opens the local checkout page");
        local_checkout = Some(local);
        Some(client)
    } else {
        payments::StripeClient::from_env()?
    };
    match stripe {
        Some(stripe) => {
            tracing::info!(api = %stripe.config().api_base, "payments: Stripe Checkout");
            let provider: Arc<dyn shared::payments::PaymentProvider> = Arc::new(stripe);
            app = app.with_payments(provider.clone());
            tokio::spawn(sweep_payments_forever(store.clone(), provider, app.on_booking.clone()));
        }
        None => tracing::info!("payments: STRIPE_SECRET_KEY not set, priced events are refused"),
    }
    // Handlers are installed before the first request can arrive: from here on a SIGTERM no
    // longer kills the process outright.
    let stop = shutdown_signal()?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let mut routes = local_server::router(Arc::new(app));
    if let Some(local) = &local_checkout {
        routes = routes.merge(local.routes());
    }
    axum::serve(listener, routes).with_graceful_shutdown(stop).await?;
    let running = deliveries.in_flight();
    if running > 0 {
        tracing::info!(running, "waiting up to {}s for CRM deliveries", DRAIN_TIMEOUT.as_secs());
        let abandoned = deliveries.drain(DRAIN_TIMEOUT).await;
        if abandoned > 0 {
            tracing::warn!(abandoned, "CRM deliveries still running at shutdown were abandoned");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The payment sweep every [`PAYMENT_SWEEP_EVERY`], confirmed bookings handed to the CRM hook.
async fn sweep_payments_forever<S: Store>(
    store: S,
    provider: Arc<dyn shared::payments::PaymentProvider>,
    hook: Option<shared::app::BookingHook>,
) {
    let on_confirmed = move |b: &shared::model::Booking| {
        if let Some(hook) = &hook {
            hook(b)
        }
    };
    let mut every = tokio::time::interval(PAYMENT_SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let now = shared::time::now();
        if let Err(e) =
            shared::payments::sweep_payments(&store, &*provider, now, payments::SWEEP_LOOKBACK_DAYS, &on_confirmed)
                .await
        {
            tracing::warn!(error = %e, "payment sweep failed; next run in {}s", PAYMENT_SWEEP_EVERY.as_secs());
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
