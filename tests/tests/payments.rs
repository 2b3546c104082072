//! Paid events end to end in-process, every case on the embedded store and on DynamoDB (moto):
//! seat holds with a Checkout Session at a Stripe stub (`tests::stripe_stub`), the signed webhook
//! (signatures computed here with hmac/sha2 from Stripe's documentation, not with the crate's
//! signer), replays and events out of order, Stripe outages, refunds. The sweep and the
//! DynamoDB calls of a webhook: `payments_sweep.rs`; payments v3's rules: `payments_v3.rs`.

use futures::future::join_all;
use serde_json::{json, Value};
use shared::model::{Booking, Role};
use shared::{App, Store};
use std::sync::Arc;
use tests::stripe_stub::{StripeStubExt, STUB_SECRET_KEY};
use tests::*;

mod payments_harness;
use payments_harness::*;

// ---------------------------------------------------------------- booking a priced event

async fn paid_booking_holds_a_seat_and_opens_a_checkout_session<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let (attendee, token) = user(&p.app, Role::Attendee).await;
    let before = shared::time::now();
    let resp = p.book(&token, &ev).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let booking = json(&resp);
    let bid = id(&booking);
    assert_eq!(booking["status"], "pending_payment");
    let payment = &booking["payment"];
    assert_eq!((payment["amount"].as_u64(), payment["currency"].as_str()), (Some(2500), Some("eur")));
    let url = payment["checkout_url"].as_str().expect("checkout_url");
    assert!(url.starts_with("https://checkout.stripe.com/c/pay/cs_test_"), "{url}");
    let expires_at = shared::time::parse(payment["expires_at"].as_str().unwrap()).unwrap();
    let hold = (expires_at - before).num_seconds();
    // 31 minutes: at least Stripe's 30 after it creates the session, whatever its clock says.
    assert!((31 * 60..=31 * 60 + 5).contains(&hold), "hold of {hold} s");
    // The seat is held exactly as long as Stripe takes payment.
    let session = p.stub.session_for(&bid).expect("a session");
    assert_eq!(session["expires_at"].as_i64(), Some(expires_at.timestamp()));
    assert!(p.stub.refused().is_empty(), "{:?}", p.stub.refused());
    assert_eq!(p.seats_booked(&ev).await, 1, "the hold counts against capacity");

    // The one session request carries everything Stripe needs, form-encoded, keyed by the booking.
    let creates = p.stub.session_creates();
    assert_eq!(creates.len(), 1, "{creates:?}");
    let r = &creates[0];
    assert_eq!(r.idempotency_key.as_deref(), Some(bid.as_str()));
    assert_eq!(r.authorization.as_deref(), Some(format!("Bearer {STUB_SECRET_KEY}").as_str()));
    assert_eq!(r.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    let want = [
        ("mode", "payment".to_string()),
        ("line_items[0][price_data][currency]", "eur".into()),
        ("line_items[0][price_data][unit_amount]", "2500".into()),
        ("line_items[0][price_data][product_data][name]", "Sound Bath".into()),
        ("line_items[0][quantity]", "1".into()),
        ("client_reference_id", bid.clone()),
        ("metadata[booking_id]", bid.clone()),
        ("customer_email", attendee.email.clone()),
        ("expires_at", expires_at.timestamp().to_string()),
    ];
    for (field, value) in want {
        assert_eq!(r.field(field), Some(value.as_str()), "{field} in {:?}", r.form);
    }
    assert!(r.field("success_url").is_some_and(|u| u.contains("{CHECKOUT_SESSION_ID}")), "{:?}", r.form);
    assert!(r.field("cancel_url").is_some(), "{:?}", r.form);

    // Not confirmed: no CRM record, no hook; it is listed as upcoming and holds the user's guard.
    assert_eq!(p.app.store.get_delivery(&bid).await.unwrap(), None);
    assert!(p.hooked().is_empty());
    let list = json(&call(&p.app, request("GET", "/bookings/", Some(&token), None)).await);
    assert_eq!(list["upcoming"][0]["id"], bid.as_str(), "{list}");
    let again = p.book(&token, &ev).await;
    assert_eq!((status(&again), error_code(&again)), (409, "already_booked".into()));
    assert_eq!(p.stub.session_count(), 1);
}

// ---------------------------------------------------------------- webhooks

