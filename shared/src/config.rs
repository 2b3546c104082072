//! Configuration from the environment, read once at start-up. Secrets come only from here (the
//! deployment resolves them from Secrets Manager / SSM); nothing secret has a default.

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct Config {
    pub jwt_secret: Vec<u8>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_ttl_secs: i64,
    /// `None`: the embedded store (local server only; Lambdas require a table).
    pub table_name: Option<String>,
    /// Priced events may be created: `STRIPE_SECRET_KEY` is set here, or `PAYMENTS_ENABLED=true`
    /// tells a function without the key (events) that the deployment has one.
    pub payments_enabled: bool,
    /// `STRIPE_WEBHOOK_SECRET` (`whsec_…`): the key of `POST /payments/webhook`'s signatures.
    pub stripe_webhook_secret: Option<String>,
}

pub const DEFAULT_ISSUER: &str = "ahoum-booking";
pub const DEFAULT_AUDIENCE: &str = "ahoum-booking-api";
pub const DEFAULT_TTL_SECS: i64 = 3600;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Fails when `JWT_SECRET` is missing or shorter than 32 bytes: better no service than one
    /// signing tokens with a guessable key.
    pub fn from_env() -> Result<Self> {
        let secret = var("JWT_SECRET").ok_or_else(|| Error::Config("JWT_SECRET is not set".into()))?;
        Self::from_parts(secret.into_bytes())
    }

    /// Everything from the environment but the secret (the local server may generate one).
    pub fn from_parts(jwt_secret: Vec<u8>) -> Result<Self> {
        if jwt_secret.len() < crate::jwt::MIN_SECRET_BYTES {
            return Err(Error::Config(format!("JWT_SECRET must be at least {} bytes", crate::jwt::MIN_SECRET_BYTES)));
        }
        let jwt_ttl_secs = match var("JWT_TTL_SECONDS") {
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| Error::Config("JWT_TTL_SECONDS must be a positive integer".into()))?,
            None => DEFAULT_TTL_SECS,
        };
        Ok(Config {
            jwt_secret,
            jwt_issuer: var("JWT_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.into()),
            jwt_audience: var("JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
            jwt_ttl_secs,
            table_name: var("TABLE_NAME"),
            payments_enabled: var("STRIPE_SECRET_KEY").is_some()
                || var("PAYMENTS_ENABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            stripe_webhook_secret: var("STRIPE_WEBHOOK_SECRET").map(|v| v.trim().to_string()),
        })
    }

    pub fn require_table(&self) -> Result<&str> {
        self.table_name.as_deref().ok_or_else(|| Error::Config("TABLE_NAME is not set".into()))
    }
}
