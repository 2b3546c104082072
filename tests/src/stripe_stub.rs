//! The Stripe stand-in (crate `stripe-standin`), plus what ties it to the payments crate: a
//! client configured for it.

pub use stripe_standin::*;

pub trait StripeStubExt {
    /// A client configuration for this stand-in, with short timeouts.
    fn config(&self) -> payments::StripeConfig;
    fn client(&self) -> payments::StripeClient;
}

impl StripeStubExt for StripeStub {
    fn config(&self) -> payments::StripeConfig {
        let mut c = payments::StripeConfig::new(STUB_SECRET_KEY);
        c.api_base = self.url();
        c.connect_timeout = std::time::Duration::from_secs(1);
        c.timeout = std::time::Duration::from_secs(5);
        c
    }

    fn client(&self) -> payments::StripeClient {
        payments::StripeClient::new(self.config())
    }
}
