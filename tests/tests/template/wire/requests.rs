use super::fake_stripe::FakeStripe;
use super::{with_idempotency_key, Wire};
use serde_json::json;
use shared::model::Role;
use shared::store::{DynamoStore, Store};
use tests::request as req;

/// auth: register, a taken e-mail, failed and successful logins (throttle window opened,
/// counted, cleared), me, health, OpenAPI.
pub async fn accounts(wire: &Wire) -> String {
    let email = format!("iam.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let account = json!({"name": "Asha Rao", "email": email, "password": "correct horse battery"});
    assert_eq!(wire.send(req("POST", "/auth/register", None, Some(account.clone()))).await.0, 201);
    assert_eq!(wire.send(req("POST", "/auth/register", None, Some(account))).await.0, 409);
    let wrong = json!({"email": email, "password": "wrong password!"});
    assert_eq!(wire.send(req("POST", "/auth/login", None, Some(wrong.clone()))).await.0, 401);
    assert_eq!(wire.send(req("POST", "/auth/login", None, Some(wrong))).await.0, 401);
    let unknown = json!({"email": "nobody@example.com", "password": "wrong password!"});
    assert_eq!(wire.send(req("POST", "/auth/login", None, Some(unknown))).await.0, 401);
    let (status, login) = wire
        .send(req("POST", "/auth/login", None, Some(json!({"email": email, "password": "correct horse battery"}))))
        .await;
    assert_eq!(status, 200, "{login}");
    let attendee = login["access_token"].as_str().expect("token").to_string();
    assert_eq!(wire.send(req("GET", "/auth/me", Some(&attendee), None)).await.0, 200);
    // sessions: refresh (read + transaction), reuse of the spent token (revoke), logout, and a
    // password change (its throttle, the conditional write).
    let spent = login["refresh_token"].as_str().expect("refresh token").to_string();
    let (status, rotated) = wire.send(req("POST", "/auth/refresh", None, Some(json!({"refresh_token": spent})))).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(wire.send(req("POST", "/auth/refresh", None, Some(json!({"refresh_token": spent})))).await.0, 401);
    assert_eq!(wire.send(req("POST", "/auth/logout", None, Some(json!({"refresh_token": spent})))).await.0, 200);
    let password = json!({"current_password": "correct horse battery", "new_password": "correct horse battery 2"});
    assert_eq!(wire.send(req("POST", "/auth/password", Some(&attendee), Some(password))).await.0, 200);
    wire.send(req("GET", "/health", None, None)).await;
    wire.send(req("GET", "/openapi.json", None, None)).await;
    attendee
}

/// events: create, list, filter, get, update (own, and someone else's: 403), delete.
pub async fn events(wire: &Wire) -> (String, String, String) {
    let (_, owner) = tests::user(&wire.app, Role::Facilitator).await;
    let (_, other) = tests::user(&wire.app, Role::Facilitator).await;
    let (_, admin) = tests::user(&wire.app, Role::Admin).await;
    let new_event = json!({"title": "Morning Yoga", "type": "Yoga", "datetime": tests::in_days(3), "capacity": 5});
    let (status, ev) = wire.send(req("POST", "/events", Some(&owner), Some(new_event.clone()))).await;
    assert_eq!(status, 201, "{ev}");
    let ev = ev["id"].as_str().unwrap().to_string();
    let spare =
        wire.send(req("POST", "/events", Some(&owner), Some(new_event))).await.1["id"].as_str().unwrap().to_string();
    wire.send(req("GET", "/events", None, None)).await;
    wire.send(req("GET", "/events/filter?type=yoga", None, None)).await;
    wire.send(req("GET", "/events/filter?rating=1", None, None)).await;
    wire.send(req("GET", &format!("/events/{ev}"), None, None)).await;
    assert_eq!(
        wire.send(req("PATCH", &format!("/events/{ev}"), Some(&owner), Some(json!({"title": "Yoga"})))).await.0,
        200
    );
    assert_eq!(
        wire.send(req("PATCH", &format!("/events/{ev}"), Some(&other), Some(json!({"title": "Mine"})))).await.0,
        403
    );
    assert_eq!(wire.send(req("DELETE", &format!("/events/{spare}"), Some(&other), None)).await.0, 403);
    assert_eq!(wire.send(req("DELETE", &format!("/events/{spare}"), Some(&owner), None)).await.0, 200);
    (owner, admin, ev)
}

/// bookings: book (plain, with an Idempotency-Key, its replay, a double booking), list, get
/// (own, admin), the calendar file (own, admin, another's), an event's bookings, cancel
/// (twice), and an event with bookings is kept.
pub async fn bookings(wire: &Wire, attendee: &str, owner: &str, admin: &str, ev: &str) -> String {
    let (status, booked) = wire.send(req("POST", "/bookings", Some(attendee), Some(json!({"event_id": ev})))).await;
    assert_eq!(status, 201, "{booked}");
    let booking_id = booked["id"].as_str().unwrap().to_string();
    assert_eq!(wire.send(req("POST", "/bookings", Some(attendee), Some(json!({"event_id": ev})))).await.0, 409);
    let (_, second) = tests::user(&wire.app, Role::Attendee).await;
    let keyed =
        || with_idempotency_key(req("POST", "/bookings", Some(&second), Some(json!({"event_id": ev}))), "iam-k1");
    assert_eq!(wire.send(keyed()).await.0, 201);
    assert_eq!(wire.send(keyed()).await.0, 201, "replayed");
    assert_eq!(wire.send(req("DELETE", &format!("/events/{ev}"), Some(owner), None)).await.0, 409);
    wire.send(req("GET", "/bookings", Some(attendee), None)).await;
    wire.send(req("GET", "/bookings?status=cancelled", Some(attendee), None)).await;
    for path in [format!("/bookings/{booking_id}"), format!("/bookings/{booking_id}/calendar.ics")] {
        for (who, status) in [(attendee, 200), (admin, 200), (second.as_str(), 404)] {
            assert_eq!(wire.send(req("GET", &path, Some(who), None)).await.0, status, "{path}");
        }
    }
    assert_eq!(wire.send(req("GET", &format!("/events/{ev}/bookings"), Some(owner), None)).await.0, 200);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{booking_id}"), Some(attendee), None)).await.0, 200);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{booking_id}"), Some(attendee), None)).await.0, 409);
    booking_id
}

