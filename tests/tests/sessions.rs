//! Sessions (contract v3): refresh-token rotation with reuse detection, logout and password
//! change, on both stores, through the auth router in-process.

use futures::future::join_all;
use serde_json::{json, Value};
use shared::model::{RefreshToken, Session};
use shared::Store;
use std::sync::Arc;
use tests::*;

const PASSWORD: &str = "correct horse battery";

/// A registered account (through the API: a real argon2 hash) and its email.
async fn account<S: Store>(app: &shared::App<S>) -> String {
    let email = format!("s.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let body = json!({"name": "Sam Session", "email": email, "password": PASSWORD});
    let resp = auth::router(app, request("POST", "/auth/register", None, Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    email
}

async fn login_with<S: Store>(app: &shared::App<S>, email: &str, password: &str) -> (u16, Value) {
    let body = json!({"email": email, "password": password});
    let resp = auth::router(app, request("POST", "/auth/login", None, Some(body))).await;
    (status(&resp), json(&resp))
}

/// Logs in: (access token, refresh token).
async fn login<S: Store>(app: &shared::App<S>, email: &str) -> (String, String) {
    let (code, body) = login_with(app, email, PASSWORD).await;
    assert_eq!(code, 200, "{body}");
    (body["access_token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
}

async fn post<S: Store>(app: &shared::App<S>, path: &str, body: Value) -> (u16, Value) {
    let resp = auth::router(app, request("POST", path, None, Some(body))).await;
    (status(&resp), json(&resp))
}

async fn refresh<S: Store>(app: &shared::App<S>, token: &str) -> (u16, Value) {
    post(app, "/auth/refresh", json!({ "refresh_token": token })).await
}

async fn logout<S: Store>(app: &shared::App<S>, token: &str) -> (u16, Value) {
    post(app, "/auth/logout", json!({ "refresh_token": token })).await
}

async fn change_password<S: Store>(app: &shared::App<S>, access: &str, current: &str, new: &str) -> (u16, Value) {
    let body = json!({"current_password": current, "new_password": new});
    let resp = auth::router(app, request("POST", "/auth/password", Some(access), Some(body))).await;
    (status(&resp), json(&resp))
}

fn unauthorized(result: &(u16, Value)) -> bool {
    result.0 == 401 && result.1["error"]["code"] == "unauthorized"
}

async fn login_returns_a_refresh_token_that_rotates<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    // GIVEN the login fixture of events/
    let resp = auth::router(&app, fixture("auth-login", &[("EMAIL", &email)])).await;
    assert_eq!(status(&resp), 200);
    let body = json(&resp);
    assert_eq!((body["token_type"].as_str(), body["expires_in"].as_i64()), (Some("Bearer"), Some(3600)));
    let first = body["refresh_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = first.split('.').collect();
    assert_eq!(parts.len(), 4, "{first}");
    assert_eq!((parts[2], parts[3].len()), ("0", 43), "generation 0, 256-bit secret");
    // WHEN it is refreshed (the refresh fixture)
    let resp = auth::router(&app, fixture("auth-refresh", &[("REFRESH_TOKEN", &first)])).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let body = json(&resp);
    let second = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert!(second.starts_with(&format!("{}.{}.1.", parts[0], parts[1])), "same family, next generation: {second}");
    // THEN the new access token works, and the new refresh token refreshes again.
    let access = body["access_token"].as_str().unwrap();
    let me = auth::router(&app, request("GET", "/auth/me", Some(access), None)).await;
    assert_eq!((status(&me), json(&me)["email"].as_str()), (200, Some(email.as_str())));
    let (code, third) = refresh(&app, &second).await;
    assert_eq!(code, 200, "{third}");
    // Two logins are two independent families.
    let (_, other) = login(&app, &email).await;
    assert_ne!(other.split('.').nth(1), Some(parts[1]));
    assert_eq!(refresh(&app, &other).await.0, 200);
}

/// RFC 9700 §4.14.2: a thief refreshes first with a stolen token; when the victim presents the
/// same (now spent) token, the whole family is revoked: both lose it.
async fn stolen_token_reused_after_rotation_revokes_the_family<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let (_, stolen) = login(&app, &email).await;
    let (code, thief) = refresh(&app, &stolen).await;
    assert_eq!(code, 200);
    let thief = thief["refresh_token"].as_str().unwrap().to_string();
    // The victim's client presents the token it still holds.
    assert!(unauthorized(&refresh(&app, &stolen).await));
    // The thief's token died with it, and so would any token rotated from it.
    assert!(unauthorized(&refresh(&app, &thief).await));
    assert!(unauthorized(&refresh(&app, &stolen).await));
    // The victim logs in again: a new family, unaffected.
    let (_, fresh) = login(&app, &email).await;
    assert_eq!(refresh(&app, &fresh).await.0, 200);
}

/// 50 refreshes with one token at once: exactly one wins; every other one is either a
/// transaction that lost or a read of a spent token, and both revoke the family, so the winner's
/// new token is dead too (two holders of one token are indistinguishable from a theft).
async fn fifty_parallel_refreshes_with_one_token<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let (_, token) = login(&app, &email).await;
    let token = Arc::new(token);
    let tasks = (0..50).map(|_| {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { refresh(&app, &token).await })
    });
    let results: Vec<(u16, Value)> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let won: Vec<&Value> = results.iter().filter(|(c, _)| *c == 200).map(|(_, b)| b).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(results.iter().filter(|r| r.0 != 200).all(unauthorized), "{results:?}");
    let winner = won[0]["refresh_token"].as_str().unwrap();
    let family = token.split('.').nth(1).unwrap();
    let session = app.store.get_session(family).await.unwrap().unwrap();
    assert!(session.revoked, "{session:?}");
    assert_eq!(session.generation, 1, "the token was spent exactly once");
    assert!(unauthorized(&refresh(&app, winner).await));
}

/// A password change racing a chain of refreshes: once the change has answered, no refresh of a
/// family from before it succeeds, whichever interleaving happened.
async fn refresh_racing_a_password_change<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let passwords = [PASSWORD, "another horse battery"];
    for round in 0..4 {
        let (current, new) = (passwords[round % 2], passwords[(round + 1) % 2]);
        let (code, body) = login_with(&app, &email, current).await;
        assert_eq!(code, 200, "round {round}: {body}");
        let access = body["access_token"].as_str().unwrap().to_string();
        let first = body["refresh_token"].as_str().unwrap().to_string();
        let changed = Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
        let chain = {
            let (app, changed) = (app.clone(), changed.clone());
            tokio::spawn(async move {
                let (mut token, mut after_change) = (first, Vec::new());
                for _ in 0..1000 {
                    let started = std::time::Instant::now();
                    let (code, body) = refresh(&app, &token).await;
                    let done = *changed.lock().unwrap();
                    if done.is_some_and(|d| d < started) {
                        after_change.push(code);
                    }
                    if code != 200 {
                        return (token, after_change, code);
                    }
                    token = body["refresh_token"].as_str().unwrap().to_string();
                }
                panic!("the refresh chain never stopped: the password change revoked nothing");
            })
        };
        let (code, body) = change_password(&app, &access, current, new).await;
        *changed.lock().unwrap() = Some(std::time::Instant::now());
        assert_eq!((code, &body["msg"]), (200, &json!("Password changed")), "round {round}");
        let (last, after_change, stop) = chain.await.unwrap();
        assert_eq!(stop, 401, "round {round}");
        assert!(after_change.iter().all(|c| *c == 401), "round {round}: {after_change:?}");
        assert!(unauthorized(&refresh(&app, &last).await), "round {round}");
    }
    // Parallel: refreshes of several families while the password changes.
    let current = passwords[0];
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(login(&app, &email).await);
    }
    let access = tokens[0].0.clone();
    let refreshes = tokens.iter().map(|(_, t)| {
        let (app, t) = (app.clone(), t.clone());
        tokio::spawn(async move { refresh(&app, &t).await })
    });
    let (change, results) = tokio::join!(change_password(&app, &access, current, passwords[1]), join_all(refreshes));
    assert_eq!(change.0, 200);
    for (result, (_, old)) in results.into_iter().map(Result::unwrap).zip(&tokens) {
        // Whichever won, nothing of the old families refreshes any more.
        let live = if result.0 == 200 { result.1["refresh_token"].as_str().unwrap().to_string() } else { old.clone() };
        assert!(unauthorized(&refresh(&app, &live).await));
    }
}

