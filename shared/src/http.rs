//! Request/response helpers shared by every function's router: the JSON error mapping, body
//! parsing with precise 400s, path segments and query parameters that work the same behind API
//! Gateway and in the local server.

use crate::error::{Error, Result};
use crate::jwt::{AuthUser, TokenService};
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON response, serialised in one pass into one buffer (views are borrowed structs, not
/// `serde_json::Value` trees).
pub fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    json_response_sized(status, body, 256)
}

/// A JSON array of `items`, its buffer sized for the page up front (a page of events grew its
/// buffer seven times from serde_json's 128 bytes).
pub fn json_list_response<T: serde::Serialize>(status: StatusCode, items: &[T]) -> Response<Body> {
    json_response_sized(status, items, 2 + items.len() * 640)
}

fn json_response_sized<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T, capacity: usize) -> Response<Body> {
    let mut buf = Vec::with_capacity(capacity);
    // Serialising our own view types cannot fail (string keys, finite numbers).
    let text = match serde_json::to_writer(&mut buf, body).map_err(|e| e.to_string()) {
        // serde_json writes UTF-8 only: the check cannot fail.
        Ok(()) => String::from_utf8(buf).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "response body did not serialise");
        String::from(r#"{"error":{"code":"internal","message":"internal server error"}}"#)
    });
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The single place an [`Error`] becomes a response. Server-side causes are logged here and the
/// client gets the generic message of [`Error::body`].
pub fn error_response(err: &Error) -> Response<Body> {
    match err {
        Error::Internal(_) | Error::Config(_) => tracing::error!(error = %err, "request failed"),
        Error::Unavailable(_) => tracing::warn!(error = %err, "dependency unavailable"),
        _ => tracing::debug!(code = err.code(), "client error"),
    }
    let mut resp = json_response(err.status(), &err.body());
    match err {
        Error::TooManyAttempts { retry_after_secs } => {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        Error::MethodNotAllowed(allow) => {
            resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        Error::Unavailable(_) | Error::StatusChanged => {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    resp
}

/// Turns a handler's outcome into the response; domain failures are never an `Err` for Lambda.
pub fn respond(result: Result<Response<Body>>) -> Response<Body> {
    result.unwrap_or_else(|e| error_response(&e))
}

/// The request path the routers match, as the client addressed the API: without the stage.
///
/// A named stage is part of the URL and only `$default` is served from its base
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-stages.html), and the
/// payload 2.0 `rawPath` keeps it: `/prod/events/1` for `.../prod/events/1` (reported in
/// dougmoscrop/serverless-http#143; lambda_http's fixture
/// `apigw_v2_proxy_request_with_stage_in_path.json` has `/Prod/my/path` for stage `Prod`).
/// `raw_http_path` is that `rawPath` as given, whatever `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`
/// says (the variable only stops lambda_http from *adding* the stage to the URI), so the stage is
/// stripped here, once, for every router. The local server sets the URI path only.
pub fn path(req: &Request) -> String {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        return req.uri().path().to_string();
    }
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.as_deref(),
        _ => None,
    };
    match stage.filter(|s| !s.is_empty() && *s != "$default") {
        Some(stage) => strip_stage(raw, stage).to_string(),
        None => raw.to_string(),
    }
}

/// `/{stage}/rest` → `/rest`, `/{stage}` → `/`; any other path unchanged (a custom domain's API
/// mapping sends no stage in the path).
fn strip_stage<'a>(raw: &'a str, stage: &str) -> &'a str {
    match raw.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => raw,
    }
}

