//! Secrets read once at start-up, so that no secret value is part of a function's configuration.
//!
//! A value in a Lambda environment variable is readable by anyone allowed
//! `lambda:GetFunctionConfiguration`, a "read-only" permission. Deployed, a function's environment
//! therefore carries only the *id* of each secret (`JWT_SECRET_ID`, the ARN or name of a Secrets
//! Manager secret), and `main` reads the values with `GetSecretValue` before the runtime loop
//! starts; they then live in the process for the sandbox's life (a rotated value reaches new
//! sandboxes only: docs/deploy.md, Secrets).
//!
//! Precedence, for each secret `NAME` a binary asks for:
//! 1. the variable `NAME` itself, when set and not blank: `make run`, `cargo lambda watch`,
//!    `sam local` and the tests pass values directly, and nothing calls Secrets Manager;
//! 2. otherwise `NAME_ID`: the `SecretString` of that secret, trimmed. A secret that cannot be
//!    read, or is blank, fails start-up (Lambda reports an init error and retries the init);
//! 3. otherwise absent: the caller decides what that means (the JWT key is required, a missing
//!    Stripe key turns payments off).
//!
//! One `GetSecretValue` per secret (the API takes one id), all sent at once on one client; the
//! client is built only when a secret has to be fetched, and dropped after start-up.

use crate::error::{Error, Result};
use std::fmt;
use std::time::Instant;

/// The HS256 key of access tokens and list cursors (auth, events, bookings).
pub const JWT_SECRET: &str = "JWT_SECRET";
/// Keys still accepted after a rotation, comma-separated (auth, events, bookings; optional:
/// with neither it nor its `_ID` set, nothing is fetched for it).
pub const JWT_PREVIOUS_SECRETS: &str = "JWT_PREVIOUS_SECRETS";
/// Stripe's API key (bookings, payments, crm-sweeper).
pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
/// The signing secret of Stripe's webhook endpoint (payments).
pub const STRIPE_WEBHOOK_SECRET: &str = "STRIPE_WEBHOOK_SECRET";
/// The Standard Webhooks key of the CRM deliveries (crm-notifier, crm-sweeper).
pub const CRM_WEBHOOK_SECRET: &str = "CRM_WEBHOOK_SECRET";

/// The suffix of the variable naming a secret's Secrets Manager id.
pub const ID_SUFFIX: &str = "_ID";

/// The values of the secrets a binary asked for. `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<(&'static str, String)>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.iter().map(|(name, _)| name)).finish()
    }
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

impl Secrets {
    /// [`Self::load_with`] over the process environment.
    pub async fn load(names: &[&'static str]) -> Result<Self> {
        Self::load_with(names, |name| std::env::var(name).ok()).await
    }

    /// The secrets `names`, each from `NAME` or else from the secret `NAME_ID` names (module docs).
    /// The Secrets Manager client, when one is needed, comes from the process environment
    /// ([`crate::aws::lambda_secrets_client`]); `lookup` supplies only the names and ids.
    pub async fn load_with(names: &[&'static str], lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut values = Vec::with_capacity(names.len());
        let mut wanted = Vec::new();
        for &name in names {
            match non_blank(lookup(name)) {
                Some(value) => values.push((name, value)),
                None => {
                    if let Some(id) = non_blank(lookup(&format!("{name}{ID_SUFFIX}"))) {
                        wanted.push((name, id));
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(Secrets { values });
        }
        let started = Instant::now();
        let client = crate::aws::lambda_secrets_client().inspect_err(|e| {
            tracing::error!(error = %e, "cannot build the Secrets Manager client");
        })?;
        let fetched = futures::future::join_all(wanted.iter().map(|(name, id)| fetch(&client, name, id))).await;
        for result in fetched {
            values.push(result?);
        }
        tracing::info!(
            secrets = ?wanted.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "secrets read from Secrets Manager"
        );
        Ok(Secrets { values })
    }

    /// The value of `name`, if it was asked for and found.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or a configuration error naming both variables.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| Error::Config(format!("{name} is not set (nor {name}{ID_SUFFIX})")))
    }

    /// A variable lookup for the configuration parsers: a loaded secret, else the process
    /// environment (the settings that are not secret).
    pub fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string).or_else(|| std::env::var(name).ok())
    }
}

/// One `GetSecretValue`. Errors name the variable and the secret id, never a value.
async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    name: &'static str,
    id: &str,
) -> Result<(&'static str, String)> {
    let fail = |reason: String| {
        tracing::error!(secret = name, secret_id = %id, %reason, "cannot read secret");
        Error::Config(format!("{name}: cannot read {name}{ID_SUFFIX}={id} from Secrets Manager: {reason}"))
    };
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| fail(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()))?;
    match non_blank(out.secret_string().map(str::to_string)) {
        Some(value) => Ok((name, value)),
        None => Err(fail("the secret has no SecretString, or a blank one".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[tokio::test]
    async fn plain_values_win_and_nothing_is_fetched() {
        // An id that no Secrets Manager could resolve: reaching for it would fail the load.
        let vars = lookup(&[(JWT_SECRET, "  key  "), ("JWT_SECRET_ID", "arn:aws:secretsmanager:xx:1:secret:none")]);
        let secrets = Secrets::load_with(&[JWT_SECRET, STRIPE_SECRET_KEY], vars).await.unwrap();
        assert_eq!(secrets.get(JWT_SECRET), Some("key"));
        assert_eq!(secrets.get(STRIPE_SECRET_KEY), None);
        assert!(secrets.require(STRIPE_SECRET_KEY).unwrap_err().to_string().contains("STRIPE_SECRET_KEY_ID"));
    }

    #[test]
    fn debug_shows_names_only() {
        let secrets = Secrets { values: vec![(JWT_SECRET, "do-not-print-me".into())] };
        let shown = format!("{secrets:?}");
        assert!(shown.contains(JWT_SECRET) && !shown.contains("do-not-print-me"), "{shown}");
    }
}
