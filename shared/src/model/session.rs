//! Refresh-token sessions (RFC 9700 §4.14): one family per login, rotated on every refresh.
//!
//! The token a client holds is `<user_id>.<family_id>.<generation>.<secret>`. Only the family
//! item is stored, with the SHA-256 of the current generation's secret: a table dump reveals no
//! usable token. Ids and the generation travel in clear so a refresh can find its family with a
//! key lookup and tell a spent token (older generation) from a forged one (current generation,
//! wrong secret) without storing every generation.

use crate::time::{serde_ts, Timestamp};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Absolute lifetime of a family: counted from the login, never extended by a refresh.
pub const REFRESH_TTL_DAYS: i64 = 30;

/// Secret bytes per token (256 bits; RFC 9700 asks for at least 128).
const SECRET_BYTES: usize = 32;
/// `SECRET_BYTES` in base64url without padding.
const SECRET_CHARS: usize = 43;
/// Longer than any token this service issues (two 26-char ULIDs, a u32, 43 chars): anything
/// longer is refused before it is split.
const MAX_TOKEN_CHARS: usize = 256;

/// A refresh token, parsed or freshly issued. `secret` is the only part that is not stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub user_id: String,
    pub family_id: String,
    pub generation: u32,
    secret: String,
}

/// No `Debug` of the secret: a token must not end up in a log line.
impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("user_id", &self.user_id)
            .field("family_id", &self.family_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// A token with a new secret from the operating system's CSPRNG.
    pub fn issue(user_id: &str, family_id: &str, generation: u32) -> RefreshToken {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        RefreshToken {
            user_id: user_id.to_string(),
            family_id: family_id.to_string(),
            generation,
            secret: URL_SAFE_NO_PAD.encode(bytes),
        }
    }

    /// Strict: exactly what [`RefreshToken::issue`] produces has a chance, anything else is
    /// `None` (and a 401 without touching the table).
    pub fn parse(text: &str) -> Option<RefreshToken> {
        if text.len() > MAX_TOKEN_CHARS {
            return None;
        }
        let mut parts = text.split('.');
        let (user_id, family_id, generation, secret) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let user_id = crate::http::resource_id(user_id, "token").ok()?;
        let family_id = crate::http::resource_id(family_id, "token").ok()?;
        // `u32::from_str` also takes a leading `+`; a generation is plain digits.
        if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let generation = generation.parse().ok()?;
        // The engine refuses padding, other alphabets and non-canonical trailing bits.
        let valid_secret =
            secret.len() == SECRET_CHARS && URL_SAFE_NO_PAD.decode(secret).is_ok_and(|b| b.len() == SECRET_BYTES);
        valid_secret.then(|| RefreshToken { user_id, family_id, generation, secret: secret.to_string() })
    }

    /// What the store keeps: base64url of SHA-256 of the secret. A plain hash is enough (no
    /// argon2): the secret has 256 bits of entropy, nothing to guess.
    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.secret.as_bytes()))
    }

    /// The text handed to the client.
    pub fn expose(&self) -> String {
        format!("{}.{}.{}.{}", self.user_id, self.family_id, self.generation, self.secret)
    }
}

/// A refresh-token family: one per login. Revoked by logout, by reuse of a spent token, and (all
/// of a user's at once) by a password change, which bumps the user's `session_epoch` so every
/// family created under the old epoch stops refreshing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub family_id: String,
    pub user_id: String,
    /// The generation of the one live token; every lower one is spent.
    pub generation: u32,
    /// [`RefreshToken::hash`] of the live token.
    pub token_hash: String,
    /// The user's `session_epoch` at login.
    pub session_epoch: u64,
    #[serde(with = "serde_ts")]
    pub created_at: Timestamp,
    #[serde(with = "serde_ts")]
    pub expires_at: Timestamp,
    pub revoked: bool,
    /// `expires_at` in epoch seconds: DynamoDB's TTL deletes the item some time after it.
    pub ttl: i64,
}

impl Session {
    /// A new family for `user_id` at `now` and its first token (generation 0).
    pub fn start(user_id: &str, session_epoch: u64, now: Timestamp) -> (Session, RefreshToken) {
        let family_id = crate::model::new_id();
        let token = RefreshToken::issue(user_id, &family_id, 0);
        let expires_at = now + chrono::Duration::days(REFRESH_TTL_DAYS);
        let session = Session {
            family_id,
            user_id: user_id.to_string(),
            generation: 0,
            token_hash: token.hash(),
            session_epoch,
            created_at: now,
            expires_at,
            revoked: false,
            ttl: expires_at.timestamp(),
        };
        (session, token)
    }

