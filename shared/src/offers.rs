//! Waitlist offers of priced events. A promotion hands the freed seat to the first in line as a
//! `pending_payment` booking with an `Offer` payment task due at once, in the write that frees
//! the seat; its Checkout Session can only be created after that write commits (Stripe is no
//! part of a DynamoDB transaction). [`open_offer`] does that step, from whichever driver sees the
//! task first: the task's stream record (crm-notifier), the payment sweep (Stripe was down), or
//! the local server after a route that may have promoted. The seat stays held meanwhile.

use crate::error::{Error, Result};
use crate::model::{Booking, BookingStatus, PaymentTaskKind};
use crate::payments::{CheckoutAnswer, CheckoutRequest, PaymentProvider};
use crate::store::{PendingQuery, Settled, Settlement, Store};
use crate::time::Timestamp;

/// Stripe creates a Checkout Session only when its `expires_at` is at least this long after the
/// creation, on Stripe's clock
/// (<https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at>).
/// An offer with less left is not even sent: Stripe would refuse it.
pub const STRIPE_MIN_SESSION_MINUTES: i64 = 30;

/// What `payment.settled_by` records for an offer that ended without its session (no Stripe
/// event did it).
pub const SETTLED_UNOPENED: &str = "sweep";

/// What [`open_offer`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum OfferOutcome {
    /// The session is open and recorded: the booking as it now stands (its `checkout_url` set,
    /// its task now the hold's, its `booking.offered` message owed).
    Opened(Booking),
    /// Too little time was left for a session (by our clock, or Stripe refused it): the offer
    /// ended `expired` and the seat went on (to the next in line, when one can be promoted).
    Expired(Booking),
    /// Nothing to do: the booking is no longer an unopened pending offer (opened by another
    /// driver, paid, cancelled or expired meanwhile).
    Gone,
}

/// Opens the Checkout Session of a promoted booking's offer and records it
/// ([`Store::attach_checkout`]: for an offer the same write turns its `Offer` task into its `Hold`
/// task due at `expires_at` and writes its `booking.offered` message).
///
/// The session's `expires_at` is `payment.expires_at`, fixed at the promotion, and the
/// `Idempotency-Key` is the booking id, so a retry (the stream record and the sweep both trying,
/// a lost answer) sends the same request and Stripe answers with the same session. `Err` when
/// Stripe could not be reached or failed, or the store could not be written: the `Offer` task
/// stays and the payment sweep tries again; the seat stays held.
pub async fn open_offer<S: Store>(
    store: &S,
    provider: &dyn PaymentProvider,
    booking: &Booking,
    now: Timestamp,
) -> Result<OfferOutcome> {
    let unopened = booking.status == BookingStatus::PendingPayment && booking.via_waitlist;
    let Some(payment) = booking.payment.as_ref().filter(|p| unopened && p.checkout_session_id.is_none()) else {
        return Ok(OfferOutcome::Gone);
    };
    if payment.expires_at - now < chrono::Duration::minutes(STRIPE_MIN_SESSION_MINUTES) {
        tracing::info!(booking_id = %booking.id, "offer left under Stripe's shortest session: expiring it");
        return expire(store, booking, now).await;
    }
    let request = CheckoutRequest::for_booking(booking).ok_or_else(|| Error::internal("offer without a payment"))?;
    let session = match provider.create_checkout_or_refusal(&request).await? {
        CheckoutAnswer::Created(session) => session,
        CheckoutAnswer::Refused { param } => {
            tracing::warn!(booking_id = %booking.id, param = param.as_deref().unwrap_or("-"), "Stripe refused the offer's session: expiring it");
            return expire(store, booking, now).await;
        }
    };
    let Some(url) = session.url.clone() else {
        return Err(Error::PaymentProviderUnavailable("Checkout Session without a url".into()));
    };
    if !store.attach_checkout(&booking.id, &session.id, &url).await? {
        // Cancelled (or expired) while Stripe answered: nobody has this session's link, and
        // ending it keeps anyone from paying for a seat that is gone.
        if let Err(e) = provider.expire_checkout(&session.id).await {
            tracing::warn!(booking_id = %booking.id, error = %e, "session of a withdrawn offer not expired; it ends at its expires_at");
        }
        return Ok(OfferOutcome::Gone);
    }
    let mut opened = booking.clone();
    if let Some(p) = opened.payment.as_mut() {
        p.checkout_session_id = Some(session.id);
        p.checkout_url = Some(url);
    }
    tracing::info!(booking_id = %booking.id, "waitlist offer opened");
    Ok(OfferOutcome::Opened(opened))
}

/// Ends an offer whose session cannot be opened. The adapter drops its `Offer` task, owes no CRM
/// message (the CRM never heard of it) and hands the seat on.
async fn expire<S: Store>(store: &S, booking: &Booking, now: Timestamp) -> Result<OfferOutcome> {
    let settlement = Settlement {
        to: BookingStatus::Expired,
        by: SETTLED_UNOPENED.into(),
        payment_intent: None,
        now,
        session: None,
    };
    Ok(match store.settle_payment(&booking.id, &settlement).await? {
        Settled::Changed(b) => OfferOutcome::Expired(b),
        Settled::Unchanged(_) | Settled::Foreign(_) | Settled::NotFound => OfferOutcome::Gone,
    })
}

/// Rounds of [`open_due_offers`]: an offer that expires promotes the next, whose offer is due at
/// once; each round handles what the previous one promoted.
pub const MAX_OFFER_ROUNDS: usize = 10;

/// Opens every `Offer` task due by `now` (today's and yesterday's buckets of the due-payments
/// index, never a Scan), again while a round expired an offer (the next in line then has one):
/// the local server's prompt path after a route that may have promoted (deployed, each task's
/// stream record does it, and the payment sweep catches up). Each outcome goes to `on_outcome`
/// (the local server delivers the new CRM messages). Failures are logged and left to the sweep.
pub async fn open_due_offers<S: Store>(
    store: &S,
    provider: &dyn PaymentProvider,
    now: Timestamp,
    on_outcome: &(dyn Fn(&OfferOutcome) + Send + Sync),
) -> Result<usize> {
    let mut handled = 0;
    for _ in 0..MAX_OFFER_ROUNDS {
        let mut expired_any = false;
        for booking in due_offers(store, now).await? {
            match open_offer(store, provider, &booking, now).await {
                Ok(OfferOutcome::Gone) => {}
                Ok(outcome) => {
                    expired_any |= matches!(outcome, OfferOutcome::Expired(_));
                    handled += 1;
                    on_outcome(&outcome);
                }
                Err(e) => {
                    tracing::warn!(booking_id = %booking.id, error = %e, "offer not opened; the payment sweep retries")
                }
            }
        }
        if !expired_any {
            break;
        }
    }
    Ok(handled)
}

/// The bookings of the `Offer` tasks due by `now`, from a day back.
async fn due_offers<S: Store>(store: &S, now: Timestamp) -> Result<Vec<Booking>> {
    let from = now - chrono::Duration::days(1);
    // `before` is exclusive and a promotion's task is due at its own `now`, to the second.
    let before = now + chrono::Duration::seconds(1);
    let mut ids = Vec::new();
    let mut day = from.date_naive();
    while day <= before.date_naive() {
        let mut after = None;
        loop {
            let page = store.due_payment_tasks(&PendingQuery { day, from, before, after, limit: 100 }).await?;
            ids.extend(page.items.iter().filter(|t| t.kind == PaymentTaskKind::Offer).map(|t| t.booking_id.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        day = day.succ_opt().ok_or_else(|| Error::internal("date overflow"))?;
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    store.get_bookings(&ids).await
}
