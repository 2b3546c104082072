//! Bookings routes in-process on both stores: atomic booking, history, cancel, idempotency, and
//! the concurrency guarantees (no overbooking, no double booking, no double cancel).

use futures::future::join_all;
use serde_json::{json, Value};
use shared::model::Role;
use shared::Store;
use std::sync::Arc;
use tests::*;

type AppOf<S> = Arc<shared::App<S>>;

async fn event<S: Store>(app: &AppOf<S>, owner: &str, capacity: Option<u32>, days: i64) -> String {
    let body = json!({"title": "Session", "type": "Yoga", "datetime": in_days(days), "capacity": capacity});
    let resp = call(app, request("POST", "/events", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

/// An event starting `secs` seconds from now: booked now, started once the test sleeps past it
/// (an event with bookings cannot be moved into the past: 409 `event_started`).
async fn event_in_secs<S: Store>(app: &AppOf<S>, owner: &str, secs: i64) -> (String, shared::time::Timestamp) {
    let at = shared::time::now() + chrono::Duration::seconds(secs);
    let body = json!({"title": "Session", "type": "Yoga", "datetime": shared::time::format(&at)});
    let resp = call(app, request("POST", "/events", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    (
        json(&resp)["id"].as_str().unwrap().to_string(),
        shared::time::parse(json(&resp)["datetime"].as_str().unwrap()).unwrap(),
    )
}

/// Sleeps until `at` has passed (whole seconds, as stored times are).
async fn until_past(at: shared::time::Timestamp) {
    let wait = (at - shared::time::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(1100);
    tokio::time::sleep(wait).await;
}

async fn book<S: Store>(app: &AppOf<S>, token: &str, event_id: &str) -> lambda_http::Response<lambda_http::Body> {
    call(app, request("POST", "/bookings/", Some(token), Some(json!({"event_id": event_id})))).await
}

async fn seats_booked<S: Store>(app: &AppOf<S>, event_id: &str) -> u64 {
    let resp = call(app, request("GET", &format!("/events/{event_id}"), None, None)).await;
    json(&resp)["seats_booked"].as_u64().unwrap()
}

async fn statuses_and_errors<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (alice, a) = user(&app, Role::Attendee).await;
    let (_, b) = user(&app, Role::Attendee).await;
    let (_, admin) = user(&app, Role::Admin).await;
    let ev = event(&app, &owner, Some(2), 3).await;

    // Book through the API Gateway fixture.
    let resp = bookings::router(&app, fixture("bookings-create", &[("TOKEN", &a), ("EVENT_ID", &ev)])).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let booking = json(&resp);
    let id = booking["id"].as_str().unwrap().to_string();
    assert_eq!(resp.headers()["location"], format!("/bookings/{id}"));
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["user_id"], alice.id.as_str());
    assert_eq!(booking["event"]["id"], ev.as_str());
    assert_eq!(booking["cancelled_at"], Value::Null);
    assert_eq!(seats_booked(&app, &ev).await, 1);

    let cases: Vec<(&str, lambda_http::Response<lambda_http::Body>, u16, &str)> = vec![
        ("again", book(&app, &a, &ev).await, 409, "already_booked"),
        ("unknown event", book(&app, &a, "01NOSUCHEVENT0000000000000").await, 404, "not_found"),
        ("past event", book(&app, &a, &event(&app, &owner, None, -1).await).await, 409, "event_started"),
        (
            "no token",
            call(&app, request("POST", "/bookings", None, Some(json!({"event_id": ev})))).await,
            401,
            "unauthorized",
        ),
        (
            "missing event_id",
            call(&app, request("POST", "/bookings", Some(&a), Some(json!({})))).await,
            400,
            "validation_failed",
        ),
        (
            "wrong type",
            call(&app, request("POST", "/bookings", Some(&a), Some(json!({"event_id": 7})))).await,
            400,
            "invalid_json",
        ),
        (
            "unknown field",
            call(&app, request("POST", "/bookings", Some(&a), Some(json!({"event_id": ev, "seats": 2})))).await,
            400,
            "unknown_field",
        ),
    ];
    for (what, resp, want, code) in cases {
        assert_eq!((status(&resp), error_code(&resp)), (want, code.to_string()), "{what}: {:?}", json(&resp));
    }
    let resp = book(&app, &b, &ev).await;
    assert_eq!(status(&resp), 201);
    let (_, c) = user(&app, Role::Attendee).await;
    let resp = book(&app, &c, &ev).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_full".into()));
    assert_eq!(seats_booked(&app, &ev).await, 2);

    // Visibility: owner and admin see it, anyone else gets 404.
    let path = format!("/bookings/{id}");
    assert_eq!(json(&call(&app, request("GET", &path, Some(&a), None)).await), booking);
    assert_eq!(status(&call(&app, request("GET", &path, Some(&admin), None)).await), 200);
    for (who, t) in [("other attendee", &b), ("event owner", &owner)] {
        let resp = call(&app, request("GET", &path, Some(t), None)).await;
        assert_eq!((status(&resp), error_code(&resp)), (404, "not_found".into()), "GET by {who}");
        let resp = call(&app, request("DELETE", &path, Some(t), None)).await;
        assert_eq!((status(&resp), error_code(&resp)), (404, "not_found".into()), "DELETE by {who}");
    }
    assert_eq!(status(&call(&app, request("GET", "/bookings/01NOSUCHBOOKING00000000000", Some(&a), None)).await), 404);

    // Cancel, cancel again, and the freed seat is bookable again.
    let resp = call(&app, request("DELETE", &path, Some(&a), None)).await;
    assert_eq!(status(&resp), 200);
    assert_eq!(json(&resp)["status"], "cancelled");
    assert!(json(&resp)["cancelled_at"].is_string());
    let resp = call(&app, request("DELETE", &path, Some(&a), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "already_cancelled".into()));
    assert_eq!(seats_booked(&app, &ev).await, 1);
    assert_eq!(status(&book(&app, &c, &ev).await), 201, "the cancelled seat is free again");
    assert_eq!((status(&book(&app, &a, &ev).await), 409), (409, 409), "full again");

    // Admin cancels someone else's booking; cancelling after the event started is refused.
    let (ev2, starts) = event_in_secs(&app, &owner, 3).await;
    let mine = json(&book(&app, &a, &ev2).await)["id"].as_str().unwrap().to_string();
    let theirs = json(&book(&app, &b, &ev2).await)["id"].as_str().unwrap().to_string();
    assert_eq!(status(&call(&app, request("DELETE", &format!("/bookings/{theirs}"), Some(&admin), None)).await), 200);
    // With a booking holding a seat, the event cannot be moved into the past; it starts instead.
    let past = shared::time::format(&(shared::time::now() - chrono::Duration::minutes(5)));
    let resp =
        call(&app, request("PATCH", &format!("/events/{ev2}"), Some(&owner), Some(json!({"datetime": past})))).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_started".into()));
    until_past(starts).await;
    let resp = call(&app, request("DELETE", &format!("/bookings/{mine}"), Some(&a), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_started".into()));
    assert_eq!(seats_booked(&app, &ev2).await, 1);
}

async fn two_hundred_users_ten_seats<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = event(&app, &owner, Some(10), 7).await;
    let tokens = users(&app, 200, Role::Attendee).await;
    let attempts = tokens.into_iter().map(|t| {
        let (app, ev) = (app.clone(), ev.clone());
        tokio::spawn(async move {
            let resp = book(&app, &t, &ev).await;
            (status(&resp), error_code(&resp))
        })
    });
    let results: Vec<(u16, String)> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let ok = results.iter().filter(|r| r.0 == 201).count();
    let full = results.iter().filter(|r| r.0 == 409 && r.1 == "event_full").count();
    assert_eq!(
        (ok, full),
        (10, 190),
        "{:?}",
        results.iter().filter(|r| r.0 != 201 && r.1 != "event_full").collect::<Vec<_>>()
    );
    assert_eq!(seats_booked(&app, &ev).await, 10);
    let resp = call(&app, request("GET", &format!("/events/{ev}/bookings"), Some(&owner), None)).await;
    assert_eq!(json(&resp).as_array().unwrap().len(), 10);
}

async fn one_user_twenty_attempts<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let ev = event(&app, &owner, Some(50), 7).await;
    let attempts = (0..20).map(|_| {
        let (app, ev, a) = (app.clone(), ev.clone(), a.clone());
        tokio::spawn(async move {
            let resp = book(&app, &a, &ev).await;
            (status(&resp), error_code(&resp))
        })
    });
    let results: Vec<(u16, String)> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let ok = results.iter().filter(|r| r.0 == 201).count();
    let dup = results.iter().filter(|r| r.1 == "already_booked").count();
    assert_eq!((ok, dup), (1, 19), "{results:?}");
    assert_eq!(seats_booked(&app, &ev).await, 1);
}

async fn twenty_concurrent_cancels<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let (_, b) = user(&app, Role::Attendee).await;
    let ev = event(&app, &owner, Some(5), 7).await;
    assert_eq!(status(&book(&app, &b, &ev).await), 201);
    let id = json(&book(&app, &a, &ev).await)["id"].as_str().unwrap().to_string();
    assert_eq!(seats_booked(&app, &ev).await, 2);
    let attempts = (0..20).map(|_| {
        let (app, id, a) = (app.clone(), id.clone(), a.clone());
        tokio::spawn(async move {
            let resp = call(&app, request("DELETE", &format!("/bookings/{id}"), Some(&a), None)).await;
            (status(&resp), error_code(&resp))
        })
    });
    let results: Vec<(u16, String)> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let again = results.iter().filter(|r| r.1 == "already_cancelled").count();
    assert_eq!((ok, again), (1, 19), "{results:?}");
    assert_eq!(seats_booked(&app, &ev).await, 1, "exactly one seat released");
}

async fn idempotency_key<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let (_, b) = user(&app, Role::Attendee).await;
    let ev = event(&app, &owner, Some(100), 7).await;
    let other = event(&app, &owner, Some(100), 7).await;
    let keyed = |t: &str, ev: &str, key: &str| {
        let mut r = request("POST", "/bookings", Some(t), Some(json!({"event_id": ev})));
        r.headers_mut().insert("idempotency-key", key.parse().unwrap());
        r
    };
    // Concurrent requests with one key: one booking, every answer the same.
    let attempts = (0..10).map(|_| {
        let (app, ev, a) = (app.clone(), ev.clone(), a.clone());
        tokio::spawn(async move {
            let resp = call(&app, keyed(&a, &ev, "key-123")).await;
            (status(&resp), json(&resp))
        })
    });
    let results: Vec<(u16, Value)> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    assert!(results.iter().all(|r| r.0 == 201 && r.1 == results[0].1), "{results:?}");
    assert_eq!(seats_booked(&app, &ev).await, 1);
    // A later retry replays the first response.
    let resp = call(&app, keyed(&a, &ev, "key-123")).await;
    assert_eq!((status(&resp), json(&resp)), (201, results[0].1.clone()));
    assert_eq!(resp.headers()["idempotent-replayed"], "true");
    // Same key, other body → 409; same key, other user → independent.
    let resp = call(&app, keyed(&a, &other, "key-123")).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "idempotency_key_reused".into()));
    assert_eq!(status(&call(&app, keyed(&b, &ev, "key-123")).await), 201);
    assert_eq!(seats_booked(&app, &ev).await, 2);
    assert_eq!(seats_booked(&app, &other).await, 0);
    for bad in ["", &"k".repeat(256)] {
        let mut r = request("POST", "/bookings", Some(&a), Some(json!({"event_id": other})));
        r.headers_mut().insert("idempotency-key", bad.parse().unwrap());
        let resp = call(&app, r).await;
        assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
    }
}

