//! DynamoDB as it behaves under contention, on moto with the project's injection
//! (`scripts/moto_server.py`): transactions that share an item with another one in flight are
//! cancelled with `TransactionConflict`, single-item writes on such an item get
//! `TransactionConflictException`, and a hot item throttles (`ThrottlingException`,
//! `ProvisionedThroughputExceededException`, or a `ThrottlingError` cancellation). The adapter's
//! retries must absorb what they can; what they cannot becomes a 503 with `Retry-After`, never
//! another 5xx, never a seat counted twice or lost.

use futures::future::join_all;
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use shared::error::Error;
use shared::model::Role;
use std::sync::Arc;
use std::time::Duration;
use tests::*;

type DynamoApp = Arc<shared::App<shared::store::DynamoStore>>;

/// Sets the injection rates of one table on the moto server (other tables keep theirs).
async fn inject(table: &str, settings: Value) {
    let mut body = settings;
    body["table"] = json!(table);
    let resp = reqwest::Client::new()
        .post(format!("{}/_inject", endpoint()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

/// What moto injected on `table` so far.
async fn injected(table: &str) -> Value {
    let url = format!("{}/_inject?table={table}", endpoint());
    serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap()
}

/// A 503 as the contract promises it: `Retry-After` in whole seconds and the `unavailable` body.
/// Returns the seconds to wait.
fn assert_documented_503(resp: &Response<Body>, what: &str) -> u64 {
    assert_eq!(status(resp), 503, "{what}");
    let after = resp.headers().get("retry-after").unwrap_or_else(|| panic!("{what}: 503 without Retry-After"));
    let secs: u64 = after.to_str().unwrap().parse().unwrap_or_else(|_| panic!("{what}: Retry-After {after:?}"));
    assert_eq!(error_code(resp), "unavailable", "{what}");
    secs
}

/// Sends the request built by `req` as a client following the contract would: a 503 is checked,
/// waited out for its `Retry-After` and sent again. Returns the final answer and how many 503s
/// came before it. Any other 5xx fails the test.
async fn with_retries(app: &DynamoApp, what: &str, req: impl Fn() -> lambda_http::Request) -> (u16, Value, usize) {
    let mut unavailable = 0;
    loop {
        let resp = call(app, req()).await;
        let code = status(&resp);
        if code == 503 && unavailable < 5 {
            let secs = assert_documented_503(&resp, what);
            unavailable += 1;
            tokio::time::sleep(Duration::from_secs(secs)).await;
            continue;
        }
        assert!(code < 500, "{what}: {code} {:?}", json(&resp));
        return (code, json(&resp), unavailable);
    }
}

async fn seats_booked(app: &DynamoApp, event_id: &str) -> u64 {
    let resp = call(app, request("GET", &format!("/events/{event_id}"), None, None)).await;
    json(&resp)["seats_booked"].as_u64().unwrap()
}

async fn create_event(app: &DynamoApp, owner: &str, capacity: u32) -> String {
    let body = json!({"title": "Flash sale", "type": "Yoga", "datetime": in_days(7), "capacity": capacity});
    let resp = call(app, request("POST", "/events", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

fn booking_request(token: &str, event_id: &str) -> lambda_http::Request {
    request("POST", "/bookings/", Some(token), Some(json!({"event_id": event_id})))
}

/// What the SDK saw on the wire: (transaction conflicts, throttles) among the answers, counted
/// by their `__type` and cancellation reasons exactly as DynamoDB sends them.
fn seen_on_the_wire(log: &CallLog) -> (u64, u64) {
    let (mut conflicts, mut throttles) = (0, 0);
    for exchange in log.take_exchanges() {
        let kind = exchange.resp["__type"].as_str().unwrap_or_default().rsplit('#').next().unwrap_or_default();
        let reasons: Vec<&str> = exchange.resp["CancellationReasons"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["Code"].as_str()).collect())
            .unwrap_or_default();
        match kind {
            "TransactionCanceledException" if reasons.contains(&"TransactionConflict") => conflicts += 1,
            "TransactionCanceledException" if reasons.contains(&"ThrottlingError") => throttles += 1,
            "TransactionConflictException" => conflicts += 1,
            "ThrottlingException" | "ProvisionedThroughputExceededException" => throttles += 1,
            _ => {}
        }
    }
    (conflicts, throttles)
}

/// A flash sale: 200 buyers for 10 seats while DynamoDB cancels half of the contended
/// transactions and throttles some more; then every booking cancelled twice at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_racers_ten_seats_under_conflicts_and_throttling() {
    let (store, log) = dynamo_counted().await;
    let table = store.table().to_string();
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = create_event(&app, &owner, 10).await;
    // The buyers' accounts exist before DynamoDB starts misbehaving (booking reads them).
    let tokens = users(&app, 200, Role::Attendee).await;
    inject(&table, json!({"conflict_rate": 0.5, "throttle_rate": 0.1})).await;
    log.take();

    let racers = tokens.into_iter().map(|token| {
        let (app, ev) = (app.clone(), ev.clone());
        tokio::spawn(async move {
            let (code, body, unavailable) = with_retries(&app, "booking", || booking_request(&token, &ev)).await;
            (code, body, unavailable, token)
        })
    });
    let results: Vec<(u16, Value, usize, String)> = join_all(racers).await.into_iter().map(Result::unwrap).collect();
    let booked: Vec<&(u16, Value, usize, String)> = results.iter().filter(|r| r.0 == 201).collect();
    let full = results.iter().filter(|r| r.0 == 409 && r.1["error"]["code"] == "event_full").count();
    assert_eq!(
        (booked.len(), full),
        (10, 190),
        "{:?}",
        results.iter().filter(|r| r.0 != 201).map(|r| &r.1).collect::<Vec<_>>()
    );
    assert_eq!(seats_booked(&app, &ev).await, 10);
    let resp = call(&app, request("GET", &format!("/events/{ev}/bookings"), Some(&owner), None)).await;
    assert_eq!(json(&resp).as_array().unwrap().len(), 10);
    let booking_503s: usize = results.iter().map(|r| r.2).sum();

    // Every booking cancelled by two requests at once: one frees the seat, the other hears
    // `already_cancelled`, whatever conflicts and throttles came between.
    let mut cancels = Vec::new();
    for racer in &booked {
        let (id, token) = (racer.1["id"].as_str().unwrap().to_string(), &racer.3);
        for _ in 0..2 {
            let (app, id, token) = (app.clone(), id.clone(), token.clone());
            cancels.push(tokio::spawn(async move {
                let path = format!("/bookings/{id}");
                let (code, body, unavailable) =
                    with_retries(&app, "cancel", || request("DELETE", &path, Some(&token), None)).await;
                (id, code, body["error"]["code"].as_str().unwrap_or_default().to_string(), unavailable)
            }));
        }
    }
    let cancelled: Vec<(String, u16, String, usize)> =
        join_all(cancels).await.into_iter().map(Result::unwrap).collect();
    for racer in &booked {
        let id = racer.1["id"].as_str().unwrap();
        let mut outcomes: Vec<(u16, &str)> =
            cancelled.iter().filter(|c| c.0 == id).map(|c| (c.1, c.2.as_str())).collect();
        outcomes.sort();
        assert_eq!(outcomes, [(200, ""), (409, "already_cancelled")], "booking {id}");
    }
    assert_eq!(seats_booked(&app, &ev).await, 0, "every seat freed exactly once");
    let cancel_503s: usize = cancelled.iter().map(|c| c.3).sum();

    // The injection happened (the test cannot pass on an idle moto), and what moto counted is
    // what the SDK received.
    let counts = injected(&table).await;
    let (conflicts, throttles) = seen_on_the_wire(&log);
    let moto_conflicts = counts["transaction_conflicts"].as_u64().unwrap() + counts["item_conflicts"].as_u64().unwrap();
    println!(
        "contended {} requests: {conflicts} conflicts, {throttles} throttles; 503s: {booking_503s} bookings, {cancel_503s} cancels",
        counts["contended"]
    );
    assert!(conflicts >= 20 && throttles >= 2, "{counts}");
    assert_eq!((conflicts, throttles), (moto_conflicts, counts["throttles"].as_u64().unwrap()), "{counts}");
}

/// A transaction that conflicts on every attempt spends the retry budget: 503 with
/// `Retry-After`, nothing written. An item write on the contended event (a PATCH during the sale)
/// gets `TransactionConflictException`: also a 503, not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_conflicting_answers_503_with_retry_after() {
    let (store, log) = dynamo_counted().await;
    let table = store.table().to_string();
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = create_event(&app, &owner, 10).await;
    let [first, second]: [String; 2] = users(&app, 2, Role::Attendee).await.try_into().unwrap();
    // Every contended request conflicts, and a committed transaction stays open for a minute:
    // the first booking goes through and holds the event's item.
    inject(&table, json!({"conflict_rate": 1.0, "window_ms": 60_000})).await;
    assert_eq!(status(&call(&app, booking_request(&first, &ev)).await), 201);

    log.take();
    let resp = call(&app, booking_request(&second, &ev)).await;
    assert_documented_503(&resp, "booking while the event's item is held");
    let calls = log.take();
    let transactions = calls.iter().filter(|c| *c == "TransactWriteItems").count();
    assert_eq!(transactions, 6, "the adapter's budget is 6 attempts: {calls:?}");
    assert_eq!(seats_booked(&app, &ev).await, 1, "a cancelled transaction writes nothing");

    let patch = json!({"title": "Flash sale (moved)"});
    let resp = call(&app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(patch))).await;
    assert_documented_503(&resp, "PATCH of an event a transaction holds");
    let counts = injected(&table).await;
    assert_eq!((counts["transaction_conflicts"].as_u64(), counts["item_conflicts"].as_u64()), (Some(6), Some(1)));

    // Once DynamoDB stops cancelling, the same request goes through.
    inject(&table, json!({"conflict_rate": 0.0})).await;
    assert_eq!(status(&call(&app, booking_request(&second, &ev)).await), 201);
    assert_eq!(seats_booked(&app, &ev).await, 2);
}

/// Throttled on every attempt: the SDK retries `ThrottlingException` and
/// `ProvisionedThroughputExceededException` itself (3 attempts in all), a `ThrottlingError`
/// cancellation is not retried by anyone; the client gets 503 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_throttled_answers_503_with_retry_after() {
    let (store, log) = dynamo_counted().await;
    let table = store.table().to_string();
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = create_event(&app, &owner, 10).await;
    let [first, second]: [String; 2] = users(&app, 2, Role::Attendee).await.try_into().unwrap();
    inject(&table, json!({"throttle_rate": 1.0, "window_ms": 60_000})).await;
    assert_eq!(status(&call(&app, booking_request(&first, &ev)).await), 201);
    log.take();
    let resp = call(&app, booking_request(&second, &ev)).await;
    assert_documented_503(&resp, "booking on a throttled event");
    let answers: Vec<String> = log
        .take_exchanges()
        .into_iter()
        .filter(|e| e.op == "TransactWriteItems")
        .map(|e| e.resp["__type"].as_str().unwrap_or_default().rsplit('#').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        answers,
        ["ThrottlingException", "ProvisionedThroughputExceededException", "TransactionCanceledException"],
        "the SDK's standard retry mode: 3 attempts, throttles retried, cancellations not"
    );
    assert_eq!(seats_booked(&app, &ev).await, 1);
}

/// Every 503 the service sends carries `Retry-After`, including a cancel that kept finding its
/// booking changed.
#[test]
fn every_503_carries_retry_after() {
    for err in [Error::Unavailable("throttled".into()), Error::StatusChanged] {
        let resp = shared::http::error_response(&err);
        assert_documented_503(&resp, &format!("{err:?}"));
    }
}