async fn logout_is_idempotent_and_ends_the_family<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let (_, token) = login(&app, &email).await;
    let resp = auth::router(&app, fixture("auth-logout", &[("REFRESH_TOKEN", &token)])).await;
    assert_eq!((status(&resp), json(&resp)), (200, json!({"msg": "Logged out"})));
    assert_eq!(logout(&app, &token).await, (200, json!({"msg": "Logged out"})));
    assert!(unauthorized(&refresh(&app, &token).await));
    // A spent token logs its family out too (its holder is the one who knows it).
    let (_, spent) = login(&app, &email).await;
    let (_, live) = refresh(&app, &spent).await;
    let live = live["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(logout(&app, &spent).await.0, 200);
    assert!(unauthorized(&refresh(&app, &live).await));
    // A forged current generation (right ids, wrong secret) and an unknown family: 401, and the
    // family of the forged one still works.
    let (_, mine) = login(&app, &email).await;
    let forged = RefreshToken::issue(mine.split('.').next().unwrap(), mine.split('.').nth(1).unwrap(), 0).expose();
    assert!(unauthorized(&logout(&app, &forged).await));
    let unknown = RefreshToken::issue(mine.split('.').next().unwrap(), &shared::model::new_id(), 0).expose();
    assert!(unauthorized(&logout(&app, &unknown).await));
    assert!(unauthorized(&logout(&app, "not-a-token").await));
    assert_eq!(refresh(&app, &mine).await.0, 200);
    let resp = auth::router(&app, request("GET", "/auth/logout", None, None)).await;
    assert_eq!((status(&resp), resp.headers()["allow"].to_str().unwrap()), (405, "POST"));
}

