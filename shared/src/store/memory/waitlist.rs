//! Waitlists: joining, leaving, reading the line, and promotions (see docs/data-model.md).

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::model::{WaitEntry, Waiting};
use crate::store::{Position, WaitPage};
use crate::time::Timestamp;

pub(super) fn join_waitlist(_db: &MemoryStore, _entry: &WaitEntry, _now: Timestamp) -> Result<u32> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) fn leave_waitlist(_db: &MemoryStore, _event_id: &str, _user_id: &str) -> Result<()> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) fn waitlist(
    _db: &MemoryStore,
    _event_id: &str,
    _after: Option<&Position>,
    _limit: usize,
) -> Result<WaitPage> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) fn user_waitlist(_db: &MemoryStore, _user_id: &str) -> Result<Vec<Waiting>> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) fn promote_waitlist(_db: &MemoryStore, _event_id: &str, _now: Timestamp, _limit: usize) -> Result<u32> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) fn clear_waitlist(_db: &MemoryStore, _event_id: &str, _limit: usize) -> Result<u32> {
    Err(Error::internal("waitlist: not built yet"))
}
