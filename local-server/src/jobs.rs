//! Locally, an event's cancel or reschedule runs its fan-out in a background task right after
//! the change commits (deployed, the job item's stream record does): batch after batch until the
//! job is done, then the offers and CRM messages its promotions owe ([`crate::promotions`]). A
//! server stopped mid-way leaves the job due; the sweeps resume it at start-up.

use crate::promotions::{FollowUp, Trigger};
use shared::app::{BookingHook, JobHook};
use shared::lifecycle::{run_until_done, BATCH};
use shared::store::Store;
use std::sync::Arc;

/// The hook `App::with_job_hook` takes: each booking a batch changes goes to `on_booking` (the
/// background CRM delivery), when there is one.
pub fn hook<S: Store + Clone>(store: S, on_booking: Option<BookingHook>) -> JobHook {
    hook_with(store, on_booking, None)
}

/// [`hook`], then `followup` (the offers and messages of the job's promotions) once it is done.
pub fn hook_with<S: Store + Clone>(
    store: S,
    on_booking: Option<BookingHook>,
    followup: Option<Arc<FollowUp<S>>>,
) -> JobHook {
    Arc::new(move |event_id: &str| {
        let (store, event_id, on_booking) = (store.clone(), event_id.to_string(), on_booking.clone());
        let followup = followup.clone();
        let since = shared::time::now();
        tokio::spawn(async move {
            let on_changed = |b: &shared::model::Booking| {
                if let Some(hook) = &on_booking {
                    hook(b)
                }
            };
            match run_until_done(&store, &event_id, BATCH, &on_changed).await {
                Ok(report) => tracing::info!(%event_id, ?report, "lifecycle job done"),
                Err(e) => tracing::warn!(%event_id, error = %e, "lifecycle job stopped; the sweeps resume it"),
            }
            if let Some(f) = followup {
                f.spawn(since, Trigger::Promoted);
            }
        });
    })
}
