//! Backoff inside the stream invocation's budget on the simulated clock, and `Retry-After`.

use super::fixtures::{insert, simulated, stored_booking, stored_event, DownUntil, MINUTE};
use chrono::{DateTime, Utc};
use crm_notifier::{handle_batch, sweep, Clock, ManualClock, Notifier, SweepConfig};
use shared::model::{Booking, DeliveryStatus};
use shared::store::Store;
use std::time::Duration;
use tests::crm::unlimited;
use tests::streams::failures;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Lambda retries a batch that reported a failure at once; this runs the invocations back to back
/// on the simulated clock until the batch succeeds. Returns each invocation's simulated
/// (start, end) in seconds.
async fn invocations_until_done<S: Store>(n: &Notifier<S>, b: &Booking, start: DateTime<Utc>) -> Vec<(i64, i64)> {
    let mut runs = Vec::new();
    for _ in 0..10 {
        let began = (n.clock().now() - start).num_seconds();
        let resp = handle_batch(n, insert(b, "4242")).await;
        runs.push((began, (n.clock().now() - start).num_seconds()));
        if failures(&resp).is_empty() {
            return runs;
        }
        assert_eq!(failures(&resp), vec!["4242"]);
    }
    panic!("not delivered within the mapping's 10 retries: {runs:?}");
}

pub async fn crm_down_for_three_minutes_is_delivered_once_by_the_stream_retries<S: Store + Clone>(store: S) {
    // GIVEN a CRM that answers 503 for 3 minutes of simulated time
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    let b = stored_booking(&store, &event, clock.now()).await;
    let (server, crm) = DownUntil::mount(&clock, 3 * MINUTE).await;
    let n = simulated(store.clone(), &server, &clock);
    // WHEN the stream invokes the notifier, and Lambda retries after each reported failure
    let start = clock.now();
    let runs = invocations_until_done(&n, &b, start).await;
    let answers = crm.answers();
    println!("CRM down 3 min: invocations (start s, end s) {runs:?}; answers (s, status) {answers:?}");
    // THEN each failing invocation backed off for about its 60 s budget before reporting the record
    for (began, ended) in &runs[..runs.len() - 1] {
        assert!((30..=60).contains(&(ended - began)), "an invocation gave up early or late: {runs:?}");
    }
    assert!((4..=5).contains(&runs.len()), "{runs:?}");
    // AND exactly one POST was accepted, after the outage, with every attempt counted
    let accepted: Vec<_> = answers.iter().filter(|(_, status)| *status == 200).collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    assert!((180..240).contains(&accepted[0].0), "{answers:?}");
    let d = store.get_delivery(&b.id).await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts as usize), (DeliveryStatus::Delivered, answers.len()));
    // AND the waits grew exponentially with jitter, each within the 16 s cap
    let sleeps = clock.sleeps();
    assert!(sleeps.iter().all(|s| *s >= Duration::from_millis(500) && *s <= Duration::from_secs(16)), "{sleeps:?}");
    assert!(sleeps.iter().any(|s| *s >= Duration::from_secs(8)), "never backed off beyond 8 s: {sleeps:?}");
    // AND a sweep afterwards finds nothing to do
    clock.advance(10 * MINUTE);
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.found, report.delivered), (0, 0), "{report:?}");
    assert_eq!(crm.answers().len(), answers.len());
}

