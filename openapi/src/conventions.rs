//! What every operation shares and no single type declares: the API-wide description, the
//! bearer scheme, the server-side errors, `Retry-After`, the 405 rule, and closed objects. Applied
//! to the document utoipa builds, after the operations and types have produced it.

use crate::errors;
use serde_json::{json, Value};

const DESCRIPTION: &str = "Contract v3 of the Ahoum booking API.

Conventions:
- JSON in and out (`Content-Type: application/json`), but for one success body: `GET /bookings/{id}/calendar.ics` answers `text/calendar` (its errors are JSON).
- **Every path also answers with a trailing slash**: `/events` and `/events/`, `/auth/login` and `/auth/login/`, `/bookings/{id}` and `/bookings/{id}/` are the same route. Each path is listed once here.
- IDs are opaque strings (ULIDs); do not assume integers.
- Times are RFC 3339. Input without an offset (`2025-08-01T10:00:00`) is read as UTC; output is always UTC with `Z` and whole seconds.
- Errors are always `{\"error\": {\"code\", \"message\", \"field\"?}}` (schema `Error`), never a stack trace or HTML. Each operation lists the codes it can return. An unknown path is 404 `not_found`; a known path with a method it does not serve is 405 `method_not_allowed` with an `Allow` header. Any operation touching the database may answer 500 `internal` or 503 `unavailable` (with `Retry-After`).
- Request bodies are at most 64 KiB (else 413 `payload_too_large`); unknown body properties are 400 `unknown_field`.
- A query parameter the route does not define (`?Type=yoga`, `?fro=…`) is 400 `validation_failed` with `field` naming it: a typo never silently widens a list.
- Lists are JSON arrays; `limit` (default 50, max 100) and `cursor` page them, and a `Link: <…>; rel=\"next\"` header is present while more remain.
- Authentication: `Authorization: Bearer <JWT>` from `POST /auth/login` or `POST /auth/refresh` (HS256).
- Deployed, API Gateway throttles the whole API (100 requests/s, burst 200); its own 429 is not in this error format.
- Payments: an event with a `price` is paid through Stripe Checkout. Booking it answers `pending_payment` with `payment.checkout_url`; the seat is held for 31 minutes (`payment.expires_at`, exactly the Checkout Session's `expires_at`) and the booking becomes `confirmed` when Stripe reports the payment to `POST /payments/webhook`, or `expired` when the hold ends unpaid. A deployment without Stripe configured refuses priced events (400 `validation_failed`, field `price`).

This document is generated from the service's types (`make openapi`); do not edit it by hand.";

const BEARER: &str = "Access token from `POST /auth/login` or `POST /auth/refresh`: a JWT signed with HS256 only (the algorithm is pinned; any other `alg` is rejected), with a `kid` header naming the signing key (a token whose `kid` is unknown is rejected). Claims `sub` (user id), `role`, `iat`, `exp` (default 1 h), `iss`, `aud`; `exp`, `iss`, `aud` and `sub` are required and checked. Failures are 401 `unauthorized`.";

const UNAUTHORIZED: &str = "`unauthorized`: bearer token missing, malformed, badly signed, not HS256, with an unknown `kid`, expired, or with the wrong `iss`/`aud`.";

/// Schemas other schemas extend (`allOf`) or that describe a third party's payload: left open.
const OPEN_SCHEMAS: &[&str] = &["Booking", "StripeEvent"];

/// Response bodies: every property is always written (`null` when empty), so all are required.
/// (`WebhookReceived` leaves `booking_id` out when it has none.)
const VIEWS: &[&str] = &[
    "User",
    "Token",
    "Event",
    "EventSnapshot",
    "Booking",
    "Payment",
    "DeliveryStatus",
    "CrmMessage",
    "BookingHistory",
    "Health",
    "Deleted",
    "LoggedOut",
    "PasswordChanged",
    "WaitlistJoined",
    "WaitlistEntry",
    "Waiting",
    "WaitlistLeft",
];

/// Operations that never touch the database: no 500/503.
const NO_STORE: &[&str] = &["health", "openapi"];

pub fn apply(doc: &mut Value) {
    doc["info"] = json!({
        "title": "Ahoum booking API",
        "version": "3.0.0",
        "summary": "Events, seat bookings and accounts, served by AWS Lambda behind API Gateway.",
        "description": DESCRIPTION,
    });
    doc["servers"] = json!([
        {"url": "http://127.0.0.1:3000", "description": "Local server (`make run`)"},
        {
            "url": "https://{apiId}.execute-api.{region}.amazonaws.com",
            "description": "Deployed API Gateway HTTP API (`$default` stage, no stage prefix); see the stack's `ApiUrl` output.",
            "variables": {"apiId": {"default": "example"}, "region": {"default": "us-east-1"}}
        }
    ]);
    doc["tags"] = json!([
        {"name": "auth", "description": "Accounts and tokens"},
        {"name": "events", "description": "Browse, filter and manage events"},
        {"name": "bookings", "description": "Book, list and cancel seats"},
        {"name": "waitlist", "description": "Wait for a seat of a full event; freed seats go to the first in line"},
        {"name": "payments", "description": "Stripe Checkout webhook"},
        {"name": "operations", "description": "Health and this document"},
    ]);
    let components = &mut doc["components"];
    components["securitySchemes"] =
        json!({"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": BEARER}});
    components["schemas"]["Error"] = errors::error_schema();
    components["responses"] = json!({
        "MethodNotAllowed": {
            "description": "Known path, method it does not serve. Carries an `Allow` header listing the methods it does serve. Not listed per operation (OpenAPI documents served methods only).",
            "content": {"application/json": {
                "schema": to_value(errors::narrowed(&[shared::Error::MethodNotAllowed("")])),
                "example": errors::example("method_not_allowed"),
            }},
            "headers": {"Allow": {"description": "The methods the path supports, e.g. `GET, POST`.", "schema": {"type": "string"}}}
        },
        "NotFoundRoute": {
            "description": "Unknown path: JSON 404, never an HTML page.",
            "content": {"application/json": {
                "schema": to_value(errors::narrowed(&[shared::Error::NotFound("route")])),
                "example": shared::Error::NotFound("route").body(),
            }}
        }
    });
    schemas(doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            path_item(item);
        }
    }
    tidy(&mut doc["paths"]);
    tidy(&mut doc["components"]);
}

