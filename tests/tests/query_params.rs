//! Query parameters on both stores: a parameter the route does not define (a typo such as
//! `?Type=yoga`) is a 400 naming it on every route, never a silently wider list; each defined one
//! still works, alone and together; a repeat is refused; and every bad rating, in the filter or
//! in an event's body, gets the one rating message.

use serde_json::{json, Value};
use shared::model::{Role, RATING_RULE};
use shared::Store;
use tests::*;

/// Method, path, token, body, and the end of the 400's message.
type Route<'a> = (&'a str, String, Option<&'a str>, Option<Value>, &'a str);

const FILTER_TAKES: &str = "this route takes: type, rating, from, to, limit, cursor";

fn get(uri: &str, token: Option<&str>) -> lambda_http::Request {
    request("GET", uri, token, None)
}

/// The 400 a route gives for `uri`: (status, code, field, message).
fn refusal(resp: &lambda_http::Response<lambda_http::Body>) -> (u16, String, Value, String) {
    let body = json(resp);
    (
        status(resp),
        error_code(resp),
        body["error"]["field"].clone(),
        body["error"]["message"].as_str().unwrap_or_default().to_string(),
    )
}

async fn a_typo_in_the_filter_is_named_not_ignored<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, fac) = user(&app, Role::Facilitator).await;
    for (title, kind) in [("Flow", "Yoga"), ("Breath", "Breathwork")] {
        let body = json!({"title": title, "type": kind, "datetime": in_days(3), "rating": 4.5});
        assert_eq!(status(&call(&app, request("POST", "/events/", Some(&fac), Some(body))).await), 201);
    }
    // The typo of the issue: `Type` is not `type`.
    let (code, err, field, message) = refusal(&call(&app, get("/events/filter?Type=yoga", None)).await);
    assert_eq!((code, err.as_str(), field), (400, "validation_failed", json!("Type")));
    assert_eq!(message, format!("unknown query parameter `Type`; {FILTER_TAKES}"));
    // The first unknown one is named, wherever it stands.
    let resp = call(&app, get("/events/filter?type=yoga&fro=2030-01-01T00:00:00Z&x=1", None)).await;
    assert_eq!(refusal(&resp).2, json!("fro"));
    // Every defined parameter, the list's `from` and `to` included, still filters.
    let uri = format!("/events/filter?type=yoga&rating=4&from={}&to={}&limit=5", in_days(1), in_days(5));
    let resp = call(&app, get(&uri, None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let titles: Vec<Value> = json(&resp).as_array().unwrap().iter().map(|e| e["title"].clone()).collect();
    assert_eq!(titles, vec![json!("Flow")]);
    // The list takes the range and paging, not the filter's own parameters.
    let resp = call(&app, get("/events?type=yoga", None)).await;
    assert_eq!(
        refusal(&resp),
        (
            400,
            "validation_failed".into(),
            json!("type"),
            "unknown query parameter `type`; this route takes: from, to, limit, cursor".into()
        )
    );
    assert_eq!(status(&call(&app, get("/events?limit=1&from=2020-01-01T00:00:00Z", None)).await), 200);
    // A repeat has no one meaning (API Gateway joins repeats with commas).
    let (code, _, field, message) = refusal(&call(&app, get("/events/filter?type=yoga&type=dance", None)).await);
    assert_eq!((code, field), (400, json!("type")));
    assert_eq!(message, "query parameter `type` is given more than once");
    // A name-less parameter is refused too, with an empty field.
    let (code, _, field, message) = refusal(&call(&app, get("/events?=yoga", None)).await);
    assert_eq!((code, field), (400, json!("")));
    assert!(message.starts_with("a query parameter without a name"), "{message}");
    // A bare `?` or a lone `&` carries no parameter.
    assert_eq!(status(&call(&app, get("/events?", None)).await), 200);
    assert_eq!(status(&call(&app, get("/events?&", None)).await), 200);
}

async fn every_route_refuses_parameters_it_does_not_define<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, fac) = user(&app, Role::Facilitator).await;
    let (_, att) = user(&app, Role::Attendee).await;
    let body = json!({"title": "Flow", "type": "Yoga", "datetime": in_days(3)});
    let event = json(&call(&app, request("POST", "/events/", Some(&fac), Some(body))).await);
    let event_id = event["id"].as_str().unwrap().to_string();
    let booking =
        json(&call(&app, request("POST", "/bookings/", Some(&att), Some(json!({"event_id": event_id.clone()})))).await);
    let booking_id = booking["id"].as_str().unwrap().to_string();
    let none = "this route takes none";
    let routes: Vec<Route> = vec![
        ("GET", "/health".into(), None, None, none),
        ("GET", "/openapi.json".into(), None, None, none),
        ("POST", "/auth/register".into(), None, Some(json!({})), none),
        ("POST", "/auth/login".into(), None, Some(json!({})), none),
        ("GET", "/auth/me".into(), Some(&att), None, none),
        ("GET", "/events/".into(), None, None, "this route takes: from, to, limit, cursor"),
        ("GET", "/events/filter".into(), None, None, FILTER_TAKES),
        ("POST", "/events".into(), Some(&fac), Some(json!({})), none),
        ("GET", format!("/events/{event_id}"), None, None, none),
        ("PATCH", format!("/events/{event_id}"), Some(&fac), Some(json!({"title": "New"})), none),
        ("PUT", format!("/events/{event_id}"), Some(&fac), Some(json!({"title": "New"})), none),
        ("DELETE", format!("/events/{event_id}"), Some(&fac), None, none),
        ("GET", format!("/events/{event_id}/bookings"), Some(&fac), None, "this route takes: limit, cursor"),
        ("POST", "/bookings".into(), Some(&att), Some(json!({"event_id": event_id.clone()})), none),
        ("GET", "/bookings/".into(), Some(&att), None, "this route takes: status"),
        ("GET", format!("/bookings/{booking_id}"), Some(&att), None, none),
        ("GET", format!("/bookings/{booking_id}/calendar.ics"), Some(&att), None, none),
        ("DELETE", format!("/bookings/{booking_id}"), Some(&att), None, none),
        ("POST", "/payments/webhook".into(), None, Some(json!({})), none),
    ];
    for (method, path, token, body, takes) in routes {
        let uri = format!("{path}?Unknown=1");
        let resp = call(&app, request(method, &uri, token, body)).await;
        let (code, err, field, message) = refusal(&resp);
        assert_eq!((code, err.as_str(), field), (400, "validation_failed", json!("Unknown")), "{method} {uri}");
        assert_eq!(message, format!("unknown query parameter `Unknown`; {takes}"), "{method} {uri}");
    }
    // Refused before anything else happened: the event and the booking are still there.
    assert_eq!(status(&call(&app, get(&format!("/events/{event_id}"), None)).await), 200);
    let resp = call(&app, get(&format!("/bookings/{booking_id}"), Some(&att))).await;
    assert_eq!(json(&resp)["status"], "confirmed");
    // The parameters each route defines are taken.
    assert_eq!(status(&call(&app, get("/bookings?status=cancelled", Some(&att))).await), 200);
    let resp = call(&app, get(&format!("/events/{event_id}/bookings?limit=1"), Some(&fac))).await;
    assert_eq!(status(&resp), 200);
    // A parameter of another route is still unknown here.
    let resp = call(&app, get("/bookings?limit=1", Some(&att))).await;
    assert_eq!(refusal(&resp).2, json!("limit"));
}

