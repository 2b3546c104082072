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

/// `n` new attendees, each booking `event_id`: (token, booking id).
async fn booked<S: Store>(app: &AppOf<S>, event_id: &str, n: usize) -> Vec<(String, String)> {
    let tokens = users(app, n, Role::Attendee).await;
    let booked = futures::future::join_all(
        tokens.iter().map(|t| call(app, request("POST", "/bookings/", Some(t), Some(json!({"event_id": event_id}))))),
    )
    .await;
    tokens
        .into_iter()
        .zip(booked)
        .map(|(t, resp)| {
            assert_eq!(status(&resp), 201, "{:?}", json(&resp));
            (t, json(&resp)["id"].as_str().unwrap().to_string())
        })
        .collect()
}

async fn to_cancel<S: Store>(app: &AppOf<S>, event_id: &str) -> Value {
    json(&call(app, request("GET", &format!("/events/{event_id}"), None, None)).await)["bookings_to_cancel"].clone()
}

fn nothing(_: &shared::model::Booking) {}

/// The whole lifecycle through the worker every driver runs: batches of 5 count
/// `bookings_to_cancel` down to 0, each booking is cancelled once with `event_cancelled`, one that
/// the attendee cancelled before keeps its reason, and the job ends; the event can then be deleted.
async fn cancel_lifecycle<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, json!({"title": "Big", "type": "Yoga", "datetime": in_days(3), "capacity": 20})).await;
    let bookings = booked(&app, &id, 12).await;
    let (t0, b0) = &bookings[0];
    let resp = call(&app, request("DELETE", &format!("/bookings/{b0}"), Some(t0), None)).await;
    assert_eq!(status(&resp), 200);
    let resp = call(&app, request("DELETE", &format!("/events/{id}"), Some(&owner), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_has_bookings".into()));
    let resp =
        call(&app, request("POST", &format!("/events/{id}/cancel"), Some(&owner), Some(json!({"reason": "ill"}))))
            .await;
    assert_eq!((status(&resp), json(&resp)["bookings_to_cancel"].clone()), (200, json!(11)));
    let resp = call(&app, request("DELETE", &format!("/events/{id}"), Some(&owner), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "event_has_bookings".into()), "bookings still hold seats");
    let job = app.store.get_job(&id).await.unwrap().expect("the cancel wrote its job");
    assert_eq!((job.kind, job.cursor.clone(), job.lease_owner.clone()), (shared::model::JobKind::Cancel, None, None));
    // 12 bookings in the index, 11 holding seats: batches of 5, 5 and 2.
    let (mut cancelled, mut seen) = (0, Vec::new());
    for batch in 0..3 {
        let report = shared::lifecycle::run_batch(&app.store, &id, 5, shared::time::now(), &nothing).await.unwrap();
        // The pass ends on the last page: the event's count (strongly consistent) is 0, job done.
        assert_eq!((report.not_claimed, report.done), (false, batch == 2), "{report:?}");
        cancelled += report.cancelled;
        seen.push(report.seen);
        assert_eq!(to_cancel(&app, &id).await, json!(11 - cancelled), "counts down with each batch");
    }
    assert_eq!((seen, cancelled), (vec![5, 5, 2], 11));
    let report = shared::lifecycle::run_batch(&app.store, &id, 5, shared::time::now(), &nothing).await.unwrap();
    assert!(report.not_claimed, "the job is gone: {report:?}");
    assert!(app.store.get_job(&id).await.unwrap().is_none());
    for (i, (t, b)) in bookings.iter().enumerate() {
        let v = json(&call(&app, request("GET", &format!("/bookings/{b}"), Some(t), None)).await);
        let reason = if i == 0 { "attendee" } else { "event_cancelled" };
        assert_eq!((v["status"].as_str(), v["cancel_reason"].as_str()), (Some("cancelled"), Some(reason)), "{v}");
        let stored = app.store.get_booking(b).await.unwrap().unwrap();
        assert_eq!(stored.sequence, 1, "cancelled exactly once");
        let resp = call(&app, request("DELETE", &format!("/bookings/{b}"), Some(t), None)).await;
        assert_eq!((status(&resp), error_code(&resp)), (409, "already_cancelled".into()));
    }
    let resp = call(&app, request("DELETE", &format!("/events/{id}"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
}

/// A batch, then a worker that claimed the job and died (its lease left behind): nothing runs
/// the job until the lease ends, then the sweeper's `run_sweeps` resumes it at the saved cursor
/// and finishes it; no booking is cancelled twice.
async fn interrupted_cancel_resumed_by_the_sweep<S: Store + Clone>(store: S) {
    let app = app(store.clone());
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, json!({"title": "Crash", "type": "Yoga", "datetime": in_days(3)})).await;
    booked(&app, &id, 9).await;
    let resp = call(&app, request("POST", &format!("/events/{id}/cancel"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200);
    let report = shared::lifecycle::run_batch(&app.store, &id, 4, shared::time::now(), &nothing).await.unwrap();
    assert_eq!(report.cancelled, 4);
    // The crash: a claim whose batch never ends; its lease runs for 2 s.
    let now = shared::time::now();
    let held = app.store.claim_job(&id, "crashed-worker", now, now + chrono::Duration::seconds(2)).await.unwrap();
    assert!(held.is_some());
    let crm = crm_notifier::CrmConfig::from_lookup(|_| None).unwrap();
    let notifier = crm_notifier::Notifier::from_config(store, &crm).unwrap();
    let sweep = crm_notifier::SweepConfig::default();
    let report = crm_notifier::run_sweeps(&notifier, &sweep, None, None, &|_| {}).await.unwrap();
    assert_eq!((report.jobs.batches, report.jobs.cancelled), (0, 0), "the lease is honoured: {:?}", report.jobs);
    assert_eq!(to_cancel(&app, &id).await, 5);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let report = crm_notifier::run_sweeps(&notifier, &sweep, None, None, &|_| {}).await.unwrap();
    assert_eq!((report.jobs.cancelled, report.jobs.finished), (5, 1), "{:?}", report.jobs);
    assert_eq!(to_cancel(&app, &id).await, 0);
    assert!(app.store.get_job(&id).await.unwrap().is_none());
}

/// `make run`'s driver: the local server's job hook runs the fan-out in the background right
/// after the cancel answers, batch after batch, until `bookings_to_cancel` is 0 and the job ends.
async fn local_server_runs_the_fan_out_in_the_background<S: Store + Clone>(store: S) {
    let app = shared::App::new(store.clone(), &config()).unwrap().with_job_hook(local_server::jobs::hook(store, None));
    let app = Arc::new(app);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let id = event(&app, &owner, json!({"title": "Local", "type": "Yoga", "datetime": in_days(3)})).await;
    booked(&app, &id, 60).await;
    let resp = call(&app, request("POST", &format!("/events/{id}/cancel"), Some(&owner), None)).await;
    assert_eq!((status(&resp), json(&resp)["bookings_to_cancel"].clone()), (200, json!(60)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while to_cancel(&app, &id).await != 0 {
        assert!(std::time::Instant::now() < deadline, "the background fan-out did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    while app.store.get_job(&id).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the job was not ended");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let resp = call(&app, request("DELETE", &format!("/events/{id}"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200);
}

store_tests!(
    cancel_rules,
    cancel_lifecycle,
    interrupted_cancel_resumed_by_the_sweep,
    local_server_runs_the_fan_out_in_the_background,
);
