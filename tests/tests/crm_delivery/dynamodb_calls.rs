//! The DynamoDB calls of a sweep and of one stream delivery, on moto.

use super::fixtures::{crm_answering, insert, simulated, stored_booking, stored_event};
use crm_notifier::{handle_batch, sweep, Clock, ManualClock, SweepConfig};
use shared::model::DeliveryStatus;
use shared::store::Store;
use std::collections::BTreeMap;
use tests::crm::unlimited;
use tests::streams::failures;

fn count(calls: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for c in calls {
        *counts.entry(c.as_str()).or_default() += 1;
    }
    counts
}

/// GIVEN 105 undelivered bookings of two days ago and 3 of five days ago WHEN the sweeper runs
/// THEN it makes one Query per day bucket (plus one per further page of 100), one Query of each
/// booking's collection (the booking and its messages, strongly consistent), one UpdateItem
/// (claim) and one PutItem (outcome) per message, and no Scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweep_dynamodb_calls() {
    let (store, log) = tests::dynamo_counted().await;
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    // One after another: they all count a seat on the same event item.
    let mut made = Vec::new();
    for i in 0..105 {
        let at = clock.now() - chrono::Duration::days(2) + chrono::Duration::seconds(i);
        made.push(stored_booking(&store, &event, at).await);
    }
    for i in 0..3 {
        stored_booking(&store, &event, clock.now() - chrono::Duration::days(5) + chrono::Duration::seconds(i)).await;
    }
    let crm = crm_answering(200).await;
    let n = simulated(store.clone(), &crm, &clock);
    log.take();

    let started = std::time::Instant::now();
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    let elapsed = started.elapsed();
    let requests = log.take_requests();
    let calls: Vec<String> = requests.iter().map(|(op, _)| op.clone()).collect();
    let counts = count(&calls);
    println!(
        "sweep of 108 bookings over {} buckets: {} calls {counts:?} in {elapsed:?}; {report:?}",
        report.buckets,
        calls.len()
    );
    assert!(!calls.iter().any(|c| c == "Scan"), "the sweep scanned");
    assert_eq!(report.delivered, 108, "{report:?}");
    assert_eq!(crm.received_requests().await.unwrap().len(), 108);
    let want = BTreeMap::from([("Query", report.buckets + 1 + 108), ("UpdateItem", 108), ("PutItem", 108)]);
    assert_eq!(counts, want);
    assert_eq!(report.queries, report.buckets + 1);
    let (mut index_queries, mut booking_queries) = (0, 0);
    for (op, body) in &requests {
        if op == "Query" {
            let pk = body["ExpressionAttributeValues"][":pk"]["S"].as_str().unwrap();
            if body["IndexName"] == "GSI1" {
                assert!(pk.starts_with("CRM#PENDING#"), "{pk}");
                index_queries += 1;
            } else {
                assert!(pk.starts_with("BOOKING#") && body["ConsistentRead"] == true, "{body}");
                booking_queries += 1;
            }
        }
    }
    assert_eq!((index_queries, booking_queries), (report.buckets + 1, 108));
    let delivered = store.get_deliveries(&made.iter().map(|b| b.id.clone()).collect::<Vec<_>>()).await.unwrap();
    assert!(delivered.iter().all(|d| d.status == DeliveryStatus::Delivered && d.attempts == 1));

    // A second sweep: the index is empty, so one Query per bucket and nothing else.
    log.take();
    let again = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    let calls = log.take();
    println!("second sweep: {} calls {:?}", calls.len(), count(&calls));
    assert_eq!(count(&calls), BTreeMap::from([("Query", again.buckets)]));
    assert_eq!(again.found, 0);

    // One stream delivery of a new booking: the claim and the outcome, nothing else.
    let b = stored_booking(&store, &event, clock.now()).await;
    log.take();
    assert!(failures(&handle_batch(&n, insert(&b, "1")).await).is_empty());
    let calls = log.take();
    println!("stream delivery of one booking: {calls:?}");
    assert_eq!(calls, vec!["UpdateItem", "PutItem"]);
    // …and its redelivery: the refused claim alone.
    assert!(failures(&handle_batch(&n, insert(&b, "1")).await).is_empty());
    assert_eq!(log.take(), vec!["UpdateItem"]);
}
