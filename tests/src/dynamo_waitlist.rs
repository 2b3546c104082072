//! Helpers of the DynamoDB adapter's waitlist tests (tests/tests/waitlist_dynamo.rs): events,
//! people, bookings and wait entries written through the store, and raw reads of the table.

use crate::CallLog;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use shared::keys;
use shared::model::{new_id, Booking, Event, Payment, Price, Role, User, WaitEntry};
use shared::store::{DynamoStore, Store};
use shared::time::{self, Timestamp};
use std::collections::HashMap;

pub use crate::waitlist::{counts, OWNER};

pub type Item = HashMap<String, AttributeValue>;

/// An event of the store-level fixtures (`crate::waitlist::event`), starting `starts_in` from now.
pub fn new_event(capacity: Option<u32>, price: Option<Price>, starts_in: Duration) -> Event {
    crate::waitlist::event(capacity, price, starts_in, time::now())
}

pub fn usd() -> Option<Price> {
    Some(crate::waitlist::usd(2500))
}

pub async fn event(store: &DynamoStore, capacity: Option<u32>, price: Option<Price>) -> Event {
    crate::waitlist::create(store, capacity, price, Duration::days(3)).await
}

pub async fn person(store: &DynamoStore) -> User {
    let id = new_id();
    let user = User {
        name: format!("User {}", &id[20..]),
        email: format!("{}@example.com", id.to_lowercase()),
        id,
        role: Role::Attendee,
        password_hash: "x".into(),
        created_at: time::now(),
        session_epoch: 0,
    };
    store.create_user(&user).await.unwrap();
    user
}

/// A booking of `event_id` by `user` as `POST /bookings/` makes it (a hold when priced).
pub async fn booking_of(store: &DynamoStore, event_id: &str, user: &User) -> Booking {
    let event = store.get_event(event_id).await.unwrap().unwrap();
    let now = time::now();
    let payment = event.price.as_ref().map(|p| Payment::hold(p, now));
    Booking::new(&event, &user.id, &user.name, &user.email, payment, now)
}

pub async fn book(store: &DynamoStore, event_id: &str, user: &User) -> Booking {
    let b = booking_of(store, event_id, user).await;
    store.create_booking(&b, None, time::now()).await.unwrap();
    b
}

pub fn entry(event_id: &str, user: &User, joined_at: Timestamp) -> WaitEntry {
    WaitEntry {
        event_id: event_id.into(),
        user_id: user.id.clone(),
        user_name: user.name.clone(),
        user_email: user.email.clone(),
        joined_at,
    }
}

/// `n` users waiting for `event_id`, one second apart in line (the first joined earliest).
pub async fn waiting(store: &DynamoStore, event_id: &str, n: usize) -> Vec<User> {
    let start = time::now() - Duration::seconds(n as i64 + 5);
    let mut users = Vec::new();
    for i in 0..n {
        let u = person(store).await;
        store.join_waitlist(&entry(event_id, &u, start + Duration::seconds(i as i64)), time::now()).await.unwrap();
        users.push(u);
    }
    users
}

pub async fn raw(store: &DynamoStore, (pk, sk): keys::Key) -> Option<Item> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S(pk))
        .key("SK", AttributeValue::S(sk))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

pub fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default()
}

/// The booking the guard of (`event_id`, `user`) names, once promoted.
pub async fn promoted(store: &DynamoStore, event_id: &str, user: &User) -> Option<Booking> {
    let guard = raw(store, keys::attendee(event_id, &user.id)).await?;
    if text(&guard, "entity") != keys::entity::ATTENDEE {
        return None;
    }
    store.get_booking(text(&guard, "booking_id")).await.unwrap()
}

pub fn ops(log: &CallLog) -> Vec<String> {
    let calls = log.take();
    assert!(!calls.iter().any(|c| c == "Scan"), "a Scan: {calls:?}");
    calls
}
