//! The DynamoDB adapter's waitlist on moto, at the store level: the calls each operation makes
//! (tests::CallLog), the order of its errors, the FIFO head a freed seat goes to inside the write
//! that frees it, a capacity increase split into transactions of at most 20 promotions, offers
//! (priced promotions) through attach, expiry and cancel, and an event's cancellation emptying
//! its line. The store-generic contract (both adapters) lives in the other waitlist tests.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use shared::error::Error;
use shared::keys;
use shared::model::{BookingStatus, EventPatch, JobKind};
use shared::store::{Actor, Settled, Settlement, Store, PROMOTIONS_PER_WRITE};
use shared::time;
use tests::dynamo_counted;

use tests::dynamo_waitlist::*;

/// Join and leave: their calls, their errors in the contract's order, and what a waiting user
/// may not do (book, join again).
#[tokio::test]
async fn join_and_leave_calls_and_errors() {
    let (store, log) = dynamo_counted().await;
    let ev = event(&store, Some(1), None).await;
    let (holder, b, c) = (person(&store).await, person(&store).await, person(&store).await);
    book(&store, &ev.id, &holder).await;
    let now = time::now();
    log.take();
    assert_eq!(store.join_waitlist(&entry(&ev.id, &b, now), now).await.unwrap(), 1);
    assert_eq!(ops(&log), ["TransactWriteItems", "GetItem"], "join: one write, the count read back");
    assert_eq!(store.join_waitlist(&entry(&ev.id, &c, now + Duration::seconds(1)), now).await.unwrap(), 2);
    log.take();
    // The user's own errors come after the event's.
    let err = store.join_waitlist(&entry(&ev.id, &holder, now), now).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyBooked), "{err:?}");
    let err = store.join_waitlist(&entry(&ev.id, &b, now + Duration::seconds(9)), now).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyWaiting), "{err:?}");
    assert_eq!(ops(&log), ["TransactWriteItems", "TransactWriteItems"], "a refused join reads nothing more");
    // A waiting user cannot book; the context says so before the write.
    let ctx = store.booking_context(&ev.id, &b.id, None).await.unwrap();
    assert!(ctx.waiting && !ctx.already_booked);
    let err = store.create_booking(&booking_of(&store, &ev.id, &b).await, None, now).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyWaiting), "{err:?}");
    // The event's errors, first: unknown, cancelled, started, seats free (or no limit).
    let unknown = new_event(Some(1), None, Duration::days(1));
    let err = store.join_waitlist(&entry(&unknown.id, &b, now), now).await.unwrap_err();
    assert!(matches!(err, Error::NotFound("event")), "{err:?}");
    let free = event(&store, Some(5), None).await;
    let err = store.join_waitlist(&entry(&free.id, &holder, now), now).await.unwrap_err();
    assert!(matches!(err, Error::SeatsAvailable), "{err:?}");
    let unlimited = event(&store, None, None).await;
    let err = store.join_waitlist(&entry(&unlimited.id, &b, now), now).await.unwrap_err();
    assert!(matches!(err, Error::SeatsAvailable), "{err:?}");
    let late = store.join_waitlist(&entry(&ev.id, &holder, now), ev.datetime + Duration::seconds(1)).await;
    assert!(matches!(late, Err(Error::EventStarted)), "{late:?}: started comes before already_booked");
    // An outsider is refused the seat a cancel would free: nobody may take it while users wait.
    let outsider = person(&store).await;
    let err = store.create_booking(&booking_of(&store, &ev.id, &outsider).await, None, now).await.unwrap_err();
    assert!(matches!(err, Error::EventFull), "{err:?}");
    // Leave: one read of the guard, one write; then it is gone.
    log.take();
    store.leave_waitlist(&ev.id, &c.id).await.unwrap();
    assert_eq!(ops(&log), ["GetItem", "TransactWriteItems"]);
    assert!(matches!(store.leave_waitlist(&ev.id, &c.id).await, Err(Error::NotFound("waitlist entry"))));
    assert!(matches!(store.leave_waitlist(&ev.id, &holder.id).await, Err(Error::NotFound(_))), "a booked user");
    assert_eq!(counts(&store, &ev.id).await, (1, 1));
    assert!(raw(&store, keys::attendee(&ev.id, &c.id)).await.is_none(), "guard gone");
    // Cancelled events refuse joins (after the job the line is gone too).
    store.cancel_event(&ev.id, None, Actor::Admin, time::now()).await.unwrap();
    let err = store.join_waitlist(&entry(&ev.id, &c, now), time::now()).await.unwrap_err();
    assert!(matches!(err, Error::EventCancelled), "{err:?}");
}

