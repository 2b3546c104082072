//! Typed CRM messages (docs/api.md, "CRM webhook"): order per booking, exact payloads, nothing
//! for a booking the CRM never heard of, one POST per message through replays and outages, a
//! stable `webhook-id` per message, the pending index, `crm_messages`, DynamoDB calls. The CRM is a
//! real HTTP stand-in checking every signature (`tests::crm`); both stores (DynamoDB on moto).

use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::Duration as Span;
use crm_notifier::{handle_batch, sweep, BookingOutcome, Clock, ManualClock, SweepConfig};
use serde_dynamo::AttributeValue;
use serde_json::{json, Value};
use shared::model::{
    new_id, Booking, BookingStatus, CancelReason, Delivery, DeliveryStatus, MessageKind, Payment, Price, Role,
};
use shared::store::{PendingQuery, Settled, Settlement, Store};
use shared::time::format as rfc3339;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tests::crm::{notifier, unlimited, Crm};
use tests::streams::{batch, failures};

// ---------------------------------------------------------------- stream records and fixtures

/// The INSERT of a message record as the stream carries it (NEW_IMAGE: the record, its keys and
/// entity).
fn message_insert(d: &Delivery, seq: &str) -> EventRecord {
    let mut image: serde_dynamo::Item = serde_dynamo::to_item(d).unwrap();
    let (pk, sk) = d.key();
    image.insert("PK".into(), AttributeValue::S(pk));
    image.insert("SK".into(), AttributeValue::S(sk));
    image.insert("entity".into(), AttributeValue::S("delivery".into()));
    let mut r = EventRecord::default();
    r.event_name = "INSERT".into();
    r.event_id = format!("evt-{seq}");
    r.change.sequence_number = Some(seq.into());
    r.change.new_image = image;
    r
}

/// The booking's `booking.cancelled` record as stored.
async fn cancellation<S: Store>(store: &S, booking_id: &str) -> Delivery {
    let read = store.booking_messages(booking_id).await.unwrap();
    read.messages.into_iter().find(|m| m.kind == MessageKind::Cancelled).expect("the cancel wrote its message")
}

/// An owner's event and its id, made through the handlers.
async fn event<S: Store>(app: &shared::App<S>) -> (String, String) {
    let (_, owner) = tests::user(app, Role::Facilitator).await;
    let body = json!({"title": "Sound Bath", "type": "Meditation", "facilitator_id": "FAC042",
        "datetime": tests::in_days(30), "capacity": 10});
    let resp = tests::call(app, tests::request("POST", "/events", Some(&owner), Some(body))).await;
    assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
    (owner, tests::json(&resp)["id"].as_str().unwrap().to_string())
}

/// A booking made through the handlers, and its attendee's token.
async fn booked<S: Store>(app: &shared::App<S>, event_id: &str) -> (Booking, String) {
    let (_, token) = tests::user(app, Role::Attendee).await;
    let req = tests::request("POST", "/bookings/", Some(&token), Some(json!({"event_id": event_id})));
    let resp = tests::call(app, req).await;
    assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
    let id = tests::json(&resp)["id"].as_str().unwrap().to_string();
    (app.store.get_booking(&id).await.unwrap().unwrap(), token)
}

/// The attendee cancels through the handlers; the booking as it now is.
async fn cancel<S: Store>(app: &shared::App<S>, id: &str, token: &str) -> Booking {
    let resp = tests::call(app, tests::request("DELETE", &format!("/bookings/{id}"), Some(token), None)).await;
    assert_eq!(tests::status(&resp), 200, "{:?}", tests::json(&resp));
    app.store.get_booking(id).await.unwrap().unwrap()
}

/// A booking made and then cancelled by its attendee through the handlers, nothing sent yet.
async fn booked_and_cancelled<S: Store>(app: &shared::App<S>, event_id: &str) -> Booking {
    let (b, token) = booked(app, event_id).await;
    cancel(app, &b.id, &token).await
}