/// payments: a priced event; a paid booking (seat hold, Checkout Session attached), confirmed
/// by its webhook, the webhook replayed, then cancelled (refund asked and recorded); a hold
/// expired by its webhook, and paid after all (refunded by the webhook); a hold released
/// because Stripe failed (502, its Idempotency-Key record deleted too); a hold cancelled (its
/// session expired at Stripe); the sweep settling a hold whose webhook never came and
/// retrying a refund Stripe refused at the cancel.
pub async fn payments(wire: &Wire, stripe: &FakeStripe, store: &DynamoStore, owner: &str) {
    let priced = json!({"title": "Sound Bath", "type": "Meditation", "datetime": tests::in_days(3), "capacity": 10,
        "price": {"amount": 2500, "currency": "eur"}});
    let (status, paid_ev) = wire.send(req("POST", "/events", Some(owner), Some(priced))).await;
    assert_eq!(status, 201, "{paid_ev}");
    let paid_ev = paid_ev["id"].as_str().unwrap().to_string();
    let book = |token: &str| req("POST", "/bookings", Some(token), Some(json!({"event_id": paid_ev})));
    let mut holds = Vec::new();
    for _ in 0..5 {
        let (_, token) = tests::user(&wire.app, Role::Attendee).await;
        let (status, hold) = wire.send(book(&token)).await;
        assert_eq!((status, hold["status"].as_str()), (201, Some("pending_payment")), "{hold}");
        holds.push((token, hold["id"].as_str().unwrap().to_string()));
    }
    let [(paid_tok, paid), (_, expired), (_, late), (pending_tok, pending), (_, swept)] = &holds[..] else {
        unreachable!()
    };
    let answer = wire.stripe_event("evt_paid", "checkout.session.completed", stripe.pay(paid)).await;
    assert_eq!(answer["effect"], "confirmed", "{answer}");
    assert_eq!(wire.stripe_event("evt_paid", "checkout.session.completed", stripe.pay(paid)).await["effect"], "none");
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{paid}"), Some(paid_tok), None)).await.0, 200);
    assert_eq!(
        wire.stripe_event("evt_exp", "checkout.session.expired", stripe.expire(expired)).await["effect"],
        "expired"
    );
    wire.stripe_event("evt_late_exp", "checkout.session.expired", stripe.expire(late)).await;
    let answer = wire.stripe_event("evt_late_paid", "checkout.session.completed", stripe.pay(late)).await;
    assert_eq!(answer["effect"], "refund_requested", "{answer}");
    stripe.fail_creates.store(1, std::sync::atomic::Ordering::SeqCst);
    let (_, unlucky) = tests::user(&wire.app, Role::Attendee).await;
    let (status, failed) = wire.send_any(with_idempotency_key(book(&unlucky), "iam-stripe-down")).await;
    assert_eq!((status, failed["error"]["code"].as_str()), (502, Some("payment_provider_unavailable")), "{failed}");
    let (_, left) = wire.send(req("GET", "/bookings", Some(&unlucky), None)).await;
    assert_eq!(left["upcoming"], json!([]), "nothing stays held after a 502: {left}");
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{pending}"), Some(pending_tok), None)).await.0, 200);
    // A refund Stripe refuses at the cancel stays owed (its task), for the sweep.
    let (_, refused_tok) = tests::user(&wire.app, Role::Attendee).await;
    let (_, refused) = wire.send(book(&refused_tok)).await;
    let refused = refused["id"].as_str().unwrap().to_string();
    wire.stripe_event("evt_refused", "checkout.session.completed", stripe.pay(&refused)).await;
    stripe.fail_refunds.store(1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{refused}"), Some(&refused_tok), None)).await.0, 200);
    // crm-sweeper, payment part: a minute after the last hold's time is up (no webhook came); keys
    // are whole seconds, so "exactly at expiry" would race the clock.
    wire.log.take();
    let later = shared::time::now() + chrono::Duration::minutes(shared::model::HOLD_MINUTES + 1);
    let report = shared::payments::sweep_payments(store, stripe, later, 1, &|_| {}).await.unwrap();
    assert_eq!((report.expired, report.refunds, report.errors), (1, 1, 0), "{report:?}");
    wire.check("CrmSweeperFunction", "payment sweep");
    let swept = store.get_booking(swept).await.unwrap().unwrap();
    assert_eq!(swept.status, shared::model::BookingStatus::Expired);
}
