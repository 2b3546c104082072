//! Configuration read once at start-up. Nothing secret has a default. The secrets themselves
//! (`JWT_SECRET`, `STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET`) come through the `lookup` given to
//! [`Config::from_lookup`]: deployed, that is [`crate::secrets::Secrets::var`], which reads them
//! from Secrets Manager at init; locally and in tests, plain environment variables.
//!
//! The JWT key is separate ([`Config::with_jwt_secret`], and the keys still accepted after a
//! rotation, [`Config::with_previous_jwt_secrets`]): only the functions that issue or verify
//! tokens (auth, events, bookings) and the local server are given one; the payments function,
//! which checks no token, is not.

use crate::error::{Error, Result};

/// `Debug` is written by hand: the keys are shown as their count, never their bytes, so a config
/// logged while debugging a deploy leaks nothing.
#[derive(Clone)]
pub struct Config {
    /// The HS256 key of access tokens and list cursors. `None` in a binary given no key: its
    /// [`crate::App`] then holds a random per-process key, so it can neither verify a token nor
    /// a cursor issued elsewhere.
    pub jwt_secret: Option<Vec<u8>>,
    /// `JWT_PREVIOUS_SECRETS`: keys whose tokens and cursors are still accepted but that no longer
    /// sign (key rotation, docs/deploy.md). Empty unless set.
    pub jwt_previous_secrets: Vec<Vec<u8>>,
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

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HIDDEN: &str = "<redacted>";
        f.debug_struct("Config")
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| HIDDEN))
            .field("jwt_previous_secrets", &format_args!("{} key(s)", self.jwt_previous_secrets.len()))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_ttl_secs", &self.jwt_ttl_secs)
            .field("table_name", &self.table_name)
            .field("payments_enabled", &self.payments_enabled)
            .field("stripe_webhook_secret", &self.stripe_webhook_secret.as_ref().map(|_| HIDDEN))
            .finish()
    }
}

pub const DEFAULT_ISSUER: &str = "ahoum-booking";
pub const DEFAULT_AUDIENCE: &str = "ahoum-booking-api";
pub const DEFAULT_TTL_SECS: i64 = 3600;

impl Config {
    /// [`Self::from_lookup`] over the process environment (no JWT key).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Everything but the JWT key. Blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let jwt_ttl_secs = match var("JWT_TTL_SECONDS") {
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| Error::Config("JWT_TTL_SECONDS must be a positive integer".into()))?,
            None => DEFAULT_TTL_SECS,
        };
        Ok(Config {
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            jwt_issuer: var("JWT_ISSUER").unwrap_or_else(|| DEFAULT_ISSUER.into()),
            jwt_audience: var("JWT_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.into()),
            jwt_ttl_secs,
            table_name: var("TABLE_NAME"),
            payments_enabled: var("STRIPE_SECRET_KEY").is_some()
                || var("PAYMENTS_ENABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            stripe_webhook_secret: var("STRIPE_WEBHOOK_SECRET"),
        })
    }

    /// Sets the JWT key. Fails when it is shorter than 32 bytes: better no service than one
    /// signing tokens with a guessable key.
    pub fn with_jwt_secret(mut self, secret: impl Into<Vec<u8>>) -> Result<Self> {
        let secret = secret.into();
        if secret.len() < crate::jwt::MIN_SECRET_BYTES {
            return Err(Error::Config(format!("JWT_SECRET must be at least {} bytes", crate::jwt::MIN_SECRET_BYTES)));
        }
        self.jwt_secret = Some(secret);
        Ok(self)
    }

    /// Sets the previous JWT keys from `JWT_PREVIOUS_SECRETS`: comma-separated, each trimmed, blanks
    /// ignored (`None` or blank: none). Each must be at least 32 bytes, like the current key.
    pub fn with_previous_jwt_secrets(mut self, list: Option<&str>) -> Result<Self> {
        let keys: Vec<Vec<u8>> = list
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| k.as_bytes().to_vec())
            .collect();
        if let Some(i) = keys.iter().position(|k| k.len() < crate::jwt::MIN_SECRET_BYTES) {
            return Err(Error::Config(format!(
                "JWT_PREVIOUS_SECRETS: key {} of {} is shorter than {} bytes",
                i + 1,
                keys.len(),
                crate::jwt::MIN_SECRET_BYTES
            )));
        }
        self.jwt_previous_secrets = keys;
        Ok(self)
    }

    /// Everything from the environment with this JWT key (the local server may generate one).
    pub fn from_parts(jwt_secret: Vec<u8>) -> Result<Self> {
        Self::from_env()?.with_jwt_secret(jwt_secret)
    }

    pub fn require_table(&self) -> Result<&str> {
        self.table_name.as_deref().ok_or_else(|| Error::Config("TABLE_NAME is not set".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn no_jwt_key_is_required_or_read() {
        // The payments function's case: no JWT variable at all.
        let c = parse(&[("TABLE_NAME", "t"), ("STRIPE_WEBHOOK_SECRET", " whsec_x ")]).unwrap();
        assert!(c.jwt_secret.is_none());
        assert_eq!(c.stripe_webhook_secret.as_deref(), Some("whsec_x"));
        // A JWT_SECRET in the lookup is not taken up by from_lookup either: only with_jwt_secret sets it.
        assert!(parse(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap().jwt_secret.is_none());
    }

    #[test]
    fn jwt_key_must_be_32_bytes() {
        let c = parse(&[]).unwrap();
        assert!(c.clone().with_jwt_secret("31-bytes-is-not-enough-for-jwt!").is_err());
        assert_eq!(
            c.with_jwt_secret("32-bytes-is-enough-for-a-jwt-key").unwrap().jwt_secret.as_deref(),
            Some(&b"32-bytes-is-enough-for-a-jwt-key"[..])
        );
    }

    #[test]
    fn previous_jwt_keys_are_a_comma_separated_list() {
        let c = parse(&[]).unwrap();
        assert!(c.jwt_previous_secrets.is_empty());
        let (a, b) = ("a".repeat(32), "b".repeat(40));
        for none in [None, Some(""), Some(" , ,")] {
            assert!(c.clone().with_previous_jwt_secrets(none).unwrap().jwt_previous_secrets.is_empty(), "{none:?}");
        }
        let list = format!(" {a} ,,{b},{a}\n");
        let keys = c.clone().with_previous_jwt_secrets(Some(&list)).unwrap().jwt_previous_secrets;
        assert_eq!(keys, [a.as_bytes(), b.as_bytes(), a.as_bytes()], "duplicates are harmless");
        let err = c.with_previous_jwt_secrets(Some(&format!("{a},too-short-key"))).unwrap_err().to_string();
        assert!(err.contains("key 2 of 2 is shorter than 32 bytes") && !err.contains("too-short"), "{err}");
    }

    #[test]
    fn debug_output_shows_no_key() {
        let c = parse(&[("STRIPE_WEBHOOK_SECRET", "whsec_do_not_print")])
            .unwrap()
            .with_jwt_secret("32-bytes-is-enough-for-a-jwt-key")
            .unwrap();
        let text = format!("{c:?}");
        for secret in ["whsec_do_not_print", "32-bytes-is-enough", "51, 50, 45"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("jwt_secret: Some(\"<redacted>\")"), "{text}");
    }
}
