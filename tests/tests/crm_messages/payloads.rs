//! What each message carries, exactly, and that a booking the CRM never heard of owes none.

use super::fixtures::{booked_and_cancelled, cancellation, event, message_insert, v2};
use chrono::Duration as Span;
use crm_notifier::{handle_batch, sweep, BookingOutcome, ManualClock, SweepConfig};
use serde_json::{json, Value};
use shared::model::{new_id, Booking, BookingStatus, CancelReason, Delivery, DeliveryStatus, Payment, Price};
use shared::store::{Settled, Settlement, Store};
use shared::time::format as rfc3339;
use std::sync::Arc;
use std::time::Duration;
use tests::crm::{notifier, unlimited, Crm};
use tests::streams::{batch, failures};

pub async fn cancellation_goes_out_after_the_confirmation_once_and_the_owner_sees_both<S: Store + Clone>(store: S) {
    // GIVEN a booking cancelled by its attendee before its confirmation went out
    let app = tests::app(store.clone());
    let (owner, event_id) = event(&app).await;
    let b = booked_and_cancelled(&app, &event_id).await;
    let cancelled = cancellation(&store, &b.id).await;
    assert_eq!(
        (cancelled.status, cancelled.seq, cancelled.webhook_id()),
        (DeliveryStatus::Pending, 1, format!("{}:cancelled", b.id))
    );
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm);

    // WHEN the stream hands the cancellation's INSERT, and then the same batch twice more
    for _ in 0..3 {
        let resp = handle_batch(&n, batch(vec![message_insert(&cancelled, "700")])).await;
        assert!(failures(&resp).is_empty());
    }

    // THEN the CRM heard of the booking first, then of its cancellation, once each, signed
    let posted = crm.posted().await;
    let ids: Vec<&str> = posted.iter().map(|p| p.webhook_id.as_str()).collect();
    assert_eq!(ids, [b.id.clone(), format!("{}:cancelled", b.id)]);
    // AND each payload is exactly the contract's
    assert_eq!(posted[0].body, v2(&b, "booking.confirmed"));
    let mut want = v2(&b, "booking.cancelled");
    want["reason"] = json!("attendee");
    want["cancelled_at"] = json!(rfc3339(&b.cancelled_at.unwrap()));
    assert_eq!(posted[1].body, want);

    // AND the event's owner sees both messages in send order, and crm_status as in v2
    let resp =
        tests::call(&app, tests::request("GET", &format!("/events/{event_id}/bookings"), Some(&owner), None)).await;
    assert_eq!(tests::status(&resp), 200);
    let row = tests::json(&resp).as_array().unwrap().iter().find(|r| r["id"] == b.id.as_str()).unwrap().clone();
    let messages = row["crm_messages"].as_array().unwrap();
    let summary: Vec<(&str, &str, u64, u64)> = messages
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
                m["attempts"].as_u64().unwrap(),
                m["last_http_status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [("booking.confirmed", "delivered", 1, 200), ("booking.cancelled", "delivered", 1, 200)]);
    assert!(messages.iter().all(|m| m["last_failure"].is_null() && m["delivered_at"].is_string()), "{messages:?}");
    assert_eq!(messages[0].as_object().unwrap().len(), 6, "{messages:?}");
    assert_eq!(row["crm_status"]["status"], "delivered");
    assert!(row["crm_status"].get("type").is_none(), "crm_status keeps the v2 shape: {row}");
}

pub async fn paid_booking_cancellation_carries_price_and_refund_status<S: Store + Clone>(store: S) {
    // GIVEN a paid booking (a hold, then its payment) cancelled by an admin
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let event = store.get_event(&event_id).await.unwrap().unwrap();
    let now = shared::time::now();
    let user_id = new_id();
    let email = format!("{}@example.com", user_id.to_lowercase());
    let hold = Booking {
        created_at: crm_notifier::clock::whole_seconds(now),
        ..Booking::new(&event, &user_id, "Asha Rao", &email, Some(Payment::hold(&eur_2500(), now)), now)
    };
    store.create_booking(&hold, None, now).await.unwrap();
    let settle = Settlement {
        to: BookingStatus::Confirmed,
        by: "evt_1".into(),
        payment_intent: Some("pi_1".into()),
        now,
        session: None,
    };
    let Settled::Changed(paid) = store.settle_payment(&hold.id, &settle).await.unwrap() else {
        panic!("not confirmed")
    };
    let b = store.cancel_booking(&paid, CancelReason::Admin, now).await.unwrap();
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm);

    // WHEN its messages are delivered
    let outcome = n.deliver_booking(&b.id).await.unwrap();
    assert!(!outcome.is_retryable(), "{outcome:?}");

    // THEN both carry the price; the cancellation the reason and the refund as the booking says
    let posted = crm.posted().await;
    let mut confirmed = v2(&b, "booking.confirmed");
    confirmed["amount"] = json!(2500);
    confirmed["currency"] = json!("eur");
    let mut cancelled = v2(&b, "booking.cancelled");
    cancelled["amount"] = json!(2500);
    cancelled["currency"] = json!("eur");
    cancelled["reason"] = json!("admin");
    cancelled["cancelled_at"] = json!(rfc3339(&b.cancelled_at.unwrap()));
    cancelled["refund_status"] = json!("requested");
    let bodies: Vec<&Value> = posted.iter().map(|p| &p.body).collect();
    assert_eq!(bodies, [&confirmed, &cancelled]);
}

pub async fn cancelled_hold_sends_nothing<S: Store + Clone>(store: S) {
    // GIVEN a seat hold cancelled before it was paid: the CRM never heard of it
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let event = store.get_event(&event_id).await.unwrap().unwrap();
    let now = shared::time::now();
    let hold = Booking {
        created_at: crm_notifier::clock::whole_seconds(now - Span::minutes(20)),
        ..Booking::new(&event, &new_id(), "Asha Rao", "asha@example.com", Some(Payment::hold(&eur_2500(), now)), now)
    };
    store.create_booking(&hold, None, now).await.unwrap();
    let cancelled = store.cancel_booking(&hold, CancelReason::Attendee, now).await.unwrap();
    // THEN it owes no message at all
    assert_eq!(store.booking_messages(&hold.id).await.unwrap().messages, Vec::<Delivery>::new());
    assert_eq!(store.get_messages(std::slice::from_ref(&cancelled)).await.unwrap(), Vec::<Delivery>::new());
    // AND nothing is sent by the notifier, the local hook's path, or a sweep
    let crm = Crm::start().await;
    let clock = ManualClock::new();
    let n = notifier(store.clone(), &crm).with_clock(Arc::new(clock.clone()));
    assert_eq!(n.deliver_booking(&hold.id).await.unwrap(), BookingOutcome::Messages(Vec::new()));
    assert!(crm_notifier::local::deliver_with_retries(&n, &cancelled, Default::default()).await);
    clock.advance(Duration::from_secs(600));
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.found, report.delivered), (0, 0), "{report:?}");
    assert!(crm.posted().await.is_empty());
}

fn eur_2500() -> Price {
    Price { amount: 2500, currency: "eur".into() }
}
