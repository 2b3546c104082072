//! The CRM webhook (docs/api.md, "CRM webhook"): payload, Standard Webhooks signature, failure
//! classification, stream batch semantics and the local retry hook. The CRM is a wiremock server;
//! every case runs against the embedded store and DynamoDB on moto.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use crm_notifier::{booking_hook, handle_batch, CrmConfig, Notifier, Outcome, RetryPolicy, SendOutcome};
use serde_dynamo::AttributeValue;
use serde_json::{json, Value};
use shared::model::{
    new_id, Booking, BookingStatus, Delivery, DeliveryStatus, EventSnapshot, FailureKind, Payment, Price, Role,
};
use shared::store::{DynamoStore, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::crm::posted_ids;
use tests::streams::{batch, failures};
use tests::{verify_signature, WEBHOOK_SECRET};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CRM_PATH: &str = "/hooks/bookings";

fn booking() -> Booking {
    let event_id = new_id();
    Booking {
        via_waitlist: false,
        id: new_id(),
        event_id: event_id.clone(),
        user_id: new_id(),
        user_name: "Asha Rao".into(),
        user_email: "asha@example.com".into(),
        status: BookingStatus::Confirmed,
        created_at: shared::time::parse("2026-01-05T09:30:00Z").unwrap(),
        cancelled_at: None,
        event: EventSnapshot {
            id: event_id,
            title: "Morning Yoga".into(),
            datetime: shared::time::parse("2026-02-01T07:00:00Z").unwrap(),
            duration_minutes: 60,
            event_type: "Yoga".into(),
            facilitator_id: "FAC001".into(),
            revision: 0,
        },
        payment: None,
        cancel_reason: None,
        sequence: 0,
    }
}

/// A booking of a priced event as it is inserted: `pending_payment`, holding its seat.
fn hold() -> Booking {
    let mut b = booking();
    b.status = BookingStatus::PendingPayment;
    let price = Price { amount: 2500, currency: "eur".into() };
    b.payment = Some(Payment::hold(&price, b.created_at));
    b
}

/// `b` with `status`, as the stream's MODIFY of that change carries it.
fn with_status(b: &Booking, status: BookingStatus) -> Booking {
    let mut b = b.clone();
    b.status = status;
    if status == BookingStatus::Confirmed {
        if let Some(p) = b.payment.as_mut() {
            p.payment_intent = Some("pi_test".into());
            p.settled_by = Some("evt_test".into());
        }
    }
    b
}

/// The booking as the table stores it (serde_dynamo + keys + `entity`), i.e. its NEW_IMAGE.
fn image(b: &Booking) -> serde_dynamo::Item {
    let mut item: serde_dynamo::Item = serde_dynamo::to_item(b).unwrap();
    item.insert("PK".into(), AttributeValue::S(format!("BOOKING#{}", b.id)));
    item.insert("SK".into(), AttributeValue::S("BOOKING".into()));
    item.insert("entity".into(), AttributeValue::S("booking".into()));
    item
}

fn record(event_name: &str, seq: &str, new_image: serde_dynamo::Item) -> EventRecord {
    let mut r = EventRecord::default();
    r.event_name = event_name.into();
    r.event_id = format!("evt-{seq}");
    r.aws_region = "eu-west-1".into();
    r.change.sequence_number = Some(seq.into());
    r.change.new_image = new_image;
    r
}

fn insert(b: &Booking, seq: &str) -> EventRecord {
    record("INSERT", seq, image(b))
}

fn modify(b: &Booking, seq: &str) -> EventRecord {
    record("MODIFY", seq, image(b))
}

/// No retries inside an invocation (`CRM_RETRY_BUDGET_SECONDS=0`): these cases are about one
/// attempt per batch; the backoff inside the budget is tested in `crm_delivery/backoff.rs`.
fn notifier_with<S: Store>(store: S, url: &str, timeout_ms: u64) -> Notifier<S> {
    let vars = HashMap::from([
        ("CRM_WEBHOOK_URL", url.to_string()),
        ("CRM_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("CRM_CONNECT_TIMEOUT_MS", "500".to_string()),
        ("CRM_TIMEOUT_MS", timeout_ms.to_string()),
        ("CRM_RETRY_BUDGET_SECONDS", "0".to_string()),
    ]);
    let config = CrmConfig::from_lookup(|name| vars.get(name).cloned()).unwrap();
    Notifier::from_config(store, &config).unwrap()
}

fn notifier<S: Store>(store: S, crm: &MockServer) -> Notifier<S> {
    notifier_with(store, &format!("{}{CRM_PATH}", crm.uri()), 2000)
}

async fn crm_answering(status: u16) -> MockServer {
    let crm = MockServer::start().await;
    Mock::given(method("POST")).and(path(CRM_PATH)).respond_with(ResponseTemplate::new(status)).mount(&crm).await;
    crm
}

async fn delivery<S: Store>(n: &Notifier<S>, b: &Booking) -> Option<Delivery> {
    n.store().get_delivery(&b.id).await.unwrap()
}

async fn payload_and_signed_headers<S: Store + Clone>(store: S) {
    // GIVEN a CRM that accepts everything
    let crm = crm_answering(204).await;
    let n = notifier(store, &crm);
    let b = booking();
    // WHEN the stream delivers the booking's INSERT
    let resp = handle_batch(&n, batch(vec![insert(&b, "100")])).await;
    // THEN exactly one signed POST with the contract's payload
    assert!(failures(&resp).is_empty());
    let requests = crm.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method.as_str(), "POST");
    assert_eq!(
        req.body_json::<Value>().unwrap(),
        json!({
            "type": "booking.confirmed",
            "booking_id": b.id,
            "user": {"name": "Asha Rao", "email": "asha@example.com"},
            "event_id": b.event_id,
            "facilitator_id": "FAC001",
            "event_title": "Morning Yoga",
            "event_datetime": "2026-02-01T07:00:00Z",
            "booked_at": "2026-01-05T09:30:00Z",
        })
    );
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(header("content-type"), "application/json");
    assert!(header("user-agent").starts_with("ahoum-crm-notifier/"), "user-agent: {}", header("user-agent"));
    assert_eq!(header("webhook-id"), b.id);
    let ts: i64 = header("webhook-timestamp").parse().expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60, "timestamp {ts} is not now");
    let signature = header("webhook-signature");
    assert!(
        verify_signature(WEBHOOK_SECRET, &b.id, &header("webhook-timestamp"), &req.body, &signature),
        "bad signature {signature}"
    );
    assert!(
        !verify_signature(WEBHOOK_SECRET, &b.id, &(ts + 1).to_string(), &req.body, &signature),
        "signature ignores the timestamp"
    );

    let d = delivery(&n, &b).await.expect("delivery recorded");
    assert_eq!((d.status, d.attempts, d.last_http_status), (DeliveryStatus::Delivered, 1, Some(204)));
    assert!(d.delivered_at.is_some() && d.last_failure.is_none());
}

