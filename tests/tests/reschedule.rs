//! Rescheduling on both stores: a PATCH of `datetime` or `duration_minutes` raises the event's
//! revision and writes its reschedule job in the same write; the fan-out brings every booking
//! holding a seat to the new time with one `booking.rescheduled` message per confirmed booking;
//! a move into the past is refused while bookings hold seats; a booking racing the reschedule
//! never keeps the old time.

use serde_json::{json, Value};
use shared::model::{BookingStatus, JobKind, Role};
use shared::store::Store;
use std::sync::Arc;
use tests::*;

type AppOf<S> = Arc<shared::App<S>>;

async fn event<S: Store>(app: &AppOf<S>, owner: &str, days: i64) -> String {
    let body = json!({"title": "Move", "type": "Yoga", "datetime": in_days(days), "capacity": 100});
    let resp = call(app, request("POST", "/events/", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

async fn book<S: Store>(app: &AppOf<S>, token: &str, event_id: &str) -> lambda_http::Response<lambda_http::Body> {
    call(app, request("POST", "/bookings/", Some(token), Some(json!({"event_id": event_id})))).await
}

async fn patch<S: Store>(
    app: &AppOf<S>,
    token: &str,
    id: &str,
    body: Value,
) -> lambda_http::Response<lambda_http::Body> {
    call(app, request("PATCH", &format!("/events/{id}"), Some(token), Some(body))).await
}

/// Runs the reschedule job to its end: the first pass at once, the settling pass as if
/// [`shared::model::RESCHEDULE_SETTLE_SECS`] had passed (the worker takes its clock as input).
async fn finish_reschedule<S: Store>(store: &S, event_id: &str) -> usize {
    let mut changed = 0;
    let later = shared::time::now() + chrono::Duration::seconds(shared::model::RESCHEDULE_SETTLE_SECS + 1);
    for now in [shared::time::now(), later] {
        loop {
            let r = shared::lifecycle::run_batch(store, event_id, 4, now, &|_| {}).await.unwrap();
            changed += r.rescheduled;
            if r.not_claimed || r.done || r.next_due.is_none_or(|due| due > now) {
                break;
            }
        }
    }
    assert!(store.get_job(event_id).await.unwrap().is_none(), "the settling pass ends the job");
    changed
}

/// The `booking.rescheduled` records of a booking, where the test can read them: DynamoDB by one
/// Query of its item collection; the embedded store keeps them private (its sequence is checked).
async fn rescheduled_records(store: &dyn std::any::Any, booking_id: &str) -> Option<Vec<Value>> {
    let db = store.downcast_ref::<shared::store::DynamoStore>()?;
    let out = db
        .client()
        .query()
        .table_name(db.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :sk)")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("BOOKING#{booking_id}")))
        .expression_attribute_values(":sk", aws_sdk_dynamodb::types::AttributeValue::S("DELIVERY#RESCHEDULED#".into()))
        .send()
        .await
        .unwrap();
    Some(out.items().iter().map(|i| serde_dynamo::from_item::<_, Value>(i.clone()).unwrap()).collect())
}

async fn reschedule_moves_every_booking_once<S: Store + Clone>(store: S) {
    let app = app(store.clone());
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, 5).await;
    let tokens = users(&app, 6, Role::Attendee).await;
    let mut bookings = Vec::new();
    for t in &tokens {
        let resp = book(&app, t, &id).await;
        assert_eq!(status(&resp), 201);
        bookings.push(json(&resp)["id"].as_str().unwrap().to_string());
    }
    let resp = call(&app, request("DELETE", &format!("/bookings/{}", bookings[0]), Some(&tokens[0]), None)).await;
    assert_eq!(status(&resp), 200);
    let old = app.store.get_event(&id).await.unwrap().unwrap();
    let new_start = shared::time::parse(&in_days(7)).unwrap();
    let resp =
        patch(&app, &owner, &id, json!({"datetime": shared::time::format(&new_start), "duration_minutes": 90})).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    assert_eq!(json(&resp)["datetime"], shared::time::format(&new_start));
    let ev = app.store.get_event(&id).await.unwrap().unwrap();
    assert_eq!(ev.revision, 1);
    let job = app.store.get_job(&id).await.unwrap().expect("the PATCH wrote its job");
    assert_eq!(job.kind, JobKind::Reschedule);
    // A title change is no reschedule: no revision, the job untouched.
    assert_eq!(status(&patch(&app, &owner, &id, json!({"title": "Moved"})).await), 200);
    assert_eq!(app.store.get_event(&id).await.unwrap().unwrap().revision, 1);
    assert_eq!(finish_reschedule(&app.store, &id).await, 5, "the five bookings holding seats");
    for (i, (t, b)) in tokens.iter().zip(&bookings).enumerate() {
        let v = json(&call(&app, request("GET", &format!("/bookings/{b}"), Some(t), None)).await);
        let stored = app.store.get_booking(b).await.unwrap().unwrap();
        if i == 0 {
            // Cancelled before: it keeps the time it was cancelled with.
            assert_eq!(v["event"]["datetime"], shared::time::format(&old.datetime));
            assert_eq!(stored.sequence, 1);
            continue;
        }
        assert_eq!(
            (v["event"]["datetime"].as_str(), v["event"]["duration_minutes"].as_u64()),
            (Some(shared::time::format(&new_start).as_str()), Some(90))
        );
        assert_eq!((stored.sequence, stored.event.revision), (1, 1), "rescheduled exactly once");
        if let Some(records) = rescheduled_records(&app.store as &dyn std::any::Any, b).await {
            assert_eq!(records.len(), 1, "one booking.rescheduled per confirmed booking: {records:?}");
            assert_eq!(records[0]["kind"], "rescheduled");
            assert_eq!(records[0]["event_datetime"], shared::time::format(&new_start));
            assert_eq!(records[0]["previous_event_datetime"], shared::time::format(&old.datetime));
            assert_eq!(records[0]["seq"], 1);
        }
    }
    // The same time sent again: the revision rises, bookings follow, nobody is told of a change.
    let resp = patch(&app, &owner, &id, json!({"datetime": shared::time::format(&new_start)})).await;
    assert_eq!(status(&resp), 200);
    assert_eq!(finish_reschedule(&app.store, &id).await, 5);
    for b in &bookings[1..] {
        let stored = app.store.get_booking(b).await.unwrap().unwrap();
        assert_eq!((stored.sequence, stored.event.revision), (1, 2), "no sequence for an unchanged time");
        if let Some(records) = rescheduled_records(&app.store as &dyn std::any::Any, b).await {
            assert_eq!(records.len(), 1);
        }
    }
}

async fn past_start_refused_while_bookings_hold_seats<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, 5).await;
    let (_, t) = user(&app, Role::Attendee).await;
    let resp = book(&app, &t, &id).await;
    let b = json(&resp)["id"].as_str().unwrap().to_string();
    let resp = patch(&app, &owner, &id, json!({"datetime": in_days(-1)})).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_started".into()));
    let ev = app.store.get_event(&id).await.unwrap().unwrap();
    assert_eq!(ev.revision, 0, "nothing changed");
    assert!(app.store.get_job(&id).await.unwrap().is_none(), "no job written");
    // A later start is fine; once its booking is gone, so is an earlier one.
    assert_eq!(status(&patch(&app, &owner, &id, json!({"datetime": in_days(6)})).await), 200);
    assert_eq!(status(&call(&app, request("DELETE", &format!("/bookings/{b}"), Some(&t), None)).await), 200);
    let resp = patch(&app, &owner, &id, json!({"datetime": in_days(-1)})).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
}

