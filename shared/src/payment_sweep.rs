//! The payment sweep: settles seat holds whose time is up from their Checkout Session at Stripe,
//! asks again for refunds Stripe has not acknowledged, expires the sessions of holds cancelled
//! with their event, and opens the Checkout Sessions of waitlist offers that no driver could open
//! yet (Stripe down: the seat stays held, the offer is retried every run until it opens or too
//! little time is left); from the due-payments index, never a Scan. Re-exported by
//! [`crate::payments`].

use crate::error::{Error, Result};
use crate::model::{Booking, BookingStatus, PaymentTaskKind};
use crate::offers::{open_offer, OfferOutcome};
use crate::payments::{refund_booking, refund_paid_hold, settle_expired_hold, PaymentProvider};
use crate::store::{PendingQuery, Settled, Settlement, Store};
use crate::time::Timestamp;

/// What one payment sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PaymentSweepReport {
    pub queries: usize,
    pub found: usize,
    pub confirmed: usize,
    pub expired: usize,
    /// Holds left pending (an async payment still processing) or already settled meanwhile.
    pub unchanged: usize,
    pub refunds: usize,
    /// Sessions of holds cancelled with their event, expired at Stripe.
    pub sessions_expired: usize,
    /// Waitlist offers whose Checkout Session this sweep opened (Stripe was down when they were
    /// promoted, or the stream's attempt failed).
    pub offers_opened: usize,
    /// Waitlist offers ended unopened: too little time left for a session (the seat went on).
    pub offers_expired: usize,
    pub errors: usize,
}

/// Settles every hold that has expired and retries every refund Stripe has not acknowledged,
/// from the due-payments index (one Query per day bucket and page, never a Scan), for tasks due
/// in the last `lookback_days` days up to `now`. `on_confirmed` is called for each booking this
/// confirms (the local server delivers its CRM webhook; deployed, the stream does).
pub async fn sweep_payments<S: Store>(
    store: &S,
    provider: &dyn PaymentProvider,
    now: Timestamp,
    lookback_days: u32,
    on_confirmed: &(dyn Fn(&Booking) + Send + Sync),
) -> Result<PaymentSweepReport> {
    let mut report = PaymentSweepReport::default();
    let from = now - chrono::Duration::days(lookback_days.into());
    let mut day = from.date_naive();
    while day <= now.date_naive() {
        let mut after = None;
        loop {
            let q = PendingQuery { day, from, before: now, after: after.clone(), limit: 100 };
            let page = store.due_payment_tasks(&q).await?;
            report.queries += 1;
            report.found += page.items.len();
            let ids: Vec<String> = page.items.iter().map(|t| t.booking_id.clone()).collect();
            let bookings: std::collections::HashMap<String, Booking> =
                store.get_bookings(&ids).await?.into_iter().map(|b| (b.id.clone(), b)).collect();
            for task in &page.items {
                let Some(booking) = bookings.get(&task.booking_id) else { continue };
                let outcome = match task.kind {
                    PaymentTaskKind::Hold => sweep_hold(store, provider, booking, now, on_confirmed, &mut report).await,
                    PaymentTaskKind::Refund => {
                        refund_booking(store, provider, booking).await.map(|_| report.refunds += 1)
                    }
                    PaymentTaskKind::Offer => open_offer(store, provider, booking, now).await.map(|o| match o {
                        OfferOutcome::Opened(_) => report.offers_opened += 1,
                        OfferOutcome::Expired(_) => report.offers_expired += 1,
                        OfferOutcome::Gone => report.unchanged += 1,
                    }),
                    PaymentTaskKind::ExpireCheckout => {
                        expire_cancelled_hold(store, provider, booking, &mut report).await
                    }
                };
                if let Err(e) = outcome {
                    report.errors += 1;
                    tracing::warn!(booking_id = %task.booking_id, error = %e, "payment sweep: will retry next run");
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        day = day.succ_opt().ok_or_else(|| Error::internal("date overflow"))?;
    }
    tracing::info!(?report, "payment sweep done");
    Ok(report)
}

/// A hold cancelled with its event: its Checkout Session is expired at Stripe so nobody pays for
/// a seat that is gone. Stripe answers with the session as it ends; paid just before (or a
/// delayed payment that completed), the payment is refunded in full ([`refund_paid_hold`]). The
/// task ends with the expiry or with the refund.
pub async fn expire_cancelled_hold<S: Store>(
    store: &S,
    provider: &dyn PaymentProvider,
    booking: &Booking,
    report: &mut PaymentSweepReport,
) -> Result<()> {
    let Some(session_id) = booking.payment.as_ref().and_then(|p| p.checkout_session_id.as_deref()) else {
        return store.drop_payment_task(&booking.id, PaymentTaskKind::ExpireCheckout).await;
    };
    let mut session = provider.retrieve_checkout(session_id).await?;
    if session.status.as_deref() == Some("open") {
        session = provider.expire_checkout(session_id).await?;
    }
    if session.is_paid() {
        refund_paid_hold(store, provider, booking, session).await?;
        report.refunds += 1;
        return Ok(());
    }
    report.sessions_expired += 1;
    store.drop_payment_task(&booking.id, PaymentTaskKind::ExpireCheckout).await
}

async fn sweep_hold<S: Store>(
    store: &S,
    provider: &dyn PaymentProvider,
    booking: &Booking,
    now: Timestamp,
    on_confirmed: &(dyn Fn(&Booking) + Send + Sync),
    report: &mut PaymentSweepReport,
) -> Result<()> {
    let session = booking.payment.as_ref().and_then(|p| p.checkout_session_id.as_deref());
    let Some((to, payment_intent)) = settle_expired_hold(provider, session).await? else {
        report.unchanged += 1;
        return Ok(());
    };
    let settlement = Settlement { to, by: "sweep".into(), payment_intent, now, session: None };
    match store.settle_payment(&booking.id, &settlement).await? {
        Settled::Changed(b) if b.status == BookingStatus::Confirmed => {
            report.confirmed += 1;
            on_confirmed(&b);
        }
        Settled::Changed(_) => report.expired += 1,
        Settled::Unchanged(_) | Settled::Foreign(_) | Settled::NotFound => report.unchanged += 1,
    }
    Ok(())
}
