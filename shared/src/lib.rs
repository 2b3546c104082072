//! The common crate of the Ahoum booking API: domain, errors, auth primitives, configuration,
//! HTTP helpers and the `Store` port with its DynamoDB and in-memory adapters.

pub mod app;
pub mod aws;
pub mod config;
pub mod cursor;
pub mod error;
pub mod http;
#[cfg(feature = "https-client")]
pub mod https_client;
pub mod jwt;
pub mod keys;
pub mod lifecycle;
pub mod limits;
pub mod model;
pub mod offers;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod paging;
pub mod password;
pub mod payment_sweep;
pub mod payments;
pub mod policy;
pub mod secrets;
pub mod seed;
pub mod store;
pub mod table;
pub mod time;

pub use app::App;
pub use error::{Error, Result};
pub use store::Store;
