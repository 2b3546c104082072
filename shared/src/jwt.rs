//! HS256 access tokens. The algorithm is pinned and `exp`, `iss` and `aud` are always checked;
//! keys are built once at start-up.

use crate::error::{Error, Result};
use crate::model::{Role, User};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const MIN_SECRET_BYTES: usize = 32;
pub const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// Carried so a booking can record who booked (for the CRM) without reading the user item.
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// The caller as proven by a verified token: who they are, not what they may do. The token's
/// `role` claim is informational for clients; privileges are read from the store
/// ([`crate::policy::Principal`]) so a role change applies on the next request.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthUser {
    pub id: String,
    pub email: String,
    pub name: String,
}

#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl TokenService {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_secs: i64) -> Result<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!("JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")));
        }
        if ttl_secs <= 0 {
            return Err(Error::Config("JWT_TTL_SECONDS must be positive".into()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(TokenService {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            ttl_secs,
        })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn issue(&self, user: &User) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        self.issue_claims(&Claims {
            sub: user.id.clone(),
            role: user.role,
            email: user.email.clone(),
            name: user.name.clone(),
            iat: now,
            exp: now + self.ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        })
    }

    /// Signs arbitrary claims with the service key (tests use it to forge expired tokens).
    pub fn issue_claims(&self, claims: &Claims) -> Result<String> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(Error::internal)
    }

    pub fn verify(&self, token: &str) -> Result<AuthUser> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            tracing::debug!(error = %e, "rejected token");
            Error::Unauthorized("invalid or expired token")
        })?;
        let c = data.claims;
        Ok(AuthUser { id: c.sub, email: c.email, name: c.name })
    }
}