async fn password_change_rules<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let (access, _) = login(&app, &email).await;
    let before = app.store.find_user_by_email(&email).await.unwrap().unwrap();
    // Without a token, with bad bodies: nothing counted, nothing changed.
    let resp = auth::router(&app, fixture("auth-password", &[("TOKEN", "not.a.jwt")])).await;
    assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()));
    for (body, field) in [
        (json!({"current_password": PASSWORD}), "new_password"),
        (json!({"new_password": "long enough"}), "current_password"),
        (json!({"current_password": PASSWORD, "new_password": "short"}), "new_password"),
        (json!({"current_password": "wrong", "new_password": "x".repeat(129)}), "new_password"),
    ] {
        let resp = auth::router(&app, request("POST", "/auth/password", Some(&access), Some(body))).await;
        assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
        assert_eq!(json(&resp)["error"]["field"], field);
    }
    let body = json!({"current_password": 5, "new_password": "long enough"});
    let resp = auth::router(&app, request("POST", "/auth/password", Some(&access), Some(body))).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "invalid_json".into()));
    // A wrong current password is a 401 and counts: 10 failures, the 11th attempt is refused
    // even with the right password.
    for _ in 0..10 {
        let resp = change_password(&app, &access, "not the password", "a new password").await;
        assert_eq!((resp.0, resp.1["error"]["code"].as_str()), (401, Some("invalid_credentials")));
    }
    let resp = change_password(&app, &access, PASSWORD, "a new password").await;
    assert_eq!((resp.0, resp.1["error"]["code"].as_str()), (429, Some("too_many_attempts")));
    // The login form shares the window.
    assert_eq!(login_with(&app, &email, PASSWORD).await.0, 429);
    let after = app.store.find_user_by_email(&email).await.unwrap().unwrap();
    assert_eq!((after.password_hash, after.session_epoch), (before.password_hash, before.session_epoch));
    let resp = auth::router(&app, request("PUT", "/auth/password/", Some(&access), None)).await;
    assert_eq!((status(&resp), resp.headers()["allow"].to_str().unwrap()), (405, "POST"));
}

async fn password_change_revokes_every_session<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let (access, first) = login(&app, &email).await;
    let (_, second) = login(&app, &email).await;
    let (code, body) = change_password(&app, &access, PASSWORD, "a brand new password").await;
    assert_eq!((code, body), (200, json!({"msg": "Password changed"})));
    for token in [&first, &second] {
        assert!(unauthorized(&refresh(&app, token).await));
    }
    let (code, body) = login_with(&app, &email, PASSWORD).await;
    assert_eq!((code, body["error"]["code"].as_str()), (401, Some("invalid_credentials")));
    let (code, body) = login_with(&app, &email, "a brand new password").await;
    assert_eq!(code, 200);
    let fresh = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh(&app, &fresh).await.0, 200);
    // The access token from before lives out its hour: it still changes the password (it is the
    // current password that is checked), which again ends every session.
    let (code, _) = change_password(&app, &access, "a brand new password", PASSWORD).await;
    assert_eq!(code, 200);
    let (code, _) = change_password(&app, &access, "a brand new password", PASSWORD).await;
    assert_eq!(code, 401, "the old password is no longer the current one");
}