/// A cancel nobody waits for costs what it always did (one transaction); one that frees a seat
/// users wait for hands it to the first in line (FIFO by joined_at, then user id) in its own
/// write: a refused transaction, the head's Query, the transaction that promotes.
#[tokio::test]
async fn a_cancel_hands_its_seat_to_the_first_in_line() {
    let (store, log) = dynamo_counted().await;
    let quiet = event(&store, Some(2), None).await;
    let alone = book(&store, &quiet.id, &person(&store).await).await;
    log.take();
    store.cancel_booking(&alone, shared::model::CancelReason::Attendee, time::now()).await.unwrap();
    assert_eq!(ops(&log), ["TransactWriteItems"], "nobody waits: unchanged");

    let ev = event(&store, Some(2), None).await;
    let holders = [person(&store).await, person(&store).await];
    let mut booked = Vec::new();
    for h in &holders {
        booked.push(book(&store, &ev.id, h).await);
    }
    // Two join in the same second: the smaller user id is ahead.
    let t = time::now() - Duration::seconds(30);
    let (mut x, mut y, z) = (person(&store).await, person(&store).await, person(&store).await);
    if x.id > y.id {
        std::mem::swap(&mut x, &mut y);
    }
    store.join_waitlist(&entry(&ev.id, &z, t + Duration::seconds(1)), time::now()).await.unwrap();
    store.join_waitlist(&entry(&ev.id, &y, t), time::now()).await.unwrap();
    store.join_waitlist(&entry(&ev.id, &x, t), time::now()).await.unwrap();
    let line: Vec<String> =
        store.waitlist(&ev.id, None, 10).await.unwrap().items.into_iter().map(|e| e.user_id).collect();
    assert_eq!(line, [x.id.clone(), y.id.clone(), z.id.clone()]);
    log.take();
    store.cancel_booking(&booked[0], shared::model::CancelReason::Attendee, time::now()).await.unwrap();
    let calls = log.take_exchanges();
    let names: Vec<&str> = calls.iter().map(|c| c.op.as_str()).collect();
    assert_eq!(names, ["TransactWriteItems", "Query", "TransactWriteItems"]);
    assert!(!calls[0].ok && calls[2].ok, "the optimistic write is refused, the promotion commits");
    assert_eq!(calls[1].req["ConsistentRead"], true, "the head is read strongly consistent");
    assert_eq!(calls[2].req["TransactItems"].as_array().unwrap().len(), 4 + 4, "cancel (4) + promotion (4)");
    let b = promoted(&store, &ev.id, &x).await.expect("the first in line holds the seat");
    assert_eq!((b.status, b.via_waitlist), (BookingStatus::Confirmed, true));
    assert!(store.get_delivery(&b.id).await.unwrap().is_some(), "its booking.confirmed record");
    assert_eq!(counts(&store, &ev.id).await, (2, 2), "the seat never came free");
    assert!(promoted(&store, &ev.id, &y).await.is_none());
    // The rest moved up; the user's own list says so.
    let places: Vec<u32> = store.user_waitlist(&z.id).await.unwrap().iter().map(|w| w.position).collect();
    assert_eq!(places, [2]);
    let page = store.waitlist(&ev.id, None, 1).await.unwrap();
    assert_eq!((page.first_position, page.items[0].user_id.clone()), (1, y.id.clone()));
    let rest = store.waitlist(&ev.id, page.next.as_ref(), 1).await.unwrap();
    assert_eq!((rest.first_position, rest.items[0].user_id.clone(), rest.next), (2, z.id.clone(), None));
    // The promoted user cannot join again (booked), and the cancel of their booking promotes y.
    let err = store.join_waitlist(&entry(&ev.id, &x, time::now()), time::now()).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyBooked), "{err:?}");
    store.cancel_booking(&b, shared::model::CancelReason::Admin, time::now()).await.unwrap();
    assert!(promoted(&store, &ev.id, &y).await.is_some());
    assert_eq!(counts(&store, &ev.id).await, (2, 1));
}

