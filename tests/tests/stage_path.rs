//! A request through a named API Gateway stage routes exactly like one through `$default`: the
//! payload 2.0 `rawPath` of a named stage starts with `/{stage}` (`shared::http::path`).

use serde_json::json;
use shared::model::Role;
use tests::*;

/// GIVEN an event WHEN it is read through `events/events-get.json` (`$default`) and through
/// `events/events-get-stage-prod.json` (stage `prod`, rawPath `/prod/events/{id}`), handed to the
/// events function as Lambda would THEN both answers are the same 200 with the event.
#[tokio::test]
async fn a_named_stage_routes_like_the_default_stage() {
    let app = app(memory_store());
    let (_, token) = user(&app, Role::Facilitator).await;
    let body = json!({"title": "Yin", "type": "Yoga", "datetime": in_days(2), "capacity": 3});
    let created = call(&app, request("POST", "/events", Some(&token), Some(body))).await;
    assert_eq!(status(&created), 201);
    let id = json(&created)["id"].as_str().unwrap().to_string();

    let mut answers = Vec::new();
    for name in ["events-get", "events-get-stage-prod"] {
        let req = fixture(name, &[("EVENT_ID", &id)]);
        assert_eq!(shared::http::path(&req), format!("/events/{id}"), "{name}");
        let resp = events::router(&app, req).await;
        answers.push((status(&resp), json(&resp)));
    }
    assert_eq!(answers[0].0, 200, "{:?}", answers[0].1);
    assert_eq!(answers[1], answers[0], "the prod stage answers like $default");
    assert_eq!(answers[0].1["id"], id.as_str());
}

/// The stage is stripped only as the first whole segment, only for the request's own stage, and
/// never for `$default` (whose paths have no stage, so `/prod/...` there is a path of its own).
#[test]
fn only_the_requests_own_named_stage_is_stripped() {
    let text = fixture_text("events-get-stage-prod", &[("EVENT_ID", "E1")]);
    let with = |stage: &str, raw: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["requestContext"]["stage"] = json!(stage);
        v["rawPath"] = json!(raw);
        v["requestContext"]["http"]["path"] = json!(raw);
        shared::http::path(&lambda_http::request::from_str(&v.to_string()).unwrap())
    };
    assert_eq!(with("prod", "/prod/events/E1"), "/events/E1");
    assert_eq!(with("prod", "/prod"), "/");
    assert_eq!(with("prod", "/production/events"), "/production/events");
    assert_eq!(with("$default", "/prod/events/E1"), "/prod/events/E1");
    assert_eq!(with("dev", "/prod/events/E1"), "/prod/events/E1");
}