async fn server_error_then_success_is_retried_by_the_next_batch<S: Store + Clone>(store: S) {
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

async fn timeout_is_retryable<S: Store + Clone>(store: S) {
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

async fn connection_refused_is_retryable<S: Store + Clone>(store: S) {
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

async fn gone_and_bad_request_are_permanent<S: Store + Clone>(store: S) {
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

async fn permanent_failure_does_not_stop_the_batch<S: Store + Clone>(store: S) {
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

async fn mixed_batch_stops_at_the_first_retryable_failure<S: Store + Clone>(store: S) {
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

async fn same_batch_twice_posts_once_per_booking<S: Store + Clone>(store: S) {
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

fn stream_fixture(name: &str) -> Event {
    let event: Event = serde_json::from_str(&tests::fixture_text(name, &[]))
        .unwrap_or_else(|e| panic!("events/{name}.json is not a DynamoDB stream event: {e}"));
    assert_eq!(event.records.len(), 1, "{name}");
    event
}

async fn stream_fixtures_post_only_for_confirmed_bookings<S: Store + Clone>(store: S) {
    let crm = crm_answering(200).await;
    let n = notifier(store, &crm);
    // Records that are not a booking becoming confirmed first, so that a POST from them could not
    // be hidden by the booking being already delivered: a cancellation, a removal, another entity,
    // a paid booking's seat hold, a refresh-token rotation and a family's TTL deletion.
    for name in [
        "stream-booking-modify",
        "stream-booking-remove",
        "stream-other-entity",
        "stream-booking-paid-pending",
        "stream-session-rotate",
        "stream-session-ttl-remove",
        // a message record of a booking that is not in the store: nothing to send
        "stream-delivery-cancelled-insert",
        "stream-delivery-confirmed-insert",
    ] {
        let resp = handle_batch(&n, stream_fixture(name)).await;
        assert!(failures(&resp).is_empty(), "{name}");
        assert_eq!(posted_ids(&crm).await, Vec::<String>::new(), "{name} caused a POST");
    }
    let insert = stream_fixture("stream-booking-insert");
    assert_eq!(insert.records[0].change.stream_view_type.as_ref().map(|v| v.to_string()).as_deref(), Some("NEW_IMAGE"));
    let resp = handle_batch(&n, insert).await;
    assert!(failures(&resp).is_empty());
    let requests = crm.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(body["booking_id"], "01KBK3ZQ7M4XR2D9T6VW8YHN5A");
    assert_eq!(body["user"], json!({"name": "Asha Rao", "email": "asha@example.com"}));
    assert_eq!(body["event_datetime"], "2026-02-01T07:00:00Z");
    assert!(body.get("amount").is_none() && body.get("currency").is_none(), "a free booking has no price: {body}");

    // The paid booking's confirmation (a MODIFY): one POST with its price, once.
    let confirmed = stream_fixture("stream-booking-paid-confirmed");
    assert_eq!(confirmed.records[0].event_name, "MODIFY");
    for _ in 0..2 {
        let resp = handle_batch(&n, confirmed.clone()).await;
        assert!(failures(&resp).is_empty());
    }
    let requests = crm.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "the redelivered MODIFY was POSTed again");
    let body: Value = requests[1].body_json().unwrap();
    assert_eq!(
        body,
        json!({
            "type": "booking.confirmed",
            "booking_id": "01KBK3ZQ7M4XR2D9T6VW8YHN5B",
            "user": {"name": "Ravi Menon", "email": "ravi@example.com"},
            "event_id": "01KBK3Y1C2D3E4F5G6H7J8K9MN",
            "facilitator_id": "FAC001",
            "event_title": "Sound Bath",
            "event_datetime": "2026-02-01T07:00:00Z",
            "booked_at": "2026-01-05T09:30:00Z",
            "amount": 2500,
            "currency": "eur",
        })
    );
}

/// The stream mapping's filter (template.yaml, checked in template.rs) lets through INSERTs and
/// MODIFYs of confirmed bookings; the handler applies the same rule to whatever reaches it.
async fn paid_booking_is_posted_once_when_its_payment_confirms_it<S: Store + Clone>(store: S) {
    let crm = crm_answering(204).await;
    let n = notifier(store, &crm);
    let pending = hold();
    // GIVEN the hold's INSERT, and its checkout session being attached (a MODIFY, still pending)
    let resp = handle_batch(&n, batch(vec![insert(&pending, "1201"), modify(&pending, "1202")])).await;
    assert!(failures(&resp).is_empty());
    // THEN nothing is sent nor recorded
    assert_eq!(posted_ids(&crm).await, Vec::<String>::new());
    assert_eq!(delivery(&n, &pending).await, None);
    assert_eq!(n.deliver(&pending).await.unwrap(), Outcome::NotConfirmed);
    // WHEN the payment confirms it, then it is cancelled, and the confirmation is redelivered
    let confirmed = with_status(&pending, BookingStatus::Confirmed);
    let cancelled = with_status(&confirmed, BookingStatus::Cancelled);
    let records = vec![modify(&confirmed, "1203"), modify(&cancelled, "1204"), modify(&confirmed, "1203")];
    let resp = handle_batch(&n, batch(records)).await;
    assert!(failures(&resp).is_empty());
    // THEN exactly one POST, carrying the price
    let requests = crm.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = requests[0].body_json().unwrap();
    assert_eq!(
        (&body["booking_id"], &body["amount"], &body["currency"]),
        (&json!(pending.id), &json!(2500), &json!("eur"))
    );
    let d = delivery(&n, &pending).await.unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));

    // AND a hold that expires unpaid is never sent
    let unpaid = hold();
    let expired = with_status(&unpaid, BookingStatus::Expired);
    let resp = handle_batch(&n, batch(vec![insert(&unpaid, "1301"), modify(&expired, "1302")])).await;
    assert!(failures(&resp).is_empty());
    assert_eq!(posted_ids(&crm).await, vec![pending.id.clone()]);
    assert_eq!(delivery(&n, &unpaid).await, None);
}

async fn unparseable_booking_is_skipped_not_retried<S: Store + Clone>(store: S) {
    let crm = crm_answering(200).await;
    let n = notifier(store, &crm);
    let good = booking();
    let mut poison = image(&booking());
    poison.remove("user_email");
    let resp = handle_batch(&n, batch(vec![record("INSERT", "901", poison), insert(&good, "902")])).await;
    assert!(failures(&resp).is_empty(), "a poison record must not block the shard");
    assert_eq!(posted_ids(&crm).await, vec![good.id.clone()]);
}

async fn cancelled_insert_and_missing_url_send_nothing<S: Store + Clone>(store: S) {
    let crm = crm_answering(200).await;
    let n = notifier(store.clone(), &crm);
    let mut cancelled = booking();
    cancelled.status = BookingStatus::Cancelled;
    let resp = handle_batch(&n, batch(vec![insert(&cancelled, "1001")])).await;
    assert!(failures(&resp).is_empty());
    assert_eq!(posted_ids(&crm).await, Vec::<String>::new());

    // No CRM_WEBHOOK_URL: acknowledged, nothing sent, nothing recorded.
    let config = CrmConfig::from_lookup(|_| None).unwrap();
    let disabled = Notifier::from_config(store, &config).unwrap();
    let b = booking();
    let resp = handle_batch(&disabled, batch(vec![insert(&b, "1002")])).await;
    assert!(failures(&resp).is_empty());
    assert_eq!(disabled.deliver(&b).await.unwrap(), Outcome::NotConfigured);
    assert_eq!(delivery(&disabled, &b).await, None);
}

async fn local_hook_retries_in_the_background<S: Store + Clone>(store: S) {
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

/// Error text the HTTP client produces for failed sends (and the URL's token); none of it may
/// reach an API response. Case-sensitive: ids and emails in the response are random base32.
const CLIENT_ERROR_TEXT: &[&str] = &[
    "error sending request",
    "Connection refused",
    "connection refused",
    "tcp connect",
    "dns error",
    "timed out",
    "hyper",
    "s3cr3t",
    "CRM answered",
    "HTTP 503",
    "HTTP 422",
];

async fn event_owner_sees_failure_categories_not_error_text<S: Store + Clone>(store: S) {
    // GIVEN an event with four bookings made through the handlers
    let app = tests::app(store.clone());
    let (_, owner) = tests::user(&app, Role::Facilitator).await;
    let body = json!({"title": "Sound Bath", "type": "Meditation", "facilitator_id": "FAC042",
        "datetime": tests::in_days(30), "capacity": 10});
    let resp = tests::call(&app, tests::request("POST", "/events", Some(&owner), Some(body))).await;
    assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
    let event_id = tests::json(&resp)["id"].as_str().unwrap().to_string();
    let mut bookings = Vec::new();
    for _ in 0..4 {
        let (_, token) = tests::user(&app, Role::Attendee).await;
        let req = tests::request("POST", "/bookings/", Some(&token), Some(json!({"event_id": event_id})));
        let resp = tests::call(&app, req).await;
        assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
        let id = tests::json(&resp)["id"].as_str().unwrap().to_string();
        bookings.push(store.get_booking(&id).await.unwrap().unwrap());
    }

    // WHEN the CRM is unreachable for the first (nobody listens on its port), too slow for the
    // second, answers 503 to the third and 422 to the fourth
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable =
        notifier_with(store.clone(), &format!("http://127.0.0.1:{closed_port}{CRM_PATH}?token=s3cr3t"), 2000);
    assert!(unreachable.deliver(&bookings[0]).await.unwrap().is_retryable());
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&slow)
        .await;
    let too_slow = notifier_with(store.clone(), &format!("{}{CRM_PATH}", slow.uri()), 200);
    assert!(too_slow.deliver(&bookings[1]).await.unwrap().is_retryable());
    assert!(notifier(store.clone(), &crm_answering(503).await).deliver(&bookings[2]).await.unwrap().is_retryable());
    assert!(!notifier(store.clone(), &crm_answering(422).await).deliver(&bookings[3]).await.unwrap().is_retryable());

    // THEN the owner's list shows a category and the last HTTP status for each, and no error text
    let resp =
        tests::call(&app, tests::request("GET", &format!("/events/{event_id}/bookings"), Some(&owner), None)).await;
    assert_eq!(tests::status(&resp), 200);
    let raw = String::from_utf8_lossy(resp.body().as_ref()).to_string();
    for text in CLIENT_ERROR_TEXT {
        assert!(!raw.contains(text), "{text:?} reached the response: {raw}");
    }
    let list = tests::json(&resp);
    let crm = |booking: &Booking| -> Value {
        let item = list.as_array().unwrap().iter().find(|b| b["id"] == booking.id.as_str()).expect("listed");
        item["crm_status"].clone()
    };
    let expected = [
        ("retrying", "connection", Value::Null),
        ("retrying", "timeout", Value::Null),
        ("retrying", "http_status", json!(503)),
        ("failed", "rejected", json!(422)),
    ];
    for (b, (status, failure, http_status)) in bookings.iter().zip(expected) {
        assert_eq!(
            crm(b),
            json!({"status": status, "attempts": 1, "last_http_status": http_status, "last_failure": failure,
                "delivered_at": null}),
            "{failure}"
        );
    }

    // AND a later success clears the category
    let crm_ok = crm_answering(200).await;
    notifier(store.clone(), &crm_ok).deliver(&bookings[0]).await.unwrap();
    let resp =
        tests::call(&app, tests::request("GET", &format!("/events/{event_id}/bookings"), Some(&owner), None)).await;
    let list = tests::json(&resp);
    let status =
        list.as_array().unwrap().iter().find(|b| b["id"] == bookings[0].id.as_str()).unwrap()["crm_status"].clone();
    assert_eq!(
        (&status["status"], &status["attempts"], &status["last_failure"]),
        (&json!("delivered"), &json!(2), &Value::Null)
    );
}

tests::store_tests!(
    payload_and_signed_headers,
    server_error_then_success_is_retried_by_the_next_batch,
    timeout_is_retryable,
    connection_refused_is_retryable,
    gone_and_bad_request_are_permanent,
    permanent_failure_does_not_stop_the_batch,
    mixed_batch_stops_at_the_first_retryable_failure,
    same_batch_twice_posts_once_per_booking,
    stream_fixtures_post_only_for_confirmed_bookings,
    paid_booking_is_posted_once_when_its_payment_confirms_it,
    unparseable_booking_is_skipped_not_retried,
    cancelled_insert_and_missing_url_send_nothing,
    local_hook_retries_in_the_background,
    event_owner_sees_failure_categories_not_error_text,
);

#[test]
fn backoff_doubles_up_to_the_cap() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts, 5);
    let delays: Vec<u64> = (1..=6).map(|a| p.delay_after(a).as_secs()).collect();
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 30]);
}