/// A capacity increase of 45 with 60 waiting: the PATCH writes the promote job in its own
/// transaction; promote_waitlist hands out 45 seats in FIFO order, 20 per transaction at most
/// (three transactions of at most 81 items), and leaves 15 waiting.
#[tokio::test]
async fn a_capacity_increase_promotes_in_batches_of_twenty() {
    let (store, log) = dynamo_counted().await;
    let ev = event(&store, Some(1), None).await;
    book(&store, &ev.id, &person(&store).await).await;
    let line = waiting(&store, &ev.id, 60).await;
    log.take();
    let patch = EventPatch { capacity: Some(Some(46)), ..EventPatch::default() };
    store.update_event(&ev.id, &patch, Actor::Owner(OWNER), time::now()).await.unwrap();
    let calls = log.take_exchanges();
    let names: Vec<&str> = calls.iter().map(|c| c.op.as_str()).collect();
    assert_eq!(names, ["UpdateItem", "TransactWriteItems", "GetItem"], "refused update, update + job, answer");
    let job = store.get_job(&ev.id).await.unwrap().expect("the promote job");
    assert_eq!(job.kind, JobKind::Promote);
    // A PATCH that raises nothing while users wait is one update, as always.
    log.take();
    let title = EventPatch { title: Some("Retreat, full".into()), ..EventPatch::default() };
    store.update_event(&ev.id, &title, Actor::Admin, time::now()).await.unwrap();
    assert_eq!(ops(&log), ["UpdateItem"]);
    // Meanwhile nobody outside the line takes the free seats.
    let outsider = person(&store).await;
    let err = store.create_booking(&booking_of(&store, &ev.id, &outsider).await, None, time::now()).await.unwrap_err();
    assert!(matches!(err, Error::EventFull), "{err:?}");
    log.take();
    assert_eq!(store.promote_waitlist(&ev.id, time::now(), 100).await.unwrap(), 45);
    let writes: Vec<usize> = log
        .take_exchanges()
        .iter()
        .filter(|c| c.op == "TransactWriteItems")
        .map(|c| c.req["TransactItems"].as_array().unwrap().len())
        .collect();
    assert_eq!(writes, [1 + 4 * PROMOTIONS_PER_WRITE, 1 + 4 * PROMOTIONS_PER_WRITE, 1 + 4 * 5]);
    assert_eq!(counts(&store, &ev.id).await, (46, 15));
    for (i, u) in line.iter().enumerate() {
        assert_eq!(promoted(&store, &ev.id, u).await.is_some(), i < 45, "place {}", i + 1);
    }
    assert_eq!(store.waitlist(&ev.id, None, 100).await.unwrap().items[0].user_id, line[45].id);
    assert_eq!(store.promote_waitlist(&ev.id, time::now(), 100).await.unwrap(), 0, "no seat left");
}

