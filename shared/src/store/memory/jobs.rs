//! An event's cancellation and the lifecycle jobs in the embedded store: the conditions of
//! `store/dynamo/jobs.rs`, checked under the store's one lock.

use super::{Inner, MemoryStore};
use crate::error::{Error, Result};
use crate::model::{Event, Job, JobKind};
use crate::store::{Actor, Position};
use crate::time::Timestamp;
use std::ops::Bound;
use std::sync::Arc;

impl Inner {
    /// Stores a job, keeping the due-jobs index in step.
    pub(super) fn put_job(&mut self, job: Job) {
        self.drop_job(&job.event_id);
        self.due_jobs.insert(Position { at: job.due_at, id: job.event_id.clone() });
        self.jobs.insert(job.event_id.clone(), job);
    }

    fn drop_job(&mut self, event_id: &str) {
        if let Some(old) = self.jobs.remove(event_id) {
            self.due_jobs.remove(&Position { at: old.due_at, id: old.event_id });
        }
    }

    /// The job `owner` claimed, if it still holds it and nobody rewrote it.
    fn held(&self, job: &Job, owner: &str) -> bool {
        self.jobs.get(&job.event_id).is_some_and(|j| {
            j.lease_owner.as_deref() == Some(owner) && j.revision == job.revision && j.kind == job.kind
        })
    }
}

pub(super) fn cancel_event(
    store: &MemoryStore,
    id: &str,
    reason: Option<&str>,
    actor: Actor<'_>,
    now: Timestamp,
) -> Result<Event> {
    let mut db = store.lock()?;
    let event = db.events.get(id).ok_or(Error::NotFound("event"))?;
    actor.check(event)?;
    event.may_cancel_at(now)?;
    let cancelled = event.cancelled(reason, now);
    let old = Arc::clone(event);
    db.unindex_event(&old);
    db.events.insert(id.to_string(), Arc::new(cancelled.clone()));
    db.put_job(Job::new(id, JobKind::Cancel, 0, now));
    Ok(cancelled)
}

pub(super) fn get_job(store: &MemoryStore, event_id: &str) -> Result<Option<Job>> {
    Ok(store.read()?.jobs.get(event_id).cloned())
}

pub(super) fn claim_job(
    store: &MemoryStore,
    event_id: &str,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Option<Job>> {
    let mut db = store.lock()?;
    let Some(job) = db.jobs.get_mut(event_id) else { return Ok(None) };
    if !job.is_free_at(now) {
        return Ok(None);
    }
    job.lease_owner = Some(owner.to_string());
    job.lease_until = Some(until);
    Ok(Some(job.clone()))
}

pub(super) fn save_job(store: &MemoryStore, job: &Job, owner: &str) -> Result<bool> {
    let mut db = store.lock()?;
    if !db.held(job, owner) {
        return Ok(false);
    }
    let mut saved = job.clone();
    saved.lease_owner = None;
    saved.lease_until = None;
    db.put_job(saved);
    Ok(true)
}

pub(super) fn finish_job(store: &MemoryStore, job: &Job, owner: &str) -> Result<bool> {
    let mut db = store.lock()?;
    if !db.held(job, owner) {
        return Ok(false);
    }
    db.drop_job(&job.event_id);
    Ok(true)
}

pub(super) fn due_jobs(store: &MemoryStore, now: Timestamp, limit: usize) -> Result<Vec<Job>> {
    let db = store.read()?;
    Ok(db
        .due_jobs
        .range((Bound::Unbounded, Bound::Included(Position { at: now, id: "~".into() })))
        .filter_map(|p| db.jobs.get(&p.id).cloned())
        .take(limit)
        .collect())
}
