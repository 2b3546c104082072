//! Events routes in-process on both stores: CRUD, roles and ownership, filter, ordering, paging.

use serde_json::{json, Value};
use shared::model::Role;
use shared::Store;
use std::sync::Arc;
use tests::*;

type AppOf<S> = Arc<shared::App<S>>;

async fn create<S: Store>(app: &AppOf<S>, token: &str, body: Value) -> Value {
    let resp = call(app, request("POST", "/events/", Some(token), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)
}

async fn create_get_and_original_readme_body<S: Store + Clone>(store: S) {
    let app = app(store);
    let (fac, token) = user(&app, Role::Facilitator).await;
    let body: Value = serde_json::from_str(&fixture_text("events-create-original", &[]).pipe_body()).unwrap();
    let resp = call(&app, request("POST", "/events", Some(&token), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let ev = json(&resp);
    assert_eq!(resp.headers()["location"], format!("/events/{}", ev["id"].as_str().unwrap()));
    assert_eq!(ev["datetime"], "2025-08-01T10:00:00Z");
    assert_eq!(ev["facilitator_id"], "FAC001");
    assert_eq!(ev["rating"], 4.9);
    assert_eq!(ev["duration_minutes"], 60);
    assert_eq!(
        (ev["capacity"].clone(), ev["seats_left"].clone(), ev["seats_booked"].clone()),
        (Value::Null, Value::Null, json!(0))
    );
    assert_eq!(ev["owner_id"], fac.id.as_str());
    let resp = call(&app, request("GET", &format!("/events/{}/", ev["id"].as_str().unwrap()), None, None)).await;
    assert_eq!((status(&resp), json(&resp)), (200, ev.clone()));
    // facilitator_id defaults to the creator; capacity gives seats_left.
    let ev2 =
        create(&app, &token, json!({"title": "Yin", "type": "Yoga", "datetime": in_days(2), "capacity": 3})).await;
    assert_eq!(ev2["facilitator_id"], fac.id.as_str());
    assert_eq!(ev2["seats_left"], 3);
    let resp = call(&app, request("GET", "/events/01NOSUCHEVENT0000000000000", None, None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (404, "not_found".into()));
}

trait PipeBody {
    fn pipe_body(self) -> String;
}
impl PipeBody for String {
    /// The `body` string of an API Gateway fixture.
    fn pipe_body(self) -> String {
        let v: Value = serde_json::from_str(&self).unwrap();
        v["body"].as_str().unwrap().to_string()
    }
}

async fn authorization_matrix<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, attendee) = user(&app, Role::Attendee).await;
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, other) = user(&app, Role::Facilitator).await;
    let (_, admin) = user(&app, Role::Admin).await;
    let body = json!({"title": "Flow", "type": "Yoga", "datetime": in_days(3)});
    // POST
    for (who, token, want) in [
        ("none", None, 401),
        ("attendee", Some(&attendee), 403),
        ("facilitator", Some(&owner), 201),
        ("admin", Some(&admin), 201),
    ] {
        let resp = call(&app, request("POST", "/events", token.map(|t| t.as_str()), Some(body.clone()))).await;
        assert_eq!(status(&resp), want, "POST by {who}");
    }
    // PUT, PATCH, DELETE
    for method in ["PUT", "PATCH", "DELETE"] {
        let ev = create(&app, &owner, body.clone()).await;
        let path = format!("/events/{}", ev["id"].as_str().unwrap());
        let patch = (method != "DELETE").then(|| json!({"title": "Renamed"}));
        let cases = [
            ("none", None, 401, "unauthorized"),
            ("attendee", Some(&attendee), 403, "forbidden"),
            ("other facilitator", Some(&other), 403, "forbidden"),
        ];
        for (who, token, want, code) in cases {
            let resp = call(&app, request(method, &path, token.map(|t| t.as_str()), patch.clone())).await;
            assert_eq!((status(&resp), error_code(&resp)), (want, code.to_string()), "{method} by {who}");
        }
        let resp = call(&app, request("GET", &path, None, None)).await;
        assert_eq!(json(&resp)["title"], "Flow", "a refused {method} changed nothing");
        for (who, token) in [("owner", &owner), ("admin", &admin)] {
            let resp = call(&app, request(method, &path, Some(token), patch.clone())).await;
            if method == "DELETE" && who == "admin" {
                assert_eq!(status(&resp), 404, "already deleted by the owner");
                continue;
            }
            assert_eq!(status(&resp), 200, "{method} by {who}: {:?}", json(&resp));
            if method == "DELETE" {
                assert_eq!(json(&resp), json!({"msg": "Event deleted successfully"}));
            } else {
                assert_eq!(json(&resp)["title"], "Renamed");
            }
        }
    }
    let ev = create(&app, &owner, body.clone()).await;
    let resp =
        call(&app, request("DELETE", &format!("/events/{}", ev["id"].as_str().unwrap()), Some(&admin), None)).await;
    assert_eq!(status(&resp), 200, "admin deletes someone else's event");
    let resp =
        call(&app, request("PATCH", "/events/01NOSUCHEVENT0000000000000", Some(&admin), Some(json!({"title": "x"}))))
            .await;
    assert_eq!(status(&resp), 404);
    let resp = call(&app, request("DELETE", "/events/01NOSUCHEVENT0000000000000", Some(&owner), None)).await;
    assert_eq!(status(&resp), 404);
}

async fn validation_bounds<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, token) = user(&app, Role::Facilitator).await;
    let ok = json!({"title": "T", "type": "Yoga", "datetime": in_days(1)});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = vec![
        ("empty title", with("title", json!("  ")), "validation_failed", "title"),
        ("long title", with("title", json!("t".repeat(201))), "validation_failed", "title"),
        ("long description", with("description", json!("d".repeat(5001))), "validation_failed", "description"),
        ("empty type", with("type", json!("")), "validation_failed", "type"),
        ("long type", with("type", json!("y".repeat(51))), "validation_failed", "type"),
        ("rating > 5", with("rating", json!(5.1)), "validation_failed", "rating"),
        ("rating < 0", with("rating", json!(-0.1)), "validation_failed", "rating"),
        ("rating string", with("rating", json!("4.5")), "invalid_json", ""),
        ("capacity 0", with("capacity", json!(0)), "validation_failed", "capacity"),
        ("capacity huge", with("capacity", json!(100_001)), "validation_failed", "capacity"),
        ("capacity negative", with("capacity", json!(-1)), "invalid_json", ""),
        ("duration 0", with("duration_minutes", json!(0)), "validation_failed", "duration_minutes"),
        ("duration too long", with("duration_minutes", json!(10081)), "validation_failed", "duration_minutes"),
        ("bad datetime", with("datetime", json!("next tuesday")), "validation_failed", "datetime"),
        ("long facilitator", with("facilitator_id", json!("f".repeat(65))), "validation_failed", "facilitator_id"),
        ("read-only id", with("id", json!("X")), "validation_failed", "id"),
        ("read-only seats_booked", with("seats_booked", json!(3)), "validation_failed", "seats_booked"),
        ("unknown field", with("location", json!("Goa")), "unknown_field", "location"),
        ("missing title", json!({"type": "Yoga", "datetime": in_days(1)}), "validation_failed", "title"),
        ("missing datetime", json!({"title": "T", "type": "Yoga"}), "validation_failed", "datetime"),
        ("null title", with("title", Value::Null), "validation_failed", "title"),
    ];
    for (what, body, code, field) in cases {
        let resp = call(&app, request("POST", "/events", Some(&token), Some(body))).await;
        assert_eq!((status(&resp), error_code(&resp)), (400, code.to_string()), "{what}: {:?}", json(&resp));
        if !field.is_empty() {
            assert_eq!(json(&resp)["error"]["field"], field, "{what}");
        }
    }
    let ev = create(&app, &token, with("rating", json!(4.0))).await;
    let path = format!("/events/{}", ev["id"].as_str().unwrap());
    let resp = call(&app, request("PATCH", &path, Some(&token), Some(json!({})))).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
    let resp = call(&app, request("PATCH", &path, Some(&token), Some(json!({"owner_id": "me"})))).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
    // null clears nullable fields
    let resp = call(&app, request("PATCH", &path, Some(&token), Some(json!({"rating": null, "capacity": 10})))).await;
    assert_eq!(status(&resp), 200);
    assert_eq!((json(&resp)["rating"].clone(), json(&resp)["capacity"].clone()), (Value::Null, json!(10)));
    let resp = call(&app, request("POST", "/events/filter", Some(&token), None)).await;
    assert_eq!(status(&resp), 405);
}