/// The v2 fields of `b`'s payload.
fn v2(b: &Booking, event_type: &str) -> Value {
    json!({
        "type": event_type,
        "booking_id": b.id,
        "user": {"name": b.user_name, "email": b.user_email},
        "event_id": b.event_id,
        "facilitator_id": b.event.facilitator_id,
        "event_title": b.event.title,
        "event_datetime": rfc3339(&b.event.datetime),
        "booked_at": rfc3339(&b.created_at),
    })
}

// ---------------------------------------------------------------- cases

async fn cancellation_goes_out_after_the_confirmation_once_and_the_owner_sees_both<S: Store + Clone>(store: S) {
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

async fn paid_booking_cancellation_carries_price_and_refund_status<S: Store + Clone>(store: S) {
    // GIVEN a paid booking (a hold, then its payment) cancelled by an admin
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let event = store.get_event(&event_id).await.unwrap().unwrap();
    let now = shared::time::now();
    let user_id = new_id();
    let hold = Booking {
        via_waitlist: false,
        id: new_id(),
        event_id: event_id.clone(),
        user_name: "Asha Rao".into(),
        user_email: format!("{}@example.com", user_id.to_lowercase()),
        user_id,
        status: BookingStatus::PendingPayment,
        created_at: crm_notifier::clock::whole_seconds(now),
        cancelled_at: None,
        event: event.snapshot(),
        payment: Some(Payment::hold(&Price { amount: 2500, currency: "eur".into() }, now)),
        cancel_reason: None,
        sequence: 0,
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

async fn cancelled_hold_sends_nothing<S: Store + Clone>(store: S) {
    // GIVEN a seat hold cancelled before it was paid: the CRM never heard of it
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let event = store.get_event(&event_id).await.unwrap().unwrap();
    let now = shared::time::now();
    let hold = Booking {
        via_waitlist: false,
        id: new_id(),
        event_id,
        user_id: new_id(),
        user_name: "Asha Rao".into(),
        user_email: "asha@example.com".into(),
        status: BookingStatus::PendingPayment,
        created_at: crm_notifier::clock::whole_seconds(now - Span::minutes(20)),
        cancelled_at: None,
        event: event.snapshot(),
        payment: Some(Payment::hold(&Price { amount: 2500, currency: "eur".into() }, now)),
        cancel_reason: None,
        sequence: 0,
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

async fn crm_down_then_up_each_message_once_in_order_with_stable_ids<S: Store + Clone>(store: S) {
    // GIVEN a cancelled booking whose messages have not gone out, and a CRM answering 503
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let b = booked_and_cancelled(&app, &event_id).await;
    let cancelled = cancellation(&store, &b.id).await;
    let crm = Crm::start().await;
    crm.set_down(true);
    let n = notifier(store.clone(), &crm);
    let record = batch(vec![message_insert(&cancelled, "900")]);

    // WHEN the stream tries twice while the CRM is down
    for _ in 0..2 {
        assert_eq!(failures(&handle_batch(&n, record.clone()).await), ["900"]);
    }
    // THEN only the confirmation was tried (the cancellation waits for it), with one webhook-id
    let confirmed = (b.id.clone(), "booking.confirmed".to_string());
    assert_eq!(crm.sent().await, [confirmed.clone(), confirmed.clone()]);
    let read = store.booking_messages(&b.id).await.unwrap();
    let states: Vec<_> = read.messages.iter().map(|m| (m.kind, m.status, m.attempts)).collect();
    assert_eq!(
        states,
        [(MessageKind::Confirmed, DeliveryStatus::Retrying, 2), (MessageKind::Cancelled, DeliveryStatus::Pending, 0)]
    );

    // WHEN the CRM is back and the stream retries, and a sweep runs afterwards
    crm.set_down(false);
    assert!(failures(&handle_batch(&n, record.clone()).await).is_empty());
    let config = SweepConfig { min_age: Duration::ZERO, ..SweepConfig::default() };
    let report = sweep(&n, &config, None, unlimited()).await.unwrap();
    // THEN each message was accepted once, in order, every retry under the same webhook-id
    let cancellation = (format!("{}:cancelled", b.id), "booking.cancelled".to_string());
    assert_eq!(crm.sent().await, [confirmed.clone(), confirmed.clone(), confirmed, cancellation]);
    assert_eq!((report.found, report.delivered), (0, 0), "{report:?}");
    let read = store.booking_messages(&b.id).await.unwrap();
    let states: Vec<_> = read.messages.iter().map(|m| (m.kind, m.status, m.attempts)).collect();
    assert_eq!(
        states,
        [
            (MessageKind::Confirmed, DeliveryStatus::Delivered, 3),
            (MessageKind::Cancelled, DeliveryStatus::Delivered, 1)
        ]
    );
}

async fn both_messages_of_a_booking_sit_in_the_pending_index_and_the_sweep_sends_them_in_order<S: Store + Clone>(
    store: S,
) {
    // GIVEN a booking and its cancellation, neither sent (the stream never saw them)
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let b = booked_and_cancelled(&app, &event_id).await;
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(600));
    // THEN the pending index holds both, one entry each, also paged one entry at a time
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let q = PendingQuery {
            day: b.created_at.date_naive(),
            from: b.created_at,
            before: clock.now(),
            after: after.take(),
            limit: 1,
        };
        let page = store.pending_deliveries(&q).await.unwrap();
        found.extend(page.items.iter().filter(|d| d.booking_id == b.id).map(|d| d.kind));
        match page.next {
            Some(next) if found.len() < 10 => after = Some(next),
            _ => break,
        }
    }
    assert_eq!(found, [MessageKind::Confirmed, MessageKind::Cancelled]);

    // WHEN the sweeper runs THEN it sends them in order, once; a second sweep finds nothing
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm).with_clock(Arc::new(clock.clone()));
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.found, report.delivered), (2, 2), "{report:?}");
    let types: Vec<String> = crm.sent().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(types, ["booking.confirmed", "booking.cancelled"]);
    let again = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((again.found, again.delivered), (0, 0), "{again:?}");
    assert_eq!(crm.posted().await.len(), 2);
}

