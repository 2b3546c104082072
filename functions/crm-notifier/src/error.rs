//! Errors of this crate. CRM answers are not errors (they are [`crate::SendOutcome`]s); these are
//! bad configuration at start-up and store failures while delivering.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid environment: the binary refuses to start rather than drop notifications.
    #[error("configuration error: {0}")]
    Config(String),
    #[error("cannot build the CRM HTTP client: {0}")]
    HttpClient(#[source] shared::https_client::Error),
    /// Reading or writing the delivery record failed; the record is retried.
    #[error("store error: {0}")]
    Store(#[from] shared::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
