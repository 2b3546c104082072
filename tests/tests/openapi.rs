//! `GET /openapi.json` against the code: the document is OpenAPI 3.1.0, documents exactly the
//! (path, method) pairs the routers serve (each answering with and without a trailing slash, and
//! 405 with a matching `Allow` for every other method), and its error codes are exactly the codes of
//! `shared::error::Error::code`.

use serde_json::Value;
use shared::error::Error;
use std::collections::BTreeSet;
use tests::*;

/// Every route the routers serve (`auth`, `events`, `bookings`, `payments`), as documented.
const ROUTES: &[(&str, &str)] = &[
    ("/health", "get"),
    ("/openapi.json", "get"),
    ("/auth/register", "post"),
    ("/auth/login", "post"),
    ("/auth/me", "get"),
    ("/events/", "get"),
    ("/events/", "post"),
    ("/events/filter", "get"),
    ("/events/{id}", "get"),
    ("/events/{id}", "put"),
    ("/events/{id}", "patch"),
    ("/events/{id}", "delete"),
    ("/events/{id}/bookings", "get"),
    ("/bookings/", "get"),
    ("/bookings/", "post"),
    ("/bookings/{id}", "get"),
    ("/bookings/{id}", "delete"),
    ("/payments/webhook", "post"),
];

/// The codes `shared::error::Error::code` returns, in its order.
const ERROR_CODES: &[&str] = &[
    "invalid_json",
    "validation_failed",
    "unknown_field",
    "unauthorized",
    "invalid_credentials",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "email_taken",
    "already_booked",
    "event_full",
    "event_started",
    "event_has_bookings",
    "capacity_below_booked",
    "already_cancelled",
    "idempotency_key_reused",
    "invalid_signature",
    "payment_provider_unavailable",
    "payload_too_large",
    "too_many_attempts",
    "internal",
    "unavailable",
];

const HTTP_METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// One value of every `Error` variant. The exhaustive match below stops compiling when a variant is
/// added, so this list (and `ERROR_CODES`) cannot silently fall behind.
fn every_error_variant() -> Vec<Error> {
    fn exhaustive(e: &Error) {
        match e {
            Error::InvalidJson(_)
            | Error::Validation { .. }
            | Error::UnknownField(_)
            | Error::Unauthorized(_)
            | Error::InvalidCredentials
            | Error::Forbidden(_)
            | Error::NotFound(_)
            | Error::MethodNotAllowed(_)
            | Error::EmailTaken
            | Error::AlreadyBooked
            | Error::EventFull
            | Error::EventStarted
            | Error::EventHasBookings
            | Error::CapacityBelowBooked
            | Error::AlreadyCancelled
            | Error::IdempotencyKeyReused
            | Error::InvalidSignature(_)
            | Error::PaymentProviderUnavailable(_)
            | Error::StatusChanged
            | Error::PayloadTooLarge
            | Error::TooManyAttempts { .. }
            | Error::Internal(_)
            | Error::Unavailable(_)
            | Error::Config(_) => {}
        }
    }
    let all = vec![
        Error::InvalidJson("x".into()),
        Error::validation("f", "m"),
        Error::UnknownField("f".into()),
        Error::Unauthorized("x"),
        Error::InvalidCredentials,
        Error::Forbidden("x"),
        Error::NotFound("x"),
        Error::MethodNotAllowed("GET"),
        Error::EmailTaken,
        Error::AlreadyBooked,
        Error::EventFull,
        Error::EventStarted,
        Error::EventHasBookings,
        Error::CapacityBelowBooked,
        Error::AlreadyCancelled,
        Error::IdempotencyKeyReused,
        Error::InvalidSignature("x"),
        Error::PaymentProviderUnavailable("x".into()),
        Error::StatusChanged,
        Error::PayloadTooLarge,
        Error::TooManyAttempts { retry_after_secs: 1 },
        Error::internal("x"),
        Error::Unavailable("x".into()),
        Error::Config("x".into()),
    ];
    all.iter().for_each(exhaustive);
    all
}

