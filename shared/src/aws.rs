//! The AWS SDK configuration every binary builds once at start-up.
//!
//! The SDK's default HTTPS client parses every certificate of the system trust store on its first
//! use (measured: ~3.7 ms of a ~7 ms init on x86_64), before any request is served. AWS endpoints
//! only ever present chains to Amazon Trust Services roots, so the deployed functions trust just
//! those, bundled in `certs/aws-roots.pem`: less init work and a narrower trust store. With an
//! endpoint override (moto, DynamoDB Local, a proxy) the SDK's default client is kept, because
//! such an endpoint may use any certificate.
//!
//! Lambda hands the execution role's credentials to the function as environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). The functions build their
//! client from those and `AWS_REGION` alone ([`lambda_dynamodb_client`]); `aws-config`'s default
//! chain would first build every other source, including an STS client for web identity (its
//! endpoint rules and HTTP client): ~0.8 M of the ~2.0 M instructions a function ran before its
//! first event. The admin CLI and the local server keep `aws-config` ([`sdk_config`]), which
//! takes environment credentials the same way when they are set and otherwise the default chain
//! (profiles, SSO, containers).

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::timeout::TimeoutConfig;
use std::sync::OnceLock;
use std::time::Duration;

/// Amazon Root CA 1–4 and the Starfield roots that cross-sign them.
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// A variable's value, trimmed; `None` when unset or blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Both halves of a key pair in the environment, as Lambda sets them.
fn env_credentials() -> bool {
    env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some()
}

/// The SDK's standard endpoint variables, the service-specific one first.
fn endpoint_override() -> Option<String> {
    env("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| env("AWS_ENDPOINT_URL"))
}

/// An HTTPS client that trusts only the bundled AWS roots; `None` if they were refused (then the
/// SDK's default client, with the system trust store, is used). Built once per process: the
/// init-time Secrets Manager client and the DynamoDB client share it, so its ~0.2 M instructions
/// of certificate decoding are paid once.
fn aws_roots_client() -> Option<SharedHttpClient> {
    static CLIENT: OnceLock<Option<SharedHttpClient>> = OnceLock::new();
    CLIENT.get_or_init(build_aws_roots_client).clone()
}

fn build_aws_roots_client() -> Option<SharedHttpClient> {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM);
    match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => Some(
            Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https(),
        ),
        // Unreachable with the bundled roots; the SDK default still works, only slower to start.
        Err(e) => {
            tracing::warn!(error = %e, "bundled AWS roots rejected; using the system trust store");
            None
        }
    }
}

/// How long the functions wait for DynamoDB (docs/deploy.md, "Timeouts"). Without these the SDK
/// sets no attempt or operation timeout at all, so a connection that stalls after the request was
/// sent runs into the Lambda timeout and the client gets API Gateway's bare 5xx instead of our
/// 503 with `Retry-After`. DynamoDB answers in single-digit milliseconds in-region, so a second
/// per attempt leaves two orders of magnitude of headroom; AWS's own guidance for latency-aware
/// DynamoDB clients is the same shape: a short attempt timeout, a total timeout across retries, a
/// short base backoff
/// (https://aws.amazon.com/blogs/database/tuning-aws-java-sdk-http-request-settings-for-latency-aware-amazon-dynamodb-applications/).
pub mod dynamodb_limits {
    use std::time::Duration;

    /// TCP connect and TLS handshake of a new connection.
    pub const CONNECT: Duration = Duration::from_secs(1);
    /// Request sent to first response byte.
    pub const READ: Duration = Duration::from_secs(1);
    /// One attempt, connect to last byte.
    pub const ATTEMPT: Duration = Duration::from_secs(1);
    /// One SDK call, every attempt and backoff included: the figure docs/deploy.md multiplies.
    pub const OPERATION: Duration = Duration::from_secs(2);
    /// The standard retry mode's default; within [`OPERATION`] only two timed-out attempts fit.
    pub const MAX_ATTEMPTS: u32 = 3;
    /// First retry after 0–50 ms, the second after 0–100 ms (the SDK's default base is 1 s).
    pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
}

/// [`dynamodb_limits`] as the SDK takes them.
pub fn dynamodb_timeouts() -> aws_smithy_types::timeout::TimeoutConfig {
    use dynamodb_limits::*;
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT)
        .read_timeout(READ)
        .operation_attempt_timeout(ATTEMPT)
        .operation_timeout(OPERATION)
        .build()
}

/// Standard retry mode with [`dynamodb_limits::MAX_ATTEMPTS`] and a short base backoff.
pub fn dynamodb_retries() -> aws_smithy_types::retry::RetryConfig {
    use dynamodb_limits::*;
    aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(OPERATION)
}