/// utoipa wraps an inlined type that carries a field's doc comment as
/// `allOf: [type, {"type": "object", "description": …}]`, which no string can match: the
/// description (and a default) move up beside the type. Doc comments wrapped at 100 columns
/// become one line.
fn tidy(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("allOf").cloned() {
                let (bare, typed): (Vec<Value>, Vec<Value>) =
                    items.into_iter().partition(|i| i["type"] == "object" && i.get("properties").is_none());
                if !bare.is_empty() {
                    for extra in bare {
                        for (k, val) in extra.as_object().into_iter().flatten() {
                            if k != "type" {
                                map.insert(k.clone(), val.clone());
                            }
                        }
                    }
                    map.remove("allOf");
                    if let [only] = typed.as_slice() {
                        for (k, val) in only.as_object().into_iter().flatten() {
                            map.entry(k.clone()).or_insert_with(|| val.clone());
                        }
                    } else {
                        map.insert("allOf".into(), Value::Array(typed));
                    }
                }
            }
            // `oneOf: [{"type": "string", "enum": [...]}, {"type": "null"}]` (an optional inlined
            // enum) is written as the one schema `{"type": ["string", "null"], "enum": [..., null]}`.
            if let Some(Value::Array(items)) = map.get("oneOf").cloned() {
                if let [variant, null] = items.as_slice() {
                    if *null == json!({"type": "null"}) && variant["type"] == "string" && variant.get("enum").is_some()
                    {
                        let mut values = variant["enum"].as_array().cloned().unwrap_or_default();
                        values.push(Value::Null);
                        map.remove("oneOf");
                        for (k, v) in variant.as_object().into_iter().flatten() {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                        map.insert("type".into(), json!(["string", "null"]));
                        map.insert("enum".into(), Value::Array(values));
                    }
                }
            }
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = d.replace(".\n\n", "\u{0}").replace('\n', " ").replace('\u{0}', ".\n\n");
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn schemas(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    // The attendee list row is a booking plus who made it and the CRM state.
    let own = schemas["EventBooking"].take();
    schemas["EventBooking"] = json!({
        "description": "A booking of the event as its owner (or an admin) sees it; `payment.checkout_url` is always null here.",
        "allOf": [{"$ref": "#/components/schemas/Booking"}, own],
    });
    schemas["WebhookReceived"]["properties"]["received"]["const"] = json!(true);
    // No property at all: `close` only closes schemas that list some.
    schemas["WaitlistJoin"]["additionalProperties"] = json!(false);
    for name in VIEWS {
        require_all(&mut schemas[*name]);
    }
    require_all(&mut schemas["EventBooking"]["allOf"][1]);
    if let Some(update) = schemas.get_mut("EventUpdate") {
        update["minProperties"] = json!(1);
        update["description"] = json!(format!(
            "Partial update (for both PUT and PATCH): only the properties sent change. At least one property is required (an empty object is 400 `validation_failed` with field `body`). {}",
            crate::schemas::EVENT_INPUT
        ));
    }
    if let Some(all) = schemas.as_object_mut() {
        for (name, schema) in all.iter_mut() {
            if !OPEN_SCHEMAS.contains(&name.as_str()) {
                close(schema);
            }
        }
    }
}

fn require_all(schema: &mut Value) {
    if let Some(props) = schema["properties"].as_object() {
        let all: Vec<Value> = props.keys().map(|k| json!(k)).collect();
        schema["required"] = Value::Array(all);
    }
}

/// `additionalProperties: false` on every object that lists its properties: the inputs refuse
/// others (`deny_unknown_fields`), and the views never write others.
fn close(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else { return };
    if map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), json!(false));
    }
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(close);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(items) = map.get_mut(key).and_then(Value::as_array_mut) {
            items.iter_mut().for_each(close);
        }
    }
    // An `allOf` part stays open (closed on its own it would refuse the other parts'
    // properties); what it nests is closed.
    if let Some(items) = map.get_mut("allOf").and_then(Value::as_array_mut) {
        for props in items.iter_mut().filter_map(|i| i.get_mut("properties").and_then(Value::as_object_mut)) {
            props.values_mut().for_each(close);
        }
    }
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn path_item(item: &mut Value) {
    let Some(map) = item.as_object_mut() else { return };
    let allow: Vec<String> = METHODS.iter().filter(|m| map.contains_key(**m)).map(|m| m.to_uppercase()).collect();
    for method in METHODS {
        if let Some(op) = map.get_mut(*method) {
            operation(op);
        }
    }
    map.insert(
        "description".into(),
        json!(format!(
            "Other methods: 405 `method_not_allowed` with `Allow: {}` (see `#/components/responses/MethodNotAllowed`).",
            allow.join(", ")
        )),
    );
}

