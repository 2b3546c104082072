//! End to end on moto: bookings made through the bookings handler appear on the table's stream;
//! the stream records, read with the DynamoDB Streams API and turned into the Lambda event shape,
//! go through `handle_batch`, and the CRM gets exactly one POST per message.

use aws_lambda_events::event::dynamodb::EventRecord;
use crm_notifier::{handle_batch, CrmConfig, Notifier};
use serde_dynamo::AttributeValue;
use serde_json::json;
use serde_json::Value;
use shared::model::Role;
use shared::store::DynamoStore;
use shared::App;
use std::collections::HashMap;
use tests::streams::{lambda_event, read_stream};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Books through the bookings handler, exactly as the Lambda would.
async fn book(app: &App<DynamoStore>, token: &str, event_id: &str) -> String {
    let resp =
        bookings::router(app, tests::request("POST", "/bookings/", Some(token), Some(json!({"event_id": event_id}))))
            .await;
    assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
    tests::json(&resp)["id"].as_str().unwrap().to_string()
}

fn entity(r: &EventRecord) -> Option<String> {
    match r.change.new_image.get("entity") {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_on_the_stream_reach_the_crm_once_each() {
    // GIVEN a facilitator's event and two attendees' bookings made through the handlers, and one
    // cancellation (a MODIFY of a booking item, and its booking.cancelled message's INSERT)
    let store = tests::dynamo_store().await;
    let app = tests::app(store.clone());
    let (_, owner) = tests::user(&app, Role::Facilitator).await;
    let (ann, ann_token) = tests::user(&app, Role::Attendee).await;
    let (_, bob_token) = tests::user(&app, Role::Attendee).await;
    let body = json!({"title": "Sound Bath", "type": "Meditation", "facilitator_id": "FAC042",
        "datetime": tests::in_days(30), "capacity": 10});
    let resp = tests::call(&app, tests::request("POST", "/events", Some(&owner), Some(body))).await;
    let event_id = tests::json(&resp)["id"].as_str().unwrap().to_string();
    let first = book(&app, &ann_token, &event_id).await;
    let second = book(&app, &bob_token, &event_id).await;
    let resp =
        bookings::router(&app, tests::request("DELETE", &format!("/bookings/{second}"), Some(&bob_token), None)).await;
    assert_eq!(tests::status(&resp), 200);

    let crm = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&crm).await;
    let vars = HashMap::from([("CRM_WEBHOOK_URL", format!("{}/crm", crm.uri()))]);
    let config = CrmConfig::from_lookup(|name| vars.get(name).cloned()).unwrap();
    let notifier = Notifier::from_config(store.clone(), &config).unwrap();

    // WHEN the stream, from the start, goes through the Lambda handler
    let batch = lambda_event(&read_stream(&store).await);
    let kinds: Vec<(String, Option<String>)> =
        batch.records.iter().map(|r| (r.event_name.clone(), entity(r))).collect();
    let booking_inserts = kinds.iter().filter(|k| *k == &("INSERT".to_string(), Some("booking".to_string()))).count();
    assert_eq!(booking_inserts, 2, "stream: {kinds:?}");
    assert!(kinds.len() > 2, "the stream should also carry users, the event and its seat updates: {kinds:?}");
    assert!(kinds.contains(&("MODIFY".to_string(), Some("booking".to_string()))), "the cancellation: {kinds:?}");
    let resp = handle_batch(&notifier, batch).await;

    // THEN one booking.confirmed per booking, the cancelled one's booking.cancelled right after
    // its confirmation, nothing for the other items
    assert!(resp.batch_item_failures.is_empty());
    let posted = |requests: Vec<wiremock::Request>| -> Vec<Value> {
        requests.iter().map(|r| r.body_json::<Value>().unwrap()).collect()
    };
    let bodies = posted(crm.received_requests().await.unwrap());
    let ids: Vec<(&str, &str)> =
        bodies.iter().map(|b| (b["booking_id"].as_str().unwrap(), b["type"].as_str().unwrap())).collect();
    assert_eq!(
        ids,
        vec![
            (first.as_str(), "booking.confirmed"),
            (second.as_str(), "booking.confirmed"),
            (second.as_str(), "booking.cancelled")
        ]
    );
    assert_eq!(bodies[0]["user"]["email"], ann.email.as_str());
    assert_eq!(bodies[1]["facilitator_id"], "FAC042");
    assert_eq!(bodies[1]["event_title"], "Sound Bath");

    // AND replaying the whole stream (now with the delivery records) sends nothing more
    let replay = lambda_event(&read_stream(&store).await);
    assert!(replay.records.iter().any(|r| entity(r).as_deref() == Some("delivery")));
    let resp = handle_batch(&notifier, replay).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(crm.received_requests().await.unwrap().len(), 3);
}