/// Path segments without empty ones, so `/events` and `/events/` route the same.
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Every query parameter as sent, repeats included, in order: from the URI, which holds payload
/// 2.0's `rawQueryString` behind API Gateway (lambda_http appends it) and the request line in the
/// local server; else from the event's parameters (an event without `rawQueryString`), where
/// repeats are kept but the order is not.
fn query_pairs(req: &Request) -> Vec<(String, String)> {
    match req.uri().query().filter(|q| !q.is_empty()) {
        Some(q) => url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        None => req
            .query_string_parameters_ref()
            .map(|q| q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
            .unwrap_or_default(),
    }
}

/// 400 `validation_failed` naming the first query parameter the route does not define (`allowed`,
/// matched exactly: `Type` is not `type`) or one given twice. A typo must not silently widen a
/// list, and a repeat has no one meaning: API Gateway's payload 2.0 joins repeats with commas in
/// `queryStringParameters` and keeps them in `rawQueryString`
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html),
/// a naive parser takes the first or the last. Routers call it through [`served`].
pub fn check_query(req: &Request, allowed: &[&str]) -> Result<()> {
    // Built only for a refusal: every request passes through here.
    let takes = || {
        if allowed.is_empty() {
            "this route takes none".to_string()
        } else {
            format!("this route takes: {}", allowed.join(", "))
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for (name, _) in query_pairs(req) {
        if !allowed.contains(&name.as_str()) {
            let what = if name.is_empty() {
                "a query parameter without a name".to_string()
            } else {
                format!("unknown query parameter `{name}`")
            };
            return Err(Error::validation(name, format!("{what}; {}", takes())));
        }
        if seen.contains(&name) {
            return Err(Error::validation(name.clone(), format!("query parameter `{name}` is given more than once")));
        }
        seen.push(name);
    }
    Ok(())
}

/// A served route: its handler runs once the query names only parameters the route defines.
/// Routers call it in the arm a (path, method) pair matched, so a method the path does not serve
/// still gets its 405 (with `Allow`) and an unknown path its 404, whatever the query says. The
/// handler comes as a closure, not a future: a future passed by value is kept twice in this one's
/// state (rust-lang/rust#62958), which nearly doubled the bookings router's future (8 KiB vs 4 KiB
/// in a debug build) and overflowed a test thread's stack.
pub async fn served<F, Fut>(req: &Request, allowed: &[&str], handler: F) -> Result<Response<Body>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Response<Body>>>,
{
    check_query(req, allowed)?;
    handler().await
}

/// Query parameters by name, for a route whose router has passed [`check_query`] (so each name is
/// one the route defines, given once).
pub fn query(req: &Request) -> HashMap<String, String> {
    query_pairs(req).into_iter().collect()
}

/// Parses a JSON body with the contract's error codes: oversized → 413, not JSON → `invalid_json`,
/// wrong types → `invalid_json` naming the field, unknown fields → `unknown_field`.
///
/// The body is read as a whole JSON value first: deserialising straight into `T` would report an
/// unknown field (or a wrong type) while the rest of the stream is still unread, so a truncated
/// or trailing-garbage body would be classified by whatever came first.
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge);
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::InvalidJson("request body must be a JSON object".into()));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| Error::InvalidJson("request body is not valid JSON".into()))?;
    if !value.is_object() {
        return Err(Error::InvalidJson("request body must be a JSON object".into()));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let msg = e.into_inner().to_string();
        match msg.strip_prefix("unknown field `") {
            Some(rest) => Error::UnknownField(rest.split('`').next().unwrap_or_default().to_string()),
            None if field == "." => Error::InvalidJson("request body does not match this route".into()),
            // A field's own rule (e.g. the rating's), where a deserializer states one.
            None if msg.starts_with("must ") => Error::InvalidJson(format!("field `{field}` {msg}")),
            None => Error::InvalidJson(format!("field `{field}` has the wrong type")),
        }
    })
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The verified caller, or 401. Role and id come from the token only.
pub fn authenticate(req: &Request, tokens: &TokenService) -> Result<AuthUser> {
    let token = bearer(req).ok_or(Error::Unauthorized("missing bearer token"))?;
    tokens.verify(token)
}

/// 405 with an `Allow` header for a known path with the wrong method.
pub fn method_not_allowed(allow: &'static str) -> Error {
    Error::MethodNotAllowed(allow)
}

