//! The deployed `crm-sweeper`'s work, locally: every [`Schedule::every`] the same
//! [`crm_notifier::run_sweeps`] the Lambda runs every 10 minutes: holds whose time is up settled
//! from Stripe, unanswered refunds asked again, then every CRM delivery without a final outcome
//! (the background delivery gave up, the CRM was down, the server stopped mid-delivery) sent again
//! under the notifier's lease. Without it a CRM outage longer than the background retries left
//! bookings `retrying` for good locally, where deployed they would be delivered.

use crate::promotions::{FollowUp, Trigger};
use crm_notifier::{run_sweeps, Notifier, PaymentSweep, SweepConfig};
use shared::app::BookingHook;
use shared::error::{Error, Result};
use shared::payments::PaymentProvider;
use shared::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Deployed, EventBridge runs the sweeper every 10 minutes; locally a minute is short enough for
/// a developer to watch a hold expire or a delivery recover.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);

/// When and how the local sweeps run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// `LOCAL_SWEEP_INTERVAL_SECONDS` (1–86400, default 60); the first run is at start-up.
    pub every: Duration,
    /// The CRM sweep's settings, from the same variables as the deployed sweeper
    /// (`CRM_SWEEP_MIN_AGE_SECONDS`, `CRM_SWEEP_LOOKBACK_DAYS`, `CRM_SWEEP_CONCURRENCY`).
    pub crm: SweepConfig,
}

impl Schedule {
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let every = match var("LOCAL_SWEEP_INTERVAL_SECONDS").map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            None => DEFAULT_EVERY,
            Some(raw) => {
                raw.parse::<u64>().ok().filter(|s| (1..=86_400).contains(s)).map(Duration::from_secs).ok_or_else(
                    || Error::Config("LOCAL_SWEEP_INTERVAL_SECONDS must be a number from 1 to 86400".into()),
                )?
            }
        };
        let crm = SweepConfig::from_lookup(var).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Schedule { every, crm })
    }
}

/// Runs the sweeps every `schedule.every` (a run that takes longer delays the next; runs never
/// overlap). Bookings the payment sweep confirms go to `hook`, the background delivery that
/// stands in for the stream locally.
pub async fn run_forever<S: Store + Clone>(
    notifier: Arc<Notifier<S>>,
    provider: Option<Arc<dyn PaymentProvider>>,
    schedule: Schedule,
    hook: Option<BookingHook>,
    followup: Option<Arc<FollowUp<S>>>,
) {
    let on_confirmed = move |b: &shared::model::Booking| {
        if let Some(hook) = &hook {
            hook(b)
        }
    };
    let mut every = tokio::time::interval(schedule.every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let since = shared::time::now();
        let payments =
            provider.as_deref().map(|provider| PaymentSweep { provider, lookback_days: payments::SWEEP_LOOKBACK_DAYS });
        match run_sweeps(&notifier, &schedule.crm, payments, None, &on_confirmed).await {
            // The CRM sweep logs its own report.
            Ok(report) => {
                if let Some(e) = report.payment_error {
                    tracing::warn!(error = %e, "payment sweep failed; next run in {}s", schedule.every.as_secs());
                }
            }
            Err(e) => tracing::warn!(error = %e, "CRM sweep failed; next run in {}s", schedule.every.as_secs()),
        }
        // An expiry the payment sweep settled, a promote job it resumed: their offers and
        // messages now, not at the next run (the CRM sweep leaves records younger than its
        // minimum age to the stream, which here is this follow-up).
        if let Some(f) = &followup {
            f.spawn(since, Trigger::Promoted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_interval_defaults_to_a_minute_and_is_bounded() {
        let parse = |vars: &[(&str, &str)]| {
            let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Schedule::from_lookup(|name| map.get(name).cloned())
        };
        assert_eq!(parse(&[]).unwrap(), Schedule { every: DEFAULT_EVERY, crm: SweepConfig::default() });
        let s = parse(&[("LOCAL_SWEEP_INTERVAL_SECONDS", "2"), ("CRM_SWEEP_MIN_AGE_SECONDS", "0")]).unwrap();
        assert_eq!((s.every, s.crm.min_age), (Duration::from_secs(2), Duration::ZERO));
        for bad in ["0", "86401", "1m", "-1"] {
            assert!(parse(&[("LOCAL_SWEEP_INTERVAL_SECONDS", bad)]).is_err(), "{bad}");
        }
    }
}
