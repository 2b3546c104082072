//! Events and bookings written through the store's own transactions, their stream records, and
//! notifiers for a wiremock CRM, on the simulated clock or in real time.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use chrono::{DateTime, Utc};
use crm_notifier::{Clock, CrmConfig, ManualClock, Notifier};
use serde_dynamo::AttributeValue;
use shared::model::{new_id, Booking, BookingStatus, Event as BookedEvent, Payment, Price};
use shared::store::{Settlement, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const MINUTE: Duration = Duration::from_secs(60);

/// A future event in the store.
pub async fn stored_event<S: Store>(store: &S) -> BookedEvent {
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
pub async fn stored_booking<S: Store>(store: &S, event: &BookedEvent, at: DateTime<Utc>) -> Booking {
    let booking = unsaved_booking(event, at);
    store.create_booking(&booking, None, shared::time::now()).await.unwrap();
    booking
}

/// A paid booking of `event` made at `at`: a seat hold (`pending_payment`) written by the store's
/// booking transaction, which puts its payment task and no delivery record.
pub async fn stored_hold<S: Store>(store: &S, event: &BookedEvent, at: DateTime<Utc>) -> Booking {
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

pub fn settlement(to: BookingStatus) -> Settlement {
    Settlement {
        to,
        by: "evt_test".into(),
        payment_intent: Some("pi_test".into()),
        now: shared::time::now(),
        session: None,
    }
}

/// The booking's INSERT as the stream delivers it (NEW_IMAGE).
pub fn insert(b: &Booking, seq: &str) -> Event {
    stream_record("INSERT", b, seq)
}

/// An update of the booking (a paid booking's confirmation) as the stream delivers it.
pub fn modify(b: &Booking, seq: &str) -> Event {
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
pub fn notifier<S: Store>(store: S, crm: &MockServer) -> Notifier<S> {
    let vars = HashMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks", crm.uri())),
        ("CRM_WEBHOOK_SECRET", tests::WEBHOOK_SECRET.to_string()),
        ("CRM_CONNECT_TIMEOUT_MS", "500".to_string()),
        ("CRM_TIMEOUT_MS", "2000".to_string()),
    ]);
    let config = CrmConfig::from_lookup(|name| vars.get(name).cloned()).unwrap();
    Notifier::from_config(store, &config).unwrap()
}

pub fn simulated<S: Store>(store: S, crm: &MockServer, clock: &ManualClock) -> Notifier<S> {
    notifier(store, crm).with_clock(Arc::new(clock.clone()))
}

pub async fn crm_answering(status: u16) -> MockServer {
    let crm = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status)).mount(&crm).await;
    crm
}

/// A CRM on the simulated clock: 503 until `up_at`, then 200; it remembers when (simulated
/// seconds since `start`) it answered what.
#[derive(Clone)]
pub struct DownUntil {
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
    pub async fn mount(clock: &ManualClock, down_for: Duration) -> (MockServer, DownUntil) {
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

    pub fn answers(&self) -> Vec<(i64, u16)> {
        self.answers.lock().unwrap().clone()
    }
}
