//! The sweeper over the pending index: what the stream never delivered goes out once, how far
//! back it looks, when it gives up, dead senders' leases, and seat holds (never swept).

use super::fixtures::{
    crm_answering, modify, settlement, simulated, stored_booking, stored_event, stored_hold, MINUTE,
};
use crm_notifier::{handle_batch, sweep, Clock, ManualClock, Outcome, SweepConfig};
use serde_json::Value;
use shared::model::{BookingStatus, DeliveryStatus};
use shared::store::{Claim, Claimed, Settled, Store};
use std::time::Duration;
use tests::crm::{posted_ids, unlimited};
use tests::streams::failures;

pub async fn booking_no_stream_consumer_saw_is_delivered_once_by_the_sweeper<S: Store + Clone>(store: S) {
    // GIVEN bookings made 10 minutes ago while nothing consumed the stream (one since cancelled),
    // and one made a minute ago, which the stream handler still has time for
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    let old = stored_booking(&store, &event, clock.now() - chrono::Duration::minutes(10)).await;
    let cancelled = stored_booking(&store, &event, clock.now() - chrono::Duration::minutes(10)).await;
    store.cancel_booking(&cancelled, shared::model::CancelReason::Attendee, shared::time::now()).await.unwrap();
    let young = stored_booking(&store, &event, clock.now() - chrono::Duration::minutes(1)).await;
    // Each booking carries a pending record from its own transaction; the API shows no status yet.
    let pending = store.get_delivery(&old.id).await.unwrap().expect("pending record written with the booking");
    assert_eq!(
        (pending.status, pending.attempts, pending.booked_at),
        (DeliveryStatus::Pending, 0, Some(old.created_at))
    );
    assert_eq!(pending.view(), Value::Null);

    let crm = crm_answering(200).await;
    let n = simulated(store.clone(), &crm, &clock);
    // WHEN the sweeper runs
    let first = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    // THEN both old bookings' confirmations are POSTed once (the cancelled one too: it was
    // confirmed when made), the cancelled one's cancellation right after its confirmation (the
    // sweep goes through the booking's messages in order), the young one is left to the stream
    let mut posted = posted_ids(&crm).await;
    posted.sort();
    let mut want = vec![old.id.clone(), cancelled.id.clone(), cancelled.id.clone()];
    want.sort();
    assert_eq!(posted, want, "{first:?}");
    let types: Vec<String> = crm
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json::<Value>().unwrap())
        .filter(|body| body["booking_id"] == cancelled.id.as_str())
        .map(|body| body["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["booking.confirmed", "booking.cancelled"]);
    assert_eq!((first.found, first.delivered, first.stopped.as_deref()), (2, 3, None), "{first:?}");
    for b in [&old, &cancelled] {
        let d = store.get_delivery(&b.id).await.unwrap().unwrap();
        assert_eq!((d.status, d.attempts, d.lease_owner.as_deref()), (DeliveryStatus::Delivered, 1, None));
    }
    assert_eq!(store.get_delivery(&young.id).await.unwrap().unwrap().status, DeliveryStatus::Pending);

    // AND a second sweep finds nothing (delivered records left the index) and sends nothing
    let second = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((second.found, second.delivered), (0, 0), "{second:?}");
    assert_eq!(crm.received_requests().await.unwrap().len(), 3);

    // AND once the young booking is old enough, the next sweep delivers it
    clock.advance(5 * MINUTE);
    let third = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((third.found, third.delivered), (1, 1), "{third:?}");
    assert_eq!(posted_ids(&crm).await.last(), Some(&young.id));
}

pub async fn sweep_looks_back_as_far_as_asked<S: Store + Clone>(store: S) {
    // GIVEN undelivered bookings of 3 and 20 days ago
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    let recent = stored_booking(&store, &event, clock.now() - chrono::Duration::days(3)).await;
    let old = stored_booking(&store, &event, clock.now() - chrono::Duration::days(20)).await;
    let crm = crm_answering(200).await;
    let n = simulated(store.clone(), &crm, &clock);
    // WHEN the default sweep (14 days) runs THEN only the recent one is sent
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!(posted_ids(&crm).await, vec![recent.id.clone()]);
    // Today and the 14 days before (14 when "5 minutes ago" is still yesterday).
    assert!((14..=15).contains(&report.buckets), "{report:?}");
    // WHEN an operator redelivers with --since 30d THEN the old one too, and only it
    let since = crm_notifier::parse_since("30d", clock.now()).unwrap();
    let report = sweep(&n, &SweepConfig::default(), Some(since), unlimited()).await.unwrap();
    assert_eq!(posted_ids(&crm).await, vec![recent.id.clone(), old.id.clone()]);
    assert_eq!((report.found, report.delivered), (1, 1), "{report:?}");
    assert!((30..=31).contains(&report.buckets), "{report:?}");
}

pub async fn sweep_stops_when_the_crm_is_down_and_leaves_everything_pending<S: Store + Clone>(store: S) {
    // GIVEN 8 undelivered bookings and a CRM answering 503
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    let mut bookings = Vec::new();
    for i in 0..8 {
        bookings.push(stored_booking(&store, &event, clock.now() - chrono::Duration::minutes(30 + i)).await);
    }
    let crm = crm_answering(503).await;
    let n = simulated(store.clone(), &crm, &clock);
    let config = SweepConfig { concurrency: 1, ..SweepConfig::default() };
    // WHEN the sweeper runs THEN it gives up after 5 failures in a row, not 8 timeouts
    let report = sweep(&n, &config, None, unlimited()).await.unwrap();
    assert_eq!(report.stopped.as_deref(), Some("crm_unavailable"), "{report:?}");
    assert_eq!((report.retrying, crm.received_requests().await.unwrap().len()), (5, 5));
    // AND every booking is still pending for the next sweep
    let ids: Vec<String> = bookings.iter().map(|b| b.id.clone()).collect();
    for d in store.get_deliveries(&ids).await.unwrap() {
        assert!(matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Retrying), "{d:?}");
        assert!(d.lease_owner.is_none(), "a lease was left behind: {d:?}");
    }
}

