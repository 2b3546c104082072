//! Auth routes through the `auth` handler in-process, on both stores.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::future::join_all;
use serde_json::{json, Value};
use shared::jwt::{Claims, TokenService};
use shared::model::Role;
use shared::Store;
use tests::*;

async fn fixtures_register_login_me<S: Store + Clone>(store: S) {
    let app = app(store);
    // GIVEN the API Gateway v2 fixtures of events/
    let email = format!("asha.{}@Example.com", ulid::Ulid::new().to_string().to_lowercase());
    let resp = auth::router(&app, fixture("auth-register", &[("EMAIL", &email)])).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let user = json(&resp);
    assert_eq!(user["email"], email.to_lowercase());
    assert_eq!(user["role"], "attendee");
    assert_eq!(user["name"], "Asha Rao");
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    // WHEN logging in with another letter case of the email (fixture path has a trailing slash)
    let resp = auth::router(&app, fixture("auth-login", &[("EMAIL", &email.to_uppercase())])).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let body = json(&resp);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap().to_string();
    // THEN /auth/me answers with the same account
    let resp = auth::router(&app, fixture("auth-me", &[("TOKEN", &token)])).await;
    assert_eq!(status(&resp), 200);
    assert_eq!(json(&resp), user);
    assert!(!String::from_utf8_lossy(resp.body().as_ref()).contains("argon2"));
}