    /// Whether the family still refreshes at `now` for a user now at `user_epoch`.
    pub fn is_live(&self, now: Timestamp, user_epoch: u64) -> bool {
        !self.revoked && self.expires_at > now && self.session_epoch == user_epoch
    }

    /// What a presented token is to this family (which must be the token's: same family id).
    pub fn judge(&self, token: &RefreshToken) -> Presented {
        use std::cmp::Ordering::*;
        if token.user_id != self.user_id {
            return Presented::Invalid;
        }
        match token.generation.cmp(&self.generation) {
            Less => Presented::Spent,
            // Comparing hashes, not secrets: timing reveals nothing about the stored secret.
            Equal if token.hash() == self.token_hash => Presented::Current,
            Equal | Greater => Presented::Invalid,
        }
    }
}

/// A presented token, as its family sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presented {
    /// The live token.
    Current,
    /// An earlier generation: it was refreshed already, so presenting it again is reuse.
    Spent,
    /// Another user's family, a generation never issued, or a wrong secret: forged. It proves
    /// nothing, so it revokes nothing.
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_parse_back_and_only_their_hash_is_kept() {
        let (session, token) = Session::start("01JBQ2S3T4V5W6X7Y8Z9A0B1C1", 3, crate::time::now());
        let text = token.expose();
        let parsed = RefreshToken::parse(&text).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(session.judge(&parsed), Presented::Current);
        let secret = text.rsplit('.').next().unwrap();
        assert_eq!(secret.len(), SECRET_CHARS);
        let stored = serde_json::to_string(&session).unwrap();
        assert!(!stored.contains(secret), "{stored}");
        assert!(!format!("{token:?}").contains(secret));
        assert_ne!(RefreshToken::issue("u", "f", 0).hash(), RefreshToken::issue("u", "f", 0).hash());
    }

    #[test]
    fn parsing_is_strict() {
        let good = RefreshToken::issue("01JBQ2S3T4V5W6X7Y8Z9A0B1C1", "01JBQ2S3T4V5W6X7Y8Z9A0B1C2", 7).expose();
        let secret = good.rsplit('.').next().unwrap().to_string();
        let bad = [
            String::new(),
            "a.b.c".into(),
            format!("{good}.x"),
            good[..good.len() - 1].to_string(),
            format!("{good}A"),
            good.replace(".7.", ".+7."),
            good.replace(".7.", ".-7."),
            good.replace(".7.", ".."),
            good.replace(".7.", ".4294967296."),
            good.replace(".7.", ". 7."),
            good.replacen("01JBQ", "01/BQ", 1),
            format!("{}.f.0.{secret}", "u".repeat(65)),
            format!("u.f.0.{}", secret.replace(&secret[..1], "=")),
            format!("u.f.0.{}+", &secret[..42]),
            "x".repeat(100_000),
        ];
        for text in bad {
            assert!(RefreshToken::parse(&text).is_none(), "{text:?} parsed");
        }
        assert!(RefreshToken::parse(&good.replace(".7.", ".4294967295.")).is_some());
    }

    #[test]
    fn spent_forged_and_foreign_tokens_are_told_apart() {
        let (mut session, first) = Session::start("U1", 0, crate::time::now());
        let second = RefreshToken::issue("U1", &session.family_id, 1);
        session.generation = 1;
        session.token_hash = second.hash();
        assert_eq!(session.judge(&second), Presented::Current);
        assert_eq!(session.judge(&first), Presented::Spent);
        assert_eq!(session.judge(&RefreshToken::issue("U1", &session.family_id, 1)), Presented::Invalid);
        assert_eq!(session.judge(&RefreshToken::issue("U1", &session.family_id, 2)), Presented::Invalid);
        let foreign = RefreshToken { user_id: "U2".into(), ..second.clone() };
        assert_eq!(session.judge(&foreign), Presented::Invalid);
        let now = crate::time::now();
        assert!(session.is_live(now, 0));
        assert!(!session.is_live(now, 1), "a password change revokes it");
        assert!(!session.is_live(session.expires_at, 0), "expired");
    }
}
