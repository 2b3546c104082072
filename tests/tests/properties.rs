//! Property tests (proptest, 256 cases per property unless `PROPTEST_CASES` says otherwise):
//! request bodies through the routers never panic or get a 5xx, malformed JSON is always 400
//! `invalid_json`, `shared::time::parse` and `shared::time::format` round-trip with a four-digit
//! year, and `shared::cursor::CursorCodec` round-trips and refuses everything it did not encode.
//!
//! proptest bodies are synchronous, so each property builds one current-thread runtime and one
//! embedded-store app up front and `block_on`s every request on it.

use lambda_http::{Body, Request, Response};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use serde_json::{json, Map, Number, Value};
use shared::cursor::CursorCodec;
use shared::model::Role;
use shared::store::MemoryStore;
use shared::App;
use std::sync::Arc;
use tests::*;

type TestApp = Arc<App<MemoryStore>>;

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    TestRunner::new(PropConfig { cases, failure_persistence: None, ..PropConfig::default() })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// Runs `prop` over `strategy` and turns a failure (after shrinking) into a test failure that shows
/// the minimal input.
fn check<S: Strategy>(strategy: S, prop: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner().run(&strategy, prop) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Request bodies through the routers
// ---------------------------------------------------------------------------------------------

/// One app with an event to patch and a token per role the four routes need.
struct Fixture {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    facilitator: String,
    attendee: String,
    event_id: String,
}

impl Fixture {
    fn new() -> Self {
        let rt = runtime();
        let app = app(memory_store());
        let (facilitator, attendee, event_id) = rt.block_on(async {
            let (_, fac) = user(&app, Role::Facilitator).await;
            let (_, att) = user(&app, Role::Attendee).await;
            let body = json!({"title": "Prop", "type": "Yoga", "datetime": "2031-01-01T00:00:00Z", "capacity": 5});
            let resp = call(&app, request("POST", "/events/", Some(&fac), Some(body))).await;
            assert_eq!(status(&resp), 201, "{:?}", json(&resp));
            (fac, att, json(&resp)["id"].as_str().unwrap().to_string())
        });
        Fixture { rt, app, facilitator, attendee, event_id }
    }

    /// The four routes whose bodies go through `shared::http::parse_json`, each with a caller that
    /// gets past authentication and authorisation, so the body is what is tested.
    fn routes(&self) -> [(&'static str, String, Option<&str>); 4] {
        [
            ("POST", "/auth/register".to_string(), None),
            ("POST", "/events/".to_string(), Some(self.facilitator.as_str())),
            ("PATCH", format!("/events/{}", self.event_id), Some(self.facilitator.as_str())),
            ("POST", "/bookings/".to_string(), Some(self.attendee.as_str())),
        ]
    }

    fn send(&self, method: &str, uri: &str, token: Option<&str>, body: Body) -> Response<Body> {
        let mut b = http::Request::builder().method(method).uri(uri).header("content-type", "application/json");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req: Request = b.body(body).expect("valid test request");
        self.rt.block_on(call(&self.app, req))
    }
}

fn body_text(resp: &Response<Body>) -> String {
    String::from_utf8_lossy(resp.body().as_ref()).into_owned()
}

/// What every response must be, whatever the body: no 5xx, JSON, and for an error the contract's
/// envelope with a code this route documents for a body problem.
fn contract(route: &str, resp: &Response<Body>) -> Result<Value, TestCaseError> {
    let code = status(resp);
    prop_assert!(code < 500, "{route} → {code}: {}", body_text(resp));
    let v: Value = serde_json::from_slice(resp.body().as_ref())
        .map_err(|e| TestCaseError::fail(format!("{route} → {code}: body is not JSON ({e}): {}", body_text(resp))))?;
    if code >= 400 {
        let err = &v["error"];
        prop_assert!(err["message"].is_string(), "{route} → {code}: {v}");
        let allowed: &[&str] = match code {
            400 => &["invalid_json", "validation_failed", "unknown_field"],
            404 => &["not_found"],
            409 => &["email_taken", "already_booked", "event_full", "event_started", "capacity_below_booked"],
            413 => &["payload_too_large"],
            _ => &[],
        };
        let c = err["code"].as_str().unwrap_or_default();
        prop_assert!(allowed.contains(&c), "{route} → {code} with code {c:?}: {v}");
    } else {
        prop_assert!(matches!(code, 200 | 201), "{route} → {code}: {v}");
        prop_assert!(v.is_object(), "{route} → {code}: {v}");
    }
    Ok(v)
}

/// Bytes that are not one JSON document (or are only whitespace) must be 400 `invalid_json`.
fn malformed_is_invalid_json(route: &str, bytes: &[u8], resp: &Response<Body>, v: &Value) -> Result<(), TestCaseError> {
    if serde_json::from_slice::<Value>(bytes).is_err() {
        prop_assert_eq!(
            (status(resp), v["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{} with a body that is not JSON: {:?} → {}",
            route,
            String::from_utf8_lossy(bytes),
            v
        );
    }
    Ok(())
}

const FIELDS: &[&str] = &[
    "name",
    "email",
    "password",
    "role",
    "title",
    "description",
    "datetime",
    "duration_minutes",
    "facilitator_id",
    "type",
    "rating",
    "capacity",
    "event_id",
    "id",
    "seats_booked",
    "owner_id",
    "created_at",
    "bogus",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u32..=200_000).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        (-1.0f64..6.0).prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[a-z]{1,12}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::String),
        prop_oneof![Just("attendee"), Just("facilitator"), Just("admin"), Just("Yoga")]
            .prop_map(|s| Value::String(s.into())),
        "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?"
            .prop_map(Value::String),
    ]
}

/// JSON values shaped like this API's bodies: objects keyed by its field names (and others), with
/// scalars of every type and some nesting.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

fn body_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()))
}

