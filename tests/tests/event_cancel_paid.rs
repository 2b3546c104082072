//! Cancelling a priced event on both stores, with Stripe down while the fan-out runs: paid
//! bookings owe their refunds (tasks written by their cancel, whether the attendee's or the
//! event's), open holds owe the expiry of their Checkout Session; the fan-out itself never calls
//! Stripe. Once Stripe is back, the payment sweep refunds each paid booking exactly once, expires
//! the open sessions, and refunds a hold that was paid at Stripe just before the cancel.

#[path = "payments_harness/mod.rs"]
mod payments_harness;

use payments_harness::*;
use shared::model::BookingStatus;
use shared::Store;
use tests::*;

async fn paid_event_cancel_with_stripe_down<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(40)).await;
    let mut paid = Vec::new();
    for _ in 0..12 {
        let (booking, token, session) = p.hold(&ev).await;
        let done = p.stub.pay(&session);
        assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &done)).await, "confirmed");
        paid.push((id(&booking), token));
    }
    let mut open = Vec::new();
    for _ in 0..3 {
        let (booking, _, session) = p.hold(&ev).await;
        open.push((id(&booking), session));
    }
    // Paid at Stripe a moment before the cancel; its webhook has not arrived.
    let (late, _, late_session) = p.hold(&ev).await;
    p.stub.pay(&late_session);
    assert_eq!(p.seats_booked(&ev).await, 16);
    let owner = p.app.store.get_event(&ev).await.unwrap().unwrap().owner_id;
    let owner = p.app.tokens.issue(&p.app.store.get_user(&owner).await.unwrap().unwrap()).unwrap();
    let stripe_calls = p.stub.requests().len();
    p.stub.set_down(true).await;
    // Six attendees cancel while the owner cancels the event and its fan-out runs.
    let attendees = futures::future::join_all(paid.iter().take(6).map(|(b, t)| {
        let app = p.app.clone();
        let (b, t) = (b.clone(), t.clone());
        async move { call(&app, request("DELETE", &format!("/bookings/{b}"), Some(&t), None)).await }
    }));
    let owner_side = async {
        let resp = call(&p.app, request("POST", &format!("/events/{ev}/cancel"), Some(&owner), None)).await;
        assert_eq!(status(&resp), 200, "{:?}", json(&resp));
        shared::lifecycle::run_until_done(&p.app.store, &ev, 5, &|_| {}).await.unwrap()
    };
    let (answers, fanout) = tokio::join!(attendees, owner_side);
    let by_attendee = answers.iter().filter(|r| status(r) == 200).count();
    for r in &answers {
        assert!(status(r) == 200 || error_code(r) == "already_cancelled", "{:?}", json(r));
    }
    assert_eq!(by_attendee + fanout.cancelled, 16, "{fanout:?}");
    assert_eq!(p.seats_booked(&ev).await, 0);
    assert_eq!(p.stub.refund_count(), 0, "Stripe is down: nothing refunded yet");
    let during = p.stub.requests().len() - stripe_calls;
    assert!(during <= by_attendee, "only the attendees' own cancels tried Stripe ({during} calls)");
    for (b, _) in &paid {
        let booking = p.booking(b).await;
        assert_eq!(booking.status, BookingStatus::Cancelled);
        assert_eq!(booking.payment.unwrap().refund_status.as_deref(), Some("requested"), "refund owed");
    }
    // Stripe is back: one sweep settles everything; a second finds nothing.
    p.stub.set_down(false).await;
    let later = shared::time::now() + chrono::Duration::seconds(1);
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), later, 1, &|_| {}).await.unwrap();
    assert_eq!((report.refunds, report.sessions_expired, report.errors), (13, 3, 0), "{report:?}");
    assert_eq!(p.stub.refund_count(), 13, "each paid booking once, and the late-paid hold");
    for (b, session) in &open {
        assert_eq!(p.stub.session(session).unwrap()["status"], "expired", "{b}");
        assert_eq!(p.booking(b).await.cancel_reason, Some(shared::model::CancelReason::EventCancelled));
    }
    assert!(p.booking(&id(&late)).await.payment.unwrap().refund_id.is_some(), "the late payment is returned");
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), later, 1, &|_| {}).await.unwrap();
    assert_eq!((report.found, report.refunds), (0, 0), "{report:?}");
    // The late payment's webhook arrives now: the refund already asked for, nothing more.
    let done = p.stub.session(&late_session).unwrap();
    p.effect(&stripe_event(&evt(), "checkout.session.completed", &done)).await;
    assert_eq!(p.stub.refund_count(), 13);
}

store_tests!(paid_event_cancel_with_stripe_down);
