//! HS256 access tokens. The algorithm is pinned and `exp`, `iss` and `aud` are always checked;
//! keys are built once at start-up.
//!
//! Key rotation: every token names its signing key in the `kid` header. Only the current key
//! (`JWT_SECRET`) signs; it and the previous keys (`JWT_PREVIOUS_SECRETS`) verify, each only the
//! tokens whose `kid` names it, so rotating the secret logs nobody out (docs/deploy.md, Rotating
//! the JWT key).

use crate::error::{Error, Result};
use crate::model::{Role, User};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::OnceLock;

pub const MIN_SECRET_BYTES: usize = 32;
pub const LEEWAY_SECS: u64 = 30;

/// What a token says, and nothing more: no email or name, so a token pasted into a log or a bug
/// report reveals no personal data (the payload is only base64, not encrypted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
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
}

/// The `kid` of a key: the first 12 bytes of HMAC-SHA256(key, "ahoum-kid-v1"), base64url.
///
/// Derived rather than configured, so every function given the same secret names it alike and no
/// operator can pair a key with the wrong id. A keyed one-way function reveals nothing of the key:
/// the only thing a `kid` lets anyone test is a guess of the whole key, which every signed token
/// already allows. The fixed message differs from every JWT signing input (those always contain a
/// `.`) and from the cursor key's derivation ([`crate::cursor`]), so a `kid` is neither a token
/// signature nor a cursor key. 96 bits: two keys colliding is not a practical concern.
pub fn key_id(secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"ahoum-kid-v1");
    URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..12])
}

#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    /// The signing key first, then the previous ones.
    secrets: Vec<Vec<u8>>,
    /// Derived from `secrets` on first use rather than at init: each id costs an HMAC, and init
    /// is measured against a floor (docs/benchmarks.md), while the first request pays it once.
    keys: OnceLock<Keys>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

#[derive(Clone)]
struct Keys {
    /// The signing key's id, put in every token's header.
    kid: String,
    /// Every key that verifies, with its id, the signing key first. A list, not a map: it holds
    /// one to three keys.
    decoding: Vec<(String, DecodingKey)>,
}

fn check_length(secret: &[u8], name: &str) -> Result<()> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(Error::Config(format!("{name} must be at least {MIN_SECRET_BYTES} bytes")));
    }
    Ok(())
}