/// Bodies as bytes: arbitrary bytes, arbitrary text, JSON documents, and JSON documents cut short
/// or with something appended (the usual ways a body is malformed).
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        ".{0,64}".prop_map(String::into_bytes),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (body_object(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let s = v.to_string().into_bytes();
            let n = cut.index(s.len());
            s[..n].to_vec()
        }),
        (body_object(), prop_oneof![Just("x"), Just(","), Just("}"), Just("{}"), Just(" 1"), Just("\u{0}")])
            .prop_map(|(v, tail)| format!("{v}{tail}").into_bytes()),
    ]
}

fn as_body(bytes: &[u8]) -> Body {
    match std::str::from_utf8(bytes) {
        Ok("") => Body::Empty,
        Ok(s) => Body::Text(s.to_string()),
        Err(_) => Body::Binary(bytes.to_vec()),
    }
}

#[test]
fn any_body_bytes_get_a_documented_4xx_or_2xx_and_malformed_json_is_invalid_json() {
    let fx = Fixture::new();
    check(body_bytes(), |bytes| {
        for (method, uri, token) in fx.routes() {
            let route = format!("{method} {uri}");
            let resp = fx.send(method, &uri, token, as_body(&bytes));
            let v = contract(&route, &resp)?;
            malformed_is_invalid_json(&route, &bytes, &resp, &v)?;
        }
        Ok(())
    });
}

#[test]
fn json_objects_of_any_shape_never_get_a_5xx() {
    let fx = Fixture::new();
    check(body_object(), |v| {
        for (method, uri, token) in fx.routes() {
            let resp = fx.send(method, &uri, token, Body::Text(v.to_string()));
            contract(&format!("{method} {uri} {v}"), &resp)?;
        }
        Ok(())
    });
}

/// The bodies are JSON objects (`RegisterInput`, `EventCreate`, `EventUpdate`, `BookingInput`):
/// any other JSON value, arrays included, is 400 `invalid_json`, never read field by field.
#[test]
fn json_that_is_not_an_object_is_invalid_json() {
    let fx = Fixture::new();
    let not_object = prop_oneof![
        scalar(),
        prop::collection::vec(scalar(), 0..15).prop_map(Value::Array),
        prop::collection::vec(json_value(), 0..6).prop_map(Value::Array),
    ];
    check(not_object, |v| {
        for (method, uri, token) in fx.routes() {
            let route = format!("{method} {uri} {v}");
            let resp = fx.send(method, &uri, token, Body::Text(v.to_string()));
            let got = contract(&route, &resp)?;
            prop_assert_eq!((status(&resp), got["error"]["code"].as_str()), (400, Some("invalid_json")), "{}", route);
        }
        Ok(())
    });
}

