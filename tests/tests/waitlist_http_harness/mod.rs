//! What the waitlist route tests share: events full or not, and the calls of the routes.
#![allow(dead_code)]

pub mod hostile;

use lambda_http::{Body, Response};
use serde_json::{json, Value};
use shared::model::{Role, User};
use shared::Store;
use std::sync::Arc;
use tests::*;

pub type AppOf<S> = Arc<shared::App<S>>;

pub async fn event<S: Store>(app: &AppOf<S>, owner: &str, capacity: Option<u32>, days: i64) -> String {
    let body = json!({"title": "Sound Bath", "type": "Meditation", "datetime": in_days(days), "capacity": capacity});
    let resp = call(app, request("POST", "/events", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    assert_eq!(json(&resp)["waitlist_count"], 0, "a new event has nobody waiting");
    json(&resp)["id"].as_str().unwrap().to_string()
}

pub async fn book<S: Store>(app: &AppOf<S>, token: &str, event_id: &str) -> Response<Body> {
    call(app, request("POST", "/bookings/", Some(token), Some(json!({"event_id": event_id})))).await
}

pub async fn join<S: Store>(app: &AppOf<S>, token: &str, event_id: &str) -> Response<Body> {
    call(app, request("POST", &format!("/events/{event_id}/waitlist"), Some(token), None)).await
}

pub async fn leave<S: Store>(app: &AppOf<S>, token: &str, event_id: &str) -> Response<Body> {
    call(app, request("DELETE", &format!("/events/{event_id}/waitlist"), Some(token), None)).await
}

pub async fn line<S: Store>(app: &AppOf<S>, token: &str, event_id: &str) -> Response<Body> {
    call(app, request("GET", &format!("/events/{event_id}/waitlist"), Some(token), None)).await
}

pub async fn get_event<S: Store>(app: &AppOf<S>, event_id: &str) -> Value {
    json(&call(app, request("GET", &format!("/events/{event_id}"), None, None)).await)
}

/// `(status, code)` of an answer, `code` empty for a success.
pub fn outcome(resp: &Response<Body>) -> (u16, String) {
    (status(resp), error_code(resp))
}

/// Two attendees, the first with the smaller id: joining in this order, the first is ahead of the
/// second even within one second (the line is ordered by `joined_at`, ties by user id).
pub async fn two_in_line_order<S: Store>(app: &AppOf<S>) -> ((User, String), (User, String)) {
    let (x, y) = (user(app, Role::Attendee).await, user(app, Role::Attendee).await);
    if x.0.id < y.0.id {
        (x, y)
    } else {
        (y, x)
    }
}

/// A full event of one seat (taken by a fresh attendee), its owner's token and the seat's booking.
pub async fn full_event<S: Store>(app: &AppOf<S>) -> (String, String, String, String) {
    let (_, owner) = user(app, Role::Facilitator).await;
    let ev = event(app, &owner, Some(1), 3).await;
    let (_, holder) = user(app, Role::Attendee).await;
    let resp = book(app, &holder, &ev).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let booking = json(&resp)["id"].as_str().unwrap().to_string();
    (ev, owner, holder, booking)
}
