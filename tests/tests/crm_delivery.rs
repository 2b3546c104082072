//! CRM delivery that never silently drops a booking: backoff inside the stream invocation (with a
//! simulated clock), `Retry-After`, the sweeper over the pending index, the lease that keeps
//! concurrent senders to one POST, and the sweep's DynamoDB calls. Every store case runs against
//! the embedded store and DynamoDB on moto; the CRM is a wiremock server.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use chrono::{DateTime, Utc};
use crm_notifier::{
    handle_batch, sweep, Clock, CrmConfig, ManualClock, Notifier, Outcome, SendOutcome, SweepConfig, SweepReport,
};
use serde_dynamo::AttributeValue;
use serde_json::Value;
use shared::model::{new_id, Booking, BookingStatus, DeliveryStatus, Event as BookedEvent, Payment, Price};
use shared::store::{Claim, Claimed, Settled, Settlement, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::crm::{posted_ids, unlimited};
use tests::streams::failures;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const MINUTE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- fixtures

/// A future event in the store.
async fn stored_event<S: Store>(store: &S) -> BookedEvent {
    let now = shared::time::now();
    let event = BookedEvent {
        waitlist_count: 0,
        id: new_id(),
        title: "Morning Yoga".into(),
        description: String::new(),
        datetime: now + chrono::Duration::days(30),
        duration_minutes: 60,
        facilitator_id: "FAC001".into(),
        event_type: "Yoga".into(),
        rating: None,
        capacity: None,
        seats_booked: 0,
        price: None,
        owner_id: new_id(),
        created_at: now,
        updated_at: now,
        status: Default::default(),
        cancelled_at: None,
        cancel_reason: None,
        revision: 0,
    };
    store.create_event(&event).await.unwrap();
    event
}

/// A booking of `event` made (its `created_at`) at `at`, through the store's booking transaction,
/// which also writes its pending delivery record.
async fn stored_booking<S: Store>(store: &S, event: &BookedEvent, at: DateTime<Utc>) -> Booking {
    let booking = unsaved_booking(event, at);
    store.create_booking(&booking, None, shared::time::now()).await.unwrap();
    booking
}

/// A paid booking of `event` made at `at`: a seat hold (`pending_payment`) written by the store's
/// booking transaction, which puts its payment task and no delivery record.
async fn stored_hold<S: Store>(store: &S, event: &BookedEvent, at: DateTime<Utc>) -> Booking {
    let mut booking = unsaved_booking(event, at);
    booking.status = BookingStatus::PendingPayment;
    let price = Price { amount: 2500, currency: "eur".into() };
    booking.payment = Some(Payment::hold(&price, booking.created_at));
    store.create_booking(&booking, None, shared::time::now()).await.unwrap();
    booking
}

fn unsaved_booking(event: &BookedEvent, at: DateTime<Utc>) -> Booking {
    let user_id = new_id();
    Booking {
        via_waitlist: false,
        id: new_id(),
        event_id: event.id.clone(),
        user_name: "Asha Rao".into(),
        user_email: format!("{}@example.com", user_id.to_lowercase()),
        user_id,
        status: BookingStatus::Confirmed,
        created_at: crm_notifier::clock::whole_seconds(at),
        cancelled_at: None,
        event: event.snapshot(),
        payment: None,
        cancel_reason: None,
        sequence: 0,
    }
}

fn settlement(to: BookingStatus) -> Settlement {
    Settlement {
        to,
        by: "evt_test".into(),
        payment_intent: Some("pi_test".into()),
        now: shared::time::now(),
        session: None,
    }
}

/// The booking's INSERT as the stream delivers it (NEW_IMAGE).
fn insert(b: &Booking, seq: &str) -> Event {
    stream_record("INSERT", b, seq)
}

/// An update of the booking (a paid booking's confirmation) as the stream delivers it.
fn modify(b: &Booking, seq: &str) -> Event {
    stream_record("MODIFY", b, seq)
}

fn stream_record(event_name: &str, b: &Booking, seq: &str) -> Event {
    let mut image: serde_dynamo::Item = serde_dynamo::to_item(b).unwrap();
    image.insert("PK".into(), AttributeValue::S(format!("BOOKING#{}", b.id)));
    image.insert("SK".into(), AttributeValue::S("BOOKING".into()));
    image.insert("entity".into(), AttributeValue::S("booking".into()));
    let mut r = EventRecord::default();
    r.event_name = event_name.into();
    r.event_id = format!("evt-{seq}");
    r.change.sequence_number = Some(seq.into());
    r.change.new_image = image;
    let mut event = Event::default();
    event.records = vec![r];
    event
}

/// A notifier for `crm` with the default 60 s retry budget.
fn notifier<S: Store>(store: S, crm: &MockServer) -> Notifier<S> {
    let vars = HashMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks", crm.uri())),
        ("CRM_WEBHOOK_SECRET", tests::WEBHOOK_SECRET.to_string()),
        ("CRM_CONNECT_TIMEOUT_MS", "500".to_string()),
        ("CRM_TIMEOUT_MS", "2000".to_string()),
    ]);
    let config = CrmConfig::from_lookup(|name| vars.get(name).cloned()).unwrap();
    Notifier::from_config(store, &config).unwrap()
}

