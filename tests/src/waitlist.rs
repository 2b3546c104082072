//! Waitlist fixtures for the store-level contract tests (`tests/waitlist*.rs`) and the scale
//! example: events written straight into a store, seat holders and users in line with chosen
//! `joined_at` times, and what the line and the bookings look like afterwards.

use chrono::Duration;
use shared::error::Error;
use shared::model::{new_id, Booking, CancelReason, Event, EventStatus, Payment, Price, WaitEntry};
use shared::store::Position;
use shared::time::Timestamp;
use shared::Store;
use std::collections::HashMap;

pub const OWNER: &str = "01OWNER0000000000000000000";

/// An event of `capacity` (`None`: unlimited) starting `starts_in` from `now`, free or `price`d.
pub fn event(capacity: Option<u32>, price: Option<Price>, starts_in: Duration, now: Timestamp) -> Event {
    Event {
        id: new_id(),
        title: "Sold out".into(),
        description: String::new(),
        datetime: now + starts_in,
        duration_minutes: 60,
        facilitator_id: OWNER.into(),
        event_type: "Yoga".into(),
        rating: None,
        capacity,
        seats_booked: 0,
        price,
        owner_id: OWNER.into(),
        created_at: now,
        updated_at: now,
        status: EventStatus::Scheduled,
        cancelled_at: None,
        cancel_reason: None,
        revision: 0,
        waitlist_count: 0,
    }
}

pub fn usd(amount: u64) -> Price {
    Price { amount, currency: "usd".into() }
}

/// Writes the event and returns it.
pub async fn create<S: Store>(store: &S, capacity: Option<u32>, price: Option<Price>, starts_in: Duration) -> Event {
    let e = event(capacity, price, starts_in, shared::time::now());
    store.create_event(&e).await.expect("create event");
    e
}

/// The booking `POST /bookings/` makes for `user_id`: confirmed (free) or a seat hold (priced).
pub fn booking(event: &Event, user_id: &str, now: Timestamp) -> Booking {
    let payment = event.price.as_ref().map(|p| Payment::hold(p, now));
    let (name, email) = (format!("Booker {user_id}"), format!("{}@example.com", user_id.to_lowercase()));
    Booking::new(event, user_id, &name, &email, payment, now)
}

/// Books `user_id` into the event as it now is.
pub async fn book<S: Store>(store: &S, event_id: &str, user_id: &str) -> Result<Booking, Error> {
    let now = shared::time::now();
    let event = store.get_event(event_id).await?.ok_or(Error::NotFound("event"))?;
    let b = booking(&event, user_id, now);
    store.create_booking(&b, None, now).await?;
    Ok(b)
}

/// `n` new users booked into the event, one after the other.
pub async fn fill<S: Store>(store: &S, event_id: &str, n: usize) -> Vec<Booking> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(book(store, event_id, &new_id()).await.expect("seat holder books"));
    }
    out
}

pub fn entry(event_id: &str, user_id: &str, joined_at: Timestamp) -> WaitEntry {
    WaitEntry {
        event_id: event_id.to_string(),
        user_id: user_id.to_string(),
        user_name: format!("Waiter {user_id}"),
        user_email: format!("{}@example.com", user_id.to_lowercase()),
        joined_at,
    }
}

/// `n` new users joining one after the other, the i-th at `first + i` seconds (so the line is
/// the order of the returned entries), each answered with its place `i + 1 + already`.
pub async fn line_up<S: Store>(store: &S, event_id: &str, n: usize, first: Timestamp) -> Vec<WaitEntry> {
    let already = store.get_event(event_id).await.unwrap().map_or(0, |e| e.waitlist_count);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let e = entry(event_id, &new_id(), first + Duration::seconds(i as i64));
        let place = store.join_waitlist(&e, shared::time::now()).await.expect("join");
        assert_eq!(place as usize, i + 1 + already as usize, "place answered to joiner {i}");
        out.push(e);
    }
    out
}

/// The whole line, page after page of `page` entries, checking each page's `first_position`.
pub async fn whole_line<S: Store>(store: &S, event_id: &str, page: usize) -> Vec<WaitEntry> {
    let mut out: Vec<WaitEntry> = Vec::new();
    let mut after: Option<Position> = None;
    loop {
        let p = store.waitlist(event_id, after.as_ref(), page).await.expect("waitlist page");
        assert_eq!(p.first_position as usize, out.len() + 1, "first_position of a page");
        out.extend(p.items);
        match p.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// Every booking of the event (all statuses), oldest first.
pub async fn all_bookings<S: Store>(store: &S, event_id: &str) -> Vec<Booking> {
    let mut out = Vec::new();
    let mut after: Option<Position> = None;
    loop {
        let p = store.list_event_bookings(event_id, after.as_ref(), 100).await.expect("bookings page");
        out.extend(p.items);
        match p.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// The bookings of each user that hold a seat: every value must have one element.
pub fn holders(bookings: &[Booking]) -> HashMap<String, Vec<&Booking>> {
    let mut by_user: HashMap<String, Vec<&Booking>> = HashMap::new();
    for b in bookings.iter().filter(|b| b.status.holds_seat()) {
        by_user.entry(b.user_id.clone()).or_default().push(b);
    }
    by_user
}

/// Cancels `b` as its attendee would through the API: a conflict the adapter could not absorb
/// (`Unavailable`, a 503 to the client) is retried, as is a booking that changed (read again).
pub async fn cancel<S: Store>(store: &S, b: &Booking) -> Result<Booking, Error> {
    let mut current = b.clone();
    for _ in 0..20 {
        match store.cancel_booking(&current, CancelReason::Attendee, shared::time::now()).await {
            Err(Error::Unavailable(_)) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Err(Error::StatusChanged) => {
                current = store.get_booking(&b.id).await?.ok_or(Error::NotFound("booking"))?;
            }
            other => return other,
        }
    }
    Err(Error::Unavailable("cancel kept conflicting".into()))
}

/// Retries `op` while the store answers `Unavailable` (what a client does on a 503).
pub async fn retrying<T, F, Fut>(mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    for _ in 0..20 {
        match op().await {
            Err(Error::Unavailable(_)) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            other => return other,
        }
    }
    Err(Error::Unavailable("kept conflicting".into()))
}

/// The event's counters: (seats_booked, waitlist_count).
pub async fn counts<S: Store>(store: &S, event_id: &str) -> (u32, u32) {
    let e = store.get_event(event_id).await.unwrap().expect("event exists");
    (e.seats_booked, e.waitlist_count)
}

/// Runs the event's lifecycle job until it is gone → users promoted, entries cleared.
pub async fn run_job<S: Store>(store: &S, event_id: &str) -> (usize, usize) {
    let (mut promoted, mut cleared) = (0, 0);
    for _ in 0..1000 {
        let r = shared::lifecycle::run_batch(store, event_id, 25, shared::time::now(), &|_| {}).await.expect("batch");
        promoted += r.promoted;
        cleared += r.cleared;
        if r.done || store.get_job(event_id).await.unwrap().is_none() {
            return (promoted, cleared);
        }
    }
    panic!("the job of {event_id} did not end in 1000 batches");
}
