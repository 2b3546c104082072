//! The background work an event's cancellation or reschedule leaves behind: one job item per
//! event, worked through in bounded batches by [`crate::lifecycle`].

use crate::store::Position;
use crate::time::{serde_ts, Timestamp};
use serde::{Deserialize, Serialize};

/// What the job does to each booking of its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Cancel every booking still holding a seat (`cancel_reason: event_cancelled`).
    Cancel,
    /// Bring every booking's snapshot up to the event's new time.
    Reschedule,
    /// Hand the seats a capacity increase freed to the waitlist, in transactions of at most
    /// [`crate::store::PROMOTIONS_PER_WRITE`] promotions ([`crate::store::Store::promote_waitlist`]).
    Promote,
}

/// How long a batch may hold a job before another worker may take it over: a batch is at most
/// [`crate::lifecycle::BATCH_MAX`] sequential writes, seconds at most; a worker that dies
/// mid-batch delays the job by this much (the sweeper resumes it).
pub const JOB_LEASE_SECS: i64 = 60;

/// A reschedule job is done only after a full pass that started this long after the change:
/// a booking committed with the old time just before the change can take that long to appear in
/// the event's booking index (GSI propagation is usually well under a second).
pub const RESCHEDULE_SETTLE_SECS: i64 = 60;

/// The one job of an event (`EVENT#<id>`/`JOB`): a cancel replaces a reschedule, a reschedule
/// restarts a reschedule; the job is deleted when its work is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub event_id: String,
    pub kind: JobKind,
    /// The event's revision the job was written for: a newer change rewrites the job, and a
    /// worker deletes the job only while it still names this revision.
    pub revision: u32,
    /// When the cancel or the reschedule committed.
    #[serde(with = "serde_ts")]
    pub changed_at: Timestamp,
    /// The last booking of the event's index handled in this pass ([`Position::encode`]); `None`:
    /// the pass starts at the beginning.
    #[serde(default)]
    pub cursor: Option<String>,
    /// When the current pass (from the start of the index) began, at the earliest.
    #[serde(with = "serde_ts")]
    pub pass_started_at: Timestamp,
    /// Not to be worked before (the due-jobs index of the sweeper).
    #[serde(with = "serde_ts")]
    pub due_at: Timestamp,
    /// The worker holding the job for one batch, until `lease_until`.
    #[serde(default)]
    pub lease_owner: Option<String>,
    #[serde(default, with = "serde_ts::option")]
    pub lease_until: Option<Timestamp>,
    /// Passes completed so far (a cancel restarts while bookings the index had not shown yet
    /// still hold seats).
    #[serde(default)]
    pub passes: u32,
}

impl Job {
    /// A new job for a change of `event_id` committed at `now`, due at once.
    pub fn new(event_id: &str, kind: JobKind, revision: u32, now: Timestamp) -> Job {
        Job {
            event_id: event_id.to_string(),
            kind,
            revision,
            changed_at: now,
            cursor: None,
            pass_started_at: now,
            due_at: now,
            lease_owner: None,
            lease_until: None,
            passes: 0,
        }
    }

    pub fn position(&self) -> Option<Position> {
        self.cursor.as_deref().and_then(Position::decode)
    }

    /// Free to claim at `now`: no lease, or one that ended.
    pub fn is_free_at(&self, now: Timestamp) -> bool {
        self.lease_owner.is_none() || self.lease_until.is_none_or(|until| until <= now)
    }
}
