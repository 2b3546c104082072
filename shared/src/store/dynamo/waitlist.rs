//! Waitlists: joining, leaving, reading the line, and promotions (see docs/data-model.md).

use super::DynamoStore;
use crate::error::{Error, Result};
use crate::model::{WaitEntry, Waiting};
use crate::store::{Position, WaitPage};
use crate::time::Timestamp;

pub(super) async fn join_waitlist(_db: &DynamoStore, _entry: &WaitEntry, _now: Timestamp) -> Result<u32> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) async fn leave_waitlist(_db: &DynamoStore, _event_id: &str, _user_id: &str) -> Result<()> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) async fn waitlist(
    _db: &DynamoStore,
    _event_id: &str,
    _after: Option<&Position>,
    _limit: usize,
) -> Result<WaitPage> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) async fn user_waitlist(_db: &DynamoStore, _user_id: &str) -> Result<Vec<Waiting>> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) async fn promote_waitlist(
    _db: &DynamoStore,
    _event_id: &str,
    _now: Timestamp,
    _limit: usize,
) -> Result<u32> {
    Err(Error::internal("waitlist: not built yet"))
}

pub(super) async fn clear_waitlist(_db: &DynamoStore, _event_id: &str, _limit: usize) -> Result<u32> {
    Err(Error::internal("waitlist: not built yet"))
}