#[test]
fn send_outcomes_follow_the_contract() {
    use http::StatusCode;
    assert!(SendOutcome::classify(StatusCode::TOO_MANY_REQUESTS).is_retryable());
    assert!(SendOutcome::classify(StatusCode::REQUEST_TIMEOUT).is_retryable());
    assert_eq!(SendOutcome::classify(StatusCode::GONE), SendOutcome::Permanent { status: 410 });
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

/// Delivery items written before `last_failure` existed carry a free-text `last_error`: they still
/// load (the text is dropped), so old bookings keep their `crm_status`.
#[test]
fn delivery_records_with_the_old_last_error_still_load() {
    let old = json!({
        "PK": "BOOKING#01KBK3ZQ7M4XR2D9T6VW8YHN5A", "SK": "DELIVERY", "entity": "delivery",
        "booking_id": "01KBK3ZQ7M4XR2D9T6VW8YHN5A", "status": "retrying", "attempts": 2,
        "last_http_status": null,
        "last_error": "connection failed: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
        "updated_at": "2026-01-05T09:30:00Z",
    });
    let item: serde_dynamo::Item = serde_dynamo::to_item(&old).unwrap();
    for d in [serde_dynamo::from_item::<_, Delivery>(item).unwrap(), serde_json::from_value::<Delivery>(old).unwrap()] {
        assert_eq!((d.status, d.attempts, d.last_failure), (DeliveryStatus::Retrying, 2, None));
        assert_eq!(
            d.view(),
            json!({"status": "retrying", "attempts": 2, "last_http_status": null, "last_failure": null,
                "delivered_at": null})
        );
    }
}

/// The OpenAPI `DeliveryStatus` schema documents exactly the keys `crm_status` has, and exactly
/// the categories `last_failure` can take.
#[test]
fn openapi_crm_status_schema_matches_the_view() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(tests::workspace_root().join("functions/auth/openapi.json")).unwrap(),
    )
    .unwrap();
    let schema = &doc["components"]["schemas"]["DeliveryStatus"];
    let d = Delivery {
        booking_id: new_id(),
        kind: Default::default(),
        seq: 0,
        event_datetime: None,
        previous_event_datetime: None,
        status: DeliveryStatus::Retrying,
        attempts: 1,
        last_http_status: None,
        last_failure: Some(FailureKind::Timeout),
        delivered_at: None,
        updated_at: shared::time::now(),
        booked_at: None,
        lease_until: None,
        lease_owner: None,
    };
    let mut view_keys: Vec<String> = d.view().as_object().unwrap().keys().cloned().collect();
    let mut required: Vec<String> =
        schema["required"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    view_keys.sort();
    required.sort();
    assert_eq!(view_keys, required);
    let kinds = [FailureKind::Timeout, FailureKind::Connection, FailureKind::HttpStatus, FailureKind::Rejected];
    let mut documented: Vec<Value> = kinds.iter().map(|k| serde_json::to_value(k).unwrap()).collect();
    documented.push(Value::Null);
    assert_eq!(schema["properties"]["last_failure"]["enum"], Value::Array(documented));
}
