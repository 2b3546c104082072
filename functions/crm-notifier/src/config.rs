//! CRM settings from the environment, read once at start-up.

use crate::error::{Error, Result};
use crate::signing::SigningKey;
use reqwest::Url;
use std::time::Duration;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(2000);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
/// The most one stream invocation spends retrying with backoff before it reports the record.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);
/// Added to the request timeout for a lease: a sender's POST has always ended before its lease.
pub const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// Kept free before the Lambda deadline besides one request timeout: the store writes after it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct CrmConfig {
    /// `None`: no CRM configured; bookings are acknowledged without a POST (logged).
    pub webhook_url: Option<Url>,
    /// `None`: requests are sent unsigned.
    pub signing_key: Option<SigningKey>,
    pub connect_timeout: Duration,
    /// Whole request, connect to last response byte.
    pub timeout: Duration,
    /// In-invocation retries of one stream batch stop after this long (then the record is
    /// reported as a batch item failure). Zero: one attempt per record and invocation.
    pub retry_budget: Duration,
}

impl CrmConfig {
    /// Config for `url` with the default timeouts and no signature.
    pub fn new(webhook_url: Option<Url>) -> Self {
        CrmConfig {
            webhook_url,
            signing_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            retry_budget: DEFAULT_RETRY_BUDGET,
        }
    }

    /// How long a claim on a delivery record lasts: longer than any POST can take, so the lease
    /// only ever expires for a sender that died.
    pub fn lease(&self) -> Duration {
        self.timeout.max(self.connect_timeout) + LEASE_MARGIN
    }

    /// The time one more attempt needs before the invocation's deadline.
    pub fn deadline_margin(&self) -> Duration {
        self.timeout.max(self.connect_timeout) + DEADLINE_MARGIN
    }

    /// Reads `CRM_WEBHOOK_URL`, `CRM_WEBHOOK_SECRET`, `CRM_CONNECT_TIMEOUT_MS`, `CRM_TIMEOUT_MS`,
    /// `CRM_RETRY_BUDGET_SECONDS`.
    /// A malformed value is an error rather than a default: a typo in the secret must not turn
    /// into unsigned webhooks.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any variable source, so tests need not mutate the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let webhook_url = var("CRM_WEBHOOK_URL").map(|raw| parse_url(&raw)).transpose()?;
        let signing_key = var("CRM_WEBHOOK_SECRET").map(|raw| SigningKey::parse(&raw)).transpose()?;
        let millis = |name: &str, default: Duration| -> Result<Duration> {
            match var(name) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(Duration::from_millis)
                    .ok_or_else(|| Error::Config(format!("{name} must be a positive number of milliseconds"))),
            }
        };
        let retry_budget = match var("CRM_RETRY_BUDGET_SECONDS") {
            None => DEFAULT_RETRY_BUDGET,
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|secs| *secs <= 900)
                .map(Duration::from_secs)
                .ok_or_else(|| Error::Config("CRM_RETRY_BUDGET_SECONDS must be 0 to 900 seconds".into()))?,
        };
        Ok(CrmConfig {
            webhook_url,
            signing_key,
            connect_timeout: millis("CRM_CONNECT_TIMEOUT_MS", DEFAULT_CONNECT_TIMEOUT)?,
            timeout: millis("CRM_TIMEOUT_MS", DEFAULT_TIMEOUT)?,
            retry_budget,
        })
    }
}

/// The URL may carry a token, so errors name the variable, never the value.
fn parse_url(raw: &str) -> Result<Url> {
    let url = Url::parse(raw.trim()).map_err(|_| Error::Config("CRM_WEBHOOK_URL is not a valid URL".into()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Config("CRM_WEBHOOK_URL must be an http(s) URL".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<CrmConfig> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CrmConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn everything_is_optional_with_default_timeouts() {
        let c = parse(&[]).unwrap();
        assert!(c.webhook_url.is_none() && c.signing_key.is_none());
        assert_eq!((c.connect_timeout, c.timeout), (DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT));
        assert_eq!(c.retry_budget, DEFAULT_RETRY_BUDGET);
        assert_eq!(c.lease(), Duration::from_secs(35), "request timeout + margin");
    }

    #[test]
    fn values_are_parsed_and_bad_ones_refused() {
        let c = parse(&[
            ("CRM_WEBHOOK_URL", "https://crm.example.com/hooks?token=abc"),
            ("CRM_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("CRM_CONNECT_TIMEOUT_MS", "150"),
            ("CRM_TIMEOUT_MS", "900"),
            ("CRM_RETRY_BUDGET_SECONDS", "0"),
        ])
        .unwrap();
        assert_eq!(c.retry_budget, Duration::ZERO);
        assert_eq!(c.webhook_url.unwrap().host_str(), Some("crm.example.com"));
        assert!(c.signing_key.is_some());
        assert_eq!((c.connect_timeout, c.timeout), (Duration::from_millis(150), Duration::from_millis(900)));

        for bad in [
            ("CRM_WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("CRM_WEBHOOK_SECRET", "whsec_c2hvcnQ="),
            ("CRM_WEBHOOK_URL", "not a url"),
            ("CRM_WEBHOOK_URL", "ftp://crm.example.com/"),
            ("CRM_TIMEOUT_MS", "0"),
            ("CRM_CONNECT_TIMEOUT_MS", "2s"),
            ("CRM_RETRY_BUDGET_SECONDS", "-1"),
            ("CRM_RETRY_BUDGET_SECONDS", "3600"),
        ] {
            let err = parse(&[bad]).expect_err(&format!("{bad:?} accepted"));
            assert!(!err.to_string().contains(bad.1), "error echoes the value: {err}");
        }
    }
}