async fn validation_matrix<S: Store + Clone>(store: S) {
    let app = app(store);
    let long = "x".repeat(101);
    let long_pw = "p".repeat(129);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("missing name", json!({"email": "a@b.io", "password": "password1"}).to_string(), 400, "validation_failed"),
        (
            "empty name",
            json!({"name": "  ", "email": "a@b.io", "password": "password1"}).to_string(),
            400,
            "validation_failed",
        ),
        (
            "long name",
            json!({"name": long, "email": "a@b.io", "password": "password1"}).to_string(),
            400,
            "validation_failed",
        ),
        ("missing email", json!({"name": "A", "password": "password1"}).to_string(), 400, "validation_failed"),
        (
            "bad email",
            json!({"name": "A", "email": "not-an-email", "password": "password1"}).to_string(),
            400,
            "validation_failed",
        ),
        ("missing password", json!({"name": "A", "email": "a@b.io"}).to_string(), 400, "validation_failed"),
        (
            "short password",
            json!({"name": "A", "email": "a@b.io", "password": "short"}).to_string(),
            400,
            "validation_failed",
        ),
        (
            "long password",
            json!({"name": "A", "email": "a@b.io", "password": long_pw}).to_string(),
            400,
            "validation_failed",
        ),
        (
            "number as name",
            json!({"name": 5, "email": "a@b.io", "password": "password1"}).to_string(),
            400,
            "invalid_json",
        ),
        ("array body", "[1,2]".to_string(), 400, "invalid_json"),
        ("malformed", "{\"name\": ".to_string(), 400, "invalid_json"),
        ("empty body", String::new(), 400, "invalid_json"),
        (
            "unknown field",
            json!({"name": "A", "email": "a@b.io", "password": "password1", "admin": true}).to_string(),
            400,
            "unknown_field",
        ),
        (
            "bad role",
            json!({"name": "A", "email": "a@b.io", "password": "password1", "role": "guru"}).to_string(),
            400,
            "validation_failed",
        ),
        (
            "admin role",
            json!({"name": "A", "email": "a@b.io", "password": "password1", "role": "admin"}).to_string(),
            403,
            "forbidden",
        ),
        ("too large", format!("{{\"name\": \"{}\"}}", "x".repeat(70_000)), 413, "payload_too_large"),
    ];
    for (what, body, want_status, want_code) in cases {
        let resp = auth::router(&app, raw_request("POST", "/auth/register", None, &body)).await;
        assert_eq!(status(&resp), want_status, "{what}: {:?}", json(&resp));
        assert_eq!(error_code(&resp), want_code, "{what}");
        assert!(json(&resp)["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    let resp = auth::router(
        &app,
        raw_request(
            "POST",
            "/auth/register",
            None,
            &json!({"name": "A", "email": "bad", "password": "password1"}).to_string(),
        ),
    )
    .await;
    assert_eq!(json(&resp)["error"]["field"], "email");
    let resp =
        auth::router(&app, raw_request("POST", "/auth/login", None, &json!({"email": "a@b.io"}).to_string())).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
    let resp = auth::router(&app, request("GET", "/auth/register", None, None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (405, "method_not_allowed".into()));
    assert_eq!(resp.headers()["allow"], "POST");
    let resp = auth::router(&app, request("GET", "/auth/nowhere", None, None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (404, "not_found".into()));
    // Nothing was created by any of the rejected requests.
    assert!(app.store.find_user_by_email("a@b.io").await.unwrap().is_none());
}

async fn concurrent_registrations_of_one_email<S: Store + Clone>(store: S) {
    let app = app(store);
    let base = format!("race.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let attempts = (0..20).map(|i| {
        let app = app.clone();
        // Different letter cases of the same address.
        let email = if i % 2 == 0 { base.to_uppercase() } else { base.clone() };
        tokio::spawn(async move {
            let body = json!({"name": format!("Racer {i}"), "email": email, "password": "password123"});
            let resp = auth::router(&app, request("POST", "/auth/register/", None, Some(body))).await;
            (status(&resp), error_code(&resp))
        })
    });
    let results: Vec<(u16, String)> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let taken = results.iter().filter(|(s, c)| *s == 409 && c == "email_taken").count();
    assert_eq!((created, taken), (1, 19), "{results:?}");
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn jwt_rejections<S: Store + Clone>(store: S) {
    let app = app(store);
    let (user, good) = user(&app, Role::Attendee).await;
    let me = |t: &str| request("GET", "/auth/me", Some(t), None);
    assert_eq!(status(&auth::router(&app, me(&good)).await), 200);

    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64, exp: i64, iss: &str, aud: &str| Claims {
        sub: user.id.clone(),
        role: Role::Admin,
        iat,
        exp,
        iss: iss.into(),
        aud: aud.into(),
    };
    let same_key = TokenService::new(TEST_SECRET.as_bytes(), "x", "y", 60).unwrap();
    let other_key = TokenService::new(b"another-secret-another-secret-another", "x", "y", 60).unwrap();
    let (iss, aud) = (shared::config::DEFAULT_ISSUER, shared::config::DEFAULT_AUDIENCE);
    let parts: Vec<&str> = good.split('.').collect();
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let mut elevated = payload.clone();
    elevated["role"] = json!("admin");
    let none_token = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), parts[1]);
    // With the right kid, so only the algorithm is wrong.
    let hs512_header = jsonwebtoken::Header {
        kid: Some(app.tokens.kid().to_string()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512)
    };
    let hs512 =
        jsonwebtoken::encode(&hs512_header, &payload, &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()))
            .unwrap();
    let cases = vec![
        ("alg none", none_token),
        ("alg HS512", hs512),
        ("wrong key", other_key.issue_claims(&claims(now, now + 600, iss, aud)).unwrap()),
        ("expired beyond leeway", same_key.issue_claims(&claims(now - 7200, now - 31, iss, aud)).unwrap()),
        ("wrong iss", same_key.issue_claims(&claims(now, now + 600, "evil", aud)).unwrap()),
        ("wrong aud", same_key.issue_claims(&claims(now, now + 600, iss, "other-api")).unwrap()),
        ("tampered payload", format!("{}.{}.{}", parts[0], b64(&elevated), parts[2])),
        ("garbage", "not.a.jwt".into()),
        ("empty", String::new()),
    ];
    for (what, token) in cases {
        let resp = auth::router(&app, me(&token)).await;
        assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()), "{what}");
    }
    let resp = auth::router(&app, request("GET", "/auth/me", None, None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()), "no token");
    // Inside the leeway an expired token still passes; the leeway is at most 30 s.
    let fresh = same_key.issue_claims(&claims(now - 60, now - 5, iss, aud)).unwrap();
    assert_eq!(status(&auth::router(&app, me(&fresh)).await), 200);
}