async fn capacity_and_delete_guarded_by_bookings<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev =
        create(&app, &owner, json!({"title": "Small", "type": "Yoga", "datetime": in_days(5), "capacity": 5})).await;
    let id = ev["id"].as_str().unwrap();
    let mut bookings = Vec::new();
    for _ in 0..2 {
        let (_, t) = user(&app, Role::Attendee).await;
        let resp = call(&app, request("POST", "/bookings", Some(&t), Some(json!({"event_id": id})))).await;
        assert_eq!(status(&resp), 201);
        bookings.push((t, json(&resp)["id"].as_str().unwrap().to_string()));
    }
    let path = format!("/events/{id}");
    let resp = call(&app, request("PUT", &path, Some(&owner), Some(json!({"capacity": 1})))).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "capacity_below_booked".into()));
    let resp = call(&app, request("PUT", &path, Some(&owner), Some(json!({"capacity": 2})))).await;
    assert_eq!((status(&resp), json(&resp)["seats_left"].clone()), (200, json!(0)));
    let resp = call(&app, request("DELETE", &path, Some(&owner), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_has_bookings".into()));
    for (t, b) in &bookings {
        let resp = call(&app, request("DELETE", &format!("/bookings/{b}"), Some(t), None)).await;
        assert_eq!(status(&resp), 200);
    }
    let resp = call(&app, request("DELETE", &path, Some(&owner), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    assert_eq!(status(&call(&app, request("GET", &path, None, None)).await), 404);
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

async fn filter_and_ordering<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, t) = user(&app, Role::Facilitator).await;
    let same_time = in_days(4);
    let a = create(&app, &t, json!({"title": "A", "type": "Yoga", "datetime": in_days(6), "rating": 4.5})).await;
    let b = create(&app, &t, json!({"title": "B", "type": "YOGA", "datetime": same_time, "rating": 4.9})).await;
    let c = create(&app, &t, json!({"title": "C", "type": "yoga", "datetime": same_time, "rating": 4.4})).await;
    let d = create(&app, &t, json!({"title": "D", "type": "Yoga", "datetime": in_days(1)})).await;
    let e = create(&app, &t, json!({"title": "E", "type": "Meditation", "datetime": in_days(2), "rating": 5.0})).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let mut tie = vec![id(&b), id(&c)];
    tie.sort();
    let get = |uri: &str| request("GET", uri, None, None);
    let resp = call(&app, get("/events")).await;
    let mut want = vec![id(&d), id(&e)];
    want.extend(tie.clone());
    want.push(id(&a));
    assert_eq!(ids(&json(&resp)), want, "ascending by datetime, ties by id");
    let resp = call(&app, get("/events/filter?type=yOgA")).await;
    let mut want = vec![id(&d)];
    want.extend(tie.clone());
    want.push(id(&a));
    assert_eq!(ids(&json(&resp)), want, "type is case-insensitive");
    let resp = call(&app, get("/events/filter/?type=yoga&rating=4.5")).await;
    let want: Vec<String> = tie.iter().filter(|x| **x == id(&b)).cloned().chain([id(&a)]).collect();
    assert_eq!(ids(&json(&resp)), want, "min rating inclusive, unrated excluded");
    let resp = call(&app, get("/events/filter?rating=4.9")).await;
    assert_eq!(ids(&json(&resp)), vec![id(&e), id(&b)]);
    let resp = call(&app, get("/events/filter?rating=0")).await;
    assert_eq!(json(&resp).as_array().unwrap().len(), 4, "unrated events never match a rating filter");
    let resp = call(&app, get("/events/filter")).await;
    assert_eq!(json(&resp).as_array().unwrap().len(), 5);
    for bad in ["abc", "-1", "5.1", "NaN", "inf"] {
        let resp = call(&app, get(&format!("/events/filter?rating={bad}"))).await;
        assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()), "rating={bad}");
    }
    let resp = call(&app, get(&format!("/events?from={}&to={}", e["datetime"].as_str().unwrap(), same_time))).await;
    let mut want = vec![id(&e)];
    want.extend(tie);
    assert_eq!(ids(&json(&resp)), want, "from/to inclusive");
    let resp = call(&app, get("/events?from=soon")).await;
    assert_eq!(status(&resp), 400);
}