/// Query parameters of the list routes (`limit`, `cursor`, `from`, `to`, `type`, `rating`) are
/// answered with 200 or 400 `validation_failed`, whatever their text.
#[test]
fn list_query_parameters_never_get_a_5xx() {
    let fx = Fixture::new();
    let param = prop_oneof![
        ".{0,30}",
        "[0-9]{1,25}",
        "-?[0-9]{1,3}(\\.[0-9]{1,3})?(e[0-9]{1,4})?",
        "[+-]?[0-9]{1,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?",
        "[A-Za-z0-9_-]{0,80}",
    ];
    let names = prop::sample::select(vec!["limit", "cursor", "from", "to", "type", "rating"]);
    let strategy = (prop::bool::ANY, prop::collection::vec((names, param), 0..4));
    check(strategy, |(filter, params)| {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
        let uri = format!("/events/{}?{}", if filter { "filter" } else { "" }, query.join("&"));
        let resp = fx.send("GET", &uri, None, Body::Empty);
        let code = status(&resp);
        prop_assert!(code < 500, "GET {uri} → {code}: {}", body_text(&resp));
        let v: Value = serde_json::from_slice(resp.body().as_ref())
            .map_err(|e| TestCaseError::fail(format!("GET {uri}: not JSON ({e})")))?;
        match code {
            200 => prop_assert!(v.is_array(), "GET {uri}: {v}"),
            400 => prop_assert_eq!(v["error"]["code"].as_str(), Some("validation_failed"), "GET {}: {}", uri, v),
            _ => prop_assert!(false, "GET {uri} → {code}: {v}"),
        }
        Ok(())
    });
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Time parsing
// ---------------------------------------------------------------------------------------------

/// Text that looks like a timestamp in all the ways the parser might meet: RFC 3339 with and
/// without offsets, the naive forms, signed and long years, out-of-range fields, junk.
fn timestamp_like() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}[Tt ][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}(\\.[0-9]{0,12})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
        "(0000|0001|9999|10000|\\+10000|-0001)-(01|12)-(01|31)T(00|23):(00|59):(00|59|60)(Z|\\+14:00|-14:00|\\+23:59|-23:59)?",
        " {0,2}[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z {0,2}",
    ]
}

fn four_digit_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn time_parse_never_panics_and_what_it_accepts_formats_back_to_the_same_instant() {
    check(timestamp_like(), |s| {
        if let Some(t) = shared::time::parse(&s) {
            let out = shared::time::format(&t);
            prop_assert!(four_digit_utc(&out), "{s:?} parsed to {out:?}, not YYYY-MM-DDTHH:MM:SSZ");
            prop_assert_eq!(shared::time::parse(&out), Some(t), "{:?} → {:?} does not parse back", s, out);
        }
        Ok(())
    });
}

#[test]
fn every_instant_in_years_0000_to_9999_formats_and_parses_back() {
    // 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z
    check(-62_167_219_200i64..=253_402_300_799, |secs| {
        let t = chrono::DateTime::from_timestamp(secs, 0).expect("in chrono's range");
        let out = shared::time::format(&t);
        prop_assert!(four_digit_utc(&out), "{secs} → {out:?}");
        prop_assert_eq!(shared::time::parse(&out), Some(t));
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Paging cursors
// ---------------------------------------------------------------------------------------------

fn codec() -> CursorCodec {
    CursorCodec::new(TEST_SECRET.as_bytes())
}

#[test]
fn cursor_decode_refuses_anything_it_did_not_encode() {
    let c = codec();
    let strategy = (".{0,20}", prop_oneof![".{0,80}", "[A-Za-z0-9_-]{0,120}", "[A-Za-z0-9+/=_-]{20,60}"]);
    check(strategy, |(scope, cursor)| {
        prop_assert!(c.decode(&scope, &cursor).is_err(), "decode({scope:?}, {cursor:?}) accepted a forged cursor");
        Ok(())
    });
}

#[test]
fn cursor_encode_decode_round_trips_and_is_bound_to_its_scope() {
    let c = codec();
    // Positions are index sort keys (`<timestamp>#<id>`), never empty.
    let strategy = (".{0,30}", ".{1,60}", ".{0,30}", any::<prop::sample::Index>(), any::<u8>());
    check(strategy, |(scope, position, other_scope, at, flip)| {
        let cursor = c.encode(&scope, &position);
        prop_assert!(
            cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{cursor:?} is not URL-safe"
        );
        prop_assert_eq!(c.decode(&scope, &cursor).ok(), Some(position.clone()));
        if other_scope != scope {
            prop_assert!(c.decode(&other_scope, &cursor).is_err(), "cursor of {scope:?} accepted for {other_scope:?}");
        }
        // Any other string (one character changed) is refused.
        let mut bytes = cursor.clone().into_bytes();
        let i = at.index(bytes.len());
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let replacement = ALPHABET[flip as usize % ALPHABET.len()];
        if bytes[i] != replacement {
            bytes[i] = replacement;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(c.decode(&scope, &tampered).is_err(), "tampered {tampered:?} accepted");
        }
        // A codec with another secret refuses it.
        let other = CursorCodec::new(b"another-secret-0123456789abcdef0123456789abcdef");
        prop_assert!(other.decode(&scope, &cursor).is_err());
        Ok(())
    });
}
