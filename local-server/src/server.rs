//! What `make run` serves once its store and configuration are chosen (main.rs): the bootstrap
//! admin and sample events, the CRM webhook delivered in the background after each booking,
//! payments (Stripe, or the local checkout), the scheduled sweeps of [`crate::sweeps`], and the
//! API on the listener until `stop` resolves. Environment variables are read through `var`, so
//! that tests start exactly this with their own.

use crate::{checkout, sweeps};
use shared::config::Config;
use shared::{seed, App, Store};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a stopping server waits for background CRM deliveries after the last request. A
/// delivery still running then is abandoned (its record, if any, says `retrying`; the next
/// sweep, here or after a restart, delivers it).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `stop` resolves, then waits up to [`DRAIN_TIMEOUT`] for the background CRM
/// deliveries. `stop` is called once everything is set up, just before the first request is
/// accepted: it installs the signal handlers.
pub async fn serve<S, F>(
    store: S,
    config: Config,
    seed_default: bool,
    listener: tokio::net::TcpListener,
    var: impl Fn(&str) -> Option<String>,
    stop: impl FnOnce() -> std::io::Result<F>,
) -> Result<(), Box<dyn std::error::Error>>
where
    S: Store + Clone,
    F: Future<Output = ()> + Send + 'static,
{
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let mut app = App::new(store.clone(), &config)?;
    let mut owner = seed::SAMPLE_OWNER.to_string();
    if let (Some(email), Some(password)) = (var("BOOTSTRAP_ADMIN_EMAIL"), var("BOOTSTRAP_ADMIN_PASSWORD")) {
        owner = seed::bootstrap_admin(&store, &app.passwords, &email, &password).await?;
        tracing::info!(%email, "bootstrap admin ready");
    }
    let seed_events = var("SEED_SAMPLE_EVENTS").map(|v| v != "0" && v != "false").unwrap_or(seed_default);
    if seed_events {
        let created = seed::seed_events(&store, &owner).await?;
        tracing::info!(created, "sample events seeded");
    }
    let crm = crm_notifier::CrmConfig::from_lookup(var)?;
    let notifier = Arc::new(crm_notifier::Notifier::from_config(store.clone(), &crm)?);
    let deliveries = crm_notifier::PendingDeliveries::new();
    if notifier.is_configured() {
        app = app.with_booking_hook(deliveries.hook(notifier.clone(), crm_notifier::RetryPolicy::default()));
        tracing::info!("CRM webhook: delivering in the background after each booking");
    } else {
        tracing::info!("CRM webhook: CRM_WEBHOOK_URL not set, nothing is sent");
    }
    let mut local_checkout = None;
    let stripe = if checkout::local_requested(var("PAYMENTS").as_deref())? {
        let (local, client) = checkout::LocalCheckout::start(listener.local_addr()?, &var).await?;
        app.stripe_webhook_secret = Some(local.webhook_secret().to_string());
        tracing::info!("payments: PAYMENTS=local, a Stripe stand-in that applies Stripe's rules and moves no money; a booking's checkout_url opens the local checkout page");
        local_checkout = Some(local);
        Some(client)
    } else {
        payments::StripeConfig::from_lookup(var)?.map(payments::StripeClient::new)
    };
    let mut provider: Option<Arc<dyn shared::payments::PaymentProvider>> = None;
    match stripe {
        Some(stripe) => {
            tracing::info!(api = %stripe.config().api_base, "payments: Stripe Checkout");
            let p: Arc<dyn shared::payments::PaymentProvider> = Arc::new(stripe);
            app = app.with_payments(p.clone());
            provider = Some(p);
        }
        None => tracing::info!("payments: STRIPE_SECRET_KEY not set, priced events are refused"),
    }
    // Promotions from a waitlist: offers opened and CRM messages sent after the routes, jobs
    // and sweeps that may make them (deployed, the stream does).
    let followup = Arc::new(crate::promotions::FollowUp::new(store.clone(), provider.clone(), app.on_booking.clone()));
    let job_hook = crate::jobs::hook_with(store.clone(), app.on_booking.clone(), Some(followup.clone()));
    app = app.with_job_hook(job_hook);
    let schedule = sweeps::Schedule::from_lookup(var)?;
    // Always: lifecycle jobs left by a stopped server resume here, as the deployed sweeper does.
    tracing::info!(
        every_secs = schedule.every.as_secs(),
        "sweeps: lifecycle jobs, payments and CRM redelivery, as the deployed crm-sweeper"
    );
    tokio::spawn(sweeps::run_forever(notifier, provider, schedule, app.on_booking.clone(), Some(followup.clone())));
    let stop = stop()?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let mut routes = crate::router_with(Arc::new(app), Some(followup));
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
