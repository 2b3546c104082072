//! Opaque paging cursors: a store position bound to the query it belongs to and
//! signed, so a client can neither forge a position nor reuse a cursor with other filters.

use crate::error::{Error, Result};
use crate::store::Position;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::OnceLock;

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 16;

/// Cursors are signed with a key derived from the current JWT key and also accepted under the
/// previous JWT keys (`JWT_PREVIOUS_SECRETS`): a client paging through a list while the key is
/// rotated keeps its place instead of getting a 400 halfway. That trusts an old key no further
/// than the tokens do, which are accepted under it for as long as it is listed.
#[derive(Clone)]
pub struct CursorCodec {
    /// The service secrets, the signing one first, then the previous ones.
    secrets: Vec<Vec<u8>>,
    /// The cursor keys derived from them, on first use rather than at init (an HMAC each; init
    /// is measured, and most invocations page nothing).
    keys: OnceLock<Vec<Vec<u8>>>,
}

/// Its own key derived from a service secret, so cursor tags can never be replayed as JWTs.
fn derive(secret: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"ahoum paging cursor v1");
    mac.finalize().into_bytes().to_vec()
}

fn mac(key: &[u8], scope: &str, position: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(scope.as_bytes());
    mac.update(&[0]);
    mac.update(position.as_bytes());
    mac
}

impl CursorCodec {
    pub fn new(secret: &[u8]) -> Self {
        CursorCodec { secrets: vec![secret.to_vec()], keys: OnceLock::new() }
    }

    /// Also accepts cursors signed under these secrets; they never sign.
    pub fn with_previous_keys<K: AsRef<[u8]>>(mut self, previous: &[K]) -> Self {
        self.secrets.extend(previous.iter().map(|secret| secret.as_ref().to_vec()));
        self.keys = OnceLock::new();
        self
    }

    fn keys(&self) -> &[Vec<u8>] {
        self.keys.get_or_init(|| self.secrets.iter().map(|secret| derive(secret)).collect())
    }

    pub fn encode(&self, scope: &str, position: &str) -> String {
        let mut raw = mac(&self.keys()[0], scope, position).finalize().into_bytes()[..TAG_LEN].to_vec();
        raw.extend_from_slice(position.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(&self, scope: &str, cursor: &str) -> Result<String> {
        let bad = || Error::validation("cursor", "invalid cursor");
        let raw = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| bad())?;
        if raw.len() <= TAG_LEN {
            return Err(bad());
        }
        let (tag, position) = raw.split_at(TAG_LEN);
        let position = std::str::from_utf8(position).map_err(|_| bad())?;
        // Constant-time comparison of the truncated tag under each key (which key matched is no
        // secret: every one of them is trusted).
        if !self.keys().iter().any(|key| mac(key, scope, position).verify_truncated_left(tag).is_ok()) {
            return Err(bad());
        }
        Ok(position.to_string())
    }

    /// A cursor for a store [`Position`] in the list named by `scope`.
    pub fn encode_position(&self, scope: &str, position: &Position) -> String {
        self.encode(scope, &position.encode())
    }

    /// The position a cursor of this `scope` carries → 400 `validation_failed` on `cursor`.
    pub fn decode_position(&self, scope: &str, cursor: &str) -> Result<Position> {
        let text = self.decode(scope, cursor)?;
        Position::decode(&text).ok_or_else(|| Error::validation("cursor", "invalid cursor"))
    }

    /// Where a list request continues: the position its `cursor` parameter carries (trimmed;
    /// absent or blank → the start) → 400 `validation_failed` on `cursor` for another scope's.
    pub fn after(&self, scope: &str, params: &std::collections::HashMap<String, String>) -> Result<Option<Position>> {
        params
            .get("cursor")
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(|c| self.decode_position(scope, c))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_tampering_and_other_scopes() {
        let c = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let s = c.encode("type=yoga", "2025-01-01T00:00:00Z#01ABC");
        assert_eq!(c.decode("type=yoga", &s).unwrap(), "2025-01-01T00:00:00Z#01ABC");
        assert!(c.decode("type=tai chi", &s).is_err());
        let mut t = s.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        assert!(c.decode("type=yoga", std::str::from_utf8(&t).unwrap()).is_err());
        assert!(c.decode("type=yoga", "!!!").is_err());
        assert!(c.decode("type=yoga", "").is_err());
    }

    #[test]
    fn cursors_of_a_previous_key_are_accepted_until_it_is_dropped() {
        let (old, new) = (b"old-key-0123456789abcdef0123456789abcdef", b"new-key-0123456789abcdef0123456789abcdef");
        let before = CursorCodec::new(old);
        let cursor = before.encode("list", "1754042400.01ABC");
        let rotated = CursorCodec::new(new).with_previous_keys(&[old]);
        assert_eq!(rotated.decode("list", &cursor).unwrap(), "1754042400.01ABC");
        assert!(rotated.decode("other", &cursor).is_err(), "still bound to its scope");
        // Only the current key signs: the old codec cannot read the rotated one's cursors.
        let fresh = rotated.encode("list", "1754042400.01ABC");
        assert_ne!(fresh, cursor);
        assert!(before.decode("list", &fresh).is_err());
        assert!(CursorCodec::new(new).decode("list", &fresh).is_ok());
        assert!(CursorCodec::new(new).decode("list", &cursor).is_err(), "old key dropped");
    }

    #[test]
    fn positions_round_trip_and_nothing_else_decodes() {
        let c = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let at = crate::time::parse("2025-08-01T10:00:00Z").unwrap();
        let p = Position { at, id: "01J8Z4A1B2C3D4E5F6G7H8J9K0".into() };
        assert_eq!(c.decode_position("list", &c.encode_position("list", &p)).unwrap(), p);
        // Signed, but not a position the store could have produced.
        for text in ["", "x", "1754042400", "1754042400.", "abc.01J8", "1754042400.a b", "253402300800.ID"] {
            assert!(c.decode_position("list", &c.encode("list", text)).is_err(), "{text:?}");
        }
    }
}