async fn completed_webhook_confirms_once_however_often_it_comes<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let (booking, _, session_id) = p.hold(&ev).await;
    let bid = id(&booking);
    let paid = p.stub.pay(&session_id);
    let body = stripe_event("evt_completed_1", "checkout.session.completed", &paid);

    // The same event five times: confirmed once, then nothing.
    let mut effects = Vec::new();
    for _ in 0..5 {
        effects.push(p.effect(&body).await);
    }
    assert_eq!(effects, ["confirmed", "none", "none", "none", "none"]);
    let b = p.booking(&bid).await;
    assert_eq!(b.status, shared::model::BookingStatus::Confirmed);
    let payment = b.payment.as_ref().unwrap();
    assert_eq!(payment.settled_by.as_deref(), Some("evt_completed_1"));
    assert_eq!(payment.payment_intent, paid["payment_intent"].as_str().map(str::to_string));
    // Exactly one CRM delivery record (written by the confirming transaction) and one delivery.
    let delivery = p.app.store.get_delivery(&bid).await.unwrap().expect("CRM delivery record");
    assert_eq!(delivery.booking_id, bid);
    assert_eq!(p.hooked(), std::slice::from_ref(&bid));
    let api = json(&call(&p.app, request("GET", &format!("/bookings/{bid}"), Some(&token_of(&p, &b)), None)).await);
    assert_eq!(
        (api["status"].as_str(), api["payment"]["settled_by"].as_str()),
        (Some("confirmed"), Some("evt_completed_1"))
    );

    // Out of order: the session's expiry (or a failed async payment) after it completed, and
    // another success event, change nothing.
    for (kind, object) in [
        ("checkout.session.expired", p.stub.session(&session_id).unwrap()),
        ("checkout.session.async_payment_failed", paid.clone()),
        ("checkout.session.async_payment_succeeded", paid.clone()),
    ] {
        assert_eq!(p.effect(&stripe_event(&evt(), kind, &object)).await, "none", "{kind}");
    }
    assert_eq!(p.booking(&bid).await.status, shared::model::BookingStatus::Confirmed);
    assert_eq!(p.seats_booked(&ev).await, 1);
    assert_eq!(p.hooked().len(), 1);
    assert!(p.stub.refund_requests().is_empty());

    // Completed but unpaid (a delayed payment method) waits for async_payment_succeeded.
    let (second, _, second_session) = p.hold(&ev).await;
    let mut unpaid = p.stub.session(&second_session).unwrap();
    unpaid["status"] = json!("complete");
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &unpaid)).await, "none");
    assert_eq!(p.booking(&id(&second)).await.status, shared::model::BookingStatus::PendingPayment);
    let paid = p.stub.pay(&second_session);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.async_payment_succeeded", &paid)).await, "confirmed");
    assert_eq!(p.hooked(), [bid, id(&second)]);
}

/// A token for the booking's user (the test users are created with known ids only).
fn token_of<S: Store>(p: &Paid<S>, b: &Booking) -> String {
    let user = shared::model::User {
        id: b.user_id.clone(),
        name: b.user_name.clone(),
        email: b.user_email.clone(),
        role: Role::Attendee,
        password_hash: String::new(),
        created_at: b.created_at,
        session_epoch: 0,
    };
    p.app.tokens.issue(&user).unwrap()
}

async fn expired_webhook_releases_the_seat_exactly_once<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(1)).await;
    let (booking, token, session_id) = p.hold(&ev).await;
    let bid = id(&booking);
    let (_, other) = user(&p.app, Role::Attendee).await;
    let full = p.book(&other, &ev).await;
    assert_eq!((status(&full), error_code(&full)), (409, "event_full".into()), "the hold takes the only seat");

    let expired = p.stub.expire(&session_id);
    let body = stripe_event("evt_expired_1", "checkout.session.expired", &expired);
    let mut effects = Vec::new();
    for _ in 0..5 {
        effects.push(p.effect(&body).await);
    }
    assert_eq!(effects, ["expired", "none", "none", "none", "none"]);
    assert_eq!(p.seats_booked(&ev).await, 0, "released once, not five times");
    let b = p.booking(&bid).await;
    assert_eq!(b.status, shared::model::BookingStatus::Expired);
    assert_eq!(b.payment.as_ref().unwrap().settled_by.as_deref(), Some("evt_expired_1"));
    assert!(p.hooked().is_empty(), "an expired hold is never confirmed");
    assert_eq!(p.app.store.get_delivery(&bid).await.unwrap(), None);

    // Out of order: a payment reported after the expiry confirms nothing (the seat may be gone);
    // the money is refunded, once however often the event comes.
    let paid = p.stub.pay(&session_id);
    let late = stripe_event("evt_completed_late", "checkout.session.completed", &paid);
    assert_eq!(p.effect(&late).await, "refund_requested");
    assert_eq!(p.effect(&late).await, "none");
    let refunds = p.stub.refund_requests();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].field("payment_intent"), paid["payment_intent"].as_str());
    assert_eq!(refunds[0].idempotency_key, Some(format!("refund-{bid}")));
    let b = p.booking(&bid).await;
    assert_eq!(b.status, shared::model::BookingStatus::Expired);
    assert_eq!(b.payment.as_ref().unwrap().refund_status.as_deref(), Some("pending"));
    assert_eq!(p.seats_booked(&ev).await, 0);
    assert!(p.hooked().is_empty());

    // The seat is free for someone else, and the user may book again (the guard went with it).
    assert_eq!(status(&p.book(&other, &ev).await), 201);
    assert_eq!(p.seats_booked(&ev).await, 1);
    let ev2 = p.event(None).await;
    assert_eq!(status(&p.book(&token, &ev2).await), 201);
}