async fn every_bad_rating_gets_the_one_message<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, fac) = user(&app, Role::Facilitator).await;
    for bad in ["null", "abc", "", "%20", "5.01", "-1", "NaN", "inf", "4,5"] {
        let (code, err, field, message) =
            refusal(&call(&app, get(&format!("/events/filter?rating={bad}"), None)).await);
        assert_eq!((code, err.as_str(), field), (400, "validation_failed", json!("rating")), "rating={bad}");
        assert_eq!(message, RATING_RULE, "rating={bad}");
    }
    let body = |rating: Value| json!({"title": "Flow", "type": "Yoga", "datetime": in_days(3), "rating": rating});
    for bad in [json!(5.01), json!(-0.1), json!(1e100)] {
        let (code, err, field, message) =
            refusal(&call(&app, request("POST", "/events", Some(&fac), Some(body(bad.clone())))).await);
        assert_eq!(
            (code, err.as_str(), field, message.as_str()),
            (400, "validation_failed", json!("rating"), RATING_RULE),
            "{bad}"
        );
    }
    // A value of another type is still `invalid_json` (a wrong type), with the same rule.
    for bad in [json!("abc"), json!("4.5"), json!(true), json!([4])] {
        let (code, err, _, message) =
            refusal(&call(&app, request("POST", "/events", Some(&fac), Some(body(bad.clone())))).await);
        assert_eq!((code, err.as_str()), (400, "invalid_json"), "{bad}");
        assert_eq!(message, format!("field `rating` {RATING_RULE}"), "{bad}");
    }
    // `null` is no rating, and a good one is kept to two decimals.
    let resp = call(&app, request("POST", "/events", Some(&fac), Some(body(Value::Null)))).await;
    assert_eq!((status(&resp), json(&resp)["rating"].clone()), (201, Value::Null));
    let resp = call(&app, request("POST", "/events", Some(&fac), Some(body(json!(4.567))))).await;
    assert_eq!((status(&resp), json(&resp)["rating"].clone()), (201, json!(4.57)));
    let id = json(&resp)["id"].as_str().unwrap().to_string();
    let resp = call(&app, request("PATCH", &format!("/events/{id}"), Some(&fac), Some(json!({"rating": "x"})))).await;
    assert_eq!(refusal(&resp).3, format!("field `rating` {RATING_RULE}"));
    let resp = call(&app, request("PATCH", &format!("/events/{id}"), Some(&fac), Some(json!({"rating": null})))).await;
    assert_eq!((status(&resp), json(&resp)["rating"].clone()), (200, Value::Null));
}