pub async fn crm_down_for_three_minutes_then_the_sweeper_delivers<S: Store + Clone>(store: S) {
    // GIVEN a CRM down for 3 minutes, and a stream whose retries are used up after one invocation
    // (the batch went to the dead-letter queue)
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    let b = stored_booking(&store, &event, clock.now()).await;
    let (server, crm) = DownUntil::mount(&clock, 3 * MINUTE).await;
    let n = simulated(store.clone(), &server, &clock);
    let resp = handle_batch(&n, insert(&b, "77")).await;
    assert_eq!(failures(&resp), vec!["77"]);
    assert_eq!(store.get_delivery(&b.id).await.unwrap().unwrap().status, DeliveryStatus::Retrying);
    // WHEN the sweeper runs at the 10-minute mark
    clock.advance(9 * MINUTE);
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    // THEN the booking is delivered by it, once
    let answers = crm.answers();
    println!("CRM down 3 min, stream gave up, sweeper at 10 min: answers (s, status) {answers:?}; {report:?}");
    assert_eq!(answers.iter().filter(|(_, s)| *s == 200).count(), 1, "{answers:?}");
    assert_eq!(answers.last().map(|a| a.1), Some(200));
    assert_eq!(report.delivered, 1);
    let d = store.get_delivery(&b.id).await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts as usize), (DeliveryStatus::Delivered, answers.len()));
    // AND the stream's late redelivery of the record (a replay) sends nothing more
    assert!(failures(&handle_batch(&n, insert(&b, "77")).await).is_empty());
    assert_eq!(crm.answers().len(), answers.len());
}

/// A CRM answering `first` once, then 200.
async fn crm_answering_once(first: ResponseTemplate) -> MockServer {
    let crm = MockServer::start().await;
    Mock::given(method("POST")).respond_with(first).up_to_n_times(1).mount(&crm).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&crm).await;
    crm
}

pub async fn retry_after_is_honoured<S: Store + Clone>(store: S) {
    let clock = ManualClock::new();
    let event = stored_event(&store).await;

    // GIVEN a 429 with `Retry-After: 2` WHEN the stream delivers THEN it waits exactly 2 s of
    // simulated time before the second, accepted, POST
    let b = stored_booking(&store, &event, clock.now()).await;
    let crm = crm_answering_once(ResponseTemplate::new(429).insert_header("retry-after", "2")).await;
    let n = simulated(store.clone(), &crm, &clock);
    assert!(failures(&handle_batch(&n, insert(&b, "1")).await).is_empty());
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(2)]);
    assert_eq!(crm.received_requests().await.unwrap().len(), 2);
    let d = store.get_delivery(&b.id).await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts, d.lease_until), (DeliveryStatus::Delivered, 2, None));

    // GIVEN a 503 whose Retry-After is an HTTP date 5 s ahead THEN it waits 5 s
    let b = stored_booking(&store, &event, clock.now()).await;
    let at = crm_notifier::clock::add(clock.now(), Duration::from_secs(5));
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let crm = crm_answering_once(ResponseTemplate::new(503).insert_header("retry-after", date.as_str())).await;
    let n = simulated(store.clone(), &crm, &clock);
    assert!(failures(&handle_batch(&n, insert(&b, "2")).await).is_empty());
    assert_eq!(clock.sleeps().last(), Some(&Duration::from_secs(5)), "{date}");
    assert_eq!(crm.received_requests().await.unwrap().len(), 2);

    // GIVEN a Retry-After of 120 s, beyond the 60 s budget THEN the record is reported at once
    // (no pointless wait), and nobody calls the CRM before the time it asked for
    let b = stored_booking(&store, &event, clock.now() - chrono::Duration::minutes(10)).await;
    let crm = crm_answering_once(ResponseTemplate::new(429).insert_header("retry-after", "120")).await;
    let n = simulated(store.clone(), &crm, &clock);
    let slept = clock.sleeps().len();
    assert_eq!(failures(&handle_batch(&n, insert(&b, "3")).await), vec!["3"]);
    assert_eq!(clock.sleeps().len(), slept, "waited although the Retry-After does not fit the budget");
    let d = store.get_delivery(&b.id).await.unwrap().unwrap();
    let not_before = crm_notifier::clock::whole_seconds(clock.now()) + chrono::Duration::seconds(120);
    assert_eq!((d.status, d.lease_until, d.lease_owner), (DeliveryStatus::Retrying, Some(not_before), None));
    clock.advance(MINUTE);
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.in_flight, report.delivered), (1, 0), "{report:?}");
    assert_eq!(crm.received_requests().await.unwrap().len(), 1);
    clock.advance(MINUTE);
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(crm.received_requests().await.unwrap().len(), 2);
}
