//! DynamoDB calls and capacity units per route, for `make bench` (DynamoDB on moto: run it with
//! `source scripts/moto.sh` first, as `scripts/bench.sh` does).
//!
//! ```text
//! cargo run -p tests --example dynamo_capacity
//! ```
//!
//! Every route runs once through the real handlers on a DynamoDB store whose SDK client records
//! each request and response on the wire (`tests::CallLog`). moto answers `ReturnConsumedCapacity` with constants,
//! not with what DynamoDB would charge, so the units are *computed* from the items each call
//! touched, read from the table before and after the route (a Scan on a second client, not
//! counted), with DynamoDB's on-demand rules:
//!
//! - reads: 4 KB units per item (GetItem, each key of a BatchGetItem, a missing item costs the
//!   minimum unit), a Query sums the entries it evaluates (`ScannedCount`, before its filter) and
//!   rounds once; eventually consistent reads cost half (every Query here is on a GSI, so
//!   eventually consistent); strongly consistent reads cost 1 per 4 KB;
//! - writes: 1 KB units of the larger of the item before and after; inside TransactWriteItems ×2;
//! - index upkeep: each GSI whose entry the write creates, changes or removes costs 1 KB units of
//!   the entry (both indexes project ALL, so an entry is the item); a key change is a delete and a
//!   put. Not doubled by a transaction.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use shared::model::Role;
use shared::store::{DynamoStore, Store};
use std::collections::HashMap;
use std::sync::Arc;
use tests::{app, call, request, status, user, CallLog, Exchange};

type Item = HashMap<String, AttributeValue>;
type Table = HashMap<(String, String), Item>;

// ----------------------------------------------------------------------------- item sizes

/// DynamoDB's size of a number: about one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// (PK, SK) of a key or item in DynamoDB JSON.
fn json_key(v: &Value) -> (String, String) {
    let s = |name: &str| v[name]["S"].as_str().unwrap_or_default().to_string();
    (s("PK"), s("SK"))
}

fn index_key(item: Option<&Item>, pk: &str, sk: &str) -> Option<(String, String)> {
    let item = item?;
    let text = |a: &AttributeValue| match a {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.clone(),
        other => format!("{other:?}"),
    };
    Some((text(item.get(pk)?), text(item.get(sk)?)))
}

// ----------------------------------------------------------------------------- units

#[derive(Clone, Copy, Debug, Default)]
struct Units {
    /// Read request units.
    read: f64,
    /// Write request units on the table, and on the two GSIs.
    write: f64,
    index: f64,
}

fn read_units(size: usize, consistent: bool, transactional: bool) -> f64 {
    let blocks = size.div_ceil(4096).max(1) as f64;
    if transactional {
        2.0 * blocks
    } else if consistent {
        blocks
    } else {
        blocks / 2.0
    }
}

fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// The units of writing `key` (its item as `before` and `after` the route), `factor` 2 in a
/// transaction.
fn write_cost(key: &(String, String), before: &Table, after: &Table, factor: f64) -> Units {
    let (old, new) = (before.get(key), after.get(key));
    let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
    let mut u = Units { write: factor * write_units(size), ..Units::default() };
    if old == new {
        return u; // a refused condition: the write is charged, no index entry changes
    }
    for (pk, sk) in [("GSI1PK", "GSI1SK"), ("GSI2PK", "GSI2SK")] {
        match (index_key(old, pk, sk), index_key(new, pk, sk)) {
            (None, None) => {}
            (Some(_), None) => u.index += write_units(old.map_or(0, item_size)),
            (None, Some(_)) => u.index += write_units(new.map_or(0, item_size)),
            (Some(a), Some(b)) if a == b => u.index += write_units(new.map_or(0, item_size)),
            (Some(_), Some(_)) => {
                u.index += write_units(old.map_or(0, item_size)) + write_units(new.map_or(0, item_size))
            }
        }
    }
    u
}