/// A booking whose snapshot was taken before a reschedule is refused by its own write
/// (`StatusChanged`), and the API's retry books it with the new time.
async fn a_stale_snapshot_is_refused<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, 5).await;
    let (attendee, token) = user(&app, Role::Attendee).await;
    let before = app.store.get_event(&id).await.unwrap().unwrap();
    assert_eq!(status(&patch(&app, &owner, &id, json!({"datetime": in_days(8)})).await), 200);
    let now = shared::time::now();
    let stale = shared::model::Booking {
        via_waitlist: false,
        id: shared::model::new_id(),
        event_id: id.clone(),
        user_id: attendee.id.clone(),
        user_name: attendee.name.clone(),
        user_email: attendee.email.clone(),
        status: BookingStatus::Confirmed,
        created_at: now,
        cancelled_at: None,
        event: before.snapshot(),
        payment: None,
        cancel_reason: None,
        sequence: 0,
    };
    let err = app.store.create_booking(&stale, None, now).await.unwrap_err();
    assert!(matches!(err, shared::Error::StatusChanged), "{err:?}");
    let resp = book(&app, &token, &id).await;
    assert_eq!(status(&resp), 201);
    let now_shows = app.store.get_event(&id).await.unwrap().unwrap().datetime;
    assert_eq!(json(&resp)["event"]["datetime"], shared::time::format(&now_shows), "booked with the new time");
}

