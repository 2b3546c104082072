//! Payments v3, as Stripe enforces them, on both stores: the webhook settles only the session the
//! service created (id, amount, currency), never a Payment Link's or another integration's; a
//! cancelled hold found paid is refunded at once; refunds that end `failed` show and alarm;
//! prices under Stripe's minimum are refused; webhook bodies over 256 KiB are 413; the owner's
//! attendee list shows no `checkout_url`.

mod payments_harness;

use futures::future::join_all;
use payments_harness::*;
use serde_json::json;
use shared::model::{BookingStatus, Role};
use shared::Store;
use std::sync::Arc;
use tests::stripe_stub::RefundOutcome;
use tests::*;

/// A Payment Link on the same account whose buyer typed a cancelled booking's id as
/// `client_reference_id`, and a cheaper session naming a pending booking in its metadata:
/// neither refunds nor confirms anything.
async fn the_webhook_acts_only_on_its_own_sessions<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let (cancelled, token, _) = p.hold(&ev).await;
    let resp = call(&p.app, request("DELETE", &format!("/bookings/{}", id(&cancelled)), Some(&token), None)).await;
    assert_eq!(status(&resp), 200);
    let link = p.stub.foreign_paid_session(2500, "eur", json!({"client_reference_id": id(&cancelled)}));
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &link)).await, "none");
    assert!(p.stub.refund_requests().is_empty(), "a payment this service never took was refunded");
    assert_eq!(p.booking(&id(&cancelled)).await.payment.unwrap().refund_status, None);

    let (pending, _, session_id) = p.hold(&ev).await;
    // Cheaper, another currency, or the same price from another session: none is this payment.
    for (amount, currency) in [(100, "eur"), (2500, "usd"), (2500, "eur")] {
        let cheap = p.stub.foreign_paid_session(amount, currency, json!({"metadata": {"booking_id": id(&pending)}}));
        assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &cheap)).await, "none");
        assert_eq!(p.booking(&id(&pending)).await.status, BookingStatus::PendingPayment, "{amount} {currency}");
    }
    // Its own session, for a different amount than recorded: not this payment either.
    let mut paid = p.stub.pay(&session_id);
    paid["amount_total"] = json!(100);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "none");
    let expired = p.stub.foreign_paid_session(
        2500,
        "eur",
        json!({"status": "expired", "metadata": {"booking_id": id(&pending)}}),
    );
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.expired", &expired)).await, "none");
    assert_eq!(p.booking(&id(&pending)).await.status, BookingStatus::PendingPayment);
    paid["amount_total"] = json!(2500);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
    assert!(p.stub.refund_requests().is_empty());
}

/// The payer paid just before the cancel: Stripe refuses to expire the completed session, the
/// cancel learns it was paid and refunds it at once; the webhook that follows adds nothing.
async fn a_cancelled_hold_found_paid_is_refunded_at_once<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let (booking, token, session_id) = p.hold(&ev).await;
    let paid = p.stub.pay(&session_id);
    let resp = call(&p.app, request("DELETE", &format!("/bookings/{}", id(&booking)), Some(&token), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    assert_eq!(json(&resp)["status"], "cancelled");
    assert_eq!(json(&resp)["payment"]["refund_status"], "pending", "{:?}", json(&resp));
    let expire = p.stub.requests_to("POST", &format!("/v1/checkout/sessions/{session_id}/expire"));
    assert_eq!(expire.iter().map(|r| r.status).collect::<Vec<_>>(), [400], "Stripe refused to expire it");
    let refunds = p.stub.refund_requests();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].field("payment_intent"), paid["payment_intent"].as_str());
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "none");
    assert_eq!(p.stub.refund_requests().len(), 1);
    assert_eq!(p.seats_booked(&ev).await, 0);
}