async fn expired_families_are_refused<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let (_, token) = login(&app, &email).await;
    let user = app.store.find_user_by_email(&email).await.unwrap().unwrap();
    // A family started 30 days and a second ago, written through the store.
    let then = shared::time::now() - chrono::Duration::days(30) - chrono::Duration::seconds(1);
    let (old, old_token) = Session::start(&user.id, user.session_epoch, then);
    app.store.create_session(&old).await.unwrap();
    assert!(unauthorized(&refresh(&app, &old_token.expose()).await));
    assert!(unauthorized(&logout(&app, &old_token.expose()).await));
    let stored = app.store.get_session(&old.family_id).await.unwrap().unwrap();
    assert_eq!((stored.generation, stored.revoked), (0, false), "an expired family is not rotated");
    // One still inside its 30 days refreshes.
    let (young, young_token) =
        Session::start(&user.id, user.session_epoch, shared::time::now() - chrono::Duration::days(29));
    app.store.create_session(&young).await.unwrap();
    assert_eq!(refresh(&app, &young_token.expose()).await.0, 200);
    assert_eq!(refresh(&app, &token).await.0, 200);
}

async fn bad_tokens_are_4xx_never_5xx<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = account(&app).await;
    let (_, token) = login(&app, &email).await;
    let (_, theirs) = login(&app, &account(&app).await).await;
    let parts: Vec<&str> = token.split('.').collect();
    let their_user = theirs.split('.').next().unwrap();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("truncated", json!({"refresh_token": &token[..token.len() - 1]}).to_string(), 401, "unauthorized"),
        ("extended", json!({"refresh_token": format!("{token}A")}).to_string(), 401, "unauthorized"),
        ("three parts", json!({"refresh_token": parts[..3].join(".")}).to_string(), 401, "unauthorized"),
        ("five parts", json!({"refresh_token": format!("{token}.x")}).to_string(), 401, "unauthorized"),
        ("empty", json!({"refresh_token": ""}).to_string(), 401, "unauthorized"),
        ("garbage", json!({"refresh_token": "💥.\u{0}.-1.%%"}).to_string(), 401, "unauthorized"),
        (
            "another user's id",
            json!({"refresh_token": format!("{their_user}.{}.{}.{}", parts[1], parts[2], parts[3])}).to_string(),
            401,
            "unauthorized",
        ),
        (
            "a generation never issued",
            json!({"refresh_token": format!("{}.{}.7.{}", parts[0], parts[1], parts[3])}).to_string(),
            401,
            "unauthorized",
        ),
        ("100 KB string", json!({"refresh_token": "a".repeat(100_000)}).to_string(), 413, "payload_too_large"),
        ("60 KB string", json!({"refresh_token": "a.b.0.".repeat(10_000)}).to_string(), 401, "unauthorized"),
        ("1 MB body", format!("{{\"refresh_token\": \"{}\"}}", "a".repeat(1 << 20)), 413, "payload_too_large"),
        ("number", json!({"refresh_token": 12345}).to_string(), 400, "invalid_json"),
        ("array", json!({"refresh_token": [token]}).to_string(), 400, "invalid_json"),
        ("object", json!({"refresh_token": {"t": token}}).to_string(), 400, "invalid_json"),
        ("null", json!({"refresh_token": null}).to_string(), 400, "validation_failed"),
        ("missing", json!({}).to_string(), 400, "validation_failed"),
        ("unknown field", json!({"refresh_token": token, "x": 1}).to_string(), 400, "unknown_field"),
        ("not JSON", "refresh_token=abc".to_string(), 400, "invalid_json"),
    ];
    for path in ["/auth/refresh", "/auth/logout"] {
        for (what, body, want_status, want_code) in &cases {
            let resp = auth::router(&app, raw_request("POST", path, None, body)).await;
            assert_eq!((status(&resp), error_code(&resp)), (*want_status, want_code.to_string()), "{path} {what}");
        }
    }
    let resp = auth::router(&app, raw_request("POST", "/auth/refresh", None, "{}")).await;
    assert_eq!(json(&resp)["error"]["field"], "refresh_token");
    // None of them spent, revoked or otherwise touched the two real families.
    assert_eq!(refresh(&app, &token).await.0, 200);
    assert_eq!(refresh(&app, &theirs).await.0, 200);
}