async fn completed_and_expired_racing_have_one_effect<S: Store + Clone>(store: S) {
    let p = Arc::new(Paid::new(store).await);
    let ev = p.event(Some(10)).await;
    for _ in 0..4 {
        let (booking, _, session_id) = p.hold(&ev).await;
        let paid = p.stub.pay(&session_id);
        let mut expired = paid.clone();
        expired["status"] = json!("expired");
        let bodies = [
            stripe_event(&evt(), "checkout.session.completed", &paid),
            stripe_event(&evt(), "checkout.session.expired", &expired),
        ];
        let deliveries = bodies.iter().cycle().take(6).map(|body| {
            let (p, body) = (p.clone(), body.clone());
            tokio::spawn(async move { p.effect(&body).await })
        });
        let effects: Vec<String> = join_all(deliveries).await.into_iter().map(Result::unwrap).collect();
        let settled: Vec<&String> = effects.iter().filter(|e| *e == "confirmed" || *e == "expired").collect();
        assert_eq!(settled.len(), 1, "{effects:?}");
        let b = p.booking(&id(&booking)).await;
        assert_eq!(shared::model::BookingStatus::Confirmed == b.status, settled[0] == "confirmed", "{effects:?}");
    }
    // Seats: one per confirmed booking, none for the expired ones.
    let confirmed = p.hooked().len() as u64;
    assert_eq!(p.seats_booked(&ev).await, confirmed);
}

