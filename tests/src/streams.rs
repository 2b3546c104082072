//! The table's DynamoDB stream on moto, read with the DynamoDB Streams API and turned into the
//! event Lambda hands the stream function: what the crm-notifier's handler really receives.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, Record, ShardIteratorType};
use serde_dynamo::AttributeValue;
use shared::store::DynamoStore;
use std::collections::HashMap;

pub async fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(crate::endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_dynamodbstreams::Client::new(&sdk)
}

/// Every record of every shard, from the beginning (what Lambda's event source mapping reads).
pub async fn read_stream(store: &DynamoStore) -> Vec<Record> {
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
pub fn lambda_event(records: &[Record]) -> Event {
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

/// A one-record batch whose new image is `item` as the table stores it (its `entity` tag
/// included), as Lambda hands it to the stream function.
pub fn image_event(event_name: &str, entity: &str, item: &impl serde::Serialize) -> Event {
    let mut image: serde_dynamo::Item = serde_dynamo::to_item(item).unwrap();
    image.insert(shared::keys::ENTITY.into(), serde_dynamo::AttributeValue::S(entity.into()));
    let mut rec = EventRecord::default();
    rec.event_name = event_name.into();
    rec.change.new_image = image;
    rec.change.sequence_number = Some("1".into());
    let mut event = Event::default();
    event.records.push(rec);
    event
}

/// Lambda's event of `records`, in their order.
pub fn batch(records: Vec<EventRecord>) -> Event {
    let mut event = Event::default();
    event.records = records;
    event
}

/// The sequence numbers a stream handler's answer hands back to Lambda for retry, in order.
pub fn failures(resp: &DynamoDbEventResponse) -> Vec<String> {
    resp.batch_item_failures.iter().map(|f| f.item_identifier.clone().unwrap_or_default()).collect()
}