/// A refund goes `pending` → `succeeded` through `refund.updated`; one that fails shows
/// `failed` (and the alarm line is logged); events for other refunds change nothing.
async fn refund_statuses_follow_stripe<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let mut refunds = Vec::new();
    for _ in 0..2 {
        let (booking, token, session_id) = p.hold(&ev).await;
        let paid = p.stub.pay(&session_id);
        assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
        let resp = call(&p.app, request("DELETE", &format!("/bookings/{}", id(&booking)), Some(&token), None)).await;
        assert_eq!(json(&resp)["payment"]["refund_status"], "pending");
        let refund_id = p.booking(&id(&booking)).await.payment.unwrap().refund_id.unwrap();
        refunds.push((id(&booking), refund_id));
    }
    let (ok, ok_refund) = &refunds[0];
    let (bad, bad_refund) = &refunds[1];
    let mut stranger = p.stub.refund(ok_refund).unwrap();
    stranger["id"] = json!("re_not_ours");
    stranger["status"] = json!("failed");
    assert_eq!(p.effect(&stripe_event(&evt(), "refund.updated", &stranger)).await, "none");
    let succeeded = p.stub.settle_refund(ok_refund, "succeeded");
    assert_eq!(p.effect(&stripe_event(&evt(), "refund.updated", &succeeded)).await, "refund_updated");
    assert_eq!(p.booking(ok).await.payment.unwrap().refund_status.as_deref(), Some("succeeded"));
    // A late `pending` never undoes an ending.
    let mut late = succeeded.clone();
    late["status"] = json!("pending");
    assert_eq!(p.effect(&stripe_event(&evt(), "refund.updated", &late)).await, "none");
    // Nor does a stale answer that slips past the handler's read: the store's write decides.
    p.app.store.record_refund(ok, ok_refund, "pending").await.unwrap();
    assert_eq!(p.booking(ok).await.payment.unwrap().refund_status.as_deref(), Some("succeeded"));
    let failed = p.stub.settle_refund(bad_refund, "failed");
    assert_eq!(p.effect(&stripe_event(&evt(), "refund.failed", &failed)).await, "refund_updated");
    let view =
        json(&call(&p.app, request("GET", &format!("/bookings/{bad}"), Some(&admin_token(&p).await), None)).await);
    assert_eq!(view["payment"]["refund_status"], "failed", "{view}");

    // A refund Stripe answers `failed` at once is recorded as such, not retried as if pending.
    p.stub.refund_outcome(RefundOutcome::Failed);
    let (booking, token, session_id) = p.hold(&ev).await;
    let paid = p.stub.pay(&session_id);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
    let resp = call(&p.app, request("DELETE", &format!("/bookings/{}", id(&booking)), Some(&token), None)).await;
    assert_eq!(json(&resp)["payment"]["refund_status"], "failed");
    let later = shared::time::now() + chrono::Duration::minutes(60);
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), later, 1, &|_| {}).await.unwrap();
    assert_eq!(report.refunds, 0, "{report:?}");
}

async fn admin_token<S: Store>(p: &Paid<S>) -> String {
    user(&p.app, Role::Admin).await.1
}

/// The owner sees who booked and how it stands, never the page that takes the attendee's money.
async fn the_attendee_list_shows_no_checkout_url<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let (_, owner) = user(&p.app, Role::Facilitator).await;
    let body = json!({"title": "Gong", "type": "Meditation", "datetime": in_days(3), "capacity": 4,
        "price": {"amount": 2500, "currency": "eur"}});
    let ev = id(&json(&call(&p.app, request("POST", "/events", Some(&owner), Some(body))).await));
    let (booking, _, _) = p.hold(&ev).await;
    assert!(booking["payment"]["checkout_url"].is_string(), "the attendee has it");
    let list = json(&call(&p.app, request("GET", &format!("/events/{ev}/bookings"), Some(&owner), None)).await);
    let row = &list[0];
    assert_eq!(row["id"], booking["id"], "{list}");
    assert_eq!(row["payment"]["checkout_url"], serde_json::Value::Null, "{list}");
    assert!(!list.to_string().contains("checkout.stripe.com"), "{list}");
}

/// A price Stripe could never charge is refused when the event is written.
async fn prices_below_stripes_minimum_are_refused<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let (_, owner) = user(&p.app, Role::Facilitator).await;
    for (amount, currency, want) in
        [(49, "usd", 400), (50, "usd", 201), (29, "gbp", 400), (30, "gbp", 201), (999, "mxn", 400), (1, "xof", 201)]
    {
        let body = json!({"title": "Min", "type": "Yoga", "datetime": in_days(5),
            "price": {"amount": amount, "currency": currency}});
        let resp = call(&p.app, request("POST", "/events", Some(&owner), Some(body))).await;
        assert_eq!(status(&resp), want, "{amount} {currency}: {:?}", json(&resp));
        if want == 400 {
            assert_eq!(json(&resp)["error"]["field"], "price");
            assert_eq!(error_code(&resp), "validation_failed");
        }
    }
    let ev = p.event(None).await;
    let patch = json!({"price": {"amount": 10, "currency": "eur"}});
    let resp = call(&p.app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(patch))).await;
    assert_eq!(status(&resp), 400, "{:?}", json(&resp));
}

