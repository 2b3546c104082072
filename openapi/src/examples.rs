//! Example bodies, shared by the operations that return the same shape.

use serde_json::{json, Value};

pub fn user() -> Value {
    json!({"id": "01J8Z3V4W5X6Y7Z8A9B0C1D2E3", "name": "Ann Lee", "email": "ann@example.com", "role": "attendee"})
}

pub fn event() -> Value {
    json!({
        "id": "01J8Z4A1B2C3D4E5F6G7H8J9K0", "title": "Morning Yoga", "description": "A gentle start to the day",
        "datetime": "2025-08-01T10:00:00Z", "duration_minutes": 60, "facilitator_id": "FAC001", "type": "Yoga",
        "rating": 4.9, "capacity": null, "seats_booked": 0, "seats_left": null, "price": null,
        "owner_id": "01J8Z3V4W5X6Y7Z8A9B0C1D2E3", "created_at": "2025-07-01T09:00:00Z",
        "updated_at": "2025-07-01T09:00:00Z", "status": "scheduled", "cancelled_at": null, "cancel_reason": null,
        "bookings_to_cancel": null, "waitlist_count": 0
    })
}

pub fn events() -> Value {
    json!([event()])
}

pub fn event_input() -> Value {
    json!({
        "title": "Morning Yoga", "description": "A gentle start to the day", "type": "Yoga",
        "datetime": "2025-08-01T10:00:00", "facilitator_id": "FAC001", "rating": 4.9
    })
}

pub fn booking() -> Value {
    json!({
        "id": "01J8Z5B1C2D3E4F5G6H7J8K9M0", "event_id": "01J8Z4A1B2C3D4E5F6G7H8J9K0",
        "user_id": "01J8Z3V4W5X6Y7Z8A9B0C1D2E3", "status": "confirmed", "created_at": "2025-07-02T08:30:00Z",
        "cancelled_at": null,
        "event": {
            "id": "01J8Z4A1B2C3D4E5F6G7H8J9K0", "title": "Morning Yoga", "datetime": "2025-08-01T10:00:00Z",
            "duration_minutes": 60, "type": "Yoga", "facilitator_id": "FAC001"
        },
        "payment": null
    })
}

pub fn cancelled_booking() -> Value {
    let mut b = booking();
    b["status"] = json!("cancelled");
    b["cancelled_at"] = json!("2025-07-03T12:00:00Z");
    b
}

pub fn paid_booking() -> Value {
    let mut b = booking();
    b["status"] = json!("pending_payment");
    b["event"]["title"] = json!("Sound Bath");
    b["payment"] = json!({
        "checkout_url": "https://checkout.stripe.com/c/pay/cs_test_a1B2c3D4e5F6", "expires_at": "2025-07-02T09:01:00Z",
        "amount": 1500, "currency": "eur", "refund_status": null, "settled_by": null
    });
    b
}

pub fn cancelled_paid_booking() -> Value {
    let mut b = paid_booking();
    b["status"] = json!("cancelled");
    b["cancelled_at"] = json!("2025-07-03T12:00:00Z");
    b["payment"]["refund_status"] = json!("pending");
    b["payment"]["settled_by"] = json!("evt_1QabcDEFghiJKL");
    b
}

pub fn history() -> Value {
    let mut waiting_for = booking()["event"].clone();
    waiting_for["id"] = json!("01J8Z4A1B2C3D4E5F6G7H8J9K1");
    waiting_for["title"] = json!("Full Moon Sound Bath");
    waiting_for["type"] = json!("Meditation");
    json!({"upcoming": [booking()], "past": [], "waiting": [{
        "event_id": "01J8Z4A1B2C3D4E5F6G7H8J9K1", "position": 3, "joined_at": "2025-07-02T08:35:00Z",
        "event": waiting_for
    }]})
}

pub fn waitlist_joined() -> Value {
    json!({
        "event_id": "01J8Z4A1B2C3D4E5F6G7H8J9K1", "user_id": "01J8Z3V4W5X6Y7Z8A9B0C1D2E3", "position": 3,
        "joined_at": "2025-07-02T08:35:00Z"
    })
}

pub fn waitlist() -> Value {
    json!([
        {"position": 1, "user_id": "01J8Z3V4W5X6Y7Z8A9B0C1D2E4", "name": "Ravi Nair", "email": "ravi@example.com",
         "joined_at": "2025-07-02T08:31:00Z"},
        {"position": 2, "user_id": "01J8Z3V4W5X6Y7Z8A9B0C1D2E3", "name": "Ann Lee", "email": "ann@example.com",
         "joined_at": "2025-07-02T08:35:00Z"}
    ])
}

pub fn event_bookings() -> Value {
    let mut b = booking();
    b["attendee"] = json!({"name": "Ann Lee", "email": "ann@example.com"});
    b["crm_status"] = json!({
        "status": "delivered", "attempts": 1, "last_http_status": 200, "last_failure": null,
        "delivered_at": "2025-07-02T08:30:01Z"
    });
    b["crm_messages"] = json!([{
        "type": "booking.confirmed", "status": "delivered", "attempts": 1, "last_http_status": 200,
        "last_failure": null, "delivered_at": "2025-07-02T08:30:01Z"
    }]);
    json!([b])
}

pub fn token() -> Value {
    json!({
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl", "token_type": "Bearer",
        "expires_in": 3600
    })
}

/// `POST /auth/login` and `POST /auth/refresh` once the sessions routes land.
pub fn token_with_refresh() -> Value {
    let mut t = token();
    t["refresh_token"] =
        json!("01JD9ZQ4M7W3X8Y2K5N6P1R0ST.01JDA0B3C4D5E6F7G8H9J0K1MN.3.UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw");
    t
}

pub fn stripe_event() -> Value {
    json!({
        "id": "evt_1QabcDEFghiJKL", "type": "checkout.session.completed",
        "data": {"object": {
            "id": "cs_test_a1B2c3", "object": "checkout.session", "status": "complete", "payment_status": "paid",
            "amount_total": 1500, "currency": "eur", "client_reference_id": "01J8Z5B1C2D3E4F5G6H7J8K9M0",
            "metadata": {"booking_id": "01J8Z5B1C2D3E4F5G6H7J8K9M0"}
        }}
    })
}

/// The calendar file of [`booking`], as the route writes it (its own renderer, so the example
/// cannot drift from the code): CRLF lines, the description folded at 75 octets and escaped.
pub fn calendar() -> Value {
    let booking: shared::model::Booking = serde_json::from_value(json!({
        "id": "01J8Z5B1C2D3E4F5G6H7J8K9M0", "event_id": "01J8Z4A1B2C3D4E5F6G7H8J9K0",
        "user_id": "01J8Z3V4W5X6Y7Z8A9B0C1D2E3", "user_name": "Ann Lee", "user_email": "ann@example.com",
        "status": "confirmed", "created_at": "2025-07-02T08:30:00Z", "sequence": 0,
        "event": {
            "id": "01J8Z4A1B2C3D4E5F6G7H8J9K0", "title": "Morning Yoga", "datetime": "2025-08-01T10:00:00Z",
            "duration_minutes": 60, "type": "Yoga", "facilitator_id": "FAC001"
        }
    }))
    .expect("the example booking deserialises");
    let mut event: shared::model::Event = serde_json::from_value(event()).expect("the example event deserialises");
    event.description = "A gentle start to the day: bring a mat, water; a towel.\nAll levels welcome.".into();
    let stamp = shared::time::parse("2025-07-02T08:31:00Z").expect("a valid time");
    json!(bookings::calendar::render(&booking, Some(&event), stamp))
}
