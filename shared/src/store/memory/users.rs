//! Accounts and login throttles in the embedded store: the conditions of `store/dynamo/users.rs`,
//! checked under the store's one lock.

use super::{Inner, MemoryStore, SWEEP_EVERY_SECS};
use crate::error::{Error, Result};
use crate::model::{Event, LoginThrottle, Role, User};
use crate::time::Timestamp;

impl Inner {
    /// Drops throttle windows that have closed. DynamoDB does the same with the item's TTL.
    pub(super) fn evict_throttles(&mut self, now: i64, window_secs: i64) {
        if now - self.swept_throttles >= SWEEP_EVERY_SECS {
            self.throttles.retain(|_, t| t.window_start > now - window_secs);
            self.swept_throttles = now;
        }
    }
}

pub(super) fn create_user(store: &MemoryStore, user: &User) -> Result<()> {
    let mut db = store.lock()?;
    if db.emails.contains_key(&user.email) {
        return Err(Error::EmailTaken);
    }
    db.emails.insert(user.email.clone(), user.id.clone());
    db.users.insert(user.id.clone(), user.clone());
    Ok(())
}

pub(super) fn get_user(store: &MemoryStore, id: &str) -> Result<Option<User>> {
    Ok(store.read()?.users.get(id).cloned())
}

pub(super) fn event_and_user(
    store: &MemoryStore,
    event_id: &str,
    user_id: &str,
) -> Result<(Option<Event>, Option<User>)> {
    let db = store.read()?;
    Ok((db.events.get(event_id).map(|e| Event::clone(e)), db.users.get(user_id).cloned()))
}

pub(super) fn find_user_by_email(store: &MemoryStore, email: &str) -> Result<Option<User>> {
    let db = store.read()?;
    Ok(db.emails.get(email).and_then(|id| db.users.get(id)).cloned())
}

pub(super) fn set_user_role(store: &MemoryStore, user_id: &str, role: Role) -> Result<()> {
    let mut db = store.lock()?;
    let user = db.users.get_mut(user_id).ok_or(Error::NotFound("user"))?;
    user.role = role;
    Ok(())
}

pub(super) fn count_login_attempt(
    store: &MemoryStore,
    email: &str,
    now: Timestamp,
    window_secs: i64,
    max: u32,
) -> Result<()> {
    let mut db = store.lock()?;
    let now = now.timestamp();
    db.evict_throttles(now, window_secs);
    let entry = db.throttles.entry(email.to_string()).or_insert(LoginThrottle { attempts: 0, window_start: now });
    if entry.window_start <= now - window_secs {
        *entry = LoginThrottle { attempts: 0, window_start: now };
    }
    if entry.attempts >= max {
        return Err(entry.refusal(now, window_secs));
    }
    entry.attempts += 1;
    Ok(())
}

pub(super) fn clear_login_attempts(store: &MemoryStore, email: &str) -> Result<()> {
    store.lock()?.throttles.remove(email);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use chrono::Duration;

    #[tokio::test]
    async fn closed_throttle_windows_are_evicted() {
        let store = MemoryStore::new();
        let t0 = crate::time::now();
        for i in 0..50 {
            store.count_login_attempt(&format!("u{i}@x.io"), t0, 900, 10).await.unwrap();
        }
        assert_eq!(store.lock().unwrap().throttles.len(), 50);
        // Still inside the window: nothing may go.
        store.count_login_attempt("late@x.io", t0 + Duration::seconds(800), 900, 10).await.unwrap();
        assert_eq!(store.lock().unwrap().throttles.len(), 51);
        // Past it: the 50 closed windows are dropped, the live one and the new one stay.
        store.count_login_attempt("new@x.io", t0 + Duration::seconds(901), 900, 10).await.unwrap();
        let left: Vec<String> = store.lock().unwrap().throttles.keys().cloned().collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
