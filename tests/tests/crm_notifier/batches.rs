//! A stream batch: records in order, the first retryable failure holds back the rest, replays
//! and poison records never block the shard.

use super::fixtures::{booking, crm_answering, delivery, image, insert, notifier, record};
use crm_notifier::handle_batch;
use serde_json::json;
use shared::model::{Booking, DeliveryStatus};
use shared::store::{DynamoStore, Store};
use tests::crm::posted_ids;
use tests::streams::{batch, failures};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub async fn permanent_failure_does_not_stop_the_batch<S: Store + Clone>(store: S) {
    let (rejected, accepted) = (booking(), booking());
    let crm = MockServer::start().await;
    Mock::given(body_partial_json(json!({ "booking_id": rejected.id })))
        .respond_with(ResponseTemplate::new(422))
        .mount(&crm)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&crm).await;
    let n = notifier(store, &crm);
    let resp = handle_batch(&n, batch(vec![insert(&rejected, "601"), insert(&accepted, "602")])).await;
    assert!(failures(&resp).is_empty());
    assert_eq!(posted_ids(&crm).await, vec![rejected.id.clone(), accepted.id.clone()]);
    assert_eq!(delivery(&n, &rejected).await.unwrap().status, DeliveryStatus::Failed);
    assert_eq!(delivery(&n, &accepted).await.unwrap().status, DeliveryStatus::Delivered);
}

pub async fn mixed_batch_stops_at_the_first_retryable_failure<S: Store + Clone>(store: S) {
    // GIVEN five new bookings, and a CRM that answers 503 for the third
    let bookings: Vec<Booking> = (0..5).map(|_| booking()).collect();
    let crm = MockServer::start().await;
    Mock::given(body_partial_json(json!({ "booking_id": bookings[2].id })))
        .respond_with(ResponseTemplate::new(503))
        .mount(&crm)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&crm).await;
    let n = notifier(store, &crm);
    let seqs: Vec<String> = (1..=5).map(|i| format!("70{i}")).collect();
    let records = bookings.iter().zip(&seqs).map(|(b, s)| insert(b, s)).collect();
    // WHEN the batch is handled
    let resp = handle_batch(&n, batch(records)).await;
    // THEN only record 3 is reported, and records 4–5 were never sent
    assert_eq!(failures(&resp), vec![seqs[2].clone()]);
    let sent: Vec<String> = bookings[..3].iter().map(|b| b.id.clone()).collect();
    assert_eq!(posted_ids(&crm).await, sent);
    let statuses: Vec<Option<DeliveryStatus>> = {
        let mut v = Vec::new();
        for b in &bookings {
            v.push(delivery(&n, b).await.map(|d| d.status));
        }
        v
    };
    use DeliveryStatus::*;
    assert_eq!(statuses, vec![Some(Delivered), Some(Delivered), Some(Retrying), None, None]);
}

pub async fn same_batch_twice_posts_once_per_booking<S: Store + Clone>(store: S) {
    let crm = crm_answering(200).await;
    let n = notifier(store, &crm);
    let bookings: Vec<Booking> = (0..3).map(|_| booking()).collect();
    let event = batch(bookings.iter().enumerate().map(|(i, b)| insert(b, &format!("80{i}"))).collect());
    for _ in 0..2 {
        let resp = handle_batch(&n, event.clone()).await;
        assert!(failures(&resp).is_empty());
    }
    let expected: Vec<String> = bookings.iter().map(|b| b.id.clone()).collect();
    assert_eq!(posted_ids(&crm).await, expected);
    for b in &bookings {
        let d = delivery(&n, b).await.unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    }
}

pub async fn unparseable_booking_is_skipped_not_retried<S: Store + Clone>(store: S) {
    let crm = crm_answering(200).await;
    let n = notifier(store, &crm);
    let good = booking();
    let mut poison = image(&booking());
    poison.remove("user_email");
    let resp = handle_batch(&n, batch(vec![record("INSERT", "901", poison), insert(&good, "902")])).await;
    assert!(failures(&resp).is_empty(), "a poison record must not block the shard");
    assert_eq!(posted_ids(&crm).await, vec![good.id.clone()]);
}

/// A store error (here: the table does not exist) is retryable: the record is reported and
/// nothing is sent, since the delivery record could not be checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_error_is_reported_for_retry() {
    let real = tests::dynamo_store().await;
    let broken = DynamoStore::new(real.client().clone(), "no-such-table");
    let crm = crm_answering(200).await;
    let n = notifier(broken, &crm);
    let (a, b) = (booking(), booking());
    let resp = handle_batch(&n, batch(vec![insert(&a, "1101"), insert(&b, "1102")])).await;
    assert_eq!(failures(&resp), vec!["1101"]);
    assert_eq!(posted_ids(&crm).await, Vec::<String>::new());
}
