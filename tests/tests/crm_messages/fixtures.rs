//! Message records as the stream carries them, and bookings made and cancelled through the
//! handlers, with the payload fields every message of a booking shares.

use aws_lambda_events::event::dynamodb::EventRecord;
use serde_dynamo::AttributeValue;
use serde_json::{json, Value};
use shared::model::{Booking, Delivery, MessageKind, Role};
use shared::store::Store;
use shared::time::format as rfc3339;

/// The INSERT of a message record as the stream carries it (NEW_IMAGE: the record, its keys and
/// entity).
pub fn message_insert(d: &Delivery, seq: &str) -> EventRecord {
    let mut image: serde_dynamo::Item = serde_dynamo::to_item(d).unwrap();
    let (pk, sk) = d.key();
    image.insert("PK".into(), AttributeValue::S(pk));
    image.insert("SK".into(), AttributeValue::S(sk));
    image.insert("entity".into(), AttributeValue::S("delivery".into()));
    let mut r = EventRecord::default();
    r.event_name = "INSERT".into();
    r.event_id = format!("evt-{seq}");
    r.change.sequence_number = Some(seq.into());
    r.change.new_image = image;
    r
}

/// The booking's `booking.cancelled` record as stored.
pub async fn cancellation<S: Store>(store: &S, booking_id: &str) -> Delivery {
    let read = store.booking_messages(booking_id).await.unwrap();
    read.messages.into_iter().find(|m| m.kind == MessageKind::Cancelled).expect("the cancel wrote its message")
}

/// An owner's event and its id, made through the handlers.
pub async fn event<S: Store>(app: &shared::App<S>) -> (String, String) {
    let (_, owner) = tests::user(app, Role::Facilitator).await;
    let body = json!({"title": "Sound Bath", "type": "Meditation", "facilitator_id": "FAC042",
        "datetime": tests::in_days(30), "capacity": 10});
    let resp = tests::call(app, tests::request("POST", "/events", Some(&owner), Some(body))).await;
    assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
    (owner, tests::json(&resp)["id"].as_str().unwrap().to_string())
}

/// A booking made through the handlers, and its attendee's token.
pub async fn booked<S: Store>(app: &shared::App<S>, event_id: &str) -> (Booking, String) {
    let (_, token) = tests::user(app, Role::Attendee).await;
    let req = tests::request("POST", "/bookings/", Some(&token), Some(json!({"event_id": event_id})));
    let resp = tests::call(app, req).await;
    assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
    let id = tests::json(&resp)["id"].as_str().unwrap().to_string();
    (app.store.get_booking(&id).await.unwrap().unwrap(), token)
}

/// The attendee cancels through the handlers; the booking as it now is.
pub async fn cancel<S: Store>(app: &shared::App<S>, id: &str, token: &str) -> Booking {
    let resp = tests::call(app, tests::request("DELETE", &format!("/bookings/{id}"), Some(token), None)).await;
    assert_eq!(tests::status(&resp), 200, "{:?}", tests::json(&resp));
    app.store.get_booking(id).await.unwrap().unwrap()
}

/// A booking made and then cancelled by its attendee through the handlers, nothing sent yet.
pub async fn booked_and_cancelled<S: Store>(app: &shared::App<S>, event_id: &str) -> Booking {
    let (b, token) = booked(app, event_id).await;
    cancel(app, &b.id, &token).await
}

/// The v2 fields of `b`'s payload.
pub fn v2(b: &Booking, event_type: &str) -> Value {
    json!({
        "type": event_type,
        "booking_id": b.id,
        "user": {"name": b.user_name, "email": b.user_email},
        "event_id": b.event_id,
        "facilitator_id": b.event.facilitator_id,
        "event_title": b.event.title,
        "event_datetime": rfc3339(&b.event.datetime),
        "booked_at": rfc3339(&b.created_at),
    })
}
