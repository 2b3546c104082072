//! `POST /events/{id}/cancel` on both stores: the event's rules (lists, updates, bookings,
//! delete), and the fan-out that cancels its bookings in bounded batches, exactly once each.

use serde_json::{json, Value};
use shared::model::Role;
use shared::Store;
use std::sync::Arc;
use tests::*;

type AppOf<S> = Arc<shared::App<S>>;

async fn event<S: Store>(app: &AppOf<S>, owner: &str, body: Value) -> String {
    let resp = call(app, request("POST", "/events/", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

fn listed(v: &Value, id: &str) -> bool {
    v.as_array().unwrap().iter().any(|e| e["id"] == id)
}

async fn cancel_rules<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, other) = user(&app, Role::Facilitator).await;
    let (_, attendee) = user(&app, Role::Attendee).await;
    let (_, admin) = user(&app, Role::Admin).await;
    let id = event(&app, &owner, json!({"title": "Flow", "type": "Yoga", "datetime": in_days(3), "rating": 4.5})).await;
    let path = format!("/events/{id}/cancel");
    let lists = ["/events/", "/events/filter?type=yoga", "/events/filter?rating=4"];
    for list in lists {
        assert!(listed(&json(&call(&app, request("GET", list, None, None)).await), &id), "{list} before");
    }
    // Who may, and what the body may hold; nothing changes on a refusal.
    for (what, token, body, want, code) in [
        ("no token", None, None, 401, "unauthorized"),
        ("attendee", Some(&attendee), None, 403, "forbidden"),
        ("other facilitator", Some(&other), None, 403, "forbidden"),
        ("unknown field", Some(&owner), Some(json!({"why": "x"})), 400, "unknown_field"),
        ("long reason", Some(&owner), Some(json!({"reason": "r".repeat(501)})), 400, "validation_failed"),
        ("reason a number", Some(&owner), Some(json!({"reason": 5})), 400, "invalid_json"),
        ("not an object", Some(&owner), Some(json!(["x"])), 400, "invalid_json"),
    ] {
        let resp = call(&app, request("POST", &path, token.map(|t| t.as_str()), body)).await;
        assert_eq!((status(&resp), error_code(&resp)), (want, code.to_string()), "{what}: {:?}", json(&resp));
    }
    let resp = call(&app, request("GET", &format!("/events/{id}"), None, None)).await;
    assert_eq!(json(&resp)["status"], "scheduled");
    let resp = call(&app, request("GET", &path, None, None)).await;
    assert_eq!(status(&resp), 405);
    let resp = call(&app, request("POST", "/events/01NOSUCHEVENT0000000000000/cancel", Some(&admin), None)).await;
    assert_eq!(status(&resp), 404);
    // The owner cancels with a reason of exactly 500 characters.
    let reason = "é".repeat(500);
    let resp = call(&app, request("POST", &path, Some(&owner), Some(json!({"reason": reason})))).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let ev = json(&resp);
    assert_eq!((ev["status"].clone(), ev["cancel_reason"].clone()), (json!("cancelled"), json!(reason)));
    assert_eq!(ev["bookings_to_cancel"], 0);
    assert!(shared::time::parse(ev["cancelled_at"].as_str().unwrap()).is_some());
    let shown = json(&call(&app, request("GET", &format!("/events/{id}"), None, None)).await);
    assert_eq!(shown, ev, "GET shows the cancelled event as the cancel answered");
    for list in lists {
        assert!(!listed(&json(&call(&app, request("GET", list, None, None)).await), &id), "{list} after");
    }
    // Again, by the admin too → 409; update → 409; booking → 409.
    for token in [&owner, &admin] {
        let resp = call(&app, request("POST", &path, Some(token), Some(json!({})))).await;
        assert_eq!((status(&resp), error_code(&resp)), (409, "event_cancelled".into()));
    }
    for patch in [json!({"title": "Back"}), json!({"datetime": in_days(4)}), json!({"capacity": 3})] {
        let resp = call(&app, request("PATCH", &format!("/events/{id}"), Some(&owner), Some(patch.clone()))).await;
        assert_eq!((status(&resp), error_code(&resp)), (409, "event_cancelled".into()), "{patch}");
    }
    let resp = call(&app, request("PATCH", &format!("/events/{id}"), Some(&other), Some(json!({"title": "x"})))).await;
    assert_eq!(status(&resp), 403, "ownership is checked before the status");
    let resp = call(&app, request("POST", "/bookings", Some(&attendee), Some(json!({"event_id": id})))).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_cancelled".into()));
    assert!(!listed(&json(&call(&app, request("GET", "/events/", None, None)).await), &id), "an update re-listed it");
    // No bookings hold a seat: it can be deleted.
    let resp = call(&app, request("DELETE", &format!("/events/{id}"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    // An event that started cannot be cancelled; without a body is the same as `{}`.
    let past = event(&app, &owner, json!({"title": "Gone", "type": "Yoga", "datetime": in_days(-1)})).await;
    let resp = call(&app, request("POST", &format!("/events/{past}/cancel"), Some(&admin), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_started".into()));
    let soon = event(&app, &owner, json!({"title": "Soon", "type": "Yoga", "datetime": in_days(1)})).await;
    let resp = call(&app, request("POST", &format!("/events/{soon}/cancel/"), Some(&admin), None)).await;
    assert_eq!((status(&resp), json(&resp)["cancel_reason"].clone()), (200, Value::Null), "admin, no body");
}

store_tests!(cancel_rules);