async fn history_split_and_order<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let e1 = event(&app, &owner, None, 1).await;
    let e3 = event(&app, &owner, None, 3).await;
    let e2 = event(&app, &owner, None, 2).await;
    let (p1, p1_starts) = event_in_secs(&app, &owner, 3).await;
    let (p2, _) = event_in_secs(&app, &owner, 2).await;
    let gone = event(&app, &owner, None, 6).await;
    let mut by_event = std::collections::HashMap::new();
    for e in [&e1, &e3, &e2, &p1, &p2, &gone] {
        by_event.insert(e.clone(), json(&book(&app, &a, e).await)["id"].as_str().unwrap().to_string());
    }
    // Two events start (history shows current event details), one booking is cancelled.
    for e in [&p1, &p2] {
        let resp =
            call(&app, request("PATCH", &format!("/events/{e}"), Some(&owner), Some(json!({"title": "Moved"})))).await;
        assert_eq!(status(&resp), 200);
    }
    until_past(p1_starts).await;
    assert_eq!(
        status(&call(&app, request("DELETE", &format!("/bookings/{}", by_event[&gone]), Some(&a), None)).await),
        200
    );
    let resp = call(&app, request("GET", "/bookings", Some(&a), None)).await;
    assert_eq!(status(&resp), 200);
    let body = json(&resp);
    let event_ids = |list: &Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|b| b["event"]["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(event_ids(&body["upcoming"]), vec![e1.clone(), e2.clone(), e3.clone()], "upcoming ascending");
    assert_eq!(event_ids(&body["past"]), vec![p1.clone(), p2.clone()], "past descending");
    assert_eq!(body["past"][0]["event"]["title"], "Moved", "current event details");
    let resp = call(&app, request("GET", "/bookings/?status=cancelled", Some(&a), None)).await;
    let body = json(&resp);
    assert_eq!(event_ids(&body["upcoming"]), vec![gone.clone()]);
    assert_eq!(body["upcoming"][0]["status"], "cancelled");
    let resp = call(&app, request("GET", "/bookings?status=maybe", Some(&a), None)).await;
    assert_eq!(status(&resp), 400);
    let (_, stranger) = user(&app, Role::Attendee).await;
    let resp = call(&app, request("GET", "/bookings", Some(&stranger), None)).await;
    assert_eq!(json(&resp), json!({"upcoming": [], "past": [], "waiting": []}));
}