/// Priced promotions: an expired hold hands its seat on as an offer (pending, its Offer task due
/// now); opening its session turns the task into the hold and writes booking.offered; its
/// expiry writes booking.expired and hands the seat to the next; cancelling an opened offer
/// writes booking.cancelled.
#[tokio::test]
async fn offers_are_announced_expire_and_cascade() {
    let (store, _log) = dynamo_counted().await;
    let ev = event(&store, Some(1), usd()).await;
    let hold = book(&store, &ev.id, &person(&store).await).await;
    let line = waiting(&store, &ev.id, 3).await;
    let expire = |by: &str| Settlement {
        to: BookingStatus::Expired,
        by: by.into(),
        payment_intent: None,
        now: time::now(),
        session: None,
    };
    assert!(matches!(store.settle_payment(&hold.id, &expire("sweep")).await.unwrap(), Settled::Changed(_)));
    let offer = promoted(&store, &ev.id, &line[0]).await.expect("offered to the first");
    assert_eq!((offer.status, offer.via_waitlist), (BookingStatus::PendingPayment, true));
    let task = raw(&store, keys::payment_task(&offer.id)).await.unwrap();
    assert_eq!(text(&task, "kind"), "offer");
    assert!(raw(&store, keys::message(&hold.id, shared::model::MessageKind::Expired, 0)).await.is_none());
    assert_eq!(counts(&store, &ev.id).await, (1, 2));
    // Its session opens: the hold task, due when the offer ends, and booking.offered.
    assert!(store.attach_checkout(&offer.id, "cs_1", "https://pay/1").await.unwrap());
    let task = raw(&store, keys::payment_task(&offer.id)).await.unwrap();
    assert_eq!(text(&task, "kind"), "hold");
    assert_eq!(text(&task, "due_at"), time::format(&offer.payment.as_ref().unwrap().expires_at));
    let offered = keys::message(&offer.id, shared::model::MessageKind::Offered, 0);
    assert!(raw(&store, offered.clone()).await.is_some());
    assert!(store.attach_checkout(&offer.id, "cs_1", "https://pay/1").await.unwrap(), "again: nothing new");
    // It expires: booking.expired, and the next is offered the seat.
    assert!(matches!(store.settle_payment(&offer.id, &expire("evt_1")).await.unwrap(), Settled::Changed(_)));
    assert!(raw(&store, keys::message(&offer.id, shared::model::MessageKind::Expired, 0)).await.is_some());
    let second = promoted(&store, &ev.id, &line[1]).await.expect("offered to the second");
    assert_eq!(counts(&store, &ev.id).await, (1, 1));
    // The second's session opens; they cancel it: booking.cancelled, the third gets the seat.
    assert!(store.attach_checkout(&second.id, "cs_2", "https://pay/2").await.unwrap());
    let second = store.get_booking(&second.id).await.unwrap().unwrap();
    let cancelled = store.cancel_booking(&second, shared::model::CancelReason::Attendee, time::now()).await.unwrap();
    assert!(raw(&store, keys::message(&second.id, shared::model::MessageKind::Cancelled, cancelled.sequence))
        .await
        .is_some());
    assert!(raw(&store, keys::payment_task(&second.id)).await.is_none());
    let third = promoted(&store, &ev.id, &line[2]).await.expect("offered to the third");
    assert_eq!(counts(&store, &ev.id).await, (1, 0));
    // A hold released unopened (its session could not be created) frees the seat: nobody waits.
    store.release_hold(&third, None).await.unwrap();
    assert!(store.get_booking(&third.id).await.unwrap().is_none());
    assert_eq!(counts(&store, &ev.id).await, (0, 0));
}

/// A priced event starting within 31 minutes promotes nobody: its freed seat is for direct
/// booking, and the cancel costs one transaction even with users waiting.
#[tokio::test]
async fn no_offer_too_close_to_the_start() {
    let (store, log) = dynamo_counted().await;
    let ev = new_event(Some(1), usd(), Duration::minutes(40));
    store.create_event(&ev).await.unwrap();
    let hold = book(&store, &ev.id, &person(&store).await).await;
    waiting(&store, &ev.id, 2).await;
    let later = time::now() + Duration::minutes(10);
    log.take();
    let expired =
        Settlement { to: BookingStatus::Expired, by: "sweep".into(), payment_intent: None, now: later, session: None };
    assert!(matches!(store.settle_payment(&hold.id, &expired).await.unwrap(), Settled::Changed(_)));
    assert_eq!(ops(&log), ["GetItem", "TransactWriteItems"]);
    assert_eq!(counts(&store, &ev.id).await, (0, 2));
    let outsider = person(&store).await;
    store.create_booking(&booking_of(&store, &ev.id, &outsider).await, None, later).await.unwrap();
    assert_eq!(store.promote_waitlist(&ev.id, later, 10).await.unwrap(), 0);
}

/// Parallel cancels with a longer line: exactly as many promoted as freed, the first ones in
/// line, none twice, counts exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_cancels_promote_in_order() {
    let (store, log) = dynamo_counted().await;
    let n = 15;
    let ev = event(&store, Some(n as u32), None).await;
    let mut booked = Vec::new();
    for _ in 0..n {
        booked.push(book(&store, &ev.id, &person(&store).await).await);
    }
    let line = waiting(&store, &ev.id, 2 * n).await;
    log.take();
    let started = std::time::Instant::now();
    let results = futures::future::join_all(booked.iter().map(|b| {
        let store = store.clone();
        async move { store.cancel_booking(b, shared::model::CancelReason::Attendee, time::now()).await }
    }))
    .await;
    let calls = log.take();
    println!("{n} parallel cancels with {} waiting: {:?}, {} calls", 2 * n, started.elapsed(), calls.len());
    for r in results {
        r.unwrap();
    }
    assert_eq!(counts(&store, &ev.id).await, (n as u32, n as u32));
    for (i, u) in line.iter().enumerate() {
        assert_eq!(promoted(&store, &ev.id, u).await.is_some(), i < n, "place {}", i + 1);
    }
    let page = store.waitlist(&ev.id, None, 1000).await.unwrap();
    assert_eq!(page.items.len(), n);
}

