//! Time as the notifier sees it: the wall clock it writes into delivery records (leases) and the
//! sleeps between attempts. Injected, so that tests can run minutes of backoff in no time with a
//! [`ManualClock`]; deployed it is the [`SystemClock`] (tokio's timer).

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use shared::time::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock now, full precision.
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Whole seconds, as the store keeps times.
pub fn whole_seconds(t: DateTime<Utc>) -> Timestamp {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The non-negative time from `from` to `to`.
pub fn until(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Simulated time: `sleep` returns at once and moves the clock forward by its duration, and every
/// sleep is recorded. Clones share the time. Meant for one sequence of events (one task): tasks
/// sleeping concurrently would each move the shared clock.
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    pub fn starting_at(now: DateTime<Utc>) -> Self {
        ManualClock { inner: Arc::new(Mutex::new(ManualState { now, sleeps: Vec::new() })) }
    }

    /// Starts at the current wall-clock second.
    pub fn new() -> Self {
        Self::starting_at(whole_seconds(Utc::now()))
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.state();
        state.now = add(state.now, by);
    }

    /// The sleeps so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state().sleeps.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A panicking test thread cannot leave the time half-written: recover the guard.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let mut state = self.state();
        state.now = add(state.now, duration);
        state.sleeps.push(duration);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_moves_only_when_told_or_slept() {
        let start = shared::time::parse("2026-01-05T09:30:00Z").unwrap();
        let clock = ManualClock::starting_at(start);
        let shared = clock.clone();
        clock.sleep(Duration::from_secs(90)).await;
        shared.advance(Duration::from_millis(500));
        assert_eq!(until(start, clock.now()), Duration::from_millis(90_500));
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(90)]);
        assert_eq!(shared::time::format(&whole_seconds(clock.now())), "2026-01-05T09:31:30Z");
        assert_eq!(until(clock.now(), start), Duration::ZERO);
    }
}
