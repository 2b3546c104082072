//! What a real deployment exposes: attackers, careless clients and DynamoDB's own rules. Each
//! case runs on both stores; each failed before the change that made it pass.

use futures::future::join_all;
use serde_json::{json, Value};
use shared::model::Role;
use shared::password::PasswordHasher;
use shared::{seed, Store};
use std::sync::Arc;
use tests::*;

type AppOf<S> = Arc<shared::App<S>>;

async fn event<S: Store>(app: &AppOf<S>, owner: &str, capacity: Option<u32>) -> String {
    let body = json!({"title": "Session", "type": "Yoga", "datetime": in_days(3), "capacity": capacity});
    let resp = call(app, request("POST", "/events", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

async fn register<S: Store>(app: &AppOf<S>, email: &str, password: &str) -> Value {
    let body = json!({"name": "Early Bird", "email": email, "password": password});
    let resp = call(app, request("POST", "/auth/register", None, Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)
}

/// Item 1: whoever registers the bootstrap email first must not become admin at the next start.
async fn bootstrap_admin_needs_the_accounts_own_password<S: Store + Clone>(store: S) {
    let app = app(store.clone());
    let hasher = PasswordHasher::new();
    let email = format!("ops.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let squatter = register(&app, &email, "squatters-password").await;
    let err = seed::bootstrap_admin(&store, &hasher, &email, "the-operators-password").await.unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let user = store.get_user(squatter["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(user.role, Role::Attendee, "promoted without the password");
    // The account's own password proves the operator owns it: promoted, same account.
    let id = seed::bootstrap_admin(&store, &hasher, &email.to_uppercase(), "squatters-password").await.unwrap();
    assert_eq!(id, squatter["id"].as_str().unwrap());
    assert_eq!(store.get_user(&id).await.unwrap().unwrap().role, Role::Admin);
    // No account yet: created as admin with that password (and running it again is a no-op).
    let fresh = format!("root.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let id = seed::bootstrap_admin(&store, &hasher, &fresh, "root-password").await.unwrap();
    assert_eq!(seed::bootstrap_admin(&store, &hasher, &fresh, "root-password").await.unwrap(), id);
    let admin = store.get_user(&id).await.unwrap().unwrap();
    assert!(hasher.verify("root-password".into(), admin.password_hash).await.unwrap());
    assert_eq!(admin.role, Role::Admin);
}

/// Item 2: 40 parallel wrong guesses for one email. Counting after the verify let all 40 through
/// (40 × 401); counted first, at most 10 reach the password check.
async fn parallel_guesses_cannot_outrun_the_throttle<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = format!("victim.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    register(&app, &email, "correct horse battery").await;
    let attempts = (0..40).map(|i| {
        let body = json!({"email": email, "password": format!("guess-{i:04}")});
        let app = app.clone();
        async move { call(&app, request("POST", "/auth/login", None, Some(body))).await }
    });
    let resps = join_all(attempts).await;
    let checked = resps.iter().filter(|r| status(r) == 401).count();
    let refused = resps.iter().filter(|r| status(r) == 429).count();
    println!("40 parallel wrong logins: {checked} × 401 (password checked), {refused} × 429");
    assert_eq!(checked + refused, 40, "{:?}", resps.iter().map(status).collect::<Vec<_>>());
    assert!((1..=10).contains(&checked), "{checked} password checks for one email in one burst");
    for r in resps.iter().filter(|r| status(r) == 429) {
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
    }
    // Even the right password waits for the window now.
    let body = json!({"email": email, "password": "correct horse battery"});
    assert_eq!(status(&call(&app, request("POST", "/auth/login", None, Some(body))).await), 429);
}

/// Item 2: a successful login clears the count, so a user who mistypes now and then is never
/// locked out by their own good logins.
async fn a_successful_login_clears_the_count<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = format!("typo.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    register(&app, &email, "correct horse battery").await;
    let login = |pw: &str| request("POST", "/auth/login", None, Some(json!({"email": email, "password": pw})));
    for _ in 0..3 {
        for _ in 0..9 {
            assert_eq!(status(&call(&app, login("wrong-password")).await), 401);
        }
        assert_eq!(status(&call(&app, login("correct horse battery")).await), 200);
    }
}

/// Item 3: a role change applies on the next request, not when the token expires.
async fn roles_come_from_the_store_not_the_token<S: Store + Clone>(store: S) {
    let app = app(store);
    let (fac, fac_token) = user(&app, Role::Facilitator).await;
    let (admin, admin_token) = user(&app, Role::Admin).await;
    let (att, att_token) = user(&app, Role::Attendee).await;
    let ev = event(&app, &fac_token, Some(5)).await;
    let booking =
        json(&call(&app, request("POST", "/bookings", Some(&att_token), Some(json!({"event_id": ev})))).await);
    let booking_path = format!("/bookings/{}", booking["id"].as_str().unwrap());
    let attendees = format!("/events/{ev}/bookings");
    assert_eq!(status(&call(&app, request("GET", &booking_path, Some(&admin_token), None)).await), 200);
    assert_eq!(status(&call(&app, request("GET", &attendees, Some(&admin_token), None)).await), 200);

    // Demoted admin, same token: no more reads of others' bookings, attendee lists or event edits.
    app.store.set_user_role(&admin.id, Role::Attendee).await.unwrap();
    let cases = [
        ("GET", booking_path.clone(), None, 404),
        ("DELETE", booking_path.clone(), None, 404),
        ("GET", attendees.clone(), None, 403),
        ("PATCH", format!("/events/{ev}"), Some(json!({"title": "Hijacked"})), 403),
        ("DELETE", format!("/events/{ev}"), None, 403),
        ("POST", "/events".to_string(), Some(json!({"title": "x", "type": "Yoga", "datetime": in_days(2)})), 403),
    ];
    for (method, path, body, want) in cases {
        let resp = call(&app, request(method, &path, Some(&admin_token), body)).await;
        assert_eq!(status(&resp), want, "demoted admin: {method} {path}: {:?}", json(&resp));
    }
    // Demoted facilitator: can no longer manage even their own event.
    app.store.set_user_role(&fac.id, Role::Attendee).await.unwrap();
    let resp =
        call(&app, request("PATCH", &format!("/events/{ev}"), Some(&fac_token), Some(json!({"capacity": 9})))).await;
    assert_eq!((status(&resp), error_code(&resp)), (403, "forbidden".into()));
    assert_eq!(status(&call(&app, request("GET", &attendees, Some(&fac_token), None)).await), 403);
    // Promoted attendee: an attendee token creates events at once.
    app.store.set_user_role(&att.id, Role::Facilitator).await.unwrap();
    event(&app, &att_token, None).await;
    // Read-only routes stay token-only: the booker sees their own booking without a role.
    assert_eq!(status(&call(&app, request("GET", &booking_path, Some(&att_token), None)).await), 200);
}

/// Items 6–8: values DynamoDB refuses (or that break RFC 3339) are a 400, never a 500.
async fn values_dynamodb_or_rfc3339_cannot_carry<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, fac) = user(&app, Role::Facilitator).await;
    let resp =
        call(&app, request("GET", "/events?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", None, None)).await;
    assert_eq!((status(&resp), json(&resp)["error"]["field"].clone()), (400, json!("from")));
    let resp =
        call(&app, request("GET", "/events?from=2030-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", None, None)).await;
    assert_eq!(status(&resp), 200, "an empty-width range is valid");
    for datetime in ["+10000-01-01T00:00:00", "-0001-01-01T00:00:00", "+2030-01-01T00:00:00Z", "20300-01-01T00:00:00Z"]
    {
        let body = json!({"title": "Far", "type": "Yoga", "datetime": datetime});
        let resp = call(&app, request("POST", "/events", Some(&fac), Some(body))).await;
        assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()), "{datetime}");
        let resp =
            call(&app, request("GET", &format!("/events?from={}", datetime.replace('+', "%2B")), None, None)).await;
        assert_eq!(status(&resp), 400, "from={datetime}");
    }
    for (raw, want) in [(json!(1e-200), json!(0.0)), (json!(4.567), json!(4.57)), (json!(5), json!(5.0))] {
        let body = json!({"title": "Rated", "type": "Yoga", "datetime": in_days(4), "rating": raw});
        let resp = call(&app, request("POST", "/events", Some(&fac), Some(body))).await;
        assert_eq!(status(&resp), 201, "{raw}: {:?}", json(&resp));
        assert_eq!(json(&resp)["rating"], want, "{raw}");
        let id = json(&resp)["id"].as_str().unwrap().to_string();
        let resp =
            call(&app, request("PATCH", &format!("/events/{id}"), Some(&fac), Some(json!({"rating": raw})))).await;
        assert_eq!((status(&resp), json(&resp)["rating"].clone()), (200, want.clone()), "PATCH {raw}");
    }
    for q in ["rating=1e-200", "rating=4.567", "rating=0", "type=yoga&rating=5"] {
        let resp = call(&app, request("GET", &format!("/events/filter?{q}"), None, None)).await;
        assert_eq!(status(&resp), 200, "{q}: {:?}", json(&resp));
    }
    let resp = call(&app, request("GET", "/events/filter?rating=4.567&type=yoga", None, None)).await;
    assert!(json(&resp).as_array().unwrap().iter().all(|e| e["rating"].as_f64().unwrap() >= 4.57));
    for q in ["rating=5.01", "rating=-1", "rating=NaN", "rating=1e400"] {
        let resp = call(&app, request("GET", &format!("/events/filter?{q}"), None, None)).await;
        assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()), "{q}");
    }
}

/// Item 9: a body that is not JSON is `invalid_json`, whatever field it starts with.
async fn broken_json_is_invalid_json<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, fac) = user(&app, Role::Facilitator).await;
    for body in ["{\"title\": ", "{\"a\":1}}", "{\"bogus\": 1", "{\"title\": \"x\"} {"] {
        for (method, path) in [("POST", "/events"), ("POST", "/auth/register"), ("POST", "/bookings")] {
            let resp = call(&app, raw_request(method, path, Some(&fac), body)).await;
            assert_eq!((status(&resp), error_code(&resp)), (400, "invalid_json".into()), "{method} {path} {body:?}");
        }
    }
}