store_tests!(
    login_returns_a_refresh_token_that_rotates,
    stolen_token_reused_after_rotation_revokes_the_family,
    fifty_parallel_refreshes_with_one_token,
    refresh_racing_a_password_change,
    logout_is_idempotent_and_ends_the_family,
    password_change_rules,
    password_change_revokes_every_session,
    expired_families_are_refused,
    bad_tokens_are_4xx_never_5xx,
);

/// A dump of the table holds no refresh token and no part of a secret: only SHA-256 hashes.
#[tokio::test]
async fn a_table_dump_reveals_no_refresh_token() {
    let store = dynamo_store().await;
    let app = app(store.clone());
    let email = account(&app).await;
    let (_, first) = login(&app, &email).await;
    let (_, body) = refresh(&app, &first).await;
    let second = body["refresh_token"].as_str().unwrap().to_string();
    let (_, other) = login(&app, &email).await;
    // Test code, not a request path: the whole table.
    let items = store.client().scan().table_name(store.table()).send().await.unwrap().items.unwrap_or_default();
    let dump = format!("{items:?}");
    let sessions: Vec<_> =
        items.iter().filter(|i| i.get("entity").and_then(|v| v.as_s().ok()).is_some_and(|t| t == "session")).collect();
    assert_eq!(sessions.len(), 2, "{dump}");
    for token in [&first, &second, &other] {
        let secret = token.rsplit('.').next().unwrap();
        assert!(!dump.contains(token.as_str()), "a token is stored");
        // Any 12-character window of the secret would be a leak.
        for window in secret.as_bytes().windows(12) {
            assert!(!dump.contains(std::str::from_utf8(window).unwrap()), "part of a secret is stored");
        }
    }
    for s in sessions {
        assert!(s["PK"].as_s().unwrap().starts_with("SESSION#"));
        assert_eq!(s["SK"].as_s().unwrap(), "SESSION");
        assert_eq!(s["token_hash"].as_s().unwrap().len(), 43, "base64url SHA-256");
        let ttl: i64 = s["ttl"].as_n().unwrap().parse().unwrap();
        let days = (ttl - chrono::Utc::now().timestamp()) as f64 / 86_400.0;
        assert!((29.9..=30.0).contains(&days), "ttl {days} days");
        assert!(!s.contains_key("GSI1PK") && !s.contains_key("GSI2PK"));
    }
}

/// DynamoDB calls per session route, counted on the wire: refresh = 1 read + 1 transaction.
#[tokio::test]
async fn dynamodb_calls_per_route() {
    let (store, log) = dynamo_counted().await;
    let app = app(store);
    let email = account(&app).await;
    let mut report = CallReport::new(&log);
    let (access, token) = login(&app, &email).await;
    // The email's first attempt opens its throttle window (UpdateItem refused, PutItem); the
    // session is the last PutItem.
    report.exactly("POST /auth/login", &["UpdateItem", "PutItem", "GetItem", "GetItem", "DeleteItem", "PutItem"]);
    let (_, body) = refresh(&app, &token).await;
    report.exactly("POST /auth/refresh", &["BatchGetItem", "TransactWriteItems"]);
    let next = body["refresh_token"].as_str().unwrap().to_string();
    refresh(&app, &token).await;
    report.exactly("POST /auth/refresh (spent: reuse, family revoked)", &["BatchGetItem", "UpdateItem"]);
    refresh(&app, &next).await;
    report.exactly("POST /auth/refresh (revoked)", &["BatchGetItem"]);
    refresh(&app, "malformed").await;
    report.exactly("POST /auth/refresh (malformed)", &[]);
    let (_, token) = login(&app, &email).await;
    log.take();
    logout(&app, &token).await;
    report.exactly("POST /auth/logout", &["GetItem", "UpdateItem"]);
    logout(&app, &token).await;
    report.exactly("POST /auth/logout (again)", &["GetItem"]);
    change_password(&app, &access, PASSWORD, "a new password").await;
    // The user, the throttle (a new window: the login cleared it), the conditional write of
    // hash + epoch, the throttle cleared.
    report.exactly("POST /auth/password", &["GetItem", "UpdateItem", "PutItem", "UpdateItem", "DeleteItem"]);
    change_password(&app, &access, "wrong password", "a new password 2").await;
    report.exactly("POST /auth/password (wrong current)", &["GetItem", "UpdateItem", "PutItem"]);
    change_password(&app, &access, "a new password", "short").await;
    report.exactly("POST /auth/password (invalid new)", &[]);
    report.print();
}