/// Over 256 KiB → 413 before any HMAC; at the limit the signature is checked as usual.
async fn oversized_webhooks_are_413<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(shared::payments::MAX_WEBHOOK_BYTES));
    let t = shared::time::now().timestamp();
    let resp = call(&p.app, webhook(&big, Some(&stripe_signature(&big, WHSEC, t)))).await;
    assert_eq!((status(&resp), error_code(&resp)), (413, "payload_too_large".into()));
    let small = "x".repeat(1000);
    let resp = call(&p.app, webhook(&small, Some("t=1,v1=00"))).await;
    assert_eq!(status(&resp), 400);
}

// ---------------------------------------------------------------- cancel and refund

async fn cancelling_a_paid_booking_refunds_it_once<S: Store + Clone>(store: S) {
    let p = Arc::new(Paid::new(store).await);
    let ev = p.event(Some(5)).await;
    let (booking, token, session_id) = p.hold(&ev).await;
    let bid = id(&booking);
    let paid = p.stub.pay(&session_id);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");

    let path = format!("/bookings/{bid}");
    let resp = call(&p.app, request("DELETE", &path, Some(&token), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let cancelled = json(&resp);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["payment"]["refund_status"], "pending", "{cancelled}");
    // The retried DELETE is a 409 and asks Stripe for nothing.
    let again = call(&p.app, request("DELETE", &path, Some(&token), None)).await;
    assert_eq!((status(&again), error_code(&again)), (409, "already_cancelled".into()));
    // A redelivered completed event neither re-confirms nor refunds again.
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "none");
    let refunds = p.stub.refund_requests();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].field("payment_intent"), paid["payment_intent"].as_str());
    assert_eq!(refunds[0].idempotency_key, Some(format!("refund-{bid}")));
    let b = p.booking(&bid).await;
    let payment = b.payment.as_ref().unwrap();
    assert_eq!((payment.refund_status.as_deref(), payment.refund_id.is_some()), (Some("pending"), true));
    assert_eq!(p.seats_booked(&ev).await, 0);
    assert_eq!(p.stub.refund_count(), 1);

    // Concurrent DELETEs of another paid booking: one 200, the rest 409, one refund request.
    let (booking, token, session_id) = p.hold(&ev).await;
    let paid = p.stub.pay(&session_id);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
    let path = format!("/bookings/{}", id(&booking));
    let deletes = (0..5).map(|_| {
        let (p, path, token) = (p.clone(), path.clone(), token.clone());
        tokio::spawn(async move { status(&call(&p.app, request("DELETE", &path, Some(&token), None)).await) })
    });
    let mut codes: Vec<u16> = join_all(deletes).await.into_iter().map(Result::unwrap).collect();
    codes.sort();
    assert_eq!(codes, [200, 409, 409, 409, 409]);
    assert_eq!(p.stub.refund_requests().len(), 2);
    assert_eq!(p.seats_booked(&ev).await, 0);
}

async fn cancelling_a_pending_booking_expires_its_session<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(1)).await;
    let (booking, token, session_id) = p.hold(&ev).await;
    let bid = id(&booking);
    let resp = call(&p.app, request("DELETE", &format!("/bookings/{bid}"), Some(&token), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    assert_eq!(json(&resp)["status"], "cancelled");
    let expire_path = format!("/v1/checkout/sessions/{session_id}/expire");
    assert_eq!(p.stub.requests_to("POST", &expire_path).len(), 1);
    assert_eq!(p.stub.session(&session_id).unwrap()["status"], "expired");
    assert_eq!(p.seats_booked(&ev).await, 0);
    // Stripe's expired event for it comes afterwards: nothing more is released.
    let expired = p.stub.session(&session_id).unwrap();
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.expired", &expired)).await, "none");
    assert_eq!(p.seats_booked(&ev).await, 0);
    assert!(p.stub.refund_requests().is_empty());
    assert_eq!(status(&p.book(&token, &ev).await), 201, "the user may book again");
    assert_eq!(p.seats_booked(&ev).await, 1);
}

store_tests!(
    cancelling_a_paid_booking_refunds_it_once,
    cancelling_a_pending_booking_expires_its_session,
    the_webhook_acts_only_on_its_own_sessions,
    a_cancelled_hold_found_paid_is_refunded_at_once,
    refund_statuses_follow_stripe,
    the_attendee_list_shows_no_checkout_url,
    prices_below_stripes_minimum_are_refused,
    oversized_webhooks_are_413,
);
