//! The fan-out of an event's cancellation or reschedule: one bounded batch per call over the
//! event's bookings, driven by whoever calls [`run_batch`] (deployed: the job item's stream
//! record in `crm-notifier`, each batch's final write triggering the next; the sweeper's
//! [`run_due_jobs`] for a job a crashed worker left; locally: a background task).
//!
//! A batch claims the job (a lease, by condition), reads the event, pages `B` bookings of the
//! event's index after the job's cursor and applies the job to each booking that holds a seat,
//! one booking-level conditional write at a time, then saves the cursor and releases the lease.
//! Exactly-once per booking comes from those per-booking conditions (status and sequence as
//! read), not from the lease: a batch replayed after a crash finds its bookings already done.
//! The writes of one batch are sequential on purpose: every cancel also updates the event's
//! seat counter, and DynamoDB cancels concurrent transactions on one item (`TransactionConflict`).
//!
//! Waitlists: a promote job (a capacity increase while users wait) hands the free seats to the
//! head of the line, up to `B` per batch ([`Store::promote_waitlist`]); a reschedule job does the
//! same before its bookings; a cancel job, once no booking holds a seat, deletes the line `4B`
//! entries per batch ([`Store::clear_waitlist`]). Each is skipped when the event read shows
//! nobody waiting, so a job of an event without a line costs what it did before.

use crate::error::{Error, Result};
use crate::model::{new_id, Booking, CancelReason, Event, Job, JobKind, JOB_LEASE_SECS, RESCHEDULE_SETTLE_SECS};
use crate::store::{Position, Store};
use crate::time::Timestamp;
use chrono::Duration;
use serde::Serialize;

/// Bookings per batch by default: 25 sequential writes take well under a second on DynamoDB,
/// so a batch fits any Lambda timeout and the lease many times over.
pub const BATCH: usize = 25;
/// The largest batch a caller may ask for (the lease must outlast the batch).
pub const BATCH_MAX: usize = 100;
/// A cancel pass that ends while bookings still hold seats (committed just before the cancel,
/// not yet in the index) starts again this much later.
pub const RESTART_SECS: i64 = 5;
/// Attempts per booking when it keeps changing under the batch (a hold paid meanwhile).
const ATTEMPTS: usize = 4;
/// Waitlist entries a cancel batch deletes per booking it may cancel: an entry is two deletes
/// (entry, guard) and no message, so a slice of 4 × the batch size costs about what a batch
/// of cancels does.
const CLEAR_PER_BOOKING: usize = 4;

/// What one batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// The job could not be claimed: gone, or another worker holds it.
    pub not_claimed: bool,
    /// The job's work is over (its item deleted).
    pub done: bool,
    pub seen: usize,
    pub cancelled: usize,
    pub rescheduled: usize,
    /// Bookings that held no seat, or were already as the job wants them.
    pub skipped: usize,
    /// Booking writes repeated after the booking changed under them.
    pub retried: usize,
    /// Users promoted from the waitlist into seats a capacity increase freed.
    pub promoted: usize,
    /// Waitlist entries of a cancelled event removed.
    pub cleared: usize,
    /// When the job is due again, if this batch saved it (not when done or not claimed).
    #[serde(skip)]
    pub next_due: Option<Timestamp>,
}