async fn forged_stale_and_unsigned_webhooks_are_refused<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(5)).await;
    let (booking, _, session_id) = p.hold(&ev).await;
    let bid = id(&booking);
    let paid = p.stub.pay(&session_id);
    let body = stripe_event("evt_signed", "checkout.session.completed", &paid);
    let now = shared::time::now().timestamp();
    let good = stripe_signature(&body, WHSEC, now);
    let good_v1 = good.split_once(",v1=").unwrap().1.to_string();
    let other_body = stripe_event("evt_other", "checkout.session.completed", &paid);
    let cases: Vec<(&str, Option<String>, String)> = vec![
        ("unsigned", None, body.clone()),
        ("empty header", Some(String::new()), body.clone()),
        ("another secret", Some(stripe_signature(&body, "whsec_attacker", now)), body.clone()),
        ("stale (301 s old)", Some(stripe_signature(&body, WHSEC, now - 301)), body.clone()),
        // Signed ahead: the check reads the clock later than `now` above, and crossing one second
        // boundary in between (a loaded CI machine) brought 301 s down to the accepted 300; 310 s
        // stays past the tolerance whatever the delay. The stale case keeps the exact bound.
        ("from the future (310 s)", Some(stripe_signature(&body, WHSEC, now + 310)), body.clone()),
        ("signature of another body", Some(stripe_signature(&other_body, WHSEC, now)), body.clone()),
        ("body changed after signing", Some(good.clone()), body.replace("\"paid\"", "\"paid\" ")),
        ("no timestamp", Some(format!("v1={good_v1}")), body.clone()),
        ("v0 only", Some(format!("t={now},v0={good_v1}")), body.clone()),
        ("not hex", Some(format!("t={now},v1=zz{}", &good_v1[2..])), body.clone()),
        ("garbage", Some("garbage".into()), body.clone()),
    ];
    for (what, sig, body) in cases {
        let resp = call(&p.app, webhook(&body, sig.as_deref())).await;
        assert_eq!((status(&resp), error_code(&resp)), (400, "invalid_signature".into()), "{what}");
    }
    let b = p.booking(&bid).await;
    assert_eq!(b.status, shared::model::BookingStatus::PendingPayment, "no effect");
    assert_eq!(p.seats_booked(&ev).await, 1);
    assert!(p.hooked().is_empty());

    // A good signature among others (Stripe sends several while a secret rolls) is accepted.
    let rolled = format!("{},v1={good_v1}", stripe_signature(&body, "whsec_old_secret", now));
    let resp = call(&p.app, webhook(&body, Some(&rolled))).await;
    assert_eq!((status(&resp), json(&resp)["effect"].as_str()), (200, Some("confirmed")), "{:?}", json(&resp));

    // Well signed but not a Stripe event → 400 invalid_json; unknown types → 200 ignored.
    let resp = call(&p.app, webhook("{not json", Some(&stripe_signature("{not json", WHSEC, now)))).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "invalid_json".into()));
    let other_type =
        stripe_event(&evt(), "payment_intent.succeeded", &json!({"id": "pi_123", "object": "payment_intent"}));
    assert_eq!(p.effect(&other_type).await, "none");
    // A session of another integration (no booking id), and one for a booking we do not know.
    let foreign = json!({"id": "cs_test_foreign", "status": "complete", "payment_status": "paid"});
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &foreign)).await, "none");
    let mut unknown = paid.clone();
    unknown["metadata"]["booking_id"] = json!("01UNKNOWNBOOKING0000000000");
    let (code, answer) = p.deliver(&stripe_event(&evt(), "checkout.session.completed", &unknown)).await;
    assert_eq!(
        (code, answer["effect"].as_str(), answer["booking_id"].as_str()),
        (200, Some("none"), Some("01UNKNOWNBOOKING0000000000"))
    );

    // Routing: other methods 405, other paths 404.
    let resp = call(&p.app, request("GET", "/payments/webhook", None, None)).await;
    assert_eq!((status(&resp), resp.headers()["allow"].to_str().unwrap()), (405, "POST"));
    assert_eq!(status(&call(&p.app, request("POST", "/payments/other", None, Some(json!({})))).await), 404);

    // Without a webhook secret configured every webhook is refused.
    let unconfigured =
        App::new(p.app.store.clone(), &tests::config()).unwrap().with_payments(Arc::new(p.stub.client()));
    let resp = call(&unconfigured, webhook(&body, Some(&good))).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "invalid_signature".into()));
}

// ---------------------------------------------------------------- Stripe failures and load

async fn stripe_down_during_booking_is_502_and_holds_nothing<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(1)).await;
    let (_, token) = user(&p.app, Role::Attendee).await;
    let keyed = |key: &str| {
        let mut r = request("POST", "/bookings/", Some(&token), Some(json!({"event_id": ev})));
        r.headers_mut().insert("idempotency-key", key.parse().unwrap());
        r
    };

    // Connections refused.
    p.stub.set_down(true).await;
    let resp = call(&p.app, keyed("attempt-1")).await;
    assert_eq!((status(&resp), error_code(&resp)), (502, "payment_provider_unavailable".into()), "{:?}", json(&resp));
    assert_eq!(p.seats_booked(&ev).await, 0, "the hold was released");
    let list = json(&call(&p.app, request("GET", "/bookings/", Some(&token), None)).await);
    assert_eq!(list["upcoming"], json!([]), "{list}");
    p.stub.set_down(false).await;

    // Stripe answers 500.
    p.stub.fail_next(1);
    let resp = call(&p.app, keyed("attempt-2")).await;
    assert_eq!((status(&resp), error_code(&resp)), (502, "payment_provider_unavailable".into()));
    assert_eq!(p.seats_booked(&ev).await, 0);
    assert_eq!(p.stub.session_creates().iter().map(|r| r.status).collect::<Vec<_>>(), [500]);
    assert_eq!(p.stub.session_count(), 0);

    // The same request again (same Idempotency-Key: nothing of the failure was kept) succeeds.
    let resp = call(&p.app, keyed("attempt-2")).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    assert_eq!(json(&resp)["status"], "pending_payment");
    assert_eq!(p.seats_booked(&ev).await, 1);
    let (_, other) = user(&p.app, Role::Attendee).await;
    assert_eq!(error_code(&p.book(&other, &ev).await), "event_full");
    assert_eq!(p.stub.session_count(), 1);
}