impl TokenService {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_secs: i64) -> Result<Self> {
        check_length(secret, "JWT_SECRET")?;
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
            secrets: vec![secret.to_vec()],
            keys: OnceLock::new(),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            ttl_secs,
        })
    }

    /// Also accepts tokens signed with these keys (`JWT_PREVIOUS_SECRETS`); they never sign.
    /// Each must be at least 32 bytes, like the signing key. Repeating a key (even the signing
    /// one) is harmless: it has the same `kid`.
    pub fn with_previous_keys<K: AsRef<[u8]>>(mut self, previous: &[K]) -> Result<Self> {
        for secret in previous {
            let secret = secret.as_ref();
            check_length(secret, "every key of JWT_PREVIOUS_SECRETS")?;
            self.secrets.push(secret.to_vec());
        }
        self.keys = OnceLock::new();
        Ok(self)
    }

    fn keys(&self) -> &Keys {
        self.keys.get_or_init(|| {
            let mut decoding: Vec<(String, DecodingKey)> = Vec::with_capacity(self.secrets.len());
            for secret in &self.secrets {
                let kid = key_id(secret);
                if !decoding.iter().any(|(known, _)| *known == kid) {
                    decoding.push((kid, DecodingKey::from_secret(secret)));
                }
            }
            Keys { kid: decoding[0].0.clone(), decoding }
        })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.keys().kid
    }

    pub fn issue(&self, user: &User) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        self.issue_claims(&Claims {
            sub: user.id.clone(),
            role: user.role,
            iat: now,
            exp: now + self.ttl_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        })
    }

    /// Signs arbitrary claims with the service key (tests use it to forge expired tokens).
    pub fn issue_claims(&self, claims: &Claims) -> Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid().to_string());
        encode(&header, claims, &self.encoding).map_err(Error::internal)
    }

    /// The header picks the key: `alg` must be HS256 and `kid` one of ours (a missing, unknown or
    /// non-string `kid` is refused: trying every key would let a token name no key at all). A
    /// token signed with one key but naming another fails that key's signature check.
    pub fn verify(&self, token: &str) -> Result<AuthUser> {
        let reject = |reason: &dyn std::fmt::Display| {
            tracing::debug!(%reason, "rejected token");
            Error::Unauthorized("invalid or expired token")
        };
        let header = decode_header(token).map_err(|e| reject(&e))?;
        if header.alg != Algorithm::HS256 {
            return Err(reject(&"algorithm is not HS256"));
        }
        let kid = header.kid.ok_or_else(|| reject(&"no kid"))?;
        let key = self.keys().decoding.iter().find(|(known, _)| *known == kid).map(|(_, key)| key);
        let key = key.ok_or_else(|| reject(&"unknown kid"))?;
        let data = decode::<Claims>(token, key, &self.validation).map_err(|e| reject(&e))?;
        Ok(AuthUser { id: data.claims.sub })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const CURRENT: &[u8] = b"current-key-0123456789abcdef0123456789";
    const OLD: &[u8] = b"old-key-0123456789abcdef0123456789abcdef";
    const ISS: &str = "iss";
    const AUD: &str = "aud";

    fn service(secret: &[u8]) -> TokenService {
        TokenService::new(secret, ISS, AUD, 600).unwrap()
    }

    fn user(role: Role) -> User {
        User {
            id: "01USER".into(),
            name: "Asha Rao".into(),
            email: "asha@example.com".into(),
            role,
            password_hash: "$argon2id$x".into(),
            session_epoch: 0,
            created_at: chrono::Utc::now(),
        }
    }

    fn claims() -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"sub": "01USER", "role": "attendee", "iat": now, "exp": now + 600, "iss": ISS, "aud": AUD})
    }

    /// A token with exactly this header and payload, HS256-signed with `secret`.
    fn craft(header: &Value, payload: &Value, secret: &[u8]) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", b64(header), b64(payload));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    fn header_of(token: &str) -> Value {
        let first = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).unwrap()).unwrap()
    }

    #[test]
    fn tokens_name_their_key_and_verify() {
        let s = service(CURRENT);
        let user = user(Role::Attendee);
        let token = s.issue(&user).unwrap();
        assert_eq!(header_of(&token), json!({"alg": "HS256", "typ": "JWT", "kid": s.kid()}));
        assert_eq!(s.verify(&token).unwrap(), AuthUser { id: user.id.clone() });
        // The crafted baseline verifies, so each rejection below is due to its one change.
        let good = craft(&json!({"alg": "HS256", "kid": s.kid()}), &claims(), CURRENT);
        assert!(s.verify(&good).is_ok());
    }

    #[test]
    fn kid_is_stable_per_key_and_reveals_nothing_of_it() {
        assert_eq!(service(CURRENT).kid(), service(CURRENT).kid());
        assert_eq!(service(CURRENT).kid(), key_id(CURRENT));
        assert_ne!(service(CURRENT).kid(), service(OLD).kid());
        let kid = key_id(CURRENT);
        assert_eq!(kid.len(), 16, "12 bytes, base64url: {kid}");
        let text = String::from_utf8_lossy(CURRENT);
        assert!(!text.contains(&kid) && !kid.contains(&text[..8]), "{kid}");
    }

    #[test]
    fn header_rejections() {
        let s = service(CURRENT).with_previous_keys(&[OLD]).unwrap();
        let kid = s.kid().to_string();
        let cases = [
            ("no kid", craft(&json!({"alg": "HS256"}), &claims(), CURRENT)),
            ("null kid", craft(&json!({"alg": "HS256", "kid": null}), &claims(), CURRENT)),
            ("numeric kid", craft(&json!({"alg": "HS256", "kid": 5}), &claims(), CURRENT)),
            ("array kid", craft(&json!({"alg": "HS256", "kid": [kid]}), &claims(), CURRENT)),
            ("unknown kid", craft(&json!({"alg": "HS256", "kid": "AAAAAAAAAAAAAAAA"}), &claims(), CURRENT)),
            ("other key's kid", craft(&json!({"alg": "HS256", "kid": key_id(b"x")}), &claims(), CURRENT)),
            // Signed by the previous key, but claiming to be the current one's (and vice versa).
            ("old key, current kid", craft(&json!({"alg": "HS256", "kid": kid}), &claims(), OLD)),
            ("current key, old kid", craft(&json!({"alg": "HS256", "kid": key_id(OLD)}), &claims(), CURRENT)),
            ("alg HS512", craft(&json!({"alg": "HS512", "kid": kid}), &claims(), CURRENT)),
            ("alg none", craft(&json!({"alg": "none", "kid": kid}), &claims(), CURRENT)),
            ("header not JSON", {
                let good = craft(&json!({"alg": "HS256", "kid": kid}), &claims(), CURRENT);
                format!("bm90LWpzb24{}", &good[good.find('.').unwrap()..])
            }),
            ("garbage", "a.b.c".into()),
            ("empty", String::new()),
        ];
        for (what, token) in cases {
            let err = s.verify(&token).expect_err(what);
            assert!(matches!(err, Error::Unauthorized(_)), "{what}: {err:?}");
        }
    }

    #[test]
    fn claim_rejections_stay() {
        let s = service(CURRENT);
        let kid = json!({"alg": "HS256", "kid": s.kid()});
        let now = chrono::Utc::now().timestamp();
        let mut cases = Vec::new();
        for (field, value) in [("exp", json!(now - 31)), ("iss", json!("evil")), ("aud", json!("other"))] {
            let mut c = claims();
            c[field] = value;
            cases.push((field, craft(&kid, &c, CURRENT)));
        }
        let mut no_sub = claims();
        no_sub.as_object_mut().unwrap().remove("sub");
        cases.push(("no sub", craft(&kid, &no_sub, CURRENT)));
        for (what, token) in cases {
            assert!(matches!(s.verify(&token), Err(Error::Unauthorized(_))), "{what}");
        }
    }

    #[test]
    fn rotation_keeps_old_tokens_until_their_key_is_dropped() {
        let before = service(OLD);
        let token = before.issue_claims(&serde_json::from_value(claims()).unwrap()).unwrap();
        // Rotated: a new signing key, the old one listed as previous.
        let rotated = service(CURRENT).with_previous_keys(&[OLD, OLD, CURRENT]).unwrap();
        assert_eq!(rotated.verify(&token).unwrap().id, "01USER");
        let new_token = rotated.issue_claims(&serde_json::from_value(claims()).unwrap()).unwrap();
        assert_eq!(header_of(&new_token)["kid"], key_id(CURRENT), "only the current key signs");
        assert!(before.verify(&new_token).is_err(), "a service that never heard of the new key");
        // The old key dropped: its tokens are refused, the new ones still verify.
        let after = service(CURRENT);
        assert!(matches!(after.verify(&token), Err(Error::Unauthorized(_))));
        assert!(after.verify(&new_token).is_ok());
    }

    #[test]
    fn previous_keys_must_be_long_enough() {
        let err = service(CURRENT).with_previous_keys(&[OLD, b"short".as_slice()]).err().unwrap();
        assert!(matches!(&err, Error::Config(m) if m.contains("JWT_PREVIOUS_SECRETS")), "{err:?}");
        assert!(!err.to_string().contains("short"), "never the key itself: {err}");
        assert!(service(CURRENT).with_previous_keys::<&[u8]>(&[]).is_ok());
    }

    #[test]
    fn claims_carry_no_personal_data() {
        let s = service(CURRENT);
        let user = user(Role::Facilitator);
        let token = s.issue(&user).unwrap();
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
        let keys: std::collections::BTreeSet<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["aud", "exp", "iat", "iss", "role", "sub"].into());
        assert!(!token.contains("asha") && !String::from_utf8_lossy(token.as_bytes()).contains("Rao"));
    }
}