/// One batch of the job of `event_id`, claimed at `now`. `on_changed` gets each booking this
/// batch changed (the local server delivers its CRM messages; deployed, the stream does).
/// An error leaves the work done so far saved and the lease released when it can be.
pub async fn run_batch<S: Store>(
    store: &S,
    event_id: &str,
    size: usize,
    now: Timestamp,
    on_changed: &(dyn Fn(&Booking) + Send + Sync),
) -> Result<BatchReport> {
    let size = size.clamp(1, BATCH_MAX);
    let mut report = BatchReport::default();
    let owner = new_id();
    let Some(mut job) = store.claim_job(event_id, &owner, now, now + Duration::seconds(JOB_LEASE_SECS)).await? else {
        report.not_claimed = true;
        return Ok(report);
    };
    let Some(event) = store.get_event(event_id).await? else {
        // Deleted (once no booking held a seat): nothing left to do.
        report.done = store.finish_job(&job, &owner).await?;
        return Ok(report);
    };
    if job.kind == JobKind::Cancel && event.seats_booked == 0 {
        // No booking holds a seat (a strongly consistent read): only the waitlist may be left, a
        // bounded slice per batch, without paging the bookings again for each slice. Its count
        // is kept in the same writes as its entries, and nobody joins a cancelled event.
        if event.waitlist_count > 0 {
            report.cleared = store.clear_waitlist(event_id, size * CLEAR_PER_BOOKING).await? as usize;
        }
        let done = report.cleared == 0;
        return save_or_finish(store, job, &owner, done, now, report).await;
    }
    // As read (strongly consistent): nobody waits, or no seat is free → nothing to promote (a
    // user joins only a full event), and the batch pays no promotion read.
    let seat_free = event.capacity.is_none_or(|c| event.seats_booked < c);
    if job.kind != JobKind::Cancel && event.waitlist_count > 0 && seat_free {
        // Seats a capacity increase freed go to the waitlist first (a reschedule job that came
        // with the same PATCH replaced the promote job, so it promotes too).
        report.promoted = store.promote_waitlist(event_id, now, size).await? as usize;
    }
    if job.kind == JobKind::Promote || report.promoted > 0 {
        let done = report.promoted == 0;
        return save_or_finish(store, job, &owner, done, now, report).await;
    }
    let page = store.list_event_bookings(event_id, job.position().as_ref(), size).await?;
    for booking in page.items {
        report.seen += 1;
        let at = Position::of_booking(&booking);
        let outcome = match job.kind {
            JobKind::Cancel => change_one(store, booking, Change::Cancel, now, &mut report).await,
            JobKind::Reschedule => change_one(store, booking, Change::Reschedule(&event), now, &mut report).await,
            JobKind::Promote => Ok(None),
        };
        match outcome {
            Ok(Some(changed)) => on_changed(&changed),
            Ok(None) => report.skipped += 1,
            Err(e) => {
                // Keep what is done; the next batch starts at this booking. If even this write
                // fails, the lease ends by itself and the sweep resumes from the older cursor.
                job.due_at = now + Duration::seconds(RESTART_SECS);
                if let Err(save) = store.save_job(&job, &owner).await {
                    tracing::warn!(event_id, error = %save, "lifecycle job progress not saved");
                }
                return Err(e);
            }
        }
        job.cursor = Some(at.encode());
    }
    if let Some(next) = page.next {
        job.cursor = Some(next.encode());
        job.due_at = now;
        if store.save_job(&job, &owner).await? {
            report.next_due = Some(job.due_at);
        }
        return Ok(report);
    }
    // The end of the index.
    job.cursor = None;
    job.passes += 1;
    let (finished, waiting) = match job.kind {
        // Strongly consistent: a booking the index did not show yet still holds its seat.
        JobKind::Cancel => match store.get_event(event_id).await? {
            Some(e) => (e.seats_booked == 0, e.waitlist_count > 0),
            None => (true, false),
        },
        JobKind::Reschedule | JobKind::Promote => (job.pass_started_at >= settled_after(&job), false),
    };
    if finished && waiting {
        // The cancelled event's waitlist goes too, a bounded slice per batch.
        report.cleared = store.clear_waitlist(event_id, size * CLEAR_PER_BOOKING).await? as usize;
        if report.cleared > 0 {
            job.due_at = now;
            if store.save_job(&job, &owner).await? {
                report.next_due = Some(now);
            }
            return Ok(report);
        }
    }
    if finished {
        report.done = store.finish_job(&job, &owner).await?;
    } else {
        let again = match job.kind {
            JobKind::Cancel => now + Duration::seconds(RESTART_SECS),
            JobKind::Reschedule | JobKind::Promote => now.max(settled_after(&job)),
        };
        (job.pass_started_at, job.due_at) = (again, again);
        if store.save_job(&job, &owner).await? {
            report.next_due = Some(again);
        }
    }
    Ok(report)
}

/// Ends a batch that did not page bookings: the job saved due now (its write chains the next
/// batch), or deleted when `done`.
async fn save_or_finish<S: Store>(
    store: &S,
    mut job: Job,
    owner: &str,
    done: bool,
    now: Timestamp,
    mut report: BatchReport,
) -> Result<BatchReport> {
    if done {
        report.done = store.finish_job(&job, owner).await?;
    } else {
        job.due_at = now;
        if store.save_job(&job, owner).await? {
            report.next_due = Some(now);
        }
    }
    Ok(report)
}

/// The earliest start of a reschedule pass that must see every booking made before the change.
fn settled_after(job: &Job) -> Timestamp {
    job.changed_at + Duration::seconds(RESCHEDULE_SETTLE_SECS)
}

/// What a job writes to each booking of its event that holds a seat.
#[derive(Clone, Copy)]
enum Change<'a> {
    /// Cancelled for the event's cancellation.
    Cancel,
    /// Brought up to the event's time, unless it shows this revision (or a later one) already.
    Reschedule(&'a Event),
}

