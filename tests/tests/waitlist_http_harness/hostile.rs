//! Hostile input on the waitlist routes (a test of its own, kept apart from the route tests).

use super::*;
use serde_json::json;
use shared::model::Role;
use shared::Store;
use tests::*;

/// GIVEN hostile ids, queries and bodies WHEN they reach the waitlist routes with every method,
/// with and without a token THEN no answer is a 5xx and every error is the contract's JSON.
pub async fn hostile_requests_never_get_a_5xx<S: Store + Clone>(store: S) {
    let app = app(store);
    let (ev, owner, _, _) = full_event(&app).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let long_id = "E".repeat(3000);
    let ids = [ev.as_str(), "01NOSUCHTHING0000000000000", long_id.as_str(), "%00", "..%2F..%2Fetc", "%C3%BC", "a%20b"];
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let bodies = [
        None,
        Some("null".to_string()),
        Some("[]".into()),
        Some("{}".into()),
        Some("{\"a\":".into()),
        Some(deep),
        Some(json!({"event_id": ev, "position": -1}).to_string()),
        Some("x".repeat(70_000)),
    ];
    let mut sent = 0;
    for id in ids {
        for query in ["", "?limit=0&cursor=%ZZ", "?limit=99999999999999999999", "?cursor=1.01NOSUCH"] {
            let path = format!("/events/{id}/waitlist{query}");
            for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
                for body in &bodies {
                    for token in [None, Some(a.as_str()), Some(owner.as_str())] {
                        let req = match body {
                            Some(b) => raw_request(method, &path, token, b),
                            None => request(method, &path, token, None),
                        };
                        let resp = call(&app, req).await;
                        sent += 1;
                        assert_handled(&format!("{method} {path}"), &resp);
                    }
                }
            }
        }
    }
    assert!(sent > 3000, "{sent}");
    // Among them were legitimate requests: each user's first bodiless POST joined, their DELETE
    // left. The count followed them exactly.
    let resp = line(&app, &owner, &ev).await;
    assert_eq!(json(&resp), json!([]));
    assert_eq!(get_event(&app, &ev).await["waitlist_count"], 0);
}