fn simulated<S: Store>(store: S, crm: &MockServer, clock: &ManualClock) -> Notifier<S> {
    notifier(store, crm).with_clock(Arc::new(clock.clone()))
}

async fn crm_answering(status: u16) -> MockServer {
    let crm = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status)).mount(&crm).await;
    crm
}

/// A CRM on the simulated clock: 503 until `up_at`, then 200; it remembers when (simulated
/// seconds since `start`) it answered what.
#[derive(Clone)]
struct DownUntil {
    clock: ManualClock,
    start: DateTime<Utc>,
    up_at: DateTime<Utc>,
    answers: Arc<Mutex<Vec<(i64, u16)>>>,
}

impl Respond for DownUntil {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let now = self.clock.now();
        let status = if now < self.up_at { 503 } else { 200 };
        self.answers.lock().unwrap().push(((now - self.start).num_seconds(), status));
        ResponseTemplate::new(status)
    }
}

impl DownUntil {
    async fn mount(clock: &ManualClock, down_for: Duration) -> (MockServer, DownUntil) {
        let start = clock.now();
        let crm = DownUntil {
            clock: clock.clone(),
            start,
            up_at: crm_notifier::clock::add(start, down_for),
            answers: Default::default(),
        };
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(crm.clone()).mount(&server).await;
        (server, crm)
    }

    fn answers(&self) -> Vec<(i64, u16)> {
        self.answers.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------- the sweeper

async fn booking_no_stream_consumer_saw_is_delivered_once_by_the_sweeper<S: Store + Clone>(store: S) {
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

async fn sweep_looks_back_as_far_as_asked<S: Store + Clone>(store: S) {
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

async fn sweep_stops_when_the_crm_is_down_and_leaves_everything_pending<S: Store + Clone>(store: S) {
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

async fn lease_of_a_sender_that_died_expires_and_the_sweeper_takes_over<S: Store + Clone>(store: S) {
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

async fn seat_holds_are_never_swept_and_a_paid_one_is_delivered_once_with_its_price<S: Store + Clone>(store: S) {
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

// ---------------------------------------------------------------- backoff and Retry-After

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

async fn crm_down_for_three_minutes_is_delivered_once_by_the_stream_retries<S: Store + Clone>(store: S) {
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

async fn crm_down_for_three_minutes_then_the_sweeper_delivers<S: Store + Clone>(store: S) {
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

async fn retry_after_is_honoured<S: Store + Clone>(store: S) {
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

// ---------------------------------------------------------------- concurrency

async fn stream_and_sweeper_racing_for_one_booking_post_once<S: Store + Clone>(store: S) {
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

tests::store_tests!(
    booking_no_stream_consumer_saw_is_delivered_once_by_the_sweeper,
    sweep_looks_back_as_far_as_asked,
    sweep_stops_when_the_crm_is_down_and_leaves_everything_pending,
    lease_of_a_sender_that_died_expires_and_the_sweeper_takes_over,
    crm_down_for_three_minutes_is_delivered_once_by_the_stream_retries,
    crm_down_for_three_minutes_then_the_sweeper_delivers,
    retry_after_is_honoured,
    stream_and_sweeper_racing_for_one_booking_post_once,
    seat_holds_are_never_swept_and_a_paid_one_is_delivered_once_with_its_price,
);

// ---------------------------------------------------------------- DynamoDB calls

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
