//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>), so the CRM can verify the
//! sender with any of the spec's libraries.

use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// Below this an HMAC key is guessable; the spec recommends 24–64 bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// The decoded `CRM_WEBHOOK_SECRET`. `Debug` is redacted so the key never reaches a log line.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>`; the error never echoes the secret.
    pub fn parse(secret: &str) -> Result<Self> {
        let encoded = secret
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| Error::Config(format!("CRM_WEBHOOK_SECRET must start with `{PREFIX}`")))?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| Error::Config("CRM_WEBHOOK_SECRET is not valid base64 after `whsec_`".into()))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(Error::Config(format!("CRM_WEBHOOK_SECRET must decode to at least {MIN_KEY_BYTES} bytes")));
        }
        Ok(SigningKey(key))
    }

    /// The `webhook-signature` header value: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            // HMAC accepts keys of any length; this arm cannot run.
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_prefixed_base64_of_16_bytes() {
        let sixteen = STANDARD.encode([7u8; 16]);
        assert!(SigningKey::parse(&format!("whsec_{sixteen}")).is_ok());
        assert!(SigningKey::parse(&sixteen).is_err(), "missing prefix accepted");
        assert!(SigningKey::parse("whsec_not*base64").is_err());
        assert!(SigningKey::parse(&format!("whsec_{}", STANDARD.encode([7u8; 15]))).is_err());
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The test vector published with the Standard Webhooks specification.
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
