//! One scheduled run of the sweeps, the same code deployed and local: the `crm-sweeper` Lambda
//! runs [`run_sweeps`] once per EventBridge invocation (every 10 minutes), `make run` in a loop
//! every `LOCAL_SWEEP_INTERVAL_SECONDS` (local-server's `sweeps`). Lifecycle jobs first (an
//! event's cancel or reschedule whose stream-driven batches stopped: a crashed worker's lease
//! ended, a batch failed): the bookings they cancel owe refunds and CRM messages, which the two
//! sweeps after them send. Then payments: a hold that the payment sweep confirms gets its pending
//! CRM delivery record in the same transaction, and the CRM sweep right after (or the stream,
//! deployed) delivers it.

use crate::error::Result;
use crate::notifier::Notifier;
use crate::sweep::{sweep, SweepConfig, SweepReport};
use serde::Serialize;
use shared::lifecycle::{run_due_jobs, JobsReport, BATCH};
use shared::model::Booking;
use shared::payments::{sweep_payments, PaymentProvider, PaymentSweepReport};
use shared::store::Store;
use std::time::{Duration, SystemTime};

/// Stripe and how far back the payment sweep looks; `None` in [`run_sweeps`] when payments are
/// not configured.
#[derive(Clone, Copy)]
pub struct PaymentSweep<'a> {
    pub provider: &'a dyn PaymentProvider,
    pub lookback_days: u32,
}

/// What one run did: the CRM sweep's report with the payment sweep's as its `payments` field
/// (the Lambda's answer).
#[derive(Debug, Serialize)]
pub struct SweepsReport {
    #[serde(flatten)]
    pub crm: SweepReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payments: Option<PaymentSweepReport>,
    /// The lifecycle jobs this run worked on (batches, bookings cancelled or rescheduled).
    pub jobs: JobsReport,
    /// Why the payment sweep failed (the CRM sweep ran anyway); not part of the answer, whose
    /// caller turns it into a failed invocation.
    #[serde(skip)]
    pub payment_error: Option<String>,
}

/// Due lifecycle jobs within a third of the time left before `deadline` (a failure is logged and
/// counted in the report; the job stays due for the next run), then the payment sweep (when
/// `payments` is given) within half of the time left,
/// then the CRM sweep of the pending delivery index with the notifier's lease, one attempt per
/// booking. A failed payment sweep does not keep the CRM sweep from running; it is reported in
/// [`SweepsReport::payment_error`]. `on_confirmed` gets every booking the payment sweep confirms
/// (the local server hands it to its background delivery; deployed, the stream does that).
pub async fn run_sweeps<S: Store>(
    notifier: &Notifier<S>,
    config: &SweepConfig,
    payments: Option<PaymentSweep<'_>>,
    deadline: Option<SystemTime>,
    on_confirmed: &(dyn Fn(&Booking) + Send + Sync),
) -> Result<SweepsReport> {
    let mut report =
        SweepsReport { crm: SweepReport::default(), payments: None, payment_error: None, jobs: JobsReport::default() };
    let third = deadline.and_then(|d| d.duration_since(SystemTime::now()).ok()).map(|left| left / 3);
    let jobs_until = third.map(|t| tokio::time::Instant::now() + t);
    match run_due_jobs(notifier.store(), BATCH, jobs_until, on_confirmed).await {
        Ok(jobs) => report.jobs = jobs,
        Err(e) => {
            report.jobs.errors += 1;
            tracing::warn!(error = %e, "lifecycle jobs: the due-jobs query failed; next run");
        }
    }
    if let Some(p) = payments {
        let now = shared::time::now();
        let swept = sweep_payments(notifier.store(), p.provider, now, p.lookback_days, on_confirmed);
        // Every Stripe call has its own timeout too; this keeps time for the CRM sweep.
        let half = deadline.and_then(|d| d.duration_since(SystemTime::now()).ok()).map(|left| left / 2);
        let outcome = match half {
            Some(limit) => tokio::time::timeout(limit, swept)
                .await
                .unwrap_or_else(|_| Err(shared::Error::Unavailable("payment sweep out of time".into()))),
            None => swept.await,
        };
        match outcome {
            Ok(swept) => report.payments = Some(swept),
            Err(e) => report.payment_error = Some(e.to_string()),
        }
    }
    let budget = notifier.budget_within(Duration::ZERO, deadline);
    report.crm = sweep(notifier, config, None, budget).await?;
    Ok(report)
}