async fn document() -> Value {
    let app = app(memory_store());
    let resp = auth::router(&app, request("GET", "/openapi.json", None, None)).await;
    assert_eq!(status(&resp), 200);
    assert_eq!(resp.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    json(&resp)
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item is an object");
            item.keys()
                .filter(|k| HTTP_METHODS.contains(&k.as_str()))
                .map(move |m| (path.clone(), m.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every `enum` under any `code` property of the document (the Error schema and each response's
/// narrowed copy).
fn code_enums<'a>(v: &'a Value, out: &mut Vec<&'a Vec<Value>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "code" {
                    if let Some(e) = child.get("enum").and_then(Value::as_array) {
                        out.push(e);
                    }
                }
                code_enums(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| code_enums(i, out)),
        _ => {}
    }
}

fn strings(values: &[Value]) -> BTreeSet<String> {
    values.iter().map(|v| v.as_str().expect("code is a string").to_string()).collect()
}

#[tokio::test]
async fn document_is_openapi_3_1() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let description = doc["info"]["description"].as_str().unwrap_or_default();
    assert!(description.contains("trailing slash"), "info.description must say every path takes a trailing slash");
    let bearer = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");
}

#[tokio::test]
async fn documented_routes_are_exactly_the_served_routes() {
    let doc = document().await;
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(p, m)| (p.to_string(), m.to_string())).collect();
    assert_eq!(documented_routes(&doc), expected);

    // Every documented route is served, with and without the trailing slash, and every other method
    // on the path is a 405 whose `Allow` lists exactly the documented methods.
    let app = app(memory_store());
    let mut paths: Vec<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
    paths.dedup();
    for path in paths {
        let documented: BTreeSet<String> =
            ROUTES.iter().filter(|(p, _)| *p == path).map(|(_, m)| m.to_uppercase()).collect();
        let concrete = path.replace("{id}", "01JTESTTESTTESTTESTTESTTES");
        let bare = concrete.trim_end_matches('/').to_string();
        for uri in [bare.clone(), format!("{bare}/")] {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let resp = local_server::dispatch(&app, request(method, &uri, None, None)).await;
                let code = status(&resp);
                if documented.contains(method) {
                    assert_ne!(code, 405, "{method} {uri} is documented but answers 405");
                    if code == 404 {
                        assert_ne!(json(&resp)["error"]["message"], "route not found", "{method} {uri} is not routed");
                    }
                } else {
                    assert_eq!(code, 405, "{method} {uri} is not documented but answers {code}");
                    let allow: BTreeSet<String> =
                        resp.headers()["allow"].to_str().unwrap().split(',').map(|m| m.trim().to_string()).collect();
                    assert_eq!(allow, documented, "Allow of {uri}");
                }
            }
        }
    }
}

#[tokio::test]
async fn error_codes_are_exactly_the_codes_of_the_error_type() {
    let doc = document().await;
    let expected: BTreeSet<String> = ERROR_CODES.iter().map(|c| c.to_string()).collect();
    assert_eq!(expected.len(), ERROR_CODES.len(), "ERROR_CODES has duplicates");

    // The literal list is what `Error::code` produces over every variant.
    let produced: BTreeSet<String> = every_error_variant().iter().map(|e| e.code().to_string()).collect();
    assert_eq!(produced, expected);

    let schema = &doc["components"]["schemas"]["Error"];
    let documented =
        schema["properties"]["error"]["properties"]["code"]["enum"].as_array().expect("Error schema has a code enum");
    assert_eq!(documented.len(), ERROR_CODES.len(), "Error code enum has duplicates");
    assert_eq!(strings(documented), expected);
    let required: BTreeSet<String> = strings(schema["properties"]["error"]["required"].as_array().unwrap());
    assert_eq!(required, BTreeSet::from(["code".to_string(), "message".to_string()]));
    assert!(schema["properties"]["error"]["properties"]["field"].is_object());

    // Each operation's narrowed list only names real codes.
    let mut enums = Vec::new();
    code_enums(&doc["paths"], &mut enums);
    code_enums(&doc["components"]["responses"], &mut enums);
    assert!(!enums.is_empty());
    for e in enums {
        let codes = strings(e);
        assert!(codes.is_subset(&expected), "unknown codes {:?}", codes.difference(&expected).collect::<Vec<_>>());
    }
}
