//! Locally, what the stream does deployed after a write that may hand a seat to the waitlist (a
//! cancel, a released hold, an expiry by webhook or sweep, a capacity increase's promote job):
//! open the Checkout Sessions of the offers it made (the `Offer` task's stream record, deployed)
//! and deliver the CRM messages it wrote (`booking.confirmed` of a free promotion, an offer's
//! `booking.offered`, an expired offer's `booking.expired`; their records' stream records,
//! deployed). It runs in the background after the route answered, so no request waits for Stripe
//! or the CRM.
//!
//! Which bookings were promoted is not something the store returns; the work indexes say it: the
//! due `Offer` tasks ([`shared::offers::open_due_offers`]) and the message records owed since the
//! route began (the pending index, by the instant each was owed). Both are index reads, never a
//! Scan, and every send goes through the same claims as deployed, so a message another sender is
//! already delivering (the route's own hook, a sweep) is not sent twice.

use http::{Method, StatusCode};
use shared::app::BookingHook;
use shared::error::{Error, Result};
use shared::lifecycle::{run_until_done, BATCH};
use shared::offers::{open_due_offers, OfferOutcome};
use shared::payments::PaymentProvider;
use shared::store::{PendingQuery, Store};
use shared::time::Timestamp;
use std::sync::Arc;

/// What a route's answer says about promotions: whether one may have happened, and the event
/// whose promote job (a capacity increase) to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A write that frees a seat promotes in the same write: open offers, deliver messages.
    Promoted,
    /// An event update: a capacity increase writes a promote job, run here to the end first.
    EventChanged(String),
}

/// The routes after which a promotion may have happened: a booking's cancel (attendee or admin),
/// a Stripe webhook (an expiry), an event's update (a capacity increase), and a booking whose
/// Checkout Session could not be created (502: its hold was released).
pub fn trigger(method: &Method, path: &str, status: StatusCode) -> Option<Trigger> {
    let segments = shared::http::segments(path);
    match (method, segments.as_slice()) {
        (&Method::DELETE, ["bookings", _]) | (&Method::POST, ["payments", "webhook"]) => Some(Trigger::Promoted),
        (&Method::POST, ["bookings"]) if status == StatusCode::BAD_GATEWAY => Some(Trigger::Promoted),
        (&Method::PATCH | &Method::PUT, ["events", id]) if status.is_success() => {
            Some(Trigger::EventChanged((*id).to_string()))
        }
        _ => None,
    }
}

/// What one follow-up did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowUpReport {
    /// Offers opened or ended unopened.
    pub offers: usize,
    /// Bookings whose owed messages were handed to the background delivery.
    pub deliveries: usize,
}

/// The follow-up's dependencies: the store, Stripe (when payments are on) and the background
/// CRM delivery (when a CRM is configured).
pub struct FollowUp<S> {
    store: S,
    provider: Option<Arc<dyn PaymentProvider>>,
    on_booking: Option<BookingHook>,
}

impl<S: Store + Clone> FollowUp<S> {
    pub fn new(store: S, provider: Option<Arc<dyn PaymentProvider>>, on_booking: Option<BookingHook>) -> Self {
        FollowUp { store, provider, on_booking }
    }

    /// Runs `trigger`'s follow-up in a background task (the route has answered already).
    pub fn spawn(self: &Arc<Self>, since: Timestamp, trigger: Trigger) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = this.after(since, trigger).await {
                tracing::warn!(error = %e, "promotion follow-up failed; the sweeps catch up");
            }
        });
    }

    /// Runs an event's promote job (if one is due) to its end, opens the offers due now, and
    /// hands every booking with a CRM message owed since `since` to the background delivery.
    pub async fn after(&self, since: Timestamp, trigger: Trigger) -> Result<FollowUpReport> {
        if let Trigger::EventChanged(event_id) = &trigger {
            if self.store.get_job(event_id).await?.is_some() {
                let hand_on = |b: &shared::model::Booking| self.deliver(b);
                run_until_done(&self.store, event_id, BATCH, &hand_on).await?;
            }
        }
        let mut report = FollowUpReport::default();
        if let Some(provider) = self.provider.as_deref() {
            let on_outcome = |o: &OfferOutcome| {
                if let OfferOutcome::Opened(b) = o {
                    self.deliver(b);
                }
            };
            report.offers = open_due_offers(&self.store, provider, shared::time::now(), &on_outcome).await?;
        }
        report.deliveries = self.deliver_owed_since(since).await?;
        if report != FollowUpReport::default() {
            tracing::info!(?report, "promotion follow-up");
        }
        Ok(report)
    }

    fn deliver(&self, booking: &shared::model::Booking) {
        if let Some(hook) = &self.on_booking {
            hook(booking);
        }
    }

    /// Every booking with a message record owed at or after `since` (the pending index's day
    /// buckets up to now), handed to the background delivery once each.
    async fn deliver_owed_since(&self, since: Timestamp) -> Result<usize> {
        if self.on_booking.is_none() {
            return Ok(0);
        }
        let before = shared::time::now() + chrono::Duration::seconds(1);
        let mut ids: Vec<String> = Vec::new();
        let mut day = since.date_naive();
        while day <= before.date_naive() {
            let mut after = None;
            loop {
                let q = PendingQuery { day, from: since, before, after, limit: 100 };
                let page = self.store.pending_deliveries(&q).await?;
                for d in page.items {
                    if !ids.contains(&d.booking_id) {
                        ids.push(d.booking_id);
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            day = day.succ_opt().ok_or_else(|| Error::internal("date overflow"))?;
        }
        if ids.is_empty() {
            return Ok(0);
        }
        let bookings = self.store.get_bookings(&ids).await?;
        for b in &bookings {
            self.deliver(b);
        }
        Ok(bookings.len())
    }
}