fn cost(call: &Exchange, before: &Table, after: &Table) -> Units {
    let size_of = |k: &(String, String)| before.get(k).or_else(|| after.get(k)).map_or(0, item_size);
    let r = &call.req;
    let consistent = r["ConsistentRead"].as_bool().unwrap_or(false);
    match call.op.as_str() {
        "GetItem" => Units { read: read_units(size_of(&json_key(&r["Key"])), consistent, false), ..Units::default() },
        "BatchGetItem" => {
            let mut read = 0.0;
            for spec in r["RequestItems"].as_object().into_iter().flat_map(|m| m.values()) {
                let consistent = spec["ConsistentRead"].as_bool().unwrap_or(false);
                for k in spec["Keys"].as_array().into_iter().flatten() {
                    read += read_units(size_of(&json_key(k)), consistent, false);
                }
            }
            Units { read, ..Units::default() }
        }
        "Query" => {
            let items: Vec<usize> =
                call.resp["Items"].as_array().into_iter().flatten().map(|i| size_of(&json_key(i))).collect();
            let scanned = call.resp["ScannedCount"].as_u64().unwrap_or(items.len() as u64) as usize;
            let returned: usize = items.iter().sum();
            // Entries the filter dropped are not in the answer: count them at the mean event size.
            let mean = if items.is_empty() {
                let events: Vec<usize> =
                    before.iter().filter(|(k, _)| k.0.starts_with("EVENT#")).map(|(_, i)| item_size(i)).collect();
                events.iter().sum::<usize>() / events.len().max(1)
            } else {
                returned / items.len()
            };
            let evaluated = returned + scanned.saturating_sub(items.len()) * mean;
            Units { read: read_units(evaluated, consistent, false), ..Units::default() }
        }
        "PutItem" => write_cost(&json_key(&r["Item"]), before, after, 1.0),
        "UpdateItem" | "DeleteItem" => write_cost(&json_key(&r["Key"]), before, after, 1.0),
        "TransactWriteItems" => {
            let mut u = Units::default();
            for action in r["TransactItems"].as_array().into_iter().flatten() {
                let one = if let Some(put) = action.get("Put") {
                    write_cost(&json_key(&put["Item"]), before, after, 2.0)
                } else if let Some(w) = action.get("Update").or_else(|| action.get("Delete")) {
                    write_cost(&json_key(&w["Key"]), before, after, 2.0)
                } else if let Some(c) = action.get("ConditionCheck") {
                    Units { read: read_units(size_of(&json_key(&c["Key"])), true, true), ..Units::default() }
                } else {
                    Units::default()
                };
                u.read += one.read;
                u.write += one.write;
                u.index += one.index;
            }
            u
        }
        _ => Units::default(),
    }
}

// ----------------------------------------------------------------------------- the routes

async fn snapshot(client: &aws_sdk_dynamodb::Client, table: &str) -> Table {
    let mut out = Table::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan the table");
        for item in page.items.unwrap_or_default() {
            let s = |n: &str| item.get(n).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            out.insert((s("PK"), s("SK")), item);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return out;
        }
    }
}

struct Bench {
    app: Arc<shared::App<DynamoStore>>,
    recorder: CallLog,
    plain: aws_sdk_dynamodb::Client,
    table: String,
    rows: Vec<(String, Vec<Exchange>, Units)>,
}

impl Bench {
    /// Sends one request and records what it cost; returns the answer's JSON.
    async fn route(&mut self, name: &str, method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Value {
        self.route_with(name, request(method, uri, token, body)).await
    }

    /// Runs `work` (no HTTP request: a lifecycle batch, a stream delivery) and records what it cost.
    async fn step(&mut self, name: &str, work: impl std::future::Future<Output = ()>) {
        let before = snapshot(&self.plain, &self.table).await;
        self.recorder.take();
        work.await;
        self.record(name, &before).await;
    }

    /// Adds the row of what ran since `before` was taken: its calls and their units.
    async fn record(&mut self, name: &str, before: &Table) {
        let calls = self.recorder.take_exchanges();
        let after = snapshot(&self.plain, &self.table).await;
        let mut total = Units::default();
        for c in &calls {
            let u = cost(c, before, &after);
            total.read += u.read;
            total.write += u.write;
            total.index += u.index;
        }
        assert!(calls.iter().all(|c| c.op != "Scan"), "{name} scanned");
        self.rows.push((name.to_string(), calls, total));
    }

    async fn route_with(&mut self, name: &str, req: lambda_http::Request) -> Value {
        let before = snapshot(&self.plain, &self.table).await;
        self.recorder.take();
        let resp = call(&self.app, req).await;
        assert!((200..300).contains(&status(&resp)), "{name}: {} {:?}", status(&resp), resp.body());
        self.record(name, &before).await;
        serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null)
    }
}