/// The DynamoDB client of a Lambda function, from what Lambda puts in every function's
/// environment: `AWS_REGION` and the execution role's credentials. Unlike [`sdk_config`] it does
/// not go through `aws-config` at all (provider chains, profile files, IMDS, SSO, an STS client):
/// none of that can apply inside Lambda, and leaving it out of the functions removes its code
/// from their binaries (smaller zips) and its set-up from their init. The endpoint variables of
/// [`sdk_config`] still apply (moto, `sam local`); `aws-config`'s other variables
/// (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`, FIPS and dual-stack switches) do not: the timeouts and
/// retries are [`dynamodb_limits`]. The admin CLI and the local server, which run on laptops with
/// profiles and SSO, keep [`sdk_config`].
pub fn lambda_dynamodb_client() -> Result<aws_sdk_dynamodb::Client, crate::error::Error> {
    lambda_dynamodb_client_from(env)
}

/// [`lambda_dynamodb_client`] over any variable source (trimmed, blank = unset), so a test can
/// point it at its own endpoint without touching the process environment.
pub fn lambda_dynamodb_client_from(
    env: impl Fn(&str) -> Option<String>,
) -> Result<aws_sdk_dynamodb::Client, crate::error::Error> {
    let missing = |name: &str| crate::error::Error::Config(format!("{name} is not set (Lambda sets it)"));
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).ok_or_else(|| missing("AWS_REGION"))?;
    let key = env("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?;
    let secret = env("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?;
    let credentials = Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "Lambda environment");
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .timeout_config(dynamodb_timeouts())
        .retry_config(dynamodb_retries());
    match env("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| env("AWS_ENDPOINT_URL")) {
        Some(url) => {
            config.set_endpoint_url(Some(url));
        }
        None => {
            config.set_http_client(aws_roots_client());
        }
    }
    Ok(aws_sdk_dynamodb::Client::from_conf(config.build()))
}

/// Connect, per-attempt and whole-call limits of the start-up `GetSecretValue`s. Lambda allows the
/// init phase 10 s (then it retries the init on the first invocation), so a stalled call ends well
/// before that, after up to three attempts (the SDK's standard retry mode).
pub const SECRETS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const SECRETS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
pub const SECRETS_OPERATION_TIMEOUT: Duration = Duration::from_secs(7);

/// The Secrets Manager client of a Lambda function's init ([`crate::secrets`]): region and
/// credentials from Lambda's environment as for [`lambda_dynamodb_client`], no `aws-config`.
/// The endpoint override is `AWS_ENDPOINT_URL_SECRETS_MANAGER` (the SDK's name for this service),
/// else `AWS_ENDPOINT_URL` (moto in the tests).
pub fn lambda_secrets_client() -> Result<aws_sdk_secretsmanager::Client, crate::error::Error> {
    let missing = |name: &str| crate::error::Error::Config(format!("{name} is not set (Lambda sets it)"));
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).ok_or_else(|| missing("AWS_REGION"))?;
    let key = env("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?;
    let secret = env("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?;
    let credentials = Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "Lambda environment");
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(SECRETS_CONNECT_TIMEOUT)
        .operation_attempt_timeout(SECRETS_ATTEMPT_TIMEOUT)
        .operation_timeout(SECRETS_OPERATION_TIMEOUT)
        .build();
    let mut config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .timeout_config(timeouts);
    // An https override may present any certificate: the SDK's default client. Plain http (moto in
    // the tests, `scripts/invoke-test.sh`) needs no trust store, so it gets the shared client the
    // deployed functions use, and those runs differ from the deployed path only by TLS.
    let endpoint = env("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| env("AWS_ENDPOINT_URL"));
    if endpoint.as_deref().is_none_or(|url| url.starts_with("http://")) {
        config.set_http_client(aws_roots_client());
    }
    config.set_endpoint_url(endpoint);
    Ok(aws_sdk_secretsmanager::Client::from_conf(config.build()))
}

pub async fn sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if env_credentials() {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    if endpoint_override().is_some() {
        return loader.load().await;
    }
    match aws_roots_client() {
        Some(client) => loader.http_client(client).load().await,
        None => loader.load().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    /// The SDK's rustls connector turns the PEM into trust anchors with these same calls and
    /// panics on the first connection if one fails: prove here that all of them load.
    #[test]
    fn bundled_roots_load_as_rustls_trust_anchors() {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(AWS_ROOTS_PEM).collect::<Result<_, _>>().unwrap();
        assert_eq!(certs.len(), 6);
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).unwrap();
        }
        assert_eq!(roots.len(), 6);
    }
}
