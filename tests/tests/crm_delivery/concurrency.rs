//! The lease that keeps concurrent senders (stream, sweeper, direct) to one POST.

use super::fixtures::{insert, notifier, stored_booking, stored_event};
use chrono::Utc;
use crm_notifier::{handle_batch, sweep, Outcome, SendOutcome, SweepConfig, SweepReport};
use shared::model::DeliveryStatus;
use shared::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tests::crm::{posted_ids, unlimited};
use tests::streams::failures;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub async fn stream_and_sweeper_racing_for_one_booking_post_once<S: Store + Clone>(store: S) {
    // GIVEN an undelivered booking and a CRM taking 300 ms to accept
    let event = stored_event(&store).await;
    let b = stored_booking(&store, &event, Utc::now() - chrono::Duration::minutes(10)).await;
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(300)))
        .mount(&crm)
        .await;
    // Real time here: the racers' waits overlap for real.
    let n = Arc::new(notifier(store.clone(), &crm));
    // WHEN 8 stream invocations, 4 sweeps and 8 direct deliveries run at the same time
    let mut streams = Vec::new();
    let mut sweeps = Vec::new();
    let mut direct = Vec::new();
    for i in 0..8 {
        let (n1, b1) = (Arc::clone(&n), b.clone());
        streams.push(tokio::spawn(async move { handle_batch(&n1, insert(&b1, &format!("9{i}"))).await }));
        let (n2, b2) = (Arc::clone(&n), b.clone());
        direct.push(tokio::spawn(async move { n2.deliver(&b2).await.unwrap() }));
        if i % 2 == 0 {
            let n3 = Arc::clone(&n);
            sweeps.push(tokio::spawn(
                async move { sweep(&n3, &SweepConfig::default(), None, unlimited()).await.unwrap() },
            ));
        }
    }
    let streams: Vec<_> = futures::future::join_all(streams).await.into_iter().map(Result::unwrap).collect();
    let direct: Vec<Outcome> = futures::future::join_all(direct).await.into_iter().map(Result::unwrap).collect();
    let sweeps: Vec<SweepReport> = futures::future::join_all(sweeps).await.into_iter().map(Result::unwrap).collect();
    // THEN the CRM got exactly one POST
    assert_eq!(posted_ids(&crm).await, vec![b.id.clone()]);
    // AND every stream invocation succeeded (the losers waited for the winner's outcome)
    assert!(streams.iter().all(|r| failures(r).is_empty()));
    // AND whoever did not send saw it in flight or already delivered
    let sent_directly = direct.iter().filter(|o| matches!(o, Outcome::Sent(_))).count();
    let swept: usize = sweeps.iter().map(|r| r.delivered).sum();
    assert!(sent_directly + swept <= 1, "{direct:?} {sweeps:?}");
    assert!(direct.iter().all(|o| matches!(
        o,
        Outcome::Sent(SendOutcome::Delivered { .. }) | Outcome::AlreadyDelivered | Outcome::InFlight { .. }
    )));
    let d = store.get_delivery(&b.id).await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts, d.lease_owner), (DeliveryStatus::Delivered, 1, None));
}
