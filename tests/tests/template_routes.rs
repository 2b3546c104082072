//! `template.yaml`'s HTTP API routes against API Gateway's rules (`tests::apigw`, each rule with
//! its source): the route keys are ones API Gateway creates (syntax, a greedy variable only last,
//! no duplicates, one variable name per path level), and every request a router serves, in both
//! slash forms and on a named stage, reaches the function that serves it.

use serde_yaml::Value;
use std::collections::BTreeSet;
use tests::apigw::{check_route_keys, function_by_documentation, parse_path, route, select, Behaviour, Route};

fn template() -> Value {
    let text = std::fs::read_to_string(tests::workspace_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    tests::apigw::untag(v).get(key).map(tests::apigw::untag)
}

fn routes(t: &Value) -> Vec<Route> {
    tests::apigw::template_routes(t)
}

/// The routes `template.yaml` deploys (docs/deploy.md and the README list the same).
const ROUTE_TABLE: &[(&str, &str)] = &[
    ("ANY /auth/{proxy+}", "AuthFunction"),
    ("ANY /health", "AuthFunction"),
    ("ANY /health/{proxy+}", "AuthFunction"),
    ("ANY /openapi.json", "AuthFunction"),
    ("ANY /openapi.json/{proxy+}", "AuthFunction"),
    ("ANY /events", "EventsFunction"),
    ("ANY /events/{id}", "EventsFunction"),
    ("ANY /events/{id}/{proxy+}", "EventsFunction"),
    ("$default", "EventsFunction"),
    ("ANY /events/{id}/bookings", "BookingsFunction"),
    ("ANY /events/{id}/bookings/{proxy+}", "BookingsFunction"),
    ("ANY /bookings", "BookingsFunction"),
    ("ANY /bookings/{proxy+}", "BookingsFunction"),
    ("ANY /payments/webhook", "PaymentsFunction"),
];

/// Every path of the contract (docs/api.md) and the function that serves it; `{id}` is a ULID.
const CONTRACT_PATHS: &[(&str, &str)] = &[
    ("/auth/register", "AuthFunction"),
    ("/auth/login", "AuthFunction"),
    ("/auth/me", "AuthFunction"),
    ("/health", "AuthFunction"),
    ("/openapi.json", "AuthFunction"),
    ("/events", "EventsFunction"),
    ("/events/filter", "EventsFunction"),
    ("/events/{id}", "EventsFunction"),
    ("/events/{id}/cancel", "EventsFunction"),
    ("/events/{id}/waitlist", "EventsFunction"),
    ("/events/{id}/bookings", "BookingsFunction"),
    ("/bookings", "BookingsFunction"),
    ("/bookings/{id}", "BookingsFunction"),
    ("/bookings/{id}/calendar.ics", "BookingsFunction"),
];

/// The request forms whose function depends on behaviour AWS does not document (the
/// [`Behaviour`] switches); docs/deploy.md and README.md list them as verified on paper only.
const PAPER_ONLY: &[&str] = &[
    "/auth/register/",
    "/auth/login/",
    "/auth/me/",
    "/health/",
    "/openapi.json/",
    "/events/{id}/bookings/",
    "/bookings/",
    "/bookings/{id}/",
    "/bookings/{id}/calendar.ics/",
];

fn concrete(path: &str) -> String {
    path.replace("{id}", "01JBQ2S3T4V5W6X7Y8Z9A0B1C2")
}

fn read(doc: &str) -> String {
    std::fs::read_to_string(tests::workspace_root().join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

/// GIVEN template.yaml WHEN its route keys are checked as API Gateway checks them on creation
/// THEN none is refused, they are exactly the documented table, and FailOnWarnings turns any
/// route API Gateway would drop into a failed deploy.
#[test]
fn route_keys_are_ones_api_gateway_creates() {
    let t = template();
    let fail_on_warnings = get(&t, "Resources")
        .and_then(|r| get(r, "HttpApi"))
        .and_then(|a| get(a, "Properties"))
        .and_then(|p| get(p, "FailOnWarnings"))
        .and_then(Value::as_bool);
    assert_eq!(fail_on_warnings, Some(true), "FailOnWarnings turns a route API Gateway drops into a failed deploy");
    let routes = routes(&t);
    let problems = check_route_keys(routes.iter().map(|r| r.key.as_str()));
    assert!(problems.is_empty(), "API Gateway would refuse these routes:\n{}", problems.join("\n"));
    let deployed: BTreeSet<(&str, &str)> = routes.iter().map(|r| (r.key.as_str(), r.function.as_str())).collect();
    let table: BTreeSet<(&str, &str)> = ROUTE_TABLE.iter().copied().collect();
    assert_eq!(deployed, table, "template.yaml routes vs ROUTE_TABLE (and docs/deploy.md)");
    for doc in ["docs/deploy.md", "README.md"] {
        let text = read(doc);
        for (key, _) in ROUTE_TABLE {
            assert!(text.contains(&format!("`{key}`")), "{doc} does not list the route `{key}`");
        }
    }
}

/// The checks refuse what API Gateway (or SAM) refuses, and accept AWS's own example.
#[test]
fn route_key_checks_refuse_what_api_gateway_refuses() {
    // The template before this check: `{proxy+}` and `{id}` under `/events` (409 on creation).
    let before = [
        "ANY /auth/{proxy+}",
        "ANY /health",
        "ANY /openapi.json",
        "$default",
        "ANY /events",
        "ANY /events/{proxy+}",
        "ANY /events/{id}/bookings",
        "ANY /events/{id}/bookings/{proxy+}",
        "ANY /bookings",
        "ANY /bookings/{proxy+}",
        "ANY /payments/webhook",
    ];
    let problems = check_route_keys(before);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems.iter().all(|p| p.contains("conflicting variable on the same hierarchical level")),
        "{problems:#?}"
    );
    // The reported rename: `{id}` → `{productId}` while the old route still exists.
    assert_eq!(check_route_keys(["GET /products/{id}", "GET /products/{productId}"]).len(), 1);
    assert_eq!(check_route_keys(["GET /a/{x}/b", "GET /a/{y+}"]).len(), 1, "a greedy variable is a variable");
    assert_eq!(check_route_keys(["GET /a", "GET /a"]).len(), 1, "duplicate key");
    // The calendar file's own route key beside the greedy bookings route: `{id}` and `{proxy+}`
    // under `/bookings`. It needs none (`calendar_file_reaches_the_bookings_function_without_a_route_key`).
    let calendar = ["ANY /bookings", "ANY /bookings/{proxy+}", "GET /bookings/{id}/calendar.ics"];
    assert_eq!(check_route_keys(calendar).len(), 1, "{:#?}", check_route_keys(calendar));
    for bad in [
        "GET /events/",
        "GET /events//x",
        "GET /{proxy+}/x",
        "GET events",
        "FETCH /x",
        "/x",
        "GET /{a-b}",
        "GET /b/{id}.ics",
    ] {
        assert_eq!(check_route_keys([bad]).len(), 1, "{bad} accepted");
    }
    assert!(parse_path("/x/{bad name}").is_err() && parse_path("/x/{a}}").is_err());
    // AWS's example (http-api-develop-routes.html): a literal beside a variable is fine, the same
    // name under the same parent is one variable, and different parents are independent.
    let ok = ["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default"];
    assert_eq!(check_route_keys(ok), Vec::<String>::new());
    assert_eq!(check_route_keys(["GET /a/{id}", "GET /a/{id}/b/{x}", "GET /c/{other}"]), Vec::<String>::new());
}

/// The model against the example AWS gives for it (http-api-develop-routes.html, "Routing API
/// requests"): with `GET /pets/dog/1`, `GET /pets/dog/{id}`, `GET /pets/{proxy+}`, `ANY /{proxy+}`
/// and `$default`, these requests select these routes under every behaviour.
#[test]
fn routing_model_reproduces_the_documented_example() {
    let routes: Vec<Route> =
        ["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default"]
            .into_iter()
            .map(|k| route(k, k))
            .collect();
    for (method, path, want) in [
        ("GET", "/pets/dog/1", "GET /pets/dog/1"),
        ("GET", "/pets/dog/2", "GET /pets/dog/{id}"),
        ("GET", "/pets/cat/1", "GET /pets/{proxy+}"),
        ("POST", "/test/5", "ANY /{proxy+}"),
    ] {
        assert_eq!(function_by_documentation(&routes, method, path), Ok(want.to_string()), "{method} {path}");
    }
    // What it does not document is what the switches cover: `/pets/` is an empty remainder.
    assert!(function_by_documentation(&routes, "GET", "/pets/").is_err());
}

/// GIVEN the deployed routes WHEN every contract path is requested with and without a trailing
/// slash, with every method THEN each reaches the function that serves it under the reported
/// behaviour, and exactly the [`PAPER_ONLY`] forms depend on behaviour AWS does not document
/// (the docs list those).
#[test]
fn every_contract_path_reaches_its_function_in_both_slash_forms() {
    let routes = routes(&template());
    let mut paper_only = Vec::new();
    for (path, function) in CONTRACT_PATHS {
        for form in [path.to_string(), format!("{path}/")] {
            let p = concrete(&form);
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"] {
                let r = select(&routes, method, &p, Behaviour::REPORTED).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(&r.function, function, "{method} {p} selects {}", r.key);
            }
            match function_by_documentation(&routes, "GET", &p) {
                Ok(f) => assert_eq!(&f, function, "{p}"),
                Err(how) => {
                    println!("{form}: {how}");
                    paper_only.push(form);
                }
            }
        }
    }
    assert_eq!(paper_only, PAPER_ONLY, "request forms whose function AWS does not document");
    for doc in ["docs/deploy.md", "README.md"] {
        let text = read(doc);
        for form in PAPER_ONLY {
            assert!(text.contains(&format!("`{form}`")), "{doc} does not list `{form}` as verified on paper only");
        }
    }
    // `/events/` matches no route key and reaches the events function through `$default`, which
    // AWS documents; unknown paths get the events router's JSON 404 the same way.
    for p in ["/events/", "/", "/no/such/path", "/eventsx", "/bookingsx/1", "/auth"] {
        assert_eq!(function_by_documentation(&routes, "GET", p), Ok("EventsFunction".into()), "{p}");
        assert_eq!(select(&routes, "GET", p, Behaviour::REPORTED).unwrap().key, "$default", "{p}");
    }
}

/// The event's sub-resources (`/events/{id}/cancel`, `/events/{id}/waitlist` for POST, DELETE and
/// GET) need no route key of their own: they reach the events function through
/// `ANY /events/{id}/{proxy+}` by documentation (a greedy path variable "catches all child
/// resources of a route", [ROUTES]), in both slash forms (`/events/{id}/waitlist/` reaches the
/// same function whether or not a remainder ending in `/` matches the greedy route: `$default` is
/// the events function's too), while the event's bookings stay with the bookings function (a full
/// match is preferred to a greedy one).
///
/// [ROUTES]: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
#[test]
fn event_subresources_reach_the_events_function_without_a_new_route() {
    let routes = routes(&template());
    for sub in ["cancel", "cancel/", "waitlist", "waitlist/", "waitlist/01JBQ2S3T4V5W6X7Y8Z9A0B1C3"] {
        let p = concrete(&format!("/events/{{id}}/{sub}"));
        for method in ["POST", "DELETE", "GET"] {
            assert_eq!(function_by_documentation(&routes, method, &p), Ok("EventsFunction".into()), "{method} {p}");
        }
    }
    assert!(routes.iter().all(|r| !r.key.contains("waitlist")), "no route key of its own");
    let p = concrete("/events/{id}/bookings");
    assert_eq!(function_by_documentation(&routes, "GET", &p), Ok("BookingsFunction".into()));
}

/// `GET /bookings/{id}/calendar.ics` reaches the bookings function through `ANY /bookings/{proxy+}`
/// by documentation ([ROUTES]: a greedy path variable "catches all child resources of a route";
/// no full match and no other greedy route matches it), so it needs no route key; one would be
/// refused (`route_key_checks_refuse_what_api_gateway_refuses`). A dot inside a literal segment is
/// an ordinary character (`ANY /openapi.json` is deployed). Its `/` form is a remainder ending in
/// `/`: paper only, like `/bookings/{id}/`.
///
/// [ROUTES]: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
#[test]
fn calendar_file_reaches_the_bookings_function_without_a_route_key() {
    let routes = routes(&template());
    let p = concrete("/bookings/{id}/calendar.ics");
    assert_eq!(function_by_documentation(&routes, "GET", &p), Ok("BookingsFunction".into()));
    assert_eq!(select(&routes, "GET", &p, Behaviour::REPORTED).unwrap().key, "ANY /bookings/{proxy+}");
    assert!(routes.iter().all(|r| !r.key.contains("calendar")), "no route key of its own");
    let slash = format!("{p}/");
    assert!(function_by_documentation(&routes, "GET", &slash).is_err(), "the `/` form is undocumented behaviour");
    assert_eq!(select(&routes, "GET", &slash, Behaviour::REPORTED).unwrap().function, "BookingsFunction");
}

/// Stripe's webhook: a path this service chooses and registers in Stripe, so only its exact form
/// is served. It reaches the payments function by documentation alone (a full match), for every
/// method (the function answers 405 to anything but POST); its `/` form is no contract path and
/// falls to `$default` (a JSON 404), unless API Gateway folded the slash (reported not to happen
/// on HTTP APIs), when it would reach the same function.
#[test]
fn stripe_webhook_path_reaches_the_payments_function_by_documentation() {
    let routes = routes(&template());
    for method in ["POST", "GET", "PUT", "DELETE"] {
        let r = select(&routes, method, "/payments/webhook", Behaviour::REPORTED).unwrap();
        assert_eq!((r.key.as_str(), r.function.as_str()), ("ANY /payments/webhook", "PaymentsFunction"));
    }
    assert_eq!(function_by_documentation(&routes, "POST", "/payments/webhook"), Ok("PaymentsFunction".into()));
    for how in Behaviour::all() {
        let f = select(&routes, "POST", "/payments/webhook/", how).unwrap().function.clone();
        let want = if how.folds_trailing_slash { "PaymentsFunction" } else { "EventsFunction" };
        assert_eq!(f, want, "{how:?}");
    }
    for p in ["/payments", "/payments/other", "/payments/webhook/x"] {
        assert_eq!(function_by_documentation(&routes, "POST", p), Ok("EventsFunction".into()), "{p}");
    }
}

/// The function a fixture is written for, from its file name (events/README.md lists them).
fn intended_function(name: &str) -> &'static str {
    if name.starts_with("events-bookings") || name.starts_with("bookings-") {
        "BookingsFunction"
    } else if name.starts_with("payments-") {
        "PaymentsFunction"
    } else if name.starts_with("events-") {
        "EventsFunction"
    } else if name.starts_with("auth-") || name.starts_with("health") {
        "AuthFunction"
    } else {
        panic!("events/{name}.json: unknown fixture prefix (auth-, health, events-, bookings-, payments-)")
    }
}

