//! Everything a handler needs, built once per process (Lambda init or local server start).

use crate::config::Config;
use crate::cursor::CursorCodec;
use crate::error::Result;
use crate::jwt::TokenService;
use crate::model::Booking;
use crate::password::PasswordHasher;
use crate::payments::PaymentProvider;
use crate::store::Store;
use std::sync::Arc;

/// Called after a booking commits. Only the local server sets one (to deliver the CRM webhook in
/// the background); deployed, the DynamoDB stream drives `crm-notifier` instead.
pub type BookingHook = Arc<dyn Fn(&Booking) + Send + Sync>;

/// Called with an event id after its cancel or reschedule commits (its lifecycle job written).
/// Only the local server sets one (to run the job's batches in the background); deployed, the
/// job item's stream record drives `crm-notifier`, and the sweeper resumes what stopped.
pub type JobHook = Arc<dyn Fn(&str) + Send + Sync>;

pub struct App<S> {
    pub store: S,
    pub tokens: TokenService,
    pub passwords: PasswordHasher,
    pub cursors: CursorCodec,
    pub on_booking: Option<BookingHook>,
    pub on_job: Option<JobHook>,
    /// Stripe, in the binaries that call it (bookings, payments, the sweeper, the local server).
    pub payments: Option<Arc<dyn PaymentProvider>>,
    /// Priced events are accepted (see [`Config::payments_enabled`]).
    pub payments_enabled: bool,
    /// Verifies `Stripe-Signature`; without it every webhook is refused.
    pub stripe_webhook_secret: Option<String>,
}

impl<S: Store> App<S> {
    pub fn new(store: S, config: &Config) -> Result<Self> {
        // A binary given no JWT key (payments: Stripe sends no token) gets a random one: whatever
        // it signed would verify nowhere else, and no token or cursor from elsewhere verifies here.
        let (key, previous) = match &config.jwt_secret {
            Some(key) => (key.clone(), config.jwt_previous_secrets.as_slice()),
            None => {
                use rand::RngCore;
                let mut key = vec![0u8; crate::jwt::MIN_SECRET_BYTES];
                rand::rngs::OsRng.fill_bytes(&mut key);
                (key, &[][..])
            }
        };
        Ok(App {
            store,
            tokens: TokenService::new(&key, &config.jwt_issuer, &config.jwt_audience, config.jwt_ttl_secs)?
                .with_previous_keys(previous)?,
            passwords: PasswordHasher::new(),
            cursors: CursorCodec::new(&key).with_previous_keys(previous),
            on_booking: None,
            on_job: None,
            payments: None,
            payments_enabled: config.payments_enabled,
            stripe_webhook_secret: config.stripe_webhook_secret.clone(),
        })
    }

    pub fn with_payments(mut self, provider: Arc<dyn PaymentProvider>) -> Self {
        self.payments = Some(provider);
        self.payments_enabled = true;
        self
    }

    pub fn with_job_hook(mut self, hook: JobHook) -> Self {
        self.on_job = Some(hook);
        self
    }

    pub fn with_booking_hook(mut self, hook: BookingHook) -> Self {
        self.on_booking = Some(hook);
        self
    }
}