/// An event's cancellation: its job cancels the bookings, then empties the line (entries,
/// guards, count); the users' lists are empty.
#[tokio::test]
async fn event_cancel_clears_the_line() {
    let (store, _log) = dynamo_counted().await;
    let ev = event(&store, Some(2), None).await;
    book(&store, &ev.id, &person(&store).await).await;
    book(&store, &ev.id, &person(&store).await).await;
    let line = waiting(&store, &ev.id, 7).await;
    store.cancel_event(&ev.id, None, Actor::Admin, time::now()).await.unwrap();
    let err = store.delete_event(&ev.id, Actor::Admin).await.unwrap_err();
    assert!(matches!(err, Error::EventHasBookings), "{err:?}");
    let report = shared::lifecycle::run_until_done(&store, &ev.id, 2, &|_| {}).await.unwrap();
    assert_eq!(report.cancelled, 2);
    assert_eq!(counts(&store, &ev.id).await, (0, 0));
    assert!(store.waitlist(&ev.id, None, 100).await.unwrap().items.is_empty());
    for u in &line {
        assert!(store.user_waitlist(&u.id).await.unwrap().is_empty());
        assert!(raw(&store, keys::attendee(&ev.id, &u.id)).await.is_none());
    }
    assert!(store.get_job(&ev.id).await.unwrap().is_none());
    store.delete_event(&ev.id, Actor::Admin).await.unwrap();
}

/// A promotion racing the promoted user's own booking attempt: exactly one booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_promotion_racing_the_users_own_booking() {
    let (store, _log) = dynamo_counted().await;
    for _ in 0..5 {
        let ev = event(&store, Some(1), None).await;
        let holding = book(&store, &ev.id, &person(&store).await).await;
        let line = waiting(&store, &ev.id, 1).await;
        let own = booking_of(&store, &ev.id, &line[0]).await;
        let (cancel, attempt) = tokio::join!(
            store.cancel_booking(&holding, shared::model::CancelReason::Attendee, time::now()),
            store.create_booking(&own, None, time::now()),
        );
        cancel.unwrap();
        assert!(matches!(attempt, Err(Error::AlreadyWaiting | Error::AlreadyBooked)), "{attempt:?}");
        let mine = store.list_user_bookings(&line[0].id, BookingStatus::Confirmed, 10).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(counts(&store, &ev.id).await, (1, 0));
    }
}

/// The rule the hand-off is built around, as the stand-in enforces it: one transaction may not
/// act on one item twice ("You can't target the same item with multiple operations within the
/// same transaction", https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html),
/// so a cancel that promotes updates the event item once (seats unchanged, `waitlist_count - 1`)
/// instead of releasing the seat and taking it again.
#[tokio::test]
async fn one_transaction_may_not_touch_the_event_item_twice() {
    let (store, _log) = dynamo_counted().await;
    let ev = event(&store, Some(1), None).await;
    let update = |expression: &str, value: i64| {
        let u = aws_sdk_dynamodb::types::Update::builder()
            .table_name(store.table())
            .key("PK", AttributeValue::S(keys::event(&ev.id).0))
            .key("SK", AttributeValue::S(keys::event(&ev.id).1))
            .update_expression(expression)
            .expression_attribute_values(":v", AttributeValue::N(value.to_string()))
            .build()
            .unwrap();
        aws_sdk_dynamodb::types::TransactWriteItem::builder().update(u).build()
    };
    let twice = store
        .client()
        .transact_write_items()
        .transact_items(update("ADD seats_booked :v", -1))
        .transact_items(update("ADD waitlist_count :v", -1))
        .send()
        .await;
    let err = twice.expect_err("two actions on the event item");
    assert!(format!("{err:?}").contains("ValidationException"), "{err:?}");
    assert_eq!(counts(&store, &ev.id).await, (0, 0), "nothing written");
}
