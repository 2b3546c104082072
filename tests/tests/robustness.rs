//! Hostile input never produces a 5xx or a panic: every route × method × malformed body × odd id
//! × odd query, on both stores, answers a 2xx/4xx with the contract's JSON.

use lambda_http::Body;
use serde_json::json;
use shared::model::Role;
use shared::Store;
use tests::*;

fn bodies() -> Vec<Body> {
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let wrong_types = json!({
        "name": 1, "email": [], "password": {}, "role": true, "title": 5, "description": [1],
        "type": {"a": 1}, "datetime": 20250801, "duration_minutes": "sixty", "facilitator_id": 7,
        "rating": "high", "capacity": 1.5, "event_id": {"$ne": null}, "refresh_token": ["a.b.0.c"],
        "current_password": 1, "new_password": null
    });
    vec![
        Body::Empty,
        Body::Text("null".into()),
        Body::Text("[]".into()),
        Body::Text("{}".into()),
        Body::Text("\"text\"".into()),
        Body::Text("1e999".into()),
        Body::Text("{\"a\":".into()),
        Body::Text(deep),
        Body::Text(wrong_types.to_string()),
        Body::Text(json!({"title": "t", "type": "x", "datetime": "9999-12-31T23:59:59Z", "capacity": 4294967296u64, "rating": 1e308}).to_string()),
        Body::Text(json!({"event_id": "x".repeat(5000), "email": format!("{}@x.io", "a".repeat(3000)), "password": "p".repeat(4000), "name": "\u{0}\u{202e}"}).to_string()),
        Body::Text(json!({"refresh_token": format!("{}.{}.4294967296.{}", "u".repeat(64), "\u{0}", "=".repeat(43))}).to_string()),
        Body::Text(json!({"refresh_token": "x".repeat(60_000), "current_password": "p".repeat(60), "new_password": "\u{202e}".repeat(9)}).to_string()),
        Body::Binary(vec![0xff, 0xfe, 0x00, 0x7b]),
    ]
}

async fn hostile_requests_never_get_a_5xx<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, admin) = user(&app, Role::Admin).await;
    let (_, fac) = user(&app, Role::Facilitator).await;
    let ev = call(
        &app,
        request(
            "POST",
            "/events",
            Some(&fac),
            Some(json!({"title": "T", "type": "Yoga", "datetime": "2031-01-01T00:00:00Z", "capacity": 3})),
        ),
    )
    .await;
    let event_id = json(&ev)["id"].as_str().unwrap().to_string();
    let long_id = "E".repeat(3000);
    let ids =
        [event_id.as_str(), "01NOSUCHTHING0000000000000", long_id.as_str(), "%00", "..%2F..%2Fetc", "%C3%BC", "a%20b"];
    let mut paths = vec![
        "/auth/register".to_string(),
        "/auth/login".into(),
        "/auth/me".into(),
        "/auth/refresh".into(),
        "/auth/logout/".into(),
        "/auth/password".into(),
        "/health".into(),
        "/openapi.json".into(),
        "/events".into(),
        "/events/filter?type=%00&rating=1e309".into(),
        "/events?limit=-1&cursor=%ZZ&from=0&to=x".into(),
        "/events?limit=99999999999999999999".into(),
        "/bookings".into(),
        "/bookings?status=%FF".into(),
        "//".into(),
        "/unknown/route".into(),
        format!("/events/filter?type={}", "t".repeat(500)),
    ];
    for id in ids {
        paths.push(format!("/events/{id}"));
        paths.push(format!("/events/{id}/bookings?limit=0&cursor={id}"));
        paths.push(format!("/bookings/{id}"));
        paths.push(format!("/bookings/{id}/calendar.ics"));
    }
    let mut sent = 0;
    for path in &paths {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            for body in bodies() {
                for token in [None, Some(admin.as_str())] {
                    let mut b = http::Request::builder()
                        .method(method)
                        .uri(path.as_str())
                        .header("content-type", "application/json");
                    if let Some(t) = token {
                        b = b.header("authorization", format!("Bearer {t}"));
                    }
                    if method == "POST" && path.starts_with("/bookings") {
                        b = b.header("idempotency-key", "k".repeat(300));
                    }
                    let resp = call(&app, b.body(clone_body(&body)).unwrap()).await;
                    sent += 1;
                    assert_handled(&format!("{method} {path}"), &resp);
                    // Every answer, a success too, is JSON.
                    json(&resp);
                }
            }
        }
    }
    assert!(sent > 2000, "{sent}");
    // The admin's bodiless DELETE among them was a legitimate request and did delete the event.
    let resp = call(&app, request("GET", &format!("/events/{event_id}"), None, None)).await;
    assert_eq!(status(&resp), 404);
}

fn clone_body(b: &Body) -> Body {
    match b {
        Body::Empty => Body::Empty,
        Body::Text(t) => Body::Text(t.clone()),
        Body::Binary(v) => Body::Binary(v.clone()),
        _ => Body::Empty,
    }
}

store_tests!(hostile_requests_never_get_a_5xx);
