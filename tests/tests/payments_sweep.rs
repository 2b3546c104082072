//! The payment sweep (holds no webhook settled, refunds Stripe did not answer) and the DynamoDB
//! calls of each kind of webhook, on the strict Stripe stand-in.

mod payments_harness;

use payments_harness::*;
use serde_json::json;
use shared::model::Booking;
use shared::Store;
use tests::*;

// ---------------------------------------------------------------- the sweep

async fn the_sweep_settles_holds_no_webhook_settled<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let (abandoned, _, abandoned_session) = p.hold(&ev).await;
    let (paid_booking, _, paid_session) = p.hold(&ev).await;
    p.stub.pay(&paid_session); // paid at Stripe; its webhook never arrives
    let seen = p.hooked.clone();
    let hook = move |b: &Booking| seen.lock().unwrap().push(b.id.clone());

    // Before the holds end the sweep finds nothing due.
    let now = shared::time::now();
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), now, 1, &hook).await.unwrap();
    assert_eq!((report.found, report.confirmed, report.expired), (0, 0, 0), "{report:?}");

    // Past `expires_at`: the open session is expired at Stripe, the paid one confirmed.
    let later = now + chrono::Duration::minutes(shared::model::HOLD_MINUTES + 1);
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), later, 1, &hook).await.unwrap();
    assert_eq!((report.found, report.confirmed, report.expired, report.errors), (2, 1, 1, 0), "{report:?}");
    assert_eq!(p.booking(&id(&abandoned)).await.status, shared::model::BookingStatus::Expired);
    assert_eq!(p.stub.session(&abandoned_session).unwrap()["status"], "expired");
    let confirmed = p.booking(&id(&paid_booking)).await;
    assert_eq!(confirmed.status, shared::model::BookingStatus::Confirmed);
    assert_eq!(confirmed.payment.as_ref().unwrap().settled_by.as_deref(), Some("sweep"));
    assert!(p.app.store.get_delivery(&id(&paid_booking)).await.unwrap().is_some());
    assert_eq!(p.hooked(), [id(&paid_booking)]);
    assert_eq!(p.seats_booked(&ev).await, 1, "the abandoned hold's seat is back");

    // Nothing is left: the tasks went with the settlement. A late webhook changes nothing.
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), later, 1, &hook).await.unwrap();
    assert_eq!(report.found, 0, "{report:?}");
    let expired = p.stub.session(&abandoned_session).unwrap();
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.expired", &expired)).await, "none");
    assert_eq!(p.seats_booked(&ev).await, 1);

    // A refund Stripe did not take (down during the cancel) is asked for again by the sweep.
    let (booking, token, session_id) = p.hold(&ev).await;
    let paid = p.stub.pay(&session_id);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
    p.stub.set_down(true).await;
    let resp = call(&p.app, request("DELETE", &format!("/bookings/{}", id(&booking)), Some(&token), None)).await;
    assert_eq!(status(&resp), 200, "the cancel does not wait for Stripe");
    assert_eq!(json(&resp)["payment"]["refund_status"], "requested");
    p.stub.set_down(false).await;
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), later, 1, &hook).await.unwrap();
    assert_eq!((report.refunds, report.errors), (1, 0), "{report:?}");
    let payment = p.booking(&id(&booking)).await.payment.unwrap();
    assert_eq!(payment.refund_status.as_deref(), Some("pending"));
    assert_eq!(p.stub.refund_requests().iter().filter(|r| r.status == 200).count(), 1);
    let report = shared::payments::sweep_payments(&p.app.store, p.provider(), later, 1, &hook).await.unwrap();
    assert_eq!((report.found, report.refunds), (0, 0), "{report:?}");
}

store_tests!(the_sweep_settles_holds_no_webhook_settled);

// ---------------------------------------------------------------- DynamoDB calls

/// The webhook's DynamoDB calls, printed as the other routes' are: one GetItem and, when it
/// changes the booking, one transaction; no Scan; nothing at all for an ignored type, an
/// oversized body or a request whose signature fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_calls_per_webhook() {
    let (store, log) = dynamo_counted().await;
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let (booking, _, session_id) = p.hold(&ev).await;
    let (other, _, other_session) = p.hold(&ev).await;
    let paid = p.stub.pay(&session_id);
    let completed = stripe_event(&evt(), "checkout.session.completed", &paid);
    let expired = stripe_event(&evt(), "checkout.session.expired", &p.stub.expire(&other_session));
    let mut unknown = paid.clone();
    unknown["metadata"]["booking_id"] = json!("01UNKNOWNBOOKING0000000000");
    let unknown = stripe_event(&evt(), "checkout.session.completed", &unknown);
    let ignored = stripe_event(&evt(), "customer.created", &json!({"id": "cus_1"}));
    let (third, third_token, third_session) = p.hold(&ev).await;
    let foreign = p.stub.foreign_paid_session(2500, "eur", json!({"metadata": {"booking_id": id(&third)}}));
    let foreign = stripe_event(&evt(), "checkout.session.completed", &foreign);
    let paid_third = p.stub.pay(&third_session);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid_third)).await, "confirmed");
    let resp = call(&p.app, request("DELETE", &format!("/bookings/{}", id(&third)), Some(&third_token), None)).await;
    assert_eq!(json(&resp)["payment"]["refund_status"], "pending");
    let refund_id = p.booking(&id(&third)).await.payment.unwrap().refund_id.unwrap();
    let refunded = stripe_event(&evt(), "refund.updated", &p.stub.settle_refund(&refund_id, "succeeded"));

    let mut report = CallReport::new(&log);
    assert_eq!(p.effect(&completed).await, "confirmed");
    report.exactly("webhook completed (confirms)", &["GetItem", "TransactWriteItems"]);
    assert_eq!(p.effect(&completed).await, "none");
    report.exactly("webhook completed again (replay)", &["GetItem"]);
    assert_eq!(p.effect(&expired).await, "expired");
    report.exactly("webhook expired (releases the seat)", &["GetItem", "TransactWriteItems"]);
    assert_eq!(p.effect(&unknown).await, "none");
    report.exactly("webhook for an unknown booking", &["GetItem"]);
    assert_eq!(p.effect(&ignored).await, "none");
    report.exactly("webhook of an ignored type", &[]);
    assert_eq!(p.effect(&foreign).await, "none");
    report.exactly("webhook for a session not created for the booking", &["GetItem"]);
    assert_eq!(p.effect(&refunded).await, "refund_updated");
    report.exactly("webhook refund.updated (records the status)", &["GetItem", "TransactWriteItems"]);
    assert_eq!(p.effect(&refunded).await, "none");
    report.exactly("webhook refund.updated again (replay)", &["GetItem"]);
    let big = "x".repeat(shared::payments::MAX_WEBHOOK_BYTES + 1);
    assert_eq!(status(&call(&p.app, webhook(&big, Some("t=1,v1=00"))).await), 413);
    report.exactly("webhook over 256 KiB", &[]);
    let resp = call(&p.app, webhook(&completed, Some("t=1,v1=00"))).await;
    assert_eq!(status(&resp), 400);
    report.exactly("webhook with a bad signature", &[]);
    report.print();
    assert_eq!(p.booking(&id(&booking)).await.status, shared::model::BookingStatus::Confirmed);
    assert_eq!(p.booking(&id(&other)).await.status, shared::model::BookingStatus::Expired);
}