/// Bookings made while the event is rescheduled: once the job has run, none shows the old time.
async fn reschedule_racing_bookings_leaves_no_stale_time<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, 5).await;
    let tokens = users(&app, 30, Role::Attendee).await;
    let new_start = in_days(9);
    let bookings = futures::future::join_all(tokens.iter().map(|t| book(&app, t, &id)));
    let moved = patch(&app, &owner, &id, json!({"datetime": new_start}));
    let (bookings, moved) = tokio::join!(bookings, moved);
    assert_eq!(status(&moved), 200);
    let ids: Vec<String> = bookings
        .iter()
        .map(|r| {
            assert_eq!(status(r), 201, "{:?}", json(r));
            json(r)["id"].as_str().unwrap().to_string()
        })
        .collect();
    finish_reschedule(&app.store, &id).await;
    let ev = app.store.get_event(&id).await.unwrap().unwrap();
    for b in app.store.get_bookings(&ids).await.unwrap() {
        assert_eq!((b.event.datetime, b.event.revision), (ev.datetime, ev.revision), "{} kept a stale time", b.id);
    }
}

store_tests!(
    reschedule_moves_every_booking_once,
    past_start_refused_while_bookings_hold_seats,
    a_stale_snapshot_is_refused,
    reschedule_racing_bookings_leaves_no_stale_time,
);

/// DynamoDB calls of a reschedule, counted on the wire (moto): the PATCH is one transaction (event
/// + job) between the caller's role read and the answer's read; each confirmed booking is one
/// transaction of two items (its snapshot and sequence, its `booking.rescheduled` record).
#[tokio::test]
async fn dynamodb_calls_per_rescheduled_booking() {
    let (store, log) = dynamo_counted().await;
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, 5).await;
    for t in users(&app, 8, Role::Attendee).await {
        assert_eq!(status(&book(&app, &t, &id).await), 201);
    }
    let mut report = CallReport::new(&log);
    assert_eq!(status(&patch(&app, &owner, &id, json!({"datetime": in_days(6)})).await), 200);
    report.exactly("PATCH /events/{id} (reschedule)", &["GetItem", "TransactWriteItems", "GetItem"]);
    let r = shared::lifecycle::run_batch(&app.store, &id, 8, shared::time::now(), &|_| {}).await.unwrap();
    assert_eq!(r.rescheduled, 8);
    let requests = log.take_requests();
    let ops: Vec<&str> = requests.iter().map(|(op, _)| op.as_str()).collect();
    let mut want = vec!["UpdateItem", "GetItem", "Query"];
    want.extend(["TransactWriteItems"; 8]);
    want.push("UpdateItem");
    assert_eq!(ops, want, "first pass: the settling pass comes later");
    for (op, body) in &requests {
        if op == "TransactWriteItems" {
            assert_eq!(body["TransactItems"].as_array().map(Vec::len), Some(2), "{body}");
        }
    }
    report.print();
    println!("  reschedule batch of 8: {} calls ({})", ops.len(), ops.join(", "));
}