async fn password_hash_is_argon2id_and_never_returned<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = format!("hash.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let body = json!({"name": "Hash", "email": email, "password": "s3cret-password", "role": "facilitator"});
    let resp = auth::router(&app, request("POST", "/auth/register", None, Some(body))).await;
    assert_eq!(status(&resp), 201);
    assert_eq!(json(&resp)["role"], "facilitator");
    let stored = app.store.find_user_by_email(&email).await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", stored.password_hash);
    let parsed = argon2::PasswordHash::new(&stored.password_hash).unwrap();
    use argon2::PasswordVerifier;
    assert!(argon2::Argon2::default().verify_password(b"s3cret-password", &parsed).is_ok());
    let login = json!({"email": email, "password": "s3cret-password"});
    let resp = auth::router(&app, request("POST", "/auth/login", None, Some(login))).await;
    let token = json(&resp)["access_token"].as_str().unwrap().to_string();
    let me = auth::router(&app, request("GET", "/auth/me", Some(&token), None)).await;
    for r in [&resp, &me] {
        let text = String::from_utf8_lossy(r.body().as_ref()).to_string();
        assert!(!text.contains("argon2") && !text.contains(&stored.password_hash), "{text}");
    }
}

async fn wrong_password_and_unknown_email_look_alike_then_throttle<S: Store + Clone>(store: S) {
    let app = app(store);
    let email = format!("lock.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let body = json!({"name": "Lock", "email": email, "password": "the-right-one"});
    assert_eq!(status(&auth::router(&app, request("POST", "/auth/register", None, Some(body))).await), 201);
    let login =
        |email: &str, pw: &str| request("POST", "/auth/login", None, Some(json!({"email": email, "password": pw})));
    let unknown = auth::router(&app, login("nobody@example.com", "whatever1")).await;
    let wrong = auth::router(&app, login(&email, "the-wrong-one")).await;
    assert_eq!(status(&unknown), 401);
    assert_eq!(json(&unknown), json(&wrong), "unknown email and wrong password must be indistinguishable");
    // 9 more failures make 10 in the window; the next attempt is refused even with the right password.
    for _ in 0..9 {
        assert_eq!(status(&auth::router(&app, login(&email, "the-wrong-one")).await), 401);
    }
    let resp = auth::router(&app, login(&email, "the-right-one")).await;
    assert_eq!((status(&resp), error_code(&resp)), (429, "too_many_attempts".into()));
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // Other accounts are not affected.
    assert_eq!(status(&auth::router(&app, login("nobody@example.com", "whatever1")).await), 401);
}

async fn health_and_openapi<S: Store + Clone>(store: S) {
    let app = app(store);
    for path in ["/health", "/health/"] {
        let resp = auth::router(&app, request("GET", path, None, None)).await;
        assert_eq!((status(&resp), json(&resp)), (200, json!({"status": "ok"})));
    }
    let resp = auth::router(&app, request("GET", "/openapi.json", None, None)).await;
    assert_eq!(status(&resp), 200);
    assert_eq!(json(&resp)["openapi"], "3.1.0");
}

store_tests!(
    fixtures_register_login_me,
    validation_matrix,
    concurrent_registrations_of_one_email,
    jwt_rejections,
    password_hash_is_argon2id_and_never_returned,
    wrong_password_and_unknown_email_look_alike_then_throttle,
    health_and_openapi,
);

#[test]
fn short_secret_refuses_to_start() {
    assert!(TokenService::new(b"too-short", "i", "a", 60).is_err());
    assert!(shared::config::Config::from_parts(b"31-bytes-is-not-enough-for-jwt!".to_vec()).is_err());
    assert!(shared::config::Config::from_parts(b"32-bytes-is-enough-for-a-jwt-key".to_vec()).is_ok());
}