async fn fifty_buyers_ten_seats<S: Store + Clone>(store: S) {
    let p = Arc::new(Paid::new(store).await);
    let ev = p.event(Some(10)).await;
    let tokens = users(&p.app, 50, Role::Attendee).await;
    let attempts = tokens.into_iter().map(|t| {
        let (p, ev) = (p.clone(), ev.clone());
        tokio::spawn(async move {
            let resp = p.book(&t, &ev).await;
            (status(&resp), error_code(&resp), json(&resp)["status"].as_str().unwrap_or_default().to_string())
        })
    });
    let results: Vec<(u16, String, String)> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let pending = results.iter().filter(|r| r.0 == 201 && r.2 == "pending_payment").count();
    let full = results.iter().filter(|r| r.0 == 409 && r.1 == "event_full").count();
    assert_eq!((pending, full), (10, 40), "{results:?}");
    assert_eq!(p.seats_booked(&ev).await, 10);
    assert_eq!((p.stub.session_count(), p.stub.session_creates().len()), (10, 10));
    let mut keys: Vec<String> = p.stub.session_creates().into_iter().filter_map(|r| r.idempotency_key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "one Idempotency-Key per booking");
}

// ---------------------------------------------------------------- configuration

async fn priced_events_need_payments_configured<S: Store + Clone>(store: S) {
    let app = app(store); // no STRIPE_SECRET_KEY
    let (_, owner) = user(&app, Role::Facilitator).await;
    let price = json!({"amount": 2500, "currency": "eur"});
    let body = json!({"title": "Paid", "type": "Yoga", "datetime": in_days(5), "price": price.clone()});
    let resp = call(&app, request("POST", "/events", Some(&owner), Some(body))).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
    assert_eq!(json(&resp)["error"]["field"], "price", "{:?}", json(&resp));
    // Adding a price later is refused the same way; a free event stays bookable.
    let body = json!({"title": "Free", "type": "Yoga", "datetime": in_days(5), "price": null});
    let resp = call(&app, request("POST", "/events", Some(&owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let ev = id(&json(&resp));
    let resp =
        call(&app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(json!({"price": price})))).await;
    assert_eq!((status(&resp), json(&resp)["error"]["field"].as_str()), (400, Some("price")));
}

/// The API Gateway fixture the invoke test sends to the real binary, here through the router.
async fn the_webhook_fixture_parses_as_api_gateway_sends_it<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let signed = |booking_id: &str, session_id: &str| {
        let text =
            fixture_text("payments-webhook", &[("BOOKING_ID", booking_id)]).replace("cs_test_invoke0001", session_id);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let body = parsed["body"].as_str().unwrap();
        let sig = stripe_signature(body, WHSEC, shared::time::now().timestamp());
        lambda_http::request::from_str(&text.replace("${STRIPE_SIGNATURE}", &sig)).unwrap()
    };
    let resp = payments::router(&p.app, signed("01UNKNOWNBOOKING0000000000", "cs_test_invoke0001")).await;
    assert_eq!((status(&resp), json(&resp)["effect"].as_str()), (200, Some("none")), "{:?}", json(&resp));
    let ev = p.event(None).await;
    let (booking, _, session_id) = p.hold(&ev).await;
    // The fixture's own session id is not the one created for this booking: ignored.
    let resp = payments::router(&p.app, signed(&id(&booking), "cs_test_invoke0001")).await;
    assert_eq!((status(&resp), json(&resp)["effect"].as_str()), (200, Some("none")), "{:?}", json(&resp));
    let resp = payments::router(&p.app, signed(&id(&booking), &session_id)).await;
    assert_eq!((status(&resp), json(&resp)["effect"].as_str()), (200, Some("confirmed")), "{:?}", json(&resp));
    let text = fixture_text("payments-webhook", &[("BOOKING_ID", "x"), ("STRIPE_SIGNATURE", "t=1,v1=00")]);
    let resp = payments::router(&p.app, lambda_http::request::from_str(&text).unwrap()).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "invalid_signature".into()));
}

store_tests!(
    paid_booking_holds_a_seat_and_opens_a_checkout_session,
    completed_webhook_confirms_once_however_often_it_comes,
    expired_webhook_releases_the_seat_exactly_once,
    completed_and_expired_racing_have_one_effect,
    forged_stale_and_unsigned_webhooks_are_refused,
    stripe_down_during_booking_is_502_and_holds_nothing,
    fifty_buyers_ten_seats,
    priced_events_need_payments_configured,
    the_webhook_fixture_parses_as_api_gateway_sends_it,
);
