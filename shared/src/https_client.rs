//! The HTTPS client of the functions that call APIs other than AWS (the CRM webhook, payments),
//! on the crypto stack the AWS SDK links already: rustls with the *aws-lc-rs* provider.
//!
//! reqwest's `rustls-tls` feature brings its own provider, *ring*: a second crypto library in the
//! binary (~0.2 MB more zipped) next to the SDK's aws-lc. Here reqwest is built without a
//! provider (`rustls-tls-webpki-roots-no-provider`) and gets a ready rustls configuration: the
//! aws-lc-rs provider, TLS 1.2 and 1.3, the Mozilla roots of `webpki-roots` compiled into the
//! binary (no trust store read from disk), ALPN `h2` then `http/1.1`, the same as reqwest's own
//! rustls setup. Nothing is installed process-wide (no `CryptoProvider::install_default`), so
//! building clients any number of times never panics.
//!
//! Only with the `https-client` feature; `cargo test -p shared --features https-client` runs the
//! tests of this module.

use std::sync::Arc;
use std::time::Duration;

pub use reqwest;

/// Why no client could be built (only with a broken TLS setup: unreachable in practice).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The rustls configuration every client gets: aws-lc-rs, TLS 1.2 + 1.3, webpki roots, ALPN
/// `h2` and `http/1.1`.
pub fn tls_config() -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A builder with [`tls_config`] and both timeouts set, for callers that add their own settings
/// (user agent, redirect policy: reqwest's default follows up to 10 redirects, and a redirected
/// POST becomes a GET, so non-idempotent callers usually want `redirect::Policy::none()`).
pub fn https_client_builder(connect_timeout: Duration, timeout: Duration) -> Result<reqwest::ClientBuilder, Error> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls_config()?)
        .connect_timeout(connect_timeout)
        .timeout(timeout))
}

/// A pooled client with [`tls_config`]: `connect_timeout` for the TCP + TLS connection,
/// `timeout` for a whole request. Build one per process (Lambda init) and reuse it.
pub fn https_client(connect_timeout: Duration, timeout: Duration) -> Result<reqwest::Client, Error> {
    Ok(https_client_builder(connect_timeout, timeout)?.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_config_uses_aws_lc_the_webpki_roots_and_both_alpn_protocols() {
        let config = tls_config().unwrap();
        assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        // The aws-lc-rs provider: its cipher suites and key exchange groups, in its order.
        let aws_lc = rustls::crypto::aws_lc_rs::default_provider();
        let suites = |p: &rustls::crypto::CryptoProvider| p.cipher_suites.iter().map(|s| s.suite()).collect::<Vec<_>>();
        let groups = |p: &rustls::crypto::CryptoProvider| p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>();
        assert_eq!(suites(config.crypto_provider()), suites(&aws_lc));
        assert_eq!(groups(config.crypto_provider()), groups(&aws_lc));
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
    }

    /// No global provider is installed: building twice (one client per function and process,
    /// several in one test binary) must neither panic nor fail.
    #[test]
    fn the_client_builds_twice_without_a_process_default_provider() {
        let a = https_client(Duration::from_secs(2), Duration::from_secs(5));
        let b = https_client(Duration::from_secs(2), Duration::from_secs(5));
        assert!(a.is_ok(), "{:?}", a.err());
        assert!(b.is_ok(), "{:?}", b.err());
        assert!(https_client_builder(Duration::from_secs(1), Duration::from_secs(1)).unwrap().build().is_ok());
        // A client built here must not have installed a default for the rest of the process.
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    }
}
