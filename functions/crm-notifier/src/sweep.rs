//! The sweeper: delivers every CRM message that has no final outcome some minutes after it was
//! owed, whatever happened to its stream record: made before the stream mapping existed
//! (`StartingPosition: LATEST`), its batch sent to the dead-letter queue, its record aged out of
//! the stream (24 h), the CRM down longer than the stream retries last.
//!
//! Every message is written `pending` by the write that owes it (a free booking's transaction,
//! a paid one's confirmation, a cancellation, a reschedule), and sits in a sparse index partition
//! per day it was owed (`CRM#PENDING#<yyyy-mm-dd>` on GSI1, one entry per message) until the CRM
//! has answered for good. A sweep queries the buckets of the last `lookback` days for entries
//! older than `min_age` (never a Scan) and delivers each of their bookings once through
//! [`Notifier::deliver_booking`] (one Query of the booking's collection, then its messages in
//! order) and the same lease as the stream, so a sweep running next to the stream handler (or
//! another sweep) never POSTs a message twice at the same time, nor after it was delivered, nor
//! before an earlier message of its booking. Runs every 10 minutes (`crm-sweeper`), or by hand:
//! `admin crm-redeliver [--since …]`.
//!
//! Cancelled bookings get their `booking.confirmed` too (the contract promises it once a booking
//! is confirmed, and a later cancellation does not unmake that), then their `booking.cancelled`.
//! A paid booking has no message record (so no index entry) while it is `pending_payment`: the
//! record is written by the transaction that confirms it, so the sweep never sees a hold, nor one
//! that expired unpaid or was cancelled unpaid.

use crate::clock::whole_seconds;
use crate::error::{Error, Result};
use crate::messages::BookingOutcome;
use crate::notifier::{Budget, Notifier, Outcome};
use crate::webhook::SendOutcome;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use shared::store::{PendingQuery, Store};
use shared::time::{self, Timestamp};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(300);
pub const DEFAULT_LOOKBACK_DAYS: u32 = 14;
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Index entries per Query.
pub const PAGE_SIZE: usize = 100;
/// Retryable failures in a row after which a sweep stops: the CRM is down, and the next sweep
/// (10 minutes later) tries again rather than sending every pending booking into a timeout.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepConfig {
    /// Bookings younger than this are left to the stream handler.
    pub min_age: Duration,
    /// The sweep looks at bookings made in the last this many days (one index bucket per day).
    pub lookback_days: u32,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    pub max_consecutive_failures: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            min_age: DEFAULT_MIN_AGE,
            lookback_days: DEFAULT_LOOKBACK_DAYS,
            concurrency: DEFAULT_CONCURRENCY,
            max_consecutive_failures: DEFAULT_MAX_CONSECUTIVE_FAILURES,
        }
    }
}

impl SweepConfig {
    /// Reads `CRM_SWEEP_MIN_AGE_SECONDS`, `CRM_SWEEP_LOOKBACK_DAYS`, `CRM_SWEEP_CONCURRENCY`.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| -> Result<u64> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(raw) => raw.trim().parse::<u64>().ok().filter(|v| range.contains(v)).ok_or_else(|| {
                    Error::Config(format!("{name} must be a number from {} to {}", range.start(), range.end()))
                }),
            }
        };
        let defaults = SweepConfig::default();
        Ok(SweepConfig {
            min_age: Duration::from_secs(number("CRM_SWEEP_MIN_AGE_SECONDS", defaults.min_age.as_secs(), 0..=86_400)?),
            lookback_days: number("CRM_SWEEP_LOOKBACK_DAYS", defaults.lookback_days.into(), 1..=366)? as u32,
            concurrency: number("CRM_SWEEP_CONCURRENCY", defaults.concurrency as u64, 1..=32)? as usize,
            max_consecutive_failures: defaults.max_consecutive_failures,
        })
    }
}

