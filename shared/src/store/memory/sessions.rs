//! Refresh-token families and password changes in the embedded store: the conditions of
//! `store/dynamo/sessions.rs`, checked under the store's one write lock.

use super::{Inner, MemoryStore, SWEEP_EVERY_SECS};
use crate::error::{Error, Result};
use crate::model::{Session, User};
use crate::store::{Rotated, Rotation};
use crate::time::Timestamp;

impl Inner {
    /// Drops families past their absolute lifetime (DynamoDB: the `ttl` attribute).
    pub(super) fn evict_sessions(&mut self, now: Timestamp) {
        if now.timestamp() - self.swept_sessions >= SWEEP_EVERY_SECS {
            self.sessions.retain(|_, s| s.expires_at > now);
            self.swept_sessions = now.timestamp();
        }
    }
}

pub(super) fn create_session(store: &MemoryStore, session: &Session) -> Result<()> {
    let mut db = store.lock()?;
    db.evict_sessions(session.created_at);
    if db.sessions.contains_key(&session.family_id) {
        return Err(Error::internal("session id collision"));
    }
    db.sessions.insert(session.family_id.clone(), session.clone());
    Ok(())
}

pub(super) fn get_session(store: &MemoryStore, family_id: &str) -> Result<Option<Session>> {
    Ok(store.read()?.sessions.get(family_id).cloned())
}

pub(super) fn session_and_user(
    store: &MemoryStore,
    family_id: &str,
    user_id: &str,
) -> Result<(Option<Session>, Option<User>)> {
    let db = store.read()?;
    Ok((db.sessions.get(family_id).cloned(), db.users.get(user_id).cloned()))
}

pub(super) fn rotate_session(store: &MemoryStore, r: &Rotation<'_>) -> Result<Rotated> {
    let next = r.generation.checked_add(1).ok_or(Error::Unauthorized("refresh token is no longer valid"))?;
    let mut db = store.lock()?;
    let user_epoch = db.users.get(r.user_id).map(|u| u.session_epoch);
    let Some(session) = db.sessions.get_mut(r.family_id) else {
        return Ok(Rotated::FamilyChanged);
    };
    let unchanged = session.generation == r.generation
        && session.token_hash == r.token_hash
        && !session.revoked
        && session.expires_at > r.now
        && session.session_epoch == r.session_epoch;
    if !unchanged {
        return Ok(Rotated::FamilyChanged);
    }
    if user_epoch != Some(r.session_epoch) {
        return Ok(Rotated::PasswordChanged);
    }
    session.generation = next;
    session.token_hash = r.new_hash.to_string();
    Ok(Rotated::Done)
}

pub(super) fn revoke_session(store: &MemoryStore, family_id: &str) -> Result<()> {
    if let Some(session) = store.lock()?.sessions.get_mut(family_id) {
        session.revoked = true;
    }
    Ok(())
}

pub(super) fn change_password(
    store: &MemoryStore,
    user_id: &str,
    old_hash: &str,
    new_hash: &str,
    epoch: u64,
) -> Result<()> {
    let next = epoch.checked_add(1).ok_or_else(|| Error::internal("session epoch overflow"))?;
    let mut db = store.lock()?;
    match db.users.get_mut(user_id) {
        Some(user) if user.password_hash == old_hash && user.session_epoch == epoch => {
            user.password_hash = new_hash.to_string();
            user.session_epoch = next;
            Ok(())
        }
        _ => Err(Error::InvalidCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use chrono::Duration;

    #[tokio::test]
    async fn expired_families_are_evicted() {
        let store = MemoryStore::new();
        let t0 = crate::time::now();
        // Ten families that expire at t0 + 30 days, one created a day later.
        for _ in 0..10 {
            store.create_session(&Session::start("U", 0, t0).0).await.unwrap();
        }
        let (late, _) = Session::start("U", 0, t0 + Duration::days(1));
        store.create_session(&late).await.unwrap();
        assert_eq!(store.lock().unwrap().sessions.len(), 11);
        // A write just before they expire keeps them all.
        let (before, _) = Session::start("U", 0, t0 + Duration::days(30) - Duration::seconds(61));
        store.create_session(&before).await.unwrap();
        assert_eq!(store.lock().unwrap().sessions.len(), 12, "a live family was evicted");
        // A write after: the ten are gone, the later ones stay.
        let (after, _) = Session::start("U", 0, t0 + Duration::days(30));
        store.create_session(&after).await.unwrap();
        let left: Vec<String> = store.lock().unwrap().sessions.keys().cloned().collect();
        assert_eq!(left.len(), 3, "{left:?}");
        for kept in [&late.family_id, &before.family_id, &after.family_id] {
            assert!(left.contains(kept));
        }
    }
}