async fn local_hook_sends_the_cancellation_after_the_attendee_cancels<S: Store + Clone>(store: S) {
    // GIVEN the local server's wiring: the notifier runs in the background after each commit
    let crm = Crm::start().await;
    let pending = crm_notifier::PendingDeliveries::new();
    let hook = pending.hook(Arc::new(notifier(store.clone(), &crm)), Default::default());
    let app = shared::App::new(store.clone(), &tests::config()).unwrap().with_booking_hook(hook);
    let (_, event_id) = event(&app).await;
    // WHEN a booking is made, its confirmation sent, and its attendee cancels it
    let (b, token) = booked(&app, &event_id).await;
    assert_eq!(pending.drain(Duration::from_secs(10)).await, 0);
    cancel(&app, &b.id, &token).await;
    assert_eq!(pending.drain(Duration::from_secs(10)).await, 0);
    // THEN the CRM heard of both, in order
    let sent: Vec<String> = crm.sent().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(sent, [b.id.clone(), format!("{}:cancelled", b.id)]);
}

tests::store_tests!(
    local_hook_sends_the_cancellation_after_the_attendee_cancels,
    cancellation_goes_out_after_the_confirmation_once_and_the_owner_sees_both,
    paid_booking_cancellation_carries_price_and_refund_status,
    cancelled_hold_sends_nothing,
    crm_down_then_up_each_message_once_in_order_with_stable_ids,
    both_messages_of_a_booking_sit_in_the_pending_index_and_the_sweep_sends_them_in_order,
);

// ---------------------------------------------------------------- DynamoDB calls

