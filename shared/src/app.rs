//! Everything a handler needs, built once per process (Lambda init or local server start).

use crate::config::Config;
use crate::cursor::CursorCodec;
use crate::error::Result;
use crate::jwt::TokenService;
use crate::model::Booking;
use crate::password::PasswordHasher;
use crate::store::Store;
use std::sync::Arc;

/// Called after a booking commits. Only the local server sets one (to deliver the CRM webhook in
/// the background); deployed, the DynamoDB stream drives `crm-notifier` instead.
pub type BookingHook = Arc<dyn Fn(&Booking) + Send + Sync>;

pub struct App<S> {
    pub store: S,
    pub tokens: TokenService,
    pub passwords: PasswordHasher,
    pub cursors: CursorCodec,
    pub on_booking: Option<BookingHook>,
}

impl<S: Store> App<S> {
    pub fn new(store: S, config: &Config) -> Result<Self> {
        Ok(App {
            store,
            tokens: TokenService::new(
                &config.jwt_secret,
                &config.jwt_issuer,
                &config.jwt_audience,
                config.jwt_ttl_secs,
            )?,
            passwords: PasswordHasher::new(),
            cursors: CursorCodec::new(&config.jwt_secret),
            on_booking: None,
        })
    }

    pub fn with_booking_hook(mut self, hook: BookingHook) -> Self {
        self.on_booking = Some(hook);
        self
    }
}