pub async fn lease_of_a_sender_that_died_expires_and_the_sweeper_takes_over<S: Store + Clone>(store: S) {
    // GIVEN a booking whose delivery was claimed by a sender that then died (no outcome written)
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    let b = stored_booking(&store, &event, clock.now() - chrono::Duration::minutes(10)).await;
    let now = crm_notifier::clock::whole_seconds(clock.now());
    let until = now + chrono::Duration::seconds(35);
    let claim = Claim { owner: "dead-sender", now, until };
    assert!(matches!(store.claim_delivery(&b, &claim).await.unwrap(), Claimed::Won(d) if d.attempts == 1));
    let crm = crm_answering(200).await;
    let n = simulated(store.clone(), &crm, &clock);
    // WHEN the sweeper runs within the lease THEN it leaves the booking alone
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.found, report.in_flight, report.delivered), (1, 1, 0), "{report:?}");
    assert_eq!(n.deliver(&b).await.unwrap(), Outcome::InFlight { until });
    assert!(crm.received_requests().await.unwrap().is_empty());
    // WHEN the lease has run out THEN the sweeper delivers it, the dead attempt counted
    clock.advance(Duration::from_secs(36));
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let d = store.get_delivery(&b.id).await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
    // AND the dead sender, should it wake up, cannot record anything over it
    let mut stale = d.clone();
    stale.status = DeliveryStatus::Retrying;
    assert!(!store.finish_delivery(&stale, "dead-sender").await.unwrap());
    assert_eq!(store.get_delivery(&b.id).await.unwrap().unwrap().status, DeliveryStatus::Delivered);
}

pub async fn seat_holds_are_never_swept_and_a_paid_one_is_delivered_once_with_its_price<S: Store + Clone>(store: S) {
    // GIVEN two paid bookings made 20 minutes ago, still waiting for their payment
    let clock = ManualClock::new();
    let event = stored_event(&store).await;
    let paid = stored_hold(&store, &event, clock.now() - chrono::Duration::minutes(20)).await;
    let unpaid = stored_hold(&store, &event, clock.now() - chrono::Duration::minutes(20)).await;
    let crm = crm_answering(200).await;
    let n = simulated(store.clone(), &crm, &clock);
    // THEN neither has a delivery record, so the sweeper finds nothing and sends nothing
    for b in [&paid, &unpaid] {
        assert_eq!(store.get_delivery(&b.id).await.unwrap(), None, "a hold has no delivery record");
    }
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.found, report.delivered), (0, 0), "{report:?}");
    // AND the notifier refuses a hold outright, recording nothing
    assert_eq!(n.deliver(&paid).await.unwrap(), Outcome::NotConfirmed);
    assert_eq!(store.get_delivery(&paid.id).await.unwrap(), None);
    assert!(crm.received_requests().await.unwrap().is_empty());

    // WHEN one is paid and the other expires unpaid
    let Settled::Changed(confirmed) =
        store.settle_payment(&paid.id, &settlement(BookingStatus::Confirmed)).await.unwrap()
    else {
        panic!("the hold was not confirmed")
    };
    let expired = match store.settle_payment(&unpaid.id, &settlement(BookingStatus::Expired)).await.unwrap() {
        Settled::Changed(b) => b,
        other => panic!("the hold was not expired: {other:?}"),
    };
    assert_eq!(n.deliver(&expired).await.unwrap(), Outcome::NotConfirmed);
    // THEN the confirmation wrote the pending record (booked at the booking's time), and the next
    // sweep delivers the paid booking once, with its price; the expired one never
    let d = store.get_delivery(&paid.id).await.unwrap().expect("written with the confirmation");
    assert_eq!((d.status, d.booked_at), (DeliveryStatus::Pending, Some(paid.created_at)));
    let report = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((report.found, report.delivered), (1, 1), "{report:?}");
    let requests = crm.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(
        (body["booking_id"].as_str(), &body["amount"], &body["currency"]),
        (Some(paid.id.as_str()), &serde_json::json!(2500), &serde_json::json!("eur"))
    );
    assert_eq!(store.get_delivery(&unpaid.id).await.unwrap(), None);
    // AND the stream's MODIFY of the confirmation, arriving late, sends nothing more
    let resp = handle_batch(&n, modify(&confirmed, "5151")).await;
    assert!(failures(&resp).is_empty());
    assert_eq!(crm.received_requests().await.unwrap().len(), 1);
    let second = sweep(&n, &SweepConfig::default(), None, unlimited()).await.unwrap();
    assert_eq!((second.found, second.delivered), (0, 0), "{second:?}");
}