/// Item 10: the user holding the last seat hears `already_booked`, not `event_full`, from the
/// handler's early answer and from the transaction itself.
async fn already_booked_comes_before_event_full<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, fac) = user(&app, Role::Facilitator).await;
    let (holder, token) = user(&app, Role::Attendee).await;
    let ev = event(&app, &fac, Some(1)).await;
    let first = call(&app, request("POST", "/bookings", Some(&token), Some(json!({"event_id": ev})))).await;
    assert_eq!(status(&first), 201);
    let again = call(&app, request("POST", "/bookings", Some(&token), Some(json!({"event_id": ev})))).await;
    assert_eq!((status(&again), error_code(&again)), (409, "already_booked".into()));
    // The store's own answer when every condition fails at once (the early check bypassed).
    let event = app.store.get_event(&ev).await.unwrap().unwrap();
    let mut booking: shared::model::Booking = serde_json::from_value(json!({
        "id": shared::model::new_id(), "event_id": ev, "user_id": holder.id, "user_name": "n",
        "user_email": "e@x.io", "status": "confirmed", "created_at": shared::time::format(&shared::time::now()),
        "event": serde_json::to_value(event.snapshot()).unwrap(),
    }))
    .unwrap();
    let err = app.store.create_booking(&booking, None, shared::time::now()).await.unwrap_err();
    assert_eq!(err.code(), "already_booked");
    // Full and started, held by this user: still `already_booked`.
    let after_start = event.datetime + chrono::Duration::minutes(1);
    booking.id = shared::model::new_id();
    let err = app.store.create_booking(&booking, None, after_start).await.unwrap_err();
    assert_eq!(err.code(), "already_booked");
    // Someone else: full before started, started once it has.
    booking.user_id = shared::model::new_id();
    booking.id = shared::model::new_id();
    assert_eq!(app.store.create_booking(&booking, None, shared::time::now()).await.unwrap_err().code(), "event_full");
    booking.id = shared::model::new_id(); // a new request, a new id (and transaction token)
    assert_eq!(app.store.create_booking(&booking, None, after_start).await.unwrap_err().code(), "event_started");
}

store_tests!(
    bootstrap_admin_needs_the_accounts_own_password,
    parallel_guesses_cannot_outrun_the_throttle,
    a_successful_login_clears_the_count,
    roles_come_from_the_store_not_the_token,
    values_dynamodb_or_rfc3339_cannot_carry,
    broken_json_is_invalid_json,
    already_booked_comes_before_event_full,
);