store_tests!(
    a_typo_in_the_filter_is_named_not_ignored,
    every_route_refuses_parameters_it_does_not_define,
    every_bad_rating_gets_the_one_message,
);

/// Behind API Gateway (payload 2.0, `rawQueryString`), as the Lambda receives it.
#[tokio::test]
async fn a_typo_behind_api_gateway_is_refused_too() {
    let app = app(memory_store());
    let resp = events::router(&app, fixture("events-filter-unknown-param", &[])).await;
    let (code, err, field, message) = refusal(&resp);
    assert_eq!((code, err.as_str(), field), (400, "validation_failed", json!("Type")));
    assert_eq!(message, format!("unknown query parameter `Type`; {FILTER_TAKES}"));
    let resp = events::router(&app, fixture("events-filter", &[])).await;
    assert_eq!(status(&resp), 200);
    // A repeat arrives in `rawQueryString` as sent (`queryStringParameters` joins it with a comma).
    let text = fixture_text("events-filter", &[]).replace("type=yoga&rating=4.5", "type=yoga&type=dance");
    let resp = events::router(&app, lambda_http::request::from_str(&text).unwrap()).await;
    assert_eq!(refusal(&resp).2, json!("type"));
}

/// The query is a served route's concern: a method the path does not serve is a 405 with
/// `Allow`, and an unknown path a 404, whatever parameters come along (schemathesis sends
/// `TRACE /events/?limit=…` and expects the 405 the document promises).
#[tokio::test]
async fn a_wrong_method_or_path_is_answered_as_such_whatever_the_query() {
    let app = app(memory_store());
    for (method, uri, allow) in [
        ("TRACE", "/events/?limit=5", "GET, POST"),
        ("PUT", "/events/filter?Type=yoga", "GET"),
        ("POST", "/bookings/?bogus=1", ""),
        ("GET", "/auth/login?x=1", "POST"),
        ("DELETE", "/events/E1/bookings?limit=2", "GET"),
        ("GET", "/payments/webhook?x=1", "POST"),
    ] {
        let resp = call(&app, request(method, uri, None, None)).await;
        if allow.is_empty() {
            // A served pair: refused for its parameter, before authentication.
            assert_eq!(refusal(&resp).2, json!("bogus"), "{method} {uri}");
            continue;
        }
        assert_eq!(status(&resp), 405, "{method} {uri}: {:?}", json(&resp));
        assert_eq!(resp.headers()["allow"], allow, "{method} {uri}");
    }
    let resp = call(&app, request("GET", "/nowhere?Type=x", None, None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (404, "not_found".to_string()));
}