fn next_link(resp: &lambda_http::Response<lambda_http::Body>) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().unwrap().to_string();
    assert!(link.ends_with(">; rel=\"next\""), "{link}");
    Some(link.trim_start_matches('<').split('>').next().unwrap().to_string())
}

async fn paging_visits_each_once_in_order<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, t) = user(&app, Role::Facilitator).await;
    let base = shared::time::now() + chrono::Duration::days(1);
    let mut created = Vec::new();
    for i in 0..120 {
        let when = shared::time::format(&(base + chrono::Duration::minutes(i / 2)));
        let rating = if i % 3 == 0 { json!(4.8) } else { Value::Null };
        let ev = create(&app, &t, json!({"title": format!("E{i}"), "type": if i % 2 == 0 { "Yoga" } else { "Breathwork" }, "datetime": when, "rating": rating})).await;
        created.push((ev["datetime"].as_str().unwrap().to_string(), ev["id"].as_str().unwrap().to_string(), i));
    }
    created.sort();
    let all: Vec<String> = created.iter().map(|c| c.1.clone()).collect();
    let mut uri = Some("/events?limit=50".to_string());
    let (mut seen, mut pages) = (Vec::new(), Vec::new());
    while let Some(u) = uri {
        let resp = call(&app, request("GET", &u, None, None)).await;
        assert_eq!(status(&resp), 200, "{u}");
        let page = ids(&json(&resp));
        pages.push(page.len());
        seen.extend(page);
        uri = next_link(&resp);
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(pages, vec![50, 50, 20]);
    assert_eq!(seen, all, "each event exactly once, in order");
    // Filtered paging (rating is a filter, so pages may be short) still visits each match once.
    let want: Vec<String> = created.iter().filter(|c| c.2 % 3 == 0 && c.2 % 2 == 0).map(|c| c.1.clone()).collect();
    let mut uri = Some("/events/filter?type=yoga&rating=4.8&limit=7".to_string());
    let mut seen = Vec::new();
    let mut n = 0;
    while let Some(u) = uri {
        let resp = call(&app, request("GET", &u, None, None)).await;
        assert_eq!(status(&resp), 200, "{u}");
        seen.extend(ids(&json(&resp)));
        uri = next_link(&resp);
        n += 1;
        assert!(n < 30);
    }
    assert_eq!(seen, want);
    // Bad limits and cursors.
    for q in ["limit=0", "limit=101", "limit=abc", "cursor=garbage", "cursor="] {
        let resp = call(&app, request("GET", &format!("/events?{q}"), None, None)).await;
        if q == "cursor=" {
            assert_eq!(status(&resp), 200);
            continue;
        }
        assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()), "{q}");
    }
    let first = call(&app, request("GET", "/events?limit=10", None, None)).await;
    let link = next_link(&first).unwrap();
    let cursor = link.split("cursor=").nth(1).unwrap().to_string();
    let mut tampered = cursor.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let resp = call(
        &app,
        request("GET", &format!("/events?limit=10&cursor={}", String::from_utf8(tampered).unwrap()), None, None),
    )
    .await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()), "tampered cursor");
    let resp = call(&app, request("GET", &format!("/events/filter?type=yoga&cursor={cursor}"), None, None)).await;
    assert_eq!(status(&resp), 400, "a cursor only works for the query that made it");
}

