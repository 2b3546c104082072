//! How a send's failure is classified: retryable ones are reported for the next batch, permanent
//! ones recorded and never POSTed again.

use super::fixtures::{booking, crm_answering, delivery, insert, notifier, notifier_with, CRM_PATH};
use crm_notifier::{handle_batch, Outcome, SendOutcome};
use shared::model::{DeliveryStatus, FailureKind};
use shared::store::Store;
use std::time::{Duration, Instant};
use tests::crm::posted_ids;
use tests::streams::{batch, failures};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub async fn server_error_then_success_is_retried_by_the_next_batch<S: Store + Clone>(store: S) {
    // GIVEN a CRM that fails once with 500, then accepts
    let crm = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).up_to_n_times(1).mount(&crm).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&crm).await;
    let n = notifier(store, &crm);
    let b = booking();
    let event = batch(vec![insert(&b, "200")]);

    // WHEN the first delivery fails THEN the record is reported for retry
    let first = handle_batch(&n, event.clone()).await;
    assert_eq!(failures(&first), vec!["200"]);
    let d = delivery(&n, &b).await.unwrap();
    assert_eq!((d.status, d.attempts, d.last_http_status), (DeliveryStatus::Retrying, 1, Some(500)));
    assert_eq!(d.last_failure, Some(FailureKind::HttpStatus));

    // WHEN Lambda retries the batch THEN it is delivered, attempts counted
    let second = handle_batch(&n, event.clone()).await;
    assert!(failures(&second).is_empty());
    let d = delivery(&n, &b).await.unwrap();
    assert_eq!((d.status, d.attempts, d.last_http_status), (DeliveryStatus::Delivered, 2, Some(200)));
    assert_eq!(d.last_failure, None);

    // AND a further redelivery does not POST again
    let third = handle_batch(&n, event).await;
    assert!(failures(&third).is_empty());
    assert_eq!(posted_ids(&crm).await, vec![b.id.clone(), b.id.clone()]);
}

pub async fn timeout_is_retryable<S: Store + Clone>(store: S) {
    // GIVEN a CRM slower than the 200 ms total timeout
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&crm)
        .await;
    let n = notifier_with(store, &format!("{}{CRM_PATH}", crm.uri()), 200);
    let b = booking();
    let started = Instant::now();
    let resp = handle_batch(&n, batch(vec![insert(&b, "300")])).await;
    // THEN the call gives up at the timeout and the record is retried
    assert!(started.elapsed() < Duration::from_millis(1400), "waited {:?}", started.elapsed());
    assert_eq!(failures(&resp), vec!["300"]);
    let d = delivery(&n, &b).await.unwrap();
    assert_eq!((d.status, d.attempts, d.last_http_status), (DeliveryStatus::Retrying, 1, None));
    assert_eq!(d.last_failure, Some(FailureKind::Timeout));
}

pub async fn connection_refused_is_retryable<S: Store + Clone>(store: S) {
    // GIVEN a CRM URL on a port nobody listens on
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let n = notifier_with(store, &format!("http://127.0.0.1:{port}{CRM_PATH}?token=s3cr3t"), 2000);
    let b = booking();
    let resp = handle_batch(&n, batch(vec![insert(&b, "400")])).await;
    assert_eq!(failures(&resp), vec!["400"]);
    let d = delivery(&n, &b).await.unwrap();
    assert_eq!((d.status, d.attempts, d.last_http_status), (DeliveryStatus::Retrying, 1, None));
    assert_eq!(d.last_failure, Some(FailureKind::Connection));
    let stored = serde_json::to_string(&d).unwrap();
    assert!(!stored.contains("s3cr3t") && !stored.contains("refused"), "error detail leaked into the record: {stored}");
}

pub async fn gone_and_bad_request_are_permanent<S: Store + Clone>(store: S) {
    for status in [410, 400] {
        // GIVEN a CRM that rejects the notification
        let crm = crm_answering(status).await;
        let n = notifier(store.clone(), &crm);
        let b = booking();
        let event = batch(vec![insert(&b, "500")]);
        // THEN the batch succeeds (not retried) and the failure is recorded
        let first = handle_batch(&n, event.clone()).await;
        assert!(failures(&first).is_empty(), "{status} was reported for retry");
        let d = delivery(&n, &b).await.unwrap();
        assert_eq!((d.status, d.attempts, d.last_http_status), (DeliveryStatus::Failed, 1, Some(status)));
        assert_eq!(d.last_failure, Some(FailureKind::Rejected));
        // AND redelivering the batch does not POST again
        let second = handle_batch(&n, event).await;
        assert!(failures(&second).is_empty());
        assert_eq!(posted_ids(&crm).await, vec![b.id.clone()], "{status} was retried");
        assert_eq!(n.deliver(&b).await.unwrap(), Outcome::AlreadyFailed);
    }
}

#[test]
fn send_outcomes_follow_the_contract() {
    use http::StatusCode;
    assert!(SendOutcome::classify(StatusCode::TOO_MANY_REQUESTS).is_retryable());
    assert!(SendOutcome::classify(StatusCode::REQUEST_TIMEOUT).is_retryable());
    assert_eq!(SendOutcome::classify(StatusCode::GONE), SendOutcome::Permanent { status: 410 });
}
