//! The local server's hook: delivery off the request path, retried with backoff.

use super::fixtures::{booking, delivery, notifier};
use crm_notifier::{booking_hook, RetryPolicy};
use shared::model::DeliveryStatus;
use shared::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::crm::posted_ids;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub async fn local_hook_retries_in_the_background<S: Store + Clone>(store: S) {
    // GIVEN a CRM that answers 500 twice (slowly), then 200
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_delay(Duration::from_millis(300)))
        .up_to_n_times(2)
        .mount(&crm)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&crm).await;
    let n = Arc::new(notifier(store, &crm));
    let policy =
        RetryPolicy { max_attempts: 5, initial_delay: Duration::from_millis(10), max_delay: Duration::from_millis(40) };
    let hook = booking_hook(Arc::clone(&n), policy);
    let b = booking();

    // WHEN a booking commits THEN the hook returns at once
    let started = Instant::now();
    hook(&b);
    assert!(started.elapsed() < Duration::from_millis(250), "the booking waited {:?}", started.elapsed());

    // AND the webhook is delivered in the background after three attempts
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        match delivery(&n, &b).await {
            Some(d) if d.status == DeliveryStatus::Delivered => break d,
            _ if Instant::now() > deadline => panic!("not delivered: {:?}", delivery(&n, &b).await),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!((d.attempts, d.last_http_status), (3, Some(200)));
    assert_eq!(posted_ids(&crm).await, vec![b.id.clone(); 3]);
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts, 5);
    let delays: Vec<u64> = (1..=6).map(|a| p.delay_after(a).as_secs()).collect();
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 30]);
}