/// Placeholders `scripts/invoke-test.sh` knows how to fill.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("TOKEN", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
    ("EMAIL", "asha@example.com"),
    ("EVENT_ID", "01JBQ2S3T4V5W6X7Y8Z9A0B1C2"),
    ("BOOKING_ID", "01JBQ2S3T4V5W6X7Y8Z9A0B1C3"),
    ("DATETIME", "2030-08-01T10:00:00Z"),
    ("IDEMPOTENCY_KEY", "retry-7f3a"),
    (
        "REFRESH_TOKEN",
        "01JBQ2S3T4V5W6X7Y8Z9A0B1C1.01JBQ2S3T4V5W6X7Y8Z9A0B1C4.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ),
    ("STRIPE_SIGNATURE", "t=1767605400,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"),
];

/// GIVEN every HTTP fixture in `events/` WHEN API Gateway routes it (after the stage: a named
/// stage is chosen first, then the route) THEN it reaches the function its name says.
#[test]
fn every_http_fixture_is_routed_to_its_function() {
    let routes = routes(&template());
    let dir = tests::workspace_root().join("events");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("events/ exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(String::from))
        .collect();
    names.sort();
    let (mut checked, mut staged) = (0, 0);
    for name in names {
        let raw: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
                .unwrap_or_else(|e| panic!("events/{name}.json is not JSON: {e}"));
        if raw.get("rawPath").is_none() {
            continue; // stream and other non-HTTP fixtures
        }
        let text = tests::fixture_text(&name, PLACEHOLDERS);
        if let Some(i) = text.find("${") {
            panic!(
                "events/{name}.json: placeholder {} is not one invoke-test.sh fills",
                &text[i..text.len().min(i + 20)]
            );
        }
        let req = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("events/{name}.json is not an API Gateway request: {e}"));
        assert_eq!(raw["rawPath"].as_str(), raw["requestContext"]["http"]["path"].as_str(), "{name}: rawPath");
        let stage = raw["requestContext"]["stage"].as_str().expect("requestContext.stage");
        let path = shared::http::path(&req);
        if stage != "$default" {
            staged += 1;
            let filled: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                Some(format!("/{stage}{path}").as_str()),
                filled["rawPath"].as_str(),
                "{name}: the stage alone is stripped"
            );
        }
        let method = req.method().as_str().to_string();
        let route = select(&routes, &method, &path, Behaviour::REPORTED).unwrap_or_else(|e| panic!("{name}: {e}"));
        // `$default` is the events function's: `/events/` and unknown paths (`auth-unknown-path`
        // tests the auth router's own 404 with `sam local invoke`; deployed, the events router
        // answers the same JSON 404).
        let want = if route.key == "$default" { "EventsFunction" } else { intended_function(&name) };
        if name.starts_with("events-") && !name.starts_with("events-bookings") {
            assert_eq!(route.function, "EventsFunction", "{name}");
        }
        assert_eq!(route.function, want, "events/{name}.json ({method} {path}) reaches {}", route.key);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} HTTP fixtures found in events/");
    assert!(staged >= 1, "no fixture on a named stage");
}
