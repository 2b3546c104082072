//! Bookings as the stream carries them (a NEW_IMAGE in an INSERT or MODIFY record), and a
//! notifier for a wiremock CRM that makes one attempt per batch.

use aws_lambda_events::event::dynamodb::EventRecord;
use crm_notifier::{CrmConfig, Notifier};
use serde_dynamo::AttributeValue;
use shared::model::{new_id, Booking, BookingStatus, Delivery, EventSnapshot, Payment, Price};
use shared::store::Store;
use std::collections::HashMap;
use tests::WEBHOOK_SECRET;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const CRM_PATH: &str = "/hooks/bookings";

pub fn booking() -> Booking {
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
pub fn hold() -> Booking {
    let mut b = booking();
    b.status = BookingStatus::PendingPayment;
    let price = Price { amount: 2500, currency: "eur".into() };
    b.payment = Some(Payment::hold(&price, b.created_at));
    b
}

/// `b` with `status`, as the stream's MODIFY of that change carries it.
pub fn with_status(b: &Booking, status: BookingStatus) -> Booking {
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
pub fn image(b: &Booking) -> serde_dynamo::Item {
    let mut item: serde_dynamo::Item = serde_dynamo::to_item(b).unwrap();
    item.insert("PK".into(), AttributeValue::S(format!("BOOKING#{}", b.id)));
    item.insert("SK".into(), AttributeValue::S("BOOKING".into()));
    item.insert("entity".into(), AttributeValue::S("booking".into()));
    item
}

pub fn record(event_name: &str, seq: &str, new_image: serde_dynamo::Item) -> EventRecord {
    let mut r = EventRecord::default();
    r.event_name = event_name.into();
    r.event_id = format!("evt-{seq}");
    r.aws_region = "eu-west-1".into();
    r.change.sequence_number = Some(seq.into());
    r.change.new_image = new_image;
    r
}

pub fn insert(b: &Booking, seq: &str) -> EventRecord {
    record("INSERT", seq, image(b))
}

pub fn modify(b: &Booking, seq: &str) -> EventRecord {
    record("MODIFY", seq, image(b))
}

/// No retries inside an invocation (`CRM_RETRY_BUDGET_SECONDS=0`): these cases are about one
/// attempt per batch; the backoff inside the budget is tested in `crm_delivery/backoff.rs`.
pub fn notifier_with<S: Store>(store: S, url: &str, timeout_ms: u64) -> Notifier<S> {
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

pub fn notifier<S: Store>(store: S, crm: &MockServer) -> Notifier<S> {
    notifier_with(store, &format!("{}{CRM_PATH}", crm.uri()), 2000)
}

pub async fn crm_answering(status: u16) -> MockServer {
    let crm = MockServer::start().await;
    Mock::given(method("POST")).and(path(CRM_PATH)).respond_with(ResponseTemplate::new(status)).mount(&crm).await;
    crm
}

pub async fn delivery<S: Store>(n: &Notifier<S>, b: &Booking) -> Option<Delivery> {
    n.store().get_delivery(&b.id).await.unwrap()
}
