//! Lifecycle job records on the stream: an event's cancel or reschedule job item, INSERTed with
//! the change or MODIFYed by a batch that released its lease, runs one batch
//! ([`shared::lifecycle::run_batch`]) of the fan-out here. That batch's own final write (the
//! saved cursor, without a lease) is the next record: the job works itself through the event's
//! bookings one invocation per batch, and no invocation does more than one batch.
//!
//! In AWS the mapping's filter passes only job images without `lease_owner`; a claim's MODIFY
//! (with one) and the job's REMOVE never reach this function, and are skipped here too.
//! A batch that fails is not reported as a failed record: it would hold back every CRM message
//! behind it in the shard. The job stays due in the `JOBS` index and the sweeper resumes it.

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_dynamo::AttributeValue;
use shared::keys;
use shared::lifecycle::{run_batch, BATCH};
use shared::model::Job;
use shared::store::Store;
use std::time::Duration;

/// A job due within this long is waited for here (a cancel pass restarting after
/// [`shared::lifecycle::RESTART_SECS`]); one due later, a reschedule's settling pass a minute on,
/// is left to the sweeper: waiting here would hold up the CRM messages behind it in the shard.
pub const WAIT_FOR_DUE: Duration = Duration::from_secs(shared::lifecycle::RESTART_SECS as u64);

/// Runs one batch for a job record → `true` when `record` was a job record (whatever came of
/// it), `false` for every other record, which the caller handles.
pub async fn take<S: Store>(store: &S, record: &EventRecord) -> bool {
    let image = &record.change.new_image;
    match image.get(keys::ENTITY) {
        Some(AttributeValue::S(entity)) if entity == keys::entity::JOB => {}
        _ => return false,
    }
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return true;
    }
    let job: Job = match serde_dynamo::from_item(image.clone()) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(sequence_number = ?record.change.sequence_number, error = %e, "job record is not a job; skipped");
            return true;
        }
    };
    if job.lease_owner.is_some() {
        return true;
    }
    let wait = (job.due_at - shared::time::now()).to_std().unwrap_or_default();
    if wait > WAIT_FOR_DUE {
        return true;
    }
    tokio::time::sleep(wait).await;
    // Deployed, the stream delivers the CRM messages the batch writes: nothing to hand on.
    match run_batch(store, &job.event_id, BATCH, shared::time::now(), &|_| {}).await {
        Ok(report) => tracing::info!(event_id = %job.event_id, ?report, "lifecycle batch"),
        Err(e) => {
            tracing::warn!(event_id = %job.event_id, error = %e, "lifecycle batch failed; the sweeper resumes it")
        }
    }
    true
}
