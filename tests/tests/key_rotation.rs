//! Access tokens across a rotation of the JWT key, on both stores: tokens name their key (`kid`),
//! carry only the contract's claims, and stay valid while their key is listed in
//! `JWT_PREVIOUS_SECRETS`; bookings take the booker's name and email from the account (read in
//! the booking's one BatchGetItem) instead of the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use shared::model::{Booking, Role};
use shared::{App, Store};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tests::*;

const NEW_SECRET: &str = "rotated-secret-0123456789abcdef0123456789abcdef";

/// The service after a rotation: `NEW_SECRET` signs, the given keys are still accepted.
fn rotated<S: Store>(store: S, previous: &[&str]) -> Arc<App<S>> {
    let config = config()
        .with_jwt_secret(NEW_SECRET)
        .unwrap()
        .with_previous_jwt_secrets(Some(previous.join(",").as_str()))
        .unwrap();
    Arc::new(App::new(store, &config).unwrap())
}

fn segment(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap_or_else(|| panic!("no segment {i} in {token}"));
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

async fn register_and_login<S: Store>(app: &App<S>, name: &str) -> (String, String) {
    let email = format!("{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let body = json!({"name": name, "email": email, "password": "a-good-password"});
    let resp = call(app, request("POST", "/auth/register", None, Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let login = json!({"email": email, "password": "a-good-password"});
    let resp = call(app, request("POST", "/auth/login", None, Some(login))).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    (json(&resp)["access_token"].as_str().unwrap().to_string(), email)
}

async fn create_event<S: Store>(app: &App<S>, owner: &str) -> String {
    let body = json!({"title": "Breathwork", "type": "Yoga", "datetime": in_days(5), "capacity": 10});
    let resp = call(app, request("POST", "/events", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

fn book(token: &str, event_id: &str) -> lambda_http::Request {
    request("POST", "/bookings", Some(token), Some(json!({"event_id": event_id})))
}

/// The `next` link's path and query (`<…>; rel="next"`).
fn next_link(resp: &lambda_http::Response<lambda_http::Body>) -> String {
    let link = resp.headers()["link"].to_str().unwrap();
    link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_string()
}

/// Login yields a token whose header names the signing key and whose payload holds exactly the
/// contract's claims: no email, no name.
async fn tokens_carry_kid_and_only_the_contract_claims<S: Store + Clone>(store: S) {
    let app = app(store);
    let (token, email) = register_and_login(&app, "Asha Rao").await;
    assert_eq!(segment(&token, 0), json!({"typ": "JWT", "alg": "HS256", "kid": app.tokens.kid()}));
    let payload = segment(&token, 1);
    let want: BTreeSet<String> = ["sub", "role", "iat", "exp", "iss", "aud"].map(String::from).into();
    assert_eq!(keys(&payload), want, "{payload}");
    let decoded = format!("{}{}", segment(&token, 0), payload);
    assert!(!decoded.contains(&email) && !decoded.contains("Asha"), "{decoded}");
    // The kid is derived from the key alone: another process with the same secret agrees.
    assert_eq!(tests::app(shared::store::MemoryStore::new()).tokens.kid(), app.tokens.kid());
    assert_eq!(app.tokens.kid(), shared::jwt::key_id(TEST_SECRET.as_bytes()));
}

/// Tokens and list cursors issued before `JWT_SECRET` changes keep working while the old key is
/// listed in `JWT_PREVIOUS_SECRETS`, and stop when it is removed; only the new key signs.
async fn a_rotation_logs_nobody_out<S: Store + Clone>(store: S) {
    let before = app(store.clone());
    let (old_token, _) = register_and_login(&before, "Before Rotation").await;
    let (_, owner) = user(&before, Role::Facilitator).await;
    for _ in 0..2 {
        create_event(&before, &owner).await;
    }
    let first_page = call(&before, request("GET", "/events?limit=1", None, None)).await;
    let old_cursor_page = next_link(&first_page);

    let after = rotated(store.clone(), &[TEST_SECRET]);
    assert_ne!(after.tokens.kid(), before.tokens.kid());
    let me = |t: &str| request("GET", "/auth/me", Some(t), None);
    assert_eq!(status(&call(&after, me(&old_token)).await), 200, "a token from before the rotation");
    let ev = create_event(&after, &owner).await;
    let resp = call(&after, book(&old_token, &ev)).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    assert_eq!(status(&call(&after, request("GET", &old_cursor_page, None, None)).await), 200, "an old cursor");

    // New logins are signed with the new key.
    let (new_token, _) = register_and_login(&after, "After Rotation").await;
    assert_eq!(segment(&new_token, 0)["kid"], after.tokens.kid());
    assert_eq!(status(&call(&after, me(&new_token)).await), 200);

    // The old key dropped (one token lifetime later): its tokens and cursors are refused.
    let dropped = rotated(store, &[]);
    let resp = call(&dropped, me(&old_token)).await;
    assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()));
    let resp = call(&dropped, book(&old_token, &ev)).await;
    assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()));
    let resp = call(&dropped, request("GET", &old_cursor_page, None, None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (400, "validation_failed".into()));
    assert_eq!(status(&call(&dropped, me(&new_token)).await), 200);
}

/// A crafted token: signed with the old key but naming the current key's kid, or with a kid that
/// is not a string → 401 on every function (auth, events, bookings).
async fn crafted_kids_are_refused<S: Store + Clone>(store: S) {
    let app = rotated(store, &[TEST_SECRET]);
    let (account, _) = user(&app, Role::Facilitator).await;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": account.id, "role": "facilitator", "iat": now, "exp": now + 600,
        "iss": shared::config::DEFAULT_ISSUER, "aud": shared::config::DEFAULT_AUDIENCE});
    let sign = |header: Value, secret: &str| {
        jsonwebtoken::encode(
            &serde_json::from_value::<jsonwebtoken::Header>(header).unwrap(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let control = sign(json!({"alg": "HS256", "kid": app.tokens.kid()}), NEW_SECRET);
    let ev = create_event(&app, &control).await;
    // jsonwebtoken cannot write a non-string kid: sign that one by hand, with the current key.
    let numeric_kid = {
        use hmac::Mac;
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", b64(&json!({"alg": "HS256", "kid": 5})), b64(&claims));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(NEW_SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    };
    let cases = [
        ("old key, current kid", sign(json!({"alg": "HS256", "kid": app.tokens.kid()}), TEST_SECRET)),
        ("no kid", sign(json!({"alg": "HS256"}), NEW_SECRET)),
        ("unknown kid", sign(json!({"alg": "HS256", "kid": "not-a-key-we-know"}), NEW_SECRET)),
        ("numeric kid", numeric_kid),
    ];
    for (what, token) in cases {
        let requests = [
            request("GET", "/auth/me", Some(&token), None),
            request("POST", "/events", Some(&token), Some(json!({"title": "x", "type": "y", "datetime": in_days(3)}))),
            book(&token, &ev),
        ];
        for req in requests {
            let route = format!("{} {}", req.method(), req.uri());
            let resp = call(&app, req).await;
            assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()), "{what}: {route}");
        }
    }
    // The same claims under the right key and kid pass everywhere.
    assert_eq!(status(&call(&app, request("GET", "/auth/me", Some(&control), None)).await), 200);
    assert_eq!(status(&call(&app, book(&control, &ev)).await), 201);
}

/// The booking (and so the CRM payload) still names the booker, read from the account.
async fn bookings_record_name_and_email_from_the_account<S: Store + Clone>(store: S) {
    let seen: Arc<Mutex<Vec<Booking>>> = Arc::default();
    let hook_seen = seen.clone();
    let app = Arc::new(
        App::new(store, &config())
            .unwrap()
            .with_booking_hook(Arc::new(move |b: &Booking| hook_seen.lock().unwrap().push(b.clone()))),
    );
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = create_event(&app, &owner).await;
    let (token, email) = register_and_login(&app, "Meera Iyer").await;
    let resp = call(&app, book(&token, &ev)).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let id = json(&resp)["id"].as_str().unwrap().to_string();
    let stored = app.store.get_booking(&id).await.unwrap().expect("the booking");
    assert_eq!((stored.user_name.as_str(), stored.user_email.as_str()), ("Meera Iyer", email.as_str()));
    let hooked = seen.lock().unwrap().clone();
    assert_eq!(hooked.len(), 1);
    let payload = serde_json::to_value(crm_notifier::webhook::WebhookPayload::from_booking(&hooked[0])).unwrap();
    assert_eq!(payload["user"], json!({"name": "Meera Iyer", "email": email}), "{payload}");
    assert_eq!(payload["booking_id"], id.as_str());
}

/// A validly signed token whose account does not exist (never did, or was deleted) books nothing.
async fn a_token_without_an_account_cannot_book<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = create_event(&app, &owner).await;
    let ghost = token_only(&app, Role::Attendee);
    let resp = call(&app, book(&ghost, &ev)).await;
    assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()));
    assert_eq!(json(&resp)["error"]["message"], "account no longer exists");
    let resp = call(&app, request("GET", &format!("/events/{ev}"), None, None)).await;
    assert_eq!(json(&resp)["seats_booked"], 0, "no seat taken");
}

store_tests!(
    tokens_carry_kid_and_only_the_contract_claims,
    a_rotation_logs_nobody_out,
    crafted_kids_are_refused,
    bookings_record_name_and_email_from_the_account,
    a_token_without_an_account_cannot_book,
);

/// On DynamoDB: the booker's account rides in the booking's one BatchGetItem (1 read + 1
/// transaction, as before the token lost the name), and an account deleted after its token was
/// issued is refused with the same single read.
#[tokio::test]
async fn the_account_is_read_in_the_same_batch_and_a_deleted_one_cannot_book() {
    let (store, log) = dynamo_counted().await;
    let app = app(store.clone());
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = create_event(&app, &owner).await;
    let (booker, token) = user(&app, Role::Attendee).await;
    let (gone, gone_token) = user(&app, Role::Attendee).await;
    log.take();
    let resp = call(&app, book(&token, &ev)).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let calls = log.take_requests();
    let ops: Vec<&str> = calls.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(ops, ["BatchGetItem", "TransactWriteItems"]);
    let wanted: Vec<String> = calls[0].1["RequestItems"][store.table()]["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| format!("{}|{}", k["PK"]["S"].as_str().unwrap(), k["SK"]["S"].as_str().unwrap()))
        .collect();
    let (pk, sk) = shared::keys::user(&booker.id);
    assert!(wanted.contains(&format!("{pk}|{sk}")), "{wanted:?}");
    let stored = app.store.get_booking(json(&resp)["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!((stored.user_name, stored.user_email), (booker.name, booker.email));

    // The account is deleted behind the token's back.
    let (pk, sk) = shared::keys::user(&gone.id);
    let key = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
    store.client().delete_item().table_name(store.table()).key("PK", key(pk)).key("SK", key(sk)).send().await.unwrap();
    log.take();
    let resp = call(&app, book(&gone_token, &ev)).await;
    assert_eq!((status(&resp), error_code(&resp)), (401, "unauthorized".into()));
    assert_eq!(log.take(), ["BatchGetItem"], "refused on the one read, nothing written");
}
