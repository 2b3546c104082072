//! What is POSTed, signed how, and for which records: only a booking becoming confirmed, once.

use super::fixtures::{booking, crm_answering, delivery, hold, insert, modify, notifier, with_status};
use aws_lambda_events::event::dynamodb::Event;
use crm_notifier::{handle_batch, CrmConfig, Notifier, Outcome};
use serde_json::{json, Value};
use shared::model::{BookingStatus, DeliveryStatus};
use shared::store::Store;
use tests::crm::posted_ids;
use tests::streams::{batch, failures};
use tests::{verify_signature, WEBHOOK_SECRET};

pub async fn payload_and_signed_headers<S: Store + Clone>(store: S) {
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

fn stream_fixture(name: &str) -> Event {
    let event: Event = serde_json::from_str(&tests::fixture_text(name, &[]))
        .unwrap_or_else(|e| panic!("events/{name}.json is not a DynamoDB stream event: {e}"));
    assert_eq!(event.records.len(), 1, "{name}");
    event
}

pub async fn stream_fixtures_post_only_for_confirmed_bookings<S: Store + Clone>(store: S) {
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

/// The stream mapping's filter (template.yaml, checked in template/stream.rs) lets through INSERTs and
/// MODIFYs of confirmed bookings; the handler applies the same rule to whatever reaches it.
pub async fn paid_booking_is_posted_once_when_its_payment_confirms_it<S: Store + Clone>(store: S) {
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

pub async fn cancelled_insert_and_missing_url_send_nothing<S: Store + Clone>(store: S) {
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