/// GIVEN a delivered booking then cancelled, and another cancelled before anything went out
/// WHEN the stream hands each cancellation's INSERT (and again) THEN one delivery costs one
/// Query of the booking's collection plus a claim and an outcome per message sent; a replay one
/// Query alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_stream_delivery_dynamodb_calls() {
    let (store, log) = tests::dynamo_counted().await;
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm);

    // The first booking's confirmation went out (its booking image) before it was cancelled.
    let (first, token) = booked(&app, &event_id).await;
    assert!(!n.deliver(&first).await.unwrap().is_retryable());
    cancel(&app, &first.id, &token).await;
    let record = message_insert(&cancellation(&store, &first.id).await, "1");
    let second = booked_and_cancelled(&app, &event_id).await;
    let both = message_insert(&cancellation(&store, &second.id).await, "2");
    log.take();
    assert!(failures(&handle_batch(&n, batch(vec![record.clone()])).await).is_empty());
    let calls = log.take();
    println!("one stream delivery of a booking.cancelled: {calls:?}");
    assert_eq!(calls, ["Query", "UpdateItem", "PutItem"]);
    assert!(failures(&handle_batch(&n, batch(vec![record])).await).is_empty());
    assert_eq!(log.take(), ["Query"], "a replay: one read, nothing sent");

    assert!(failures(&handle_batch(&n, batch(vec![both.clone()])).await).is_empty());
    let calls = log.take();
    println!("one stream delivery of a booking owing two messages: {calls:?}");
    assert_eq!(calls, ["Query", "UpdateItem", "PutItem", "UpdateItem", "PutItem"]);
    assert!(failures(&handle_batch(&n, batch(vec![both.clone(), both])).await).is_empty());
    assert_eq!(log.take(), ["Query"], "a replayed batch: one read, nothing sent");
    assert_eq!(crm.posted().await.len(), 4);
}

/// GIVEN a confirmed booking, not yet announced, whose event was then moved an hour later (its
/// `booking.rescheduled` record put as the reschedule's write puts it: the record, its keys and
/// its pending-index entry) WHEN the stream hands that record THEN the CRM hears
/// `booking.confirmed` with the start as booked, then `booking.rescheduled` with both starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rescheduled_message_goes_out_after_the_confirmation_with_both_starts() {
    let store = tests::dynamo_store().await;
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let (b, _) = booked(&app, &event_id).await;
    let (old, new) = (b.event.datetime, b.event.datetime + Span::hours(1));
    let mut moved = b.clone();
    moved.sequence = 1;
    let message = Delivery {
        event_datetime: Some(new),
        previous_event_datetime: Some(old),
        ..Delivery::message(&moved, MessageKind::Rescheduled, shared::time::now())
    };
    let mut item: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&message).unwrap();
    let (pk, sk) = message.key();
    let at = message.booked_at.unwrap();
    for (name, value) in [
        ("PK", pk),
        ("SK", sk),
        ("entity", "delivery".to_string()),
        ("GSI1PK", shared::keys::pending_deliveries(at.date_naive())),
        ("GSI1SK", shared::keys::pending_delivery_sort(&at, &message.pending_id())),
    ] {
        item.insert(name.into(), aws_sdk_dynamodb::types::AttributeValue::S(value));
    }
    item.retain(|_, v| !v.is_null());
    store.client().put_item().table_name(store.table()).set_item(Some(item)).send().await.unwrap();
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm);

    assert!(failures(&handle_batch(&n, batch(vec![message_insert(&message, "5")])).await).is_empty());

    let posted = crm.posted().await;
    let ids: Vec<&str> = posted.iter().map(|p| p.webhook_id.as_str()).collect();
    assert_eq!(ids, [b.id.clone(), format!("{}:rescheduled:1", b.id)]);
    assert_eq!(posted[0].body, v2(&b, "booking.confirmed"));
    let mut want = v2(&b, "booking.rescheduled");
    want["event_datetime"] = json!(rfc3339(&new));
    want["previous_event_datetime"] = json!(rfc3339(&old));
    assert_eq!(posted[1].body, want);
    let read = store.booking_messages(&b.id).await.unwrap();
    assert!(read.messages.iter().all(|m| m.status == DeliveryStatus::Delivered), "{:?}", read.messages);
}