/// What one sweep did; logged, and returned by the Lambda and the admin command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Bookings made from `from` (inclusive) to `before` (exclusive) were looked at.
    pub from: String,
    pub before: String,
    /// Index buckets (days) queried, and Query calls.
    pub buckets: usize,
    pub queries: usize,
    /// Index entries found (records without a final outcome).
    pub found: usize,
    /// POSTed now and accepted.
    pub delivered: usize,
    /// POSTed now and rejected for good (a 4xx): recorded `failed`, not sent again.
    pub rejected: usize,
    /// POSTed now and failed again (recorded `retrying`; the next sweep tries again).
    pub retrying: usize,
    /// Final by the time it was claimed (delivered or rejected by another sender meanwhile).
    pub already_final: usize,
    /// Held by another sender's lease, or waiting out the CRM's `Retry-After`: left alone.
    pub in_flight: usize,
    /// Delivery records whose booking item does not exist (logged at error level).
    pub missing_bookings: usize,
    /// Store errors while claiming or recording (the record stays pending).
    pub errors: usize,
    /// Why the sweep ended before the last bucket: `deadline`, `crm_unavailable`,
    /// `not_configured`; `None` when it went through everything.
    pub stopped: Option<String>,
}

/// A duration such as `45s`, `90m`, `36h`, `30d`, `2w`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let amount: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    amount.checked_mul(seconds).map(Duration::from_secs)
}

/// `--since` of `admin crm-redeliver`: an RFC 3339 instant, or a [`parse_duration`] back from
/// `now`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Option<Timestamp> {
    if let Some(t) = time::parse(text) {
        return Some(t);
    }
    let back = chrono::Duration::from_std(parse_duration(text)?).ok()?;
    now.checked_sub_signed(back).map(whole_seconds)
}

/// Sweeps the pending index once: bookings made since `since` (default: `lookback_days` ago) and
/// at least `min_age` ago, oldest first. Nothing new starts after `budget.stop_at`. `Err` only when
/// the index could not be queried or the bookings not read (the next sweep starts over).
pub async fn sweep<S: Store>(
    notifier: &Notifier<S>,
    config: &SweepConfig,
    since: Option<Timestamp>,
    budget: Budget,
) -> Result<SweepReport> {
    let clock = notifier.clock();
    let now = clock.now();
    let before = whole_seconds(now - to_chrono(config.min_age));
    let from = since.unwrap_or_else(|| whole_seconds(now - chrono::Duration::days(config.lookback_days.into())));
    let mut report = SweepReport { from: time::format(&from), before: time::format(&before), ..SweepReport::default() };
    if !notifier.is_configured() {
        tracing::info!("CRM_WEBHOOK_URL is not set; nothing to sweep");
        report.stopped = Some("not_configured".into());
        return Ok(report);
    }
    let tally = Mutex::new(report);
    let consecutive_failures = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut day = from.date_naive();
    'days: while from < before && day <= before.date_naive() {
        lock(&tally).buckets += 1;
        let mut after = None;
        loop {
            if !budget.can_start(clock.now()) {
                lock(&tally).stopped = Some("deadline".into());
                break 'days;
            }
            let query = PendingQuery { day, from, before, after, limit: PAGE_SIZE };
            let page = notifier.store().pending_deliveries(&query).await?;
            let at = whole_seconds(clock.now());
            let mut ids: Vec<String> = Vec::new();
            {
                let mut t = lock(&tally);
                t.queries += 1;
                t.found += page.items.len();
                for d in &page.items {
                    // The index may lag; the booking's read and the claim decide. This only
                    // saves a read per record that is visibly held by someone else already.
                    if d.claimable_at(at) {
                        // Two messages of one booking: one pass over the booking sends both.
                        if !ids.contains(&d.booking_id) {
                            ids.push(d.booking_id.clone());
                        }
                    } else if d.status.is_final() {
                        t.already_final += 1;
                    } else {
                        t.in_flight += 1;
                    }
                }
            }
            stream::iter(ids)
                .map(|id| deliver_one(notifier, id, budget, &stop, &consecutive_failures, config, &tally))
                .buffer_unordered(config.concurrency.max(1))
                .collect::<Vec<()>>()
                .await;
            if stop.load(Ordering::SeqCst) {
                break 'days;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        day = match day.succ_opt() {
            Some(next) => next,
            None => break,
        };
    }
    let report = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    tracing::info!(report = ?report, "CRM sweep done");
    Ok(report)
}

