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
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). When they are set, the
//! SDK is given just that provider: the default chain would build every other source first,
//! including an STS client for web identity (its endpoint rules and HTTP client), which was
//! ~0.8 M of the ~2.0 M instructions a function ran before its first event. Elsewhere (a laptop
//! with a profile, SSO, a container) the default chain is kept.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder;

/// Amazon Root CA 1–4 and the Starfield roots that cross-sign them.
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// Both halves of a key pair in the environment, as Lambda sets them.
fn env_credentials() -> bool {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].iter().all(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

fn endpoint_overridden() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

pub async fn sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if env_credentials() {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    if endpoint_overridden() {
        return loader.load().await;
    }
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM);
    let client = match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => {
            Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https()
        }
        // Unreachable with the bundled roots; the SDK default still works, only slower to start.
        Err(e) => {
            tracing::warn!(error = %e, "bundled AWS roots rejected; using the system trust store");
            return loader.load().await;
        }
    };
    loader.http_client(client).load().await
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
