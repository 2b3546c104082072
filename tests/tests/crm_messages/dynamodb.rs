//! On DynamoDB alone: the calls one stream delivery makes, and a rescheduled message put with
//! the raw client as the reschedule's write puts it.

use super::fixtures::{booked, booked_and_cancelled, cancel, cancellation, event, message_insert, v2};
use chrono::Duration as Span;
use crm_notifier::handle_batch;
use serde_json::json;
use shared::model::{Delivery, DeliveryStatus, MessageKind};
use shared::store::Store;
use shared::time::format as rfc3339;
use std::collections::HashMap;
use tests::crm::{notifier, Crm};
use tests::streams::{batch, failures};

/// GIVEN a delivered booking then cancelled, and another cancelled before anything went out
/// WHEN the stream hands each cancellation's INSERT (and again) THEN one delivery costs one
/// Query of the booking's collection plus a claim and an outcome per message sent; a replay one
/// Query alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_stream_delivery_dynamodb_calls() {
    let (store, log) = tests::dynamo_counted().await;
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm);

    // The first booking's confirmation went out (its booking image) before it was cancelled.
    let (first, token) = booked(&app, &event_id).await;
    assert!(!n.deliver(&first).await.unwrap().is_retryable());
    cancel(&app, &first.id, &token).await;
    let record = message_insert(&cancellation(&store, &first.id).await, "1");
    let second = booked_and_cancelled(&app, &event_id).await;
    let both = message_insert(&cancellation(&store, &second.id).await, "2");
    log.take();
    assert!(failures(&handle_batch(&n, batch(vec![record.clone()])).await).is_empty());
    let calls = log.take();
    println!("one stream delivery of a booking.cancelled: {calls:?}");
    assert_eq!(calls, ["Query", "UpdateItem", "PutItem"]);
    assert!(failures(&handle_batch(&n, batch(vec![record])).await).is_empty());
    assert_eq!(log.take(), ["Query"], "a replay: one read, nothing sent");

    assert!(failures(&handle_batch(&n, batch(vec![both.clone()])).await).is_empty());
    let calls = log.take();
    println!("one stream delivery of a booking owing two messages: {calls:?}");
    assert_eq!(calls, ["Query", "UpdateItem", "PutItem", "UpdateItem", "PutItem"]);
    assert!(failures(&handle_batch(&n, batch(vec![both.clone(), both])).await).is_empty());
    assert_eq!(log.take(), ["Query"], "a replayed batch: one read, nothing sent");
    assert_eq!(crm.posted().await.len(), 4);
}

/// GIVEN a confirmed booking, not yet announced, whose event was then moved an hour later (its
/// `booking.rescheduled` record put as the reschedule's write puts it: the record, its keys and
/// its pending-index entry) WHEN the stream hands that record THEN the CRM hears
/// `booking.confirmed` with the start as booked, then `booking.rescheduled` with both starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rescheduled_message_goes_out_after_the_confirmation_with_both_starts() {
    let store = tests::dynamo_store().await;
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let (b, _) = booked(&app, &event_id).await;
    let (old, new) = (b.event.datetime, b.event.datetime + Span::hours(1));
    let mut moved = b.clone();
    moved.sequence = 1;
    let message = Delivery {
        event_datetime: Some(new),
        previous_event_datetime: Some(old),
        ..Delivery::message(&moved, MessageKind::Rescheduled, shared::time::now())
    };
    let mut item: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&message).unwrap();
    let (pk, sk) = message.key();
    let at = message.booked_at.unwrap();
    for (name, value) in [
        ("PK", pk),
        ("SK", sk),
        ("entity", "delivery".to_string()),
        ("GSI1PK", shared::keys::pending_deliveries(at.date_naive())),
        ("GSI1SK", shared::keys::pending_delivery_sort(&at, &message.pending_id())),
    ] {
        item.insert(name.into(), aws_sdk_dynamodb::types::AttributeValue::S(value));
    }
    item.retain(|_, v| !v.is_null());
    store.client().put_item().table_name(store.table()).set_item(Some(item)).send().await.unwrap();
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm);

    assert!(failures(&handle_batch(&n, batch(vec![message_insert(&message, "5")])).await).is_empty());

    let posted = crm.posted().await;
    let ids: Vec<&str> = posted.iter().map(|p| p.webhook_id.as_str()).collect();
    assert_eq!(ids, [b.id.clone(), format!("{}:rescheduled:1", b.id)]);
    assert_eq!(posted[0].body, v2(&b, "booking.confirmed"));
    let mut want = v2(&b, "booking.rescheduled");
    want["event_datetime"] = json!(rfc3339(&new));
    want["previous_event_datetime"] = json!(rfc3339(&old));
    assert_eq!(posted[1].body, want);
    let read = store.booking_messages(&b.id).await.unwrap();
    assert!(read.messages.iter().all(|m| m.status == DeliveryStatus::Delivered), "{:?}", read.messages);
}