fn operation(op: &mut Value) {
    let id = op["operationId"].as_str().unwrap_or_default().to_string();
    let bearer = op.get("security").is_some();
    if !bearer {
        op["security"] = json!([]);
    }
    let has_body = op.get("requestBody").is_some();
    let has_query = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        params.iter_mut().for_each(parameter);
    }
    let responses = op["responses"].as_object_mut().expect("every operation has responses");
    let mut add = |status: &str, description: &str, body: fn() -> Value| {
        responses.entry(status).or_insert_with(
            || json!({"description": description, "content": {"application/json": {"schema": body()}}}),
        );
    };
    if bearer {
        add("401", UNAUTHORIZED, || to_value(<errors::Unauthorized as utoipa::PartialSchema>::schema()));
    }
    if has_body {
        add("413", "Request body over 64 KiB (65536 bytes).", || {
            to_value(<errors::PayloadTooLarge as utoipa::PartialSchema>::schema())
        });
    }
    if has_query {
        add("400", "A query parameter this route does not define (`field` names it).", || {
            to_value(<errors::BadParam as utoipa::PartialSchema>::schema())
        });
    }
    if !NO_STORE.contains(&id.as_str()) {
        add("500", "Server-side failure. Generic message only; the detail goes to the log.", || {
            to_value(<errors::Internal as utoipa::PartialSchema>::schema())
        });
        add("503", "A dependency (DynamoDB) is throttling or down; retry after the `Retry-After` seconds.", || {
            to_value(<errors::Unavailable as utoipa::PartialSchema>::schema())
        });
    }
    if let Some(replayed) = responses.get_mut("201").and_then(|r| r.get_mut("headers")?.get_mut("Idempotent-Replayed"))
    {
        replayed["schema"] = json!({"type": "string", "const": "true"});
    }
    let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (status, mut response) in sorted {
        error_response(&status, &mut response);
        responses.insert(status, response);
    }
}

/// The example an error response shows is what `Error::body` writes for its first code; 429 and
/// 503 say when to come back.
fn error_response(status: &str, response: &mut Value) {
    if !status.starts_with('4') && !status.starts_with('5') {
        return;
    }
    let content = &mut response["content"]["application/json"];
    if content.get("example").is_none() {
        let first = first_code(&content["schema"]);
        if let Some(example) = first.as_deref().and_then(errors::example) {
            content["example"] = example;
        }
    }
    let retry_after = match status {
        "429" => Some("Seconds until the failed-login window closes (at least 1)."),
        "503" => Some("Seconds to wait before retrying (1)."),
        _ => None,
    };
    if let Some(description) = retry_after {
        response["headers"] = json!({"Retry-After": {
            "description": description, "schema": {"type": "integer", "minimum": 1}
        }});
    }
}

fn first_code(schema: &Value) -> Option<String> {
    schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"][0].as_str().map(str::to_string)
}

/// A query parameter that is absent is simply left out; `null` is not a value a query can carry.
fn parameter(param: &mut Value) {
    let schema = &mut param["schema"];
    if let Some(types) = schema.get("type").and_then(Value::as_array) {
        let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        schema["type"] = if rest.len() == 1 { rest[0].clone() } else { Value::Array(rest) };
    }
    if let Some(one_of) = schema.get("oneOf").and_then(Value::as_array) {
        let rest: Vec<Value> = one_of.iter().filter(|s| s["type"] != "null").cloned().collect();
        if rest.len() == 1 {
            *schema = rest[0].clone();
        }
    }
}
