//! Each message once and in order, under one `webhook-id`: through a CRM outage, from the
//! pending index by the sweeper, and from the local server's hook.

use super::fixtures::{booked, booked_and_cancelled, cancel, cancellation, event, message_insert};
use crm_notifier::{handle_batch, sweep, Clock, ManualClock, SweepConfig};
use shared::model::{DeliveryStatus, MessageKind};
use shared::store::{PendingQuery, Store};
use std::sync::Arc;
use std::time::Duration;
use tests::crm::{notifier, unlimited, Crm};
use tests::streams::{batch, failures};

pub async fn crm_down_then_up_each_message_once_in_order_with_stable_ids<S: Store + Clone>(store: S) {
    // GIVEN a cancelled booking whose messages have not gone out, and a CRM answering 503
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let b = booked_and_cancelled(&app, &event_id).await;
    let cancelled = cancellation(&store, &b.id).await;
    let crm = Crm::start().await;
    crm.set_down(true);
    let n = notifier(store.clone(), &crm);
    let record = batch(vec![message_insert(&cancelled, "900")]);

    // WHEN the stream tries twice while the CRM is down
    for _ in 0..2 {
        assert_eq!(failures(&handle_batch(&n, record.clone()).await), ["900"]);
    }
    // THEN only the confirmation was tried (the cancellation waits for it), with one webhook-id
    let confirmed = (b.id.clone(), "booking.confirmed".to_string());
    assert_eq!(crm.sent().await, [confirmed.clone(), confirmed.clone()]);
    let read = store.booking_messages(&b.id).await.unwrap();
    let states: Vec<_> = read.messages.iter().map(|m| (m.kind, m.status, m.attempts)).collect();
    assert_eq!(
        states,
        [(MessageKind::Confirmed, DeliveryStatus::Retrying, 2), (MessageKind::Cancelled, DeliveryStatus::Pending, 0)]
    );

    // WHEN the CRM is back and the stream retries, and a sweep runs afterwards
    crm.set_down(false);
    assert!(failures(&handle_batch(&n, record.clone()).await).is_empty());
    let config = SweepConfig { min_age: Duration::ZERO, ..SweepConfig::default() };
    let report = sweep(&n, &config, None, unlimited()).await.unwrap();
    // THEN each message was accepted once, in order, every retry under the same webhook-id
    let cancellation = (format!("{}:cancelled", b.id), "booking.cancelled".to_string());
    assert_eq!(crm.sent().await, [confirmed.clone(), confirmed.clone(), confirmed, cancellation]);
    assert_eq!((report.found, report.delivered), (0, 0), "{report:?}");
    let read = store.booking_messages(&b.id).await.unwrap();
    let states: Vec<_> = read.messages.iter().map(|m| (m.kind, m.status, m.attempts)).collect();
    assert_eq!(
        states,
        [
            (MessageKind::Confirmed, DeliveryStatus::Delivered, 3),
            (MessageKind::Cancelled, DeliveryStatus::Delivered, 1)
        ]
    );
}

pub async fn both_messages_of_a_booking_sit_in_the_pending_index_and_the_sweep_sends_them_in_order<S: Store + Clone>(
    store: S,
) {
    // GIVEN a booking and its cancellation, neither sent (the stream never saw them)
    let app = tests::app(store.clone());
    let (_, event_id) = event(&app).await;
    let b = booked_and_cancelled(&app, &event_id).await;
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(600));
    // THEN the pending index holds both, one entry each, also paged one entry at a time
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let q = PendingQuery {
            day: b.created_at.date_naive(),
            from: b.created_at,
            before: clock.now(),
            after: after.take(),
            limit: 1,
        };
        let page = store.pending_deliveries(&q).await.unwrap();
        found.extend(page.items.iter().filter(|d| d.booking_id == b.id).map(|d| d.kind));
        match page.next {
            Some(next) if found.len() < 10 => after = Some(next),
            _ => break,
        }
    }
    assert_eq!(found, [MessageKind::Confirmed, MessageKind::Cancelled]);

    // WHEN the sweeper runs THEN it sends them in order, once; a second sweep finds nothing
    let crm = Crm::start().await;
    let n = notifier(store.clone(), &crm).with_clock(Arc::new(clock.clone()));
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.found, report.delivered), (2, 2), "{report:?}");
    let types: Vec<String> = crm.sent().await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(types, ["booking.confirmed", "booking.cancelled"]);
    let again = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((again.found, again.delivered), (0, 0), "{again:?}");
    assert_eq!(crm.posted().await.len(), 2);
}

pub async fn local_hook_sends_the_cancellation_after_the_attendee_cancels<S: Store + Clone>(store: S) {
    // GIVEN the local server's wiring: the notifier runs in the background after each commit
    let crm = Crm::start().await;
    let pending = crm_notifier::PendingDeliveries::new();
    let hook = pending.hook(Arc::new(notifier(store.clone(), &crm)), Default::default());
    let app = shared::App::new(store.clone(), &tests::config()).unwrap().with_booking_hook(hook);
    let (_, event_id) = event(&app).await;
    // WHEN a booking is made, its confirmation sent, and its attendee cancels it
    let (b, token) = booked(&app, &event_id).await;
    assert_eq!(pending.drain(Duration::from_secs(10)).await, 0);
    cancel(&app, &b.id, &token).await;
    assert_eq!(pending.drain(Duration::from_secs(10)).await, 0);
    // THEN the CRM heard of both, in order
    let sent: Vec<String> = crm.sent().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(sent, [b.id.clone(), format!("{}:cancelled", b.id)]);
}