/// The booking changed as its event's job wants → `Some(changed)`, or `None` when it holds no
/// seat (any more) or needs no change. Reads the booking again whenever it changed under the
/// write.
async fn change_one<S: Store>(
    store: &S,
    mut booking: Booking,
    change: Change<'_>,
    now: Timestamp,
    report: &mut BatchReport,
) -> Result<Option<Booking>> {
    for _ in 0..ATTEMPTS {
        let written = match change {
            _ if !booking.status.holds_seat() => return Ok(None),
            Change::Cancel => store.cancel_booking(&booking, CancelReason::EventCancelled, now).await,
            Change::Reschedule(event) if booking.event.revision < event.revision => {
                store.reschedule_booking(&booking, event, now).await
            }
            Change::Reschedule(_) => return Ok(None),
        };
        match written {
            Ok(b) => {
                match change {
                    Change::Cancel => report.cancelled += 1,
                    Change::Reschedule(_) => report.rescheduled += 1,
                }
                return Ok(Some(b));
            }
            // Cancelled (only a cancel answers so) or deleted meanwhile: it holds no seat.
            Err(Error::AlreadyCancelled | Error::NotFound(_)) => return Ok(None),
            Err(Error::StatusChanged) => {
                report.retried += 1;
                match store.get_booking(&booking.id).await? {
                    Some(b) => booking = b,
                    None => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
    }
    let job = match change {
        Change::Cancel => "cancellation",
        Change::Reschedule(_) => "reschedule",
    };
    Err(Error::Unavailable(format!("booking {} kept changing during the event's {job}", booking.id)))
}

/// What [`run_until_done`] or [`run_due_jobs`] did in all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobsReport {
    pub batches: usize,
    pub finished: usize,
    pub cancelled: usize,
    pub rescheduled: usize,
    pub errors: usize,
}

impl JobsReport {
    fn add(&mut self, b: &BatchReport) {
        self.batches += usize::from(!b.not_claimed);
        self.finished += usize::from(b.done);
        self.cancelled += b.cancelled;
        self.rescheduled += b.rescheduled;
    }
}

/// Batches of the job of `event_id` until it is gone, waiting for its `due_at` (and for a
/// lease another worker holds) in between: the local server's background task. Stops at the
/// first error (the sweep resumes the job).
pub async fn run_until_done<S: Store>(
    store: &S,
    event_id: &str,
    size: usize,
    on_changed: &(dyn Fn(&Booking) + Send + Sync),
) -> Result<JobsReport> {
    let mut total = JobsReport::default();
    let mut due = crate::time::now();
    loop {
        if let Ok(wait) = (due - crate::time::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let report = run_batch(store, event_id, size, crate::time::now(), on_changed).await?;
        total.add(&report);
        match (report.done, report.next_due) {
            (true, _) => return Ok(total),
            (false, Some(next)) => due = next,
            // Held by another worker (wait for its lease) or gone.
            (false, None) => {
                let Some(job) = store.get_job(event_id).await? else { return Ok(total) };
                let now = crate::time::now();
                due = if job.is_free_at(now) { job.due_at } else { job.lease_until.unwrap_or(now) };
            }
        }
    }
}

/// Every job due by now, batch after batch, until none is due or `deadline` passes: the
/// sweeper's crash recovery (a job whose worker died keeps its lease until it ends, then is due
/// here). One Query finds the due jobs; a job another worker holds is left to it.
pub async fn run_due_jobs<S: Store>(
    store: &S,
    size: usize,
    deadline: Option<tokio::time::Instant>,
    on_changed: &(dyn Fn(&Booking) + Send + Sync),
) -> Result<JobsReport> {
    let mut total = JobsReport::default();
    let out_of_time = || deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
    loop {
        let now = crate::time::now();
        let due: Vec<Job> = store.due_jobs(now, 25).await?.into_iter().filter(|j| j.is_free_at(now)).collect();
        let mut progressed = false;
        for job in due {
            loop {
                if out_of_time() {
                    return Ok(total);
                }
                let now = crate::time::now();
                match run_batch(store, &job.event_id, size, now, on_changed).await {
                    Ok(report) => {
                        total.add(&report);
                        progressed |= !report.not_claimed;
                        // Go on while the job is due at once (not finished, held, or waiting).
                        if report.next_due.is_none_or(|due| due > crate::time::now()) {
                            break;
                        }
                    }
                    Err(e) => {
                        total.errors += 1;
                        tracing::warn!(event_id = %job.event_id, error = %e, "lifecycle job batch failed; will retry");
                        break;
                    }
                }
            }
        }
        if !progressed {
            return Ok(total);
        }
    }
}