fn plain_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let recorder = CallLog::default();
    let store = tests::dynamo_with(recorder.clone()).await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(tests::endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "bench"))
        .load()
        .await;
    let table = store.table().to_string();
    let app = app(store.clone());
    let mut b = Bench { app: app.clone(), recorder, plain: plain_client(&sdk), table, rows: Vec::new() };

    // The data of the throughput bench: the 12 sample events, 8 more (one through the route).
    let (_, facilitator) = user(&app, Role::Facilitator).await;
    shared::seed::seed_events(&app.store, shared::seed::SAMPLE_OWNER).await.expect("seed");
    let event = |i: usize| {
        json!({"title": format!("Bench session {i}"), "description": "A session created by the benchmark.",
               "type": "Yoga", "datetime": tests::in_days(30 + i as i64), "rating": 4.5, "capacity": 20})
    };
    let created = b.route("POST /events/", "POST", "/events/", Some(&facilitator), Some(event(0))).await;
    let mine = created["id"].as_str().expect("event id").to_string();
    let mut ids = vec![mine.clone()];
    for i in 1..8 {
        let e = call(&app, request("POST", "/events/", Some(&facilitator), Some(event(i)))).await;
        ids.push(serde_json::from_slice::<Value>(e.body().as_ref()).unwrap()["id"].as_str().unwrap().to_string());
    }

    let account = json!({"name": "Bench User", "email": "bench@example.com", "password": "bench-password-1"});
    b.route("POST /auth/register", "POST", "/auth/register", None, Some(account)).await;
    let login = json!({"email": "bench@example.com", "password": "bench-password-1"});
    let session = b.route("POST /auth/login", "POST", "/auth/login", None, Some(login)).await;
    let token = session["access_token"].as_str().expect("token").to_string();
    b.route("GET /auth/me", "GET", "/auth/me", Some(&token), None).await;
    let refresh = json!({"refresh_token": session["refresh_token"]});
    let rotated = b.route("POST /auth/refresh", "POST", "/auth/refresh", None, Some(refresh)).await;
    let logout = json!({"refresh_token": rotated["refresh_token"]});
    b.route("POST /auth/logout", "POST", "/auth/logout", None, Some(logout)).await;
    let change = json!({"current_password": "bench-password-1", "new_password": "bench-password-2"});
    b.route("POST /auth/password", "POST", "/auth/password", Some(&token), Some(change)).await;

    let listed = b.route("GET /events/ (20 events)", "GET", "/events/", None, None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(20));
    b.route("GET /events/filter?type=yoga&rating=4.5", "GET", "/events/filter?type=yoga&rating=4.5", None, None).await;
    b.route("GET /events/{id}", "GET", &format!("/events/{mine}"), None, None).await;
    let patch = json!({"capacity": 25});
    b.route("PATCH /events/{id}", "PATCH", &format!("/events/{mine}"), Some(&facilitator), Some(patch)).await;

    let booked = b.route("POST /bookings/", "POST", "/bookings/", Some(&token), Some(json!({"event_id": mine}))).await;
    let booking = booked["id"].as_str().expect("booking id").to_string();
    let mut r = request("POST", "/bookings/", Some(&token), Some(json!({"event_id": ids[1]})));
    r.headers_mut().insert("idempotency-key", "bench-key-1".parse().unwrap());
    b.route_with("POST /bookings/ (Idempotency-Key)", r).await;
    b.route("GET /bookings/ (2 bookings)", "GET", "/bookings/", Some(&token), None).await;
    b.route("GET /bookings/{id}", "GET", &format!("/bookings/{booking}"), Some(&token), None).await;
    let attendees = format!("/events/{mine}/bookings");
    b.route("GET /events/{id}/bookings (1 booking)", "GET", &attendees, Some(&facilitator), None).await;
    // The stream function's part: the booking's confirmation from its image (claim + outcome).
    let crm = tests::crm::Crm::start().await;
    let notifier = tests::crm::notifier(store.clone(), &crm);
    let image = store.get_booking(&booking).await.expect("read").expect("booked");
    b.step("stream: booking.confirmed (booking image)", async {
        assert!(!notifier.deliver(&image).await.expect("delivered").is_retryable());
    })
    .await;
    b.route("DELETE /bookings/{id}", "DELETE", &format!("/bookings/{booking}"), Some(&token), None).await;
    // Its booking.cancelled record's INSERT: the booking's collection read, then the message.
    b.step("stream: booking.cancelled (message record)", async {
        assert_eq!(notifier.deliver_booking(&booking).await.expect("delivered").sent().count(), 1);
    })
    .await;
    b.step("stream: the same record again", async {
        assert_eq!(notifier.deliver_booking(&booking).await.expect("read").sent().count(), 0);
    })
    .await;
    b.route("DELETE /events/{id}", "DELETE", &format!("/events/{}", ids[7]), Some(&facilitator), None).await;

    // Waitlists: a sold-out event of one seat; joining and leaving as the waitlist routes do it
    // (the caller's context in one read, then the write), and the holder's cancel, which hands
    // the seat to the first in line, against the cancel above that nobody waited for.
    let full = json!({"title": "Sold out", "type": "Yoga", "datetime": tests::in_days(20), "capacity": 1});
    let full = call(&app, request("POST", "/events/", Some(&facilitator), Some(full))).await;
    let full = serde_json::from_slice::<Value>(full.body().as_ref()).unwrap()["id"].as_str().unwrap().to_string();
    let (_, holder) = user(&app, Role::Attendee).await;
    let held = call(&app, request("POST", "/bookings/", Some(&holder), Some(json!({"event_id": full})))).await;
    let held = serde_json::from_slice::<Value>(held.body().as_ref()).unwrap()["id"].as_str().unwrap().to_string();
    let (first, _) = user(&app, Role::Attendee).await;
    let (second, _) = user(&app, Role::Attendee).await;
    for (name, who) in [("join waitlist (context read + join)", &first), ("join waitlist (2nd in line)", &second)] {
        let (store, full, who) = (store.clone(), full.clone(), who.clone());
        b.step(name, async move {
            let ctx = store.booking_context(&full, &who.id, None).await.expect("context");
            let me = ctx.user.expect("account");
            let entry = shared::model::WaitEntry {
                event_id: full.clone(),
                user_id: me.id,
                user_name: me.name,
                user_email: me.email,
                joined_at: shared::time::now(),
            };
            store.join_waitlist(&entry, shared::time::now()).await.expect("joined");
        })
        .await;
    }
    let (s2, f2, w2) = (store.clone(), full.clone(), second.id.clone());
    b.step("leave waitlist (guard read + leave)", async move { s2.leave_waitlist(&f2, &w2).await.expect("left") }).await;
    b.route("DELETE /bookings/{id} (1 waiting: promotes)", "DELETE", &format!("/bookings/{held}"), Some(&holder), None)
        .await;
    let promoted = store.booking_context(&full, &first.id, None).await.expect("context");
    assert!(promoted.already_booked && !promoted.waiting, "the first in line holds the seat");

    // The lifecycle: an event of 4 free bookings rescheduled, then cancelled; one batch of 4 each
    // (the cancel's batch reaches the end of the index and ends the job).
    let life = call(&app, request("POST", "/events/", Some(&facilitator), Some(event(9)))).await;
    let life = serde_json::from_slice::<Value>(life.body().as_ref()).unwrap()["id"].as_str().unwrap().to_string();
    for _ in 0..4 {
        let (_, t) = user(&app, Role::Attendee).await;
        let r = call(&app, request("POST", "/bookings/", Some(&t), Some(json!({"event_id": life})))).await;
        assert_eq!(status(&r), 201);
    }
    let moved = json!({"datetime": tests::in_days(45)});
    b.route("PATCH /events/{id} (reschedule)", "PATCH", &format!("/events/{life}"), Some(&facilitator), Some(moved))
        .await;
    let store = app.store.clone();
    let batch = |name: &'static str, kind: &'static str| {
        let (store, life) = (store.clone(), life.clone());
        (name, async move {
            let r = shared::lifecycle::run_batch(&store, &life, 4, shared::time::now(), &|_| {}).await.expect("batch");
            assert_eq!(if kind == "cancel" { r.cancelled } else { r.rescheduled }, 4, "{r:?}");
        })
    };
    let (name, work) = batch("reschedule batch (4 confirmed bookings)", "reschedule");
    b.step(name, work).await;
    b.route("POST /events/{id}/cancel", "POST", &format!("/events/{life}/cancel"), Some(&facilitator), None).await;
    let (name, work) = batch("cancel batch (4 free confirmed bookings, ends the job)", "cancel");
    b.step(name, work).await;

    println!();
    println!("| route | DynamoDB calls | RRU | WRU table | WRU indexes | WRU total |");
    println!("|---|---|---|---|---|---|");
    for (name, calls, u) in &b.rows {
        let ops: Vec<String> = calls
            .iter()
            .map(|c| {
                let mut op = c.op.clone();
                if c.op == "TransactWriteItems" {
                    op.push_str(&format!(" ({})", c.req["TransactItems"].as_array().map_or(0, Vec::len)));
                }
                if c.op == "BatchGetItem" {
                    let keys: usize = c.req["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.values())
                        .map(|s| s["Keys"].as_array().map_or(0, Vec::len))
                        .sum();
                    op.push_str(&format!(" ({keys})"));
                }
                if c.op == "Query" {
                    let n = c.resp["Count"].as_u64().unwrap_or(0);
                    let scanned = c.resp["ScannedCount"].as_u64().unwrap_or(n);
                    op.push_str(&format!(" ({scanned} read)"));
                }
                if !c.ok {
                    op.push_str(" (refused)");
                }
                op
            })
            .collect();
        println!(
            "| `{name}` | {} ({}) | {} | {} | {} | {} |",
            calls.len(),
            ops.join(" + "),
            u.read,
            u.write,
            u.index,
            u.write + u.index
        );
    }
}
