//! End to end on moto: bookings made through the bookings handler appear on the table's stream;
//! the stream records, read with the DynamoDB Streams API and turned into the Lambda event shape,
//! go through `handle_batch`, and the CRM gets exactly one POST per booking.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, Record, ShardIteratorType};
use crm_notifier::{handle_batch, CrmConfig, Notifier};
use serde_dynamo::AttributeValue;
use serde_json::json;
use serde_json::Value;
use shared::model::Role;
use shared::store::DynamoStore;
use shared::App;
use std::collections::HashMap;
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

async fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(tests::endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_dynamodbstreams::Client::new(&sdk)
}

/// Every record of every shard, from the beginning (what Lambda's event source mapping reads).
async fn read_stream(store: &DynamoStore) -> Vec<Record> {
    let table = store.client().describe_table().table_name(store.table()).send().await.unwrap();
    let arn = table.table().and_then(|t| t.latest_stream_arn()).expect("the table has a stream").to_string();
    let streams = streams_client().await;
    let described = streams.describe_stream().stream_arn(&arn).send().await.unwrap();
    let mut records = Vec::new();
    for shard in described.stream_description().map(|d| d.shards()).unwrap_or_default() {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let mut next = iterator.shard_iterator().map(str::to_string);
        while let Some(it) = next {
            let page = streams.get_records().shard_iterator(it).send().await.unwrap();
            if page.records().is_empty() {
                break;
            }
            records.extend(page.records().iter().cloned());
            next = page.next_shard_iterator().map(str::to_string);
        }
    }
    records
}

fn convert_value(v: &StreamValue) -> AttributeValue {
    match v {
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Null(b) => AttributeValue::Null(*b),
        StreamValue::B(b) => AttributeValue::B(b.clone().into_inner()),
        StreamValue::Ss(v) => AttributeValue::Ss(v.clone()),
        StreamValue::Ns(v) => AttributeValue::Ns(v.clone()),
        StreamValue::Bs(v) => AttributeValue::Bs(v.iter().map(|b| b.clone().into_inner()).collect()),
        StreamValue::L(v) => AttributeValue::L(v.iter().map(convert_value).collect()),
        StreamValue::M(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), convert_value(v))).collect()),
        other => panic!("unexpected attribute value {other:?}"),
    }
}

fn convert_item(item: Option<&HashMap<String, StreamValue>>) -> serde_dynamo::Item {
    item.map(|m| m.iter().map(|(k, v)| (k.clone(), convert_value(v))).collect::<HashMap<_, _>>())
        .unwrap_or_default()
        .into()
}

/// The Streams API record in the shape Lambda hands to the function.
fn lambda_event(records: &[Record]) -> Event {
    let mut event = Event::default();
    for r in records {
        let change = r.dynamodb().expect("stream record has a dynamodb part");
        let mut rec = EventRecord::default();
        rec.event_id = r.event_id().unwrap_or_default().to_string();
        rec.event_name = r.event_name().map(|n| n.as_str().to_string()).unwrap_or_default();
        rec.event_source = r.event_source().map(str::to_string);
        rec.aws_region = r.aws_region().unwrap_or("us-east-1").to_string();
        rec.change.keys = convert_item(change.keys());
        rec.change.new_image = convert_item(change.new_image());
        rec.change.old_image = convert_item(change.old_image());
        rec.change.sequence_number = change.sequence_number().map(str::to_string);
        rec.change.size_bytes = change.size_bytes().unwrap_or_default();
        if let Some(t) = change.approximate_creation_date_time() {
            rec.change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp(t.secs(), 0).unwrap_or_default();
        }
        event.records.push(rec);
    }
    event
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
    // cancellation (a MODIFY of a booking item, which must not notify anyone)
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

    // THEN one POST per booking, none for the other items
    assert!(resp.batch_item_failures.is_empty());
    let posted = |requests: Vec<wiremock::Request>| -> Vec<Value> {
        requests.iter().map(|r| r.body_json::<Value>().unwrap()).collect()
    };
    let bodies = posted(crm.received_requests().await.unwrap());
    let ids: Vec<&str> = bodies.iter().map(|b| b["booking_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![first.as_str(), second.as_str()]);
    assert_eq!(bodies[0]["user"]["email"], ann.email.as_str());
    assert_eq!(bodies[1]["facilitator_id"], "FAC042");
    assert_eq!(bodies[1]["event_title"], "Sound Bath");

    // AND replaying the whole stream (now with the delivery records) sends nothing more
    let replay = lambda_event(&read_stream(&store).await);
    assert!(replay.records.iter().any(|r| entity(r).as_deref() == Some("delivery")));
    let resp = handle_batch(&notifier, replay).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(crm.received_requests().await.unwrap().len(), 2);
}