store_tests!(
    create_get_and_original_readme_body,
    authorization_matrix,
    validation_bounds,
    capacity_and_delete_guarded_by_bookings,
    filter_and_ordering,
    paging_visits_each_once_in_order,
);

/// DynamoDB calls per route, counted on the wire by an SDK interceptor: at most 2, never a Scan.
/// Writes read the caller's current role first (one GetItem), then write once.
#[tokio::test]
async fn dynamodb_calls_per_route() {
    let (store, log) = dynamo_counted().await;
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, other) = user(&app, Role::Facilitator).await;
    let mut report = CallReport::new(&log);
    let ev = create(
        &app,
        &owner,
        json!({"title": "Count", "type": "Yoga", "datetime": in_days(3), "rating": 4.0, "capacity": 9}),
    )
    .await;
    report.at_most("POST /events", 2);
    let path = format!("/events/{}", ev["id"].as_str().unwrap());
    call(&app, request("GET", "/events", None, None)).await;
    report.at_most("GET /events", 1);
    call(&app, request("GET", "/events/filter?type=yoga&rating=3", None, None)).await;
    report.at_most("GET /events/filter", 1);
    call(&app, request("GET", &path, None, None)).await;
    report.at_most("GET /events/{id}", 1);
    call(&app, request("PATCH", &path, Some(&owner), Some(json!({"capacity": 12})))).await;
    report.at_most("PATCH /events/{id}", 2);
    let resp = call(&app, request("PATCH", &path, Some(&other), Some(json!({"title": "x"})))).await;
    assert_eq!(status(&resp), 403);
    report.at_most("PATCH /events/{id} (not owner)", 2);
    let resp = call(&app, request("DELETE", &path, Some(&other), None)).await;
    assert_eq!(status(&resp), 403);
    report.at_most("DELETE /events/{id} (not owner)", 2);
    call(&app, request("DELETE", &path, Some(&owner), None)).await;
    report.at_most("DELETE /events/{id}", 2);
    report.print();
}