/// An id taken from the path. Ids are ULIDs, but clients must treat them as opaque, so any
/// plausible id is looked up; anything else (too long for a DynamoDB key, odd characters) is a
/// plain 404 rather than a request the database would reject with a 500.
pub fn resource_id(raw: &str, what: &'static str) -> Result<String> {
    let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Error::NotFound(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Request {
        http::Request::builder().method("POST").uri("/x").body(Body::Text(text.into())).unwrap()
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        title: Option<String>,
        n: Option<u32>,
    }

    #[test]
    fn a_body_that_is_not_json_is_invalid_json_whatever_it_starts_with() {
        for text in
            ["{\"title\": ", "{\"a\":1}}", "{\"zzz\": 1,", "{\"title\": \"x\"} trailing", "[1,2]", "\"s\"", "nul"]
        {
            let err = parse_json::<Input>(&body(text)).unwrap_err();
            assert_eq!(err.code(), "invalid_json", "{text:?}: {err}");
        }
        assert_eq!(parse_json::<Input>(&body("{\"a\":1}")).unwrap_err().code(), "unknown_field");
        let err = parse_json::<Input>(&body("{\"n\": -1}")).unwrap_err();
        assert_eq!((err.code(), err.to_string().contains("`n`")), ("invalid_json", true));
        assert_eq!(parse_json::<Input>(&body(" {\"n\": 7} ")).unwrap().n, Some(7));
    }

    #[test]
    fn query_names_come_from_the_uri_or_else_the_events_parameters() {
        let get = |uri: &str| http::Request::builder().uri(uri).body(Body::Empty).unwrap();
        let field = |req: &Request, allowed: &[&str]| {
            check_query(req, allowed).err().map(|e| e.body()["error"]["field"].as_str().unwrap_or("?").to_string())
        };
        assert_eq!(field(&get("/e?type=a&limit=2"), &["type", "limit"]), None);
        assert_eq!(field(&get("/e?type=a&Type=b&x=1"), &["type"]), Some("Type".into()), "the first unknown, in order");
        assert_eq!(field(&get("/e?type=a&type=a"), &["type"]), Some("type".into()));
        assert_eq!(field(&get("/e?%74ype=a"), &["type"]), None, "names are compared decoded");
        assert_eq!(query(&get("/e?type=Yo%20ga")).get("type").map(String::as_str), Some("Yo ga"));
        // An event that carries only `queryStringParameters`.
        let params: HashMap<String, Vec<String>> = HashMap::from([("type".into(), vec!["a".into(), "b".into()])]);
        let req = get("/e").with_query_string_parameters(params);
        assert_eq!(field(&req, &["type"]), Some("type".into()));
        let req = get("/e").with_query_string_parameters(HashMap::from([("rating".to_string(), "4".to_string())]));
        assert_eq!(field(&req, &["type"]), Some("rating".into()));
        assert_eq!(field(&req, &["rating"]), None);
    }

    #[test]
    fn a_named_stage_is_stripped_once_and_only_as_a_whole_segment() {
        assert_eq!(strip_stage("/prod/events/1", "prod"), "/events/1");
        assert_eq!(strip_stage("/prod", "prod"), "/");
        assert_eq!(strip_stage("/prod/", "prod"), "/");
        assert_eq!(strip_stage("/production/events", "prod"), "/production/events");
        assert_eq!(strip_stage("/events/prod", "prod"), "/events/prod");
        assert_eq!(strip_stage("/prod/prod/x", "prod"), "/prod/x");
    }

    #[test]
    fn path_ids_that_no_key_could_hold_are_404() {
        assert_eq!(resource_id("01J8Z4A1B2C3D4E5F6G7H8J9K0", "event").unwrap(), "01J8Z4A1B2C3D4E5F6G7H8J9K0");
        // DynamoDB refuses partition keys over 2048 bytes with a ValidationException (moto does
        // not), which would otherwise surface as a 500.
        for bad in ["", &"E".repeat(65), "%00", "a b", "ü", "../etc"] {
            assert_eq!(resource_id(bad, "event").unwrap_err().code(), "not_found", "{bad:?}");
        }
    }
}