async fn deliver_one<S: Store>(
    notifier: &Notifier<S>,
    booking_id: String,
    budget: Budget,
    stop: &AtomicBool,
    consecutive_failures: &AtomicUsize,
    config: &SweepConfig,
    tally: &Mutex<SweepReport>,
) {
    if stop.load(Ordering::SeqCst) {
        return;
    }
    if !budget.can_start(notifier.clock().now()) {
        stop.store(true, Ordering::SeqCst);
        lock(tally).stopped.get_or_insert_with(|| "deadline".into());
        return;
    }
    let result = notifier.deliver_booking(&booking_id).await;
    let mut t = lock(tally);
    let failed = match &result {
        Ok(BookingOutcome::Messages(messages)) => {
            for m in messages {
                match &m.outcome {
                    Outcome::Sent(SendOutcome::Delivered { .. }) => t.delivered += 1,
                    Outcome::Sent(SendOutcome::Permanent { .. }) => t.rejected += 1,
                    Outcome::Sent(SendOutcome::Retryable { .. }) => t.retrying += 1,
                    Outcome::AlreadyDelivered | Outcome::AlreadyFailed => t.already_final += 1,
                    Outcome::InFlight { .. } => t.in_flight += 1,
                    Outcome::NotConfigured | Outcome::NotConfirmed => {}
                }
            }
            messages.last().is_some_and(|m| matches!(m.outcome, Outcome::Sent(SendOutcome::Retryable { .. })))
        }
        Ok(BookingOutcome::Missing { .. }) => {
            tracing::error!(booking_id = %booking_id, "pending CRM message record without its booking; skipped");
            t.missing_bookings += 1;
            false
        }
        Ok(BookingOutcome::NotConfigured) => false,
        Err(e) => {
            tracing::warn!(booking_id = %booking_id, error = %e, "CRM sweep: message records unavailable");
            t.errors += 1;
            true
        }
    };
    if !failed {
        consecutive_failures.store(0, Ordering::SeqCst);
    } else if consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1 >= config.max_consecutive_failures.max(1) {
        stop.store(true, Ordering::SeqCst);
        t.stopped.get_or_insert_with(|| "crm_unavailable".into());
    }
}

fn lock(m: &Mutex<SweepReport>) -> std::sync::MutexGuard<'_, SweepReport> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn since_is_an_instant_or_a_duration_back() {
        let now = time::parse("2026-01-15T12:00:00Z").unwrap();
        let at = |s: &str| parse_since(s, now).map(|t| time::format(&t));
        assert_eq!(at("2026-01-01T00:00:00Z").as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(at("90m").as_deref(), Some("2026-01-15T10:30:00Z"));
        assert_eq!(at("36h").as_deref(), Some("2026-01-14T00:00:00Z"));
        assert_eq!(at("30d").as_deref(), Some("2025-12-16T12:00:00Z"));
        assert_eq!(at("2w").as_deref(), Some("2026-01-01T12:00:00Z"));
        assert_eq!(at("45s").as_deref(), Some("2026-01-15T11:59:15Z"));
        for bad in ["", "d", "-3d", "3y", "3.5h", "yesterday", "99999999999999999w"] {
            assert_eq!(at(bad), None, "{bad:?}");
        }
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
    }

    #[test]
    fn config_defaults_and_bounds() {
        let parse = |vars: &[(&str, &str)]| {
            let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            SweepConfig::from_lookup(|name| map.get(name).cloned())
        };
        assert_eq!(parse(&[]).unwrap(), SweepConfig::default());
        let c = parse(&[
            ("CRM_SWEEP_MIN_AGE_SECONDS", "0"),
            ("CRM_SWEEP_LOOKBACK_DAYS", "30"),
            ("CRM_SWEEP_CONCURRENCY", "8"),
        ])
        .unwrap();
        assert_eq!((c.min_age, c.lookback_days, c.concurrency), (Duration::ZERO, 30, 8));
        for bad in
            [("CRM_SWEEP_LOOKBACK_DAYS", "0"), ("CRM_SWEEP_CONCURRENCY", "0"), ("CRM_SWEEP_MIN_AGE_SECONDS", "5m")]
        {
            assert!(parse(&[bad]).is_err(), "{bad:?}");
        }
    }
}
