//! How entities lie in items: keys, index entries, tags, and the attribute names expressions use.

use super::*;
use crate::model::{BookingStatus, DeliveryStatus, LoginThrottle};

fn event() -> Event {
    let now = crate::time::now();
    Event {
        waitlist_count: 0,
        id: "E1".into(),
        title: "t".into(),
        description: String::new(),
        datetime: now,
        duration_minutes: 60,
        facilitator_id: "F".into(),
        event_type: " Yoga".into(),
        rating: Some(4.5),
        capacity: Some(3),
        seats_booked: 0,
        price: None,
        owner_id: "U".into(),
        created_at: now,
        updated_at: now,
        status: crate::model::EventStatus::Scheduled,
        cancelled_at: None,
        cancel_reason: None,
        revision: 0,
    }
}

#[test]
fn items_drop_nulls_and_carry_keys_indexes_and_tag() {
    let ev = Event { rating: None, capacity: None, ..event() };
    let item = ev.to_item().unwrap();
    assert!(!item.contains_key("capacity") && !item.contains_key("rating"));
    assert_eq!(item.get("PK"), Some(&s("EVENT#E1")));
    assert_eq!(item.get("GSI1PK"), Some(&s("EVENTS")));
    assert_eq!(item.get("GSI2PK"), Some(&s("TYPE#yoga")));
    assert_eq!(item.get("entity"), Some(&s("event")));
    assert_eq!(from_item::<Event>(item).unwrap(), ev);
    let guard = AttendeeGuard { event_id: "E1", user_id: "U1", booking_id: "B1" }.to_item().unwrap();
    assert_eq!((guard.get("SK"), guard.len()), (Some(&s("ATTENDEE#U1")), 4), "{guard:?}");
}

#[test]
fn attribute_names_are_the_serialised_fields() {
    let ev = serde_json::to_value(event()).unwrap();
    for name in [attr::SEATS_BOOKED, attr::CAPACITY, attr::DATETIME, attr::OWNER_ID, attr::RATING] {
        assert!(ev.get(name).is_some(), "Event has no field {name}");
    }
    let e = event();
    let booking = serde_json::to_value(Booking {
        via_waitlist: false,
        id: "B".into(),
        event_id: "E1".into(),
        user_id: "U".into(),
        user_name: "n".into(),
        user_email: "e@x.io".into(),
        status: BookingStatus::Cancelled,
        created_at: e.created_at,
        cancelled_at: Some(e.created_at),
        event: e.snapshot(),
        payment: None,
        cancel_reason: None,
        sequence: 0,
    })
    .unwrap();
    let user = serde_json::to_value(User {
        id: "U".into(),
        name: "n".into(),
        email: "e@x.io".into(),
        role: crate::model::Role::Admin,
        password_hash: "h".into(),
        created_at: e.created_at,
        session_epoch: 0,
    })
    .unwrap();
    for name in [attr::ROLE, attr::PASSWORD_HASH, attr::SESSION_EPOCH] {
        assert!(user.get(name).is_some(), "User has no field {name}");
    }
    let (session, _) = Session::start("U", 0, e.created_at);
    let session = serde_json::to_value(&session).unwrap();
    for name in [
        attr::USER_ID,
        attr::GENERATION,
        attr::TOKEN_HASH,
        attr::SESSION_EPOCH,
        attr::REVOKED,
        attr::EXPIRES_AT,
        attr::TTL,
    ] {
        assert!(session.get(name).is_some(), "Session has no field {name}");
    }
    assert_eq!(ABSENT, format!("attribute_not_exists({})", keys::PK));
    assert_eq!(EXISTS, format!("attribute_exists({})", keys::PK));
    for name in [attr::STATUS, attr::CANCELLED_AT, attr::USER_ID] {
        assert!(booking.get(name).is_some(), "Booking has no field {name}");
    }
    let throttle = serde_json::to_value(LoginThrottle { attempts: 1, window_start: 0 }).unwrap();
    for name in [attr::ATTEMPTS, attr::WINDOW_START] {
        assert!(throttle.get(name).is_some(), "LoginThrottle has no field {name}");
    }
    let window = serde_json::to_value(LoginWindow { email: "a@b.io", attempts: 1, window_start: 0, ttl: 9 }).unwrap();
    assert_eq!(window, serde_json::json!({"attempts": 1, "window_start": 0, "ttl": 9}));
    assert_eq!(serde_json::to_value(DeliveryStatus::Delivered).unwrap(), serde_json::json!("delivered"));
    let mut delivery = Delivery::pending(&serde_json::from_value(booking).unwrap(), e.created_at);
    delivery.lease_until = Some(e.created_at);
    delivery.lease_owner = Some("claim".into());
    let delivery = serde_json::to_value(&delivery).unwrap();
    for name in [
        attr::STATUS,
        attr::ATTEMPTS,
        attr::BOOKING_ID,
        attr::BOOKED_AT,
        attr::UPDATED_AT,
        attr::LEASE_UNTIL,
        attr::KIND,
        attr::SEQ,
    ] {
        assert!(delivery.get(name).is_some(), "Delivery has no field {name}");
    }
    assert!(delivery.get(attr::LEASE_OWNER).is_some(), "Delivery has no field {}", attr::LEASE_OWNER);
    for status in [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Retrying, DeliveryStatus::Failed]
    {
        assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
    }
}

#[test]
fn delivery_records_are_in_the_pending_index_until_final() {
    let e = event();
    let booking = Booking {
        via_waitlist: false,
        id: "01KBK3ZQ7M4XR2D9T6VW8YHN5A".into(),
        event_id: "E1".into(),
        user_id: "U".into(),
        user_name: "n".into(),
        user_email: "e@x.io".into(),
        status: BookingStatus::Confirmed,
        created_at: crate::time::parse("2026-01-05T09:30:00Z").unwrap(),
        cancelled_at: None,
        event: e.snapshot(),
        payment: None,
        cancel_reason: None,
        sequence: 0,
    };
    let mut d = Delivery::pending(&booking, e.created_at);
    let item = d.to_item().unwrap();
    assert_eq!(item.get("PK"), Some(&s("BOOKING#01KBK3ZQ7M4XR2D9T6VW8YHN5A")));
    assert_eq!(item.get("SK"), Some(&s("DELIVERY")));
    assert_eq!(item.get("GSI1PK"), Some(&s("CRM#PENDING#2026-01-05")));
    assert_eq!(item.get("GSI1SK"), Some(&s("2026-01-05T09:30:00Z#01KBK3ZQ7M4XR2D9T6VW8YHN5A")));
    assert!(!item.contains_key("GSI2PK") && !item.contains_key("lease_owner"), "{item:?}");
    assert_eq!(from_item::<Delivery>(item).unwrap(), d);
    d.status = DeliveryStatus::Retrying;
    assert!(d.to_item().unwrap().contains_key("GSI1PK"), "retrying stays pending");
    for status in [DeliveryStatus::Delivered, DeliveryStatus::Failed] {
        d.status = status;
        let item = d.to_item().unwrap();
        assert!(!item.contains_key("GSI1PK") && !item.contains_key("GSI1SK"), "{status:?} left in the index");
    }
    // A record from before the index (no booked_at) has no entry until a claim adds one.
    d.status = DeliveryStatus::Retrying;
    d.booked_at = None;
    assert!(!d.to_item().unwrap().contains_key("GSI1PK"));
    assert!(keys::pending_deliveries(booking.created_at.date_naive()).starts_with(keys::PENDING_DELIVERIES_PREFIX));
}