async fn event_bookings_for_owner_and_admin<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, other) = user(&app, Role::Facilitator).await;
    let (_, admin) = user(&app, Role::Admin).await;
    let (alice, a) = user(&app, Role::Attendee).await;
    let ev = event(&app, &owner, None, 3).await;
    assert_eq!(status(&book(&app, &a, &ev).await), 201);
    let path = format!("/events/{ev}/bookings/");
    for (who, t, want) in [
        ("owner", Some(&owner), 200),
        ("admin", Some(&admin), 200),
        ("other facilitator", Some(&other), 403),
        ("attendee", Some(&a), 403),
        ("nobody", None, 401),
    ] {
        let resp = call(&app, request("GET", &path, t.map(|t| t.as_str()), None)).await;
        assert_eq!(status(&resp), want, "{who}");
    }
    let resp = call(&app, request("GET", &path, Some(&owner), None)).await;
    let list = json(&resp);
    assert_eq!(list[0]["attendee"], json!({"name": alice.name, "email": alice.email}));
    assert_eq!(list[0]["crm_status"], Value::Null);
    let resp = call(&app, request("GET", "/events/01NOSUCHEVENT0000000000000/bookings", Some(&admin), None)).await;
    assert_eq!(status(&resp), 404);

    // Paged like every list: following Link visits each booking once, oldest first.
    let key = |b: &Value| (b["created_at"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
    let mut want = vec![key(&list[0])];
    for _ in 0..4 {
        let (_, t) = user(&app, Role::Attendee).await;
        want.push(key(&json(&book(&app, &t, &ev).await)));
    }
    // Oldest first; bookings made within the same second are ordered by id.
    want.sort();
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
    let (mut uri, mut seen, mut pages) = (Some(format!("/events/{ev}/bookings?limit=2")), Vec::new(), Vec::new());
    while let Some(u) = uri.take() {
        let resp = call(&app, request("GET", &u, Some(&owner), None)).await;
        assert_eq!(status(&resp), 200, "{u}");
        let page: Vec<String> =
            json(&resp).as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_string()).collect();
        pages.push(page.len());
        seen.extend(page);
        uri = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().trim_start_matches('<').split('>').next().unwrap().to_string());
        assert!(pages.len() < 10);
    }
    assert_eq!((pages, seen), (vec![2, 2, 1], want));
    let resp = call(&app, request("GET", &format!("/events/{ev}/bookings?cursor=bogus"), Some(&owner), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
}

store_tests!(
    statuses_and_errors,
    two_hundred_users_ten_seats,
    one_user_twenty_attempts,
    twenty_concurrent_cancels,
    idempotency_key,
    history_split_and_order,
    event_bookings_for_owner_and_admin,
);

/// DynamoDB calls per booking route, counted on the wire: book = 1 read + 1 transaction,
/// history ≤ 2, never a Scan.
#[tokio::test]
async fn dynamodb_calls_per_route() {
    let (store, log) = dynamo_counted().await;
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let ev = event(&app, &owner, Some(3), 3).await;
    let mut report = CallReport::new(&log);
    let id = json(&book(&app, &a, &ev).await)["id"].as_str().unwrap().to_string();
    report.exactly("POST /bookings", &["BatchGetItem", "TransactWriteItems"]);
    let mut r = request("POST", "/bookings", Some(&a), Some(json!({"event_id": ev})));
    r.headers_mut().insert("idempotency-key", "k1".parse().unwrap());
    call(&app, r).await;
    // Already booked is answered from the one read: no transaction is attempted.
    report.exactly("POST /bookings (Idempotency-Key, already booked)", &["BatchGetItem"]);
    call(&app, request("GET", "/bookings", Some(&a), None)).await;
    // The bookings and the caller's waitlist entries (none here), side by side; then the events.
    report.exactly("GET /bookings", &["Query", "Query", "BatchGetItem"]);
    call(&app, request("GET", &format!("/bookings/{id}"), Some(&a), None)).await;
    report.exactly("GET /bookings/{id}", &["GetItem"]);
    call(&app, request("GET", &format!("/events/{ev}/bookings"), Some(&owner), None)).await;
    // The event and the caller's current role in one BatchGetItem.
    report.exactly("GET /events/{id}/bookings", &["BatchGetItem", "Query", "BatchGetItem"]);
    let (_, admin) = user(&app, Role::Admin).await;
    log.take();
    call(&app, request("GET", &format!("/bookings/{id}"), Some(&admin), None)).await;
    report.exactly("GET /bookings/{id} (admin, someone else's)", &["GetItem", "GetItem"]);
    call(&app, request("DELETE", &format!("/bookings/{id}"), Some(&a), None)).await;
    report.exactly("DELETE /bookings/{id}", &["GetItem", "TransactWriteItems"]);
    report.print();
}
