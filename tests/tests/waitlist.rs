//! The waitlist contract on both stores (embedded, and DynamoDB on moto), at the Store level:
//! who may join and in which order the refusals come, the line (FIFO by `joined_at`, then user
//! id) and its places, leaving, a user's own list, the promotion a freed seat makes in the same
//! write, a capacity increase handed out by the Promote job, an event cancel that empties the
//! line, and priced promotions (offers).

use chrono::Duration;
use shared::error::Error;
use shared::model::{BookingStatus, CancelReason, EventPatch, JobKind, MessageKind, PaymentTask, PaymentTaskKind};
use shared::store::{Actor, PendingQuery, Position, Settlement};
use shared::time::Timestamp;
use shared::Store;
use tests::store_tests;
use tests::waitlist::*;

fn now() -> Timestamp {
    shared::time::now()
}

fn err<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().to_string(),
    }
}

/// The booking's payment task, if any, found in the due index of its `due_at` day.
async fn task<S: Store>(store: &S, booking_id: &str, due_at: Timestamp) -> Option<PaymentTask> {
    let q = PendingQuery {
        day: due_at.date_naive(),
        from: due_at,
        before: due_at + Duration::seconds(1),
        after: None,
        limit: 100,
    };
    store.due_payment_tasks(&q).await.unwrap().items.into_iter().find(|t| t.booking_id == booking_id)
}

/// Joining: each refusal, in the contract's order when several apply.
async fn join_rules<S: Store + Clone>(store: S) {
    let t = now();
    // Unknown event; unlimited capacity; a free seat.
    assert_eq!(err(store.join_waitlist(&entry("01NOSUCHEVENT0000000000000", "u", t), t).await), "not_found");
    let open = create(&store, None, None, Duration::days(3)).await;
    assert_eq!(err(store.join_waitlist(&entry(&open.id, "u", t), t).await), "seats_available");
    let roomy = create(&store, Some(2), None, Duration::days(3)).await;
    let held = fill(&store, &roomy.id, 1).await;
    // A booked user on an event with a free seat: the free seat is named first.
    assert_eq!(err(store.join_waitlist(&entry(&roomy.id, &held[0].user_id, t), t).await), "seats_available");
    assert_eq!(counts(&store, &roomy.id).await, (1, 0), "a refused join changed the event");

    // Full: the line opens.
    let full = create(&store, Some(1), None, Duration::days(3)).await;
    let holder = fill(&store, &full.id, 1).await.remove(0);
    let a = entry(&full.id, "01USERA000000000000000000A", t);
    assert_eq!(store.join_waitlist(&a, t).await.unwrap(), 1);
    assert_eq!(
        err(store.join_waitlist(&entry(&full.id, &a.user_id, t + Duration::seconds(5)), t).await),
        "already_waiting"
    );
    assert_eq!(err(store.join_waitlist(&entry(&full.id, &holder.user_id, t), t).await), "already_booked");
    assert_eq!(store.join_waitlist(&entry(&full.id, "01USERB000000000000000000B", t), t).await.unwrap(), 2);
    assert_eq!(counts(&store, &full.id).await, (1, 2));
    // A waiting user may not book (already_waiting comes before event_full); the context says so.
    let ctx = store.booking_context(&full.id, &a.user_id, None).await.unwrap();
    assert!(ctx.waiting && !ctx.already_booked, "{ctx:?}");
    let ctx = store.booking_context(&full.id, &holder.user_id, None).await.unwrap();
    assert!(!ctx.waiting && ctx.already_booked, "{ctx:?}");
    assert_eq!(err(book(&store, &full.id, &a.user_id).await), "already_waiting");
    assert_eq!(err(book(&store, &full.id, "01OUTSIDER0000000000000000").await), "event_full");

    // Started (a full event of capacity 0 in the past) and cancelled.
    let started = create(&store, Some(0), None, Duration::hours(-1)).await;
    assert_eq!(err(store.join_waitlist(&entry(&started.id, "u", t), t).await), "event_started");
    store.cancel_event(&full.id, None, Actor::Admin, now()).await.unwrap();
    // Cancelled comes before already_waiting and already_booked.
    for user in [&a.user_id, &holder.user_id, &"01USERC000000000000000000C".to_string()] {
        assert_eq!(err(store.join_waitlist(&entry(&full.id, user, t), t).await), "event_cancelled", "{user}");
    }
    let past_cancelled = create(&store, Some(0), None, Duration::hours(2)).await;
    store.cancel_event(&past_cancelled.id, None, Actor::Admin, now()).await.unwrap();
    let later = now() + Duration::hours(3);
    assert_eq!(err(store.join_waitlist(&entry(&past_cancelled.id, "u", t), later).await), "event_cancelled");
}

/// The line is FIFO by `joined_at`, ties broken by user id; places, pages, leaving and a user's
/// own list follow it.
async fn line_order_places_and_leaving<S: Store + Clone>(store: S) {
    let ev = create(&store, Some(1), None, Duration::days(3)).await;
    fill(&store, &ev.id, 1).await;
    let t = now() - Duration::hours(1);
    // Joined in this order, but the line is: early, (t, A), (t, B), (t, C), late.
    let joins = [
        entry(&ev.id, "01TIEC0000000000000000000C", t),
        entry(&ev.id, "01LATE000000000000000000ZZ", t + Duration::seconds(1)),
        entry(&ev.id, "01TIEA0000000000000000000A", t),
        entry(&ev.id, "01EARLY00000000000000000ZZ", t - Duration::seconds(1)),
        entry(&ev.id, "01TIEB0000000000000000000B", t),
    ];
    // (The place a join answers is exact for a join at `now`, which is last; these entries are
    // written with other times to set up the order, so their answers are not checked here.)
    for e in &joins {
        store.join_waitlist(e, now()).await.unwrap();
    }
    let order = [
        "01EARLY00000000000000000ZZ",
        "01TIEA0000000000000000000A",
        "01TIEB0000000000000000000B",
        "01TIEC0000000000000000000C",
        "01LATE000000000000000000ZZ",
    ];
    let line: Vec<String> = whole_line(&store, &ev.id, 2).await.into_iter().map(|e| e.user_id).collect();
    assert_eq!(line, order);
    let page = store.waitlist(&ev.id, None, 10).await.unwrap();
    assert_eq!((page.first_position, page.items.len(), page.next), (1, 5, None));
    assert_eq!(page.items[0], joins[3], "an entry reads back as written");
    for (i, user) in order.iter().enumerate() {
        let mine = store.user_waitlist(user).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!((mine[0].position as usize, mine[0].entry.event_id.as_str()), (i + 1, ev.id.as_str()), "{user}");
    }
    // Leaving: the ones behind move up; leaving twice, or without having joined → not found.
    store.leave_waitlist(&ev.id, order[1]).await.unwrap();
    assert_eq!(err(store.leave_waitlist(&ev.id, order[1]).await), "not_found");
    assert_eq!(err(store.leave_waitlist(&ev.id, "01NEVERJOINED0000000000000").await), "not_found");
    assert_eq!(counts(&store, &ev.id).await, (1, 4));
    assert!(store.user_waitlist(order[1]).await.unwrap().is_empty());
    assert_eq!(store.user_waitlist(order[3]).await.unwrap()[0].position, 3);
    let line: Vec<String> = whole_line(&store, &ev.id, 3).await.into_iter().map(|e| e.user_id).collect();
    assert_eq!(line, [order[0], order[2], order[3], order[4]]);
    // Having left, one may join again: at the end of the line.
    let back = entry(&ev.id, order[1], now());
    assert_eq!(store.join_waitlist(&back, now()).await.unwrap(), 5);
    // A page after a cursor starts at the right place.
    let p = store.waitlist(&ev.id, Some(&Position { at: t, id: order[2].into() }), 2).await.unwrap();
    assert_eq!(p.first_position, 3);
    assert_eq!(p.items.iter().map(|e| e.user_id.as_str()).collect::<Vec<_>>(), [order[3], order[4]]);

    // A user waiting for two events sees both, oldest first, each with its place.
    let other = create(&store, Some(1), None, Duration::days(4)).await;
    fill(&store, &other.id, 1).await;
    line_up(&store, &other.id, 2, now() - Duration::minutes(5)).await;
    store.join_waitlist(&entry(&other.id, order[4], now()), now()).await.unwrap();
    let mine = store.user_waitlist(order[4]).await.unwrap();
    let got: Vec<(&str, u32)> = mine.iter().map(|w| (w.entry.event_id.as_str(), w.position)).collect();
    assert_eq!(got, [(ev.id.as_str(), 4), (other.id.as_str(), 3)]);
}

/// A cancel hands its seat to the head of the line in the same write; leaving and joining
/// keep the counters exact; an event that started promotes nobody.
async fn a_cancel_promotes_the_head<S: Store + Clone>(store: S) {
    let ev = create(&store, Some(2), None, Duration::days(3)).await;
    let seats = fill(&store, &ev.id, 2).await;
    let line = line_up(&store, &ev.id, 3, now() - Duration::minutes(10)).await;
    let cancelled = cancel(&store, &seats[0]).await.unwrap();
    assert_eq!(cancelled.status, BookingStatus::Cancelled);
    assert_eq!(counts(&store, &ev.id).await, (2, 2), "the seat went on: seats unchanged, one fewer waiting");
    let all = all_bookings(&store, &ev.id).await;
    let promoted: Vec<_> = all.iter().filter(|b| b.via_waitlist).collect();
    assert_eq!(promoted.len(), 1);
    let p = promoted[0];
    assert_eq!(
        (p.user_id.as_str(), p.status, p.payment.is_none()),
        (line[0].user_id.as_str(), BookingStatus::Confirmed, true)
    );
    assert_eq!(
        (p.user_name.as_str(), p.user_email.as_str()),
        (line[0].user_name.as_str(), line[0].user_email.as_str())
    );
    assert_eq!(p.event.revision, ev.revision);
    // Its CRM record exists (pending), its guard is an attendee guard now.
    let d = store.get_delivery(&p.id).await.unwrap().expect("the promotion wrote its delivery record");
    assert_eq!(d.kind, MessageKind::Confirmed);
    let ctx = store.booking_context(&ev.id, &p.user_id, None).await.unwrap();
    assert!(ctx.already_booked && !ctx.waiting, "{ctx:?}");
    assert!(store.user_waitlist(&p.user_id).await.unwrap().is_empty());
    assert_eq!(err(store.leave_waitlist(&ev.id, &p.user_id).await), "not_found");
    assert_eq!(whole_line(&store, &ev.id, 10).await, line[1..].to_vec());
    // The promoted booking is an ordinary one: its cancel promotes the next.
    cancel(&store, p).await.unwrap();
    assert_eq!(counts(&store, &ev.id).await, (2, 1));
    let next =
        all_bookings(&store, &ev.id).await.into_iter().find(|b| b.via_waitlist && b.status.holds_seat()).unwrap();
    assert_eq!(next.user_id, line[1].user_id);
    // Nobody waits after the last one leaves: a cancel frees the seat, and anyone may book it.
    store.leave_waitlist(&ev.id, &line[2].user_id).await.unwrap();
    cancel(&store, &seats[1]).await.unwrap();
    assert_eq!(counts(&store, &ev.id).await, (1, 0));
    book(&store, &ev.id, "01WALKIN0000000000000000000").await.unwrap();
    assert_eq!(counts(&store, &ev.id).await, (2, 0));
}

/// A capacity increase of 45 with 60 waiting: the Promote job hands the 45 seats to the first
/// 45, FIFO, in writes of at most 20; meanwhile outsiders cannot take the seats.
async fn a_capacity_increase_promotes_fifo<S: Store + Clone>(store: S) {
    let ev = create(&store, Some(5), None, Duration::days(3)).await;
    fill(&store, &ev.id, 5).await;
    let line = line_up(&store, &ev.id, 60, now() - Duration::hours(2)).await;
    let patch = EventPatch { capacity: Some(Some(50)), ..EventPatch::default() };
    let updated = store.update_event(&ev.id, &patch, Actor::Owner(OWNER), now()).await.unwrap();
    assert_eq!((updated.capacity, updated.seats_booked, updated.waitlist_count), (Some(50), 5, 60));
    let job = store.get_job(&ev.id).await.unwrap().expect("a capacity increase with users waiting writes a job");
    assert_eq!(job.kind, JobKind::Promote);
    // The new seats are the line's: a walk-in is refused while users wait.
    assert_eq!(err(book(&store, &ev.id, "01WALKIN0000000000000000000").await), "event_full");
    // ...so the walk-in may queue (not `seats_available` for seats it cannot book): last in line.
    let walk_in = entry(&ev.id, "01WALKIN0000000000000000000", now());
    assert_eq!(store.join_waitlist(&walk_in, now()).await.unwrap(), 61);
    let (promoted, _) = run_job(&store, &ev.id).await;
    assert_eq!(promoted, 45);
    assert_eq!(counts(&store, &ev.id).await, (50, 16));
    let got: Vec<String> = {
        let mut v: Vec<_> =
            all_bookings(&store, &ev.id).await.into_iter().filter(|b| b.via_waitlist).map(|b| b.user_id).collect();
        v.sort();
        v
    };
    let mut want: Vec<String> = line[..45].iter().map(|e| e.user_id.clone()).collect();
    want.sort();
    assert_eq!(got, want, "the first 45 in line, nobody else");
    let mut rest = line[45..].to_vec();
    rest.push(walk_in);
    assert_eq!(whole_line(&store, &ev.id, 7).await, rest);
    assert_eq!(store.user_waitlist(&line[45].user_id).await.unwrap()[0].position, 1);
    // Lowering capacity or a non-capacity change writes no job; raising it without waiters neither.
    let patch = EventPatch { title: Some("Renamed".into()), ..EventPatch::default() };
    store.update_event(&ev.id, &patch, Actor::Owner(OWNER), now()).await.unwrap();
    assert!(store.get_job(&ev.id).await.unwrap().is_none(), "a title change wrote a job");
    let quiet = create(&store, Some(1), None, Duration::days(3)).await;
    let patch = EventPatch { capacity: Some(Some(3)), ..EventPatch::default() };
    store.update_event(&quiet.id, &patch, Actor::Owner(OWNER), now()).await.unwrap();
    assert!(store.get_job(&quiet.id).await.unwrap().is_none(), "nobody waits: no job");
    // Unlimited capacity: everyone still waiting is promoted.
    let patch = EventPatch { capacity: Some(None), ..EventPatch::default() };
    store.update_event(&ev.id, &patch, Actor::Owner(OWNER), now()).await.unwrap();
    assert_eq!(run_job(&store, &ev.id).await.0, 16);
    assert_eq!(counts(&store, &ev.id).await, (66, 0));
}

/// An event's cancel: its job cancels the bookings (promoting nobody) and empties the line.
async fn an_event_cancel_empties_the_waitlist<S: Store + Clone>(store: S) {
    let ev = create(&store, Some(2), None, Duration::days(3)).await;
    fill(&store, &ev.id, 2).await;
    let line = line_up(&store, &ev.id, 130, now() - Duration::hours(1)).await;
    store.cancel_event(&ev.id, Some("flooded"), Actor::Owner(OWNER), now()).await.unwrap();
    let (promoted, cleared) = run_job(&store, &ev.id).await;
    assert_eq!((promoted, cleared), (0, 130));
    assert_eq!(counts(&store, &ev.id).await, (0, 0));
    assert!(store.waitlist(&ev.id, None, 10).await.unwrap().items.is_empty());
    assert!(all_bookings(&store, &ev.id).await.iter().all(|b| !b.via_waitlist && b.status == BookingStatus::Cancelled));
    for e in [&line[0], &line[77], &line[129]] {
        assert!(store.user_waitlist(&e.user_id).await.unwrap().is_empty());
        assert_eq!(err(store.leave_waitlist(&ev.id, &e.user_id).await), "not_found");
        assert_eq!(err(store.join_waitlist(e, now()).await), "event_cancelled");
    }
    assert!(store.get_job(&ev.id).await.unwrap().is_none());
    store.delete_event(&ev.id, Actor::Owner(OWNER)).await.unwrap();
    // An event whose line is not empty cannot be deleted (the line belongs to it).
    let waited = create(&store, Some(0), None, Duration::days(3)).await;
    line_up(&store, &waited.id, 1, now()).await;
    assert_eq!(err(store.delete_event(&waited.id, Actor::Admin).await), "event_has_bookings");
}

/// Priced promotions: an offer (pending_payment, via the waitlist, its Offer task due now,
/// held 24 h or until the start); opening its session turns the task into its Hold and writes
/// `booking.offered`; its expiry writes `booking.expired` and offers the seat to the next; a
/// cancel of an opened offer tells the CRM; within 31 minutes of the start nobody is promoted.
async fn offers<S: Store + Clone>(store: S) {
    let ev = create(&store, Some(1), Some(usd(2500)), Duration::days(3)).await;
    let hold = fill(&store, &ev.id, 1).await.remove(0);
    let line = line_up(&store, &ev.id, 3, now() - Duration::minutes(30)).await;
    let settle = |at: Timestamp| Settlement {
        to: BookingStatus::Expired,
        by: "sweep".into(),
        payment_intent: None,
        now: at,
        session: None,
    };
    // The seat holder's own hold expires: the head gets an offer.
    let t1 = now();
    store.settle_payment(&hold.id, &settle(t1)).await.unwrap();
    assert_eq!(counts(&store, &ev.id).await, (1, 2));
    let offer = all_bookings(&store, &ev.id).await.into_iter().find(|b| b.via_waitlist).expect("an offer");
    assert_eq!((offer.user_id.as_str(), offer.status), (line[0].user_id.as_str(), BookingStatus::PendingPayment));
    let pay = offer.payment.clone().unwrap();
    assert_eq!((pay.amount, pay.currency.as_str(), pay.checkout_session_id.as_deref()), (2500, "usd", None));
    assert_eq!(
        pay.expires_at,
        offer.created_at + Duration::hours(24) - Duration::minutes(1),
        "24 h: the event is days away"
    );
    let t = task(&store, &offer.id, offer.created_at).await.expect("the Offer task, due at once");
    assert_eq!(t.kind, PaymentTaskKind::Offer);
    assert!(store.get_delivery(&offer.id).await.unwrap().is_none(), "nothing for the CRM before the session");
    // The session opens: Hold task due at the end of the offer, `booking.offered` written.
    assert!(store.attach_checkout(&offer.id, "cs_test_offer1", "https://checkout.stripe.test/offer1").await.unwrap());
    assert!(task(&store, &offer.id, offer.created_at).await.is_none());
    assert_eq!(task(&store, &offer.id, pay.expires_at).await.map(|t| t.kind), Some(PaymentTaskKind::Hold));
    let kinds = |m: shared::store::BookingMessages| m.messages.iter().map(|d| d.kind).collect::<Vec<_>>();
    assert_eq!(kinds(store.booking_messages(&offer.id).await.unwrap()), [MessageKind::Offered]);
    // A retried attach (same session) writes no second message and keeps the Hold.
    assert!(store.attach_checkout(&offer.id, "cs_test_offer1", "https://checkout.stripe.test/offer1").await.unwrap());
    assert_eq!(task(&store, &offer.id, pay.expires_at).await.map(|t| t.kind), Some(PaymentTaskKind::Hold));
    // Unpaid: it expires → `booking.expired`, and the next in line gets the offer.
    let settled = store.settle_payment(&offer.id, &settle(pay.expires_at)).await.unwrap();
    assert!(
        matches!(settled, shared::store::Settled::Changed(ref b) if b.status == BookingStatus::Expired),
        "{settled:?}"
    );
    assert_eq!(kinds(store.booking_messages(&offer.id).await.unwrap()), [MessageKind::Offered, MessageKind::Expired]);
    assert_eq!(counts(&store, &ev.id).await, (1, 1));
    let second =
        all_bookings(&store, &ev.id).await.into_iter().find(|b| b.via_waitlist && b.status.holds_seat()).unwrap();
    assert_eq!(second.user_id, line[1].user_id);
    // Expired without ever opening a session: no message (the CRM never heard of it).
    store.settle_payment(&second.id, &settle(now())).await.unwrap();
    assert!(store.booking_messages(&second.id).await.unwrap().messages.is_empty());
    let third =
        all_bookings(&store, &ev.id).await.into_iter().find(|b| b.via_waitlist && b.status.holds_seat()).unwrap();
    assert_eq!((third.user_id.as_str(), counts(&store, &ev.id).await), (line[2].user_id.as_str(), (1, 0)));
    // An opened offer cancelled by its user: `booking.cancelled` follows `booking.offered`.
    store.attach_checkout(&third.id, "cs_test_offer3", "https://checkout.stripe.test/offer3").await.unwrap();
    let c = cancel(&store, &third).await.unwrap();
    assert_eq!(kinds(store.booking_messages(&c.id).await.unwrap()), [MessageKind::Offered, MessageKind::Cancelled]);

    // An event 10 hours away: the offer ends at its start.
    let soon = create(&store, Some(1), Some(usd(900)), Duration::hours(10)).await;
    let soon_seat = fill(&store, &soon.id, 1).await.remove(0);
    let waiter = line_up(&store, &soon.id, 1, now()).await.remove(0);
    store.cancel_booking(&soon_seat, CancelReason::Admin, now()).await.unwrap();
    let o = all_bookings(&store, &soon.id).await.into_iter().find(|b| b.via_waitlist).unwrap();
    assert_eq!((o.user_id.as_str(), o.payment.unwrap().expires_at), (waiter.user_id.as_str(), soon.datetime));

    // 20 minutes before the start no offer can be made: the seat is freed, the line stays, and
    // a direct booking may take the seat although users wait (they could not have it).
    let late = create(&store, Some(1), Some(usd(900)), Duration::minutes(20)).await;
    let late_seat = fill(&store, &late.id, 1).await.remove(0);
    line_up(&store, &late.id, 2, now()).await;
    cancel(&store, &late_seat).await.unwrap();
    assert_eq!(counts(&store, &late.id).await, (0, 2));
    assert!(all_bookings(&store, &late.id).await.iter().all(|b| !b.via_waitlist));
    assert_eq!(
        err(store.join_waitlist(&entry(&late.id, "01LATECOMER000000000000000", now()), now()).await),
        "seats_available"
    );
    assert_eq!(store.promote_waitlist(&late.id, now(), 10).await.unwrap(), 0);
    book(&store, &late.id, "01WALKIN0000000000000000000").await.unwrap();
    assert_eq!(counts(&store, &late.id).await, (1, 2));
    // 40 minutes before: still an offer (31 minutes is the floor), ending at the start.
    let edge = create(&store, Some(1), Some(usd(900)), Duration::minutes(40)).await;
    let edge_seat = fill(&store, &edge.id, 1).await.remove(0);
    line_up(&store, &edge.id, 1, now()).await;
    cancel(&store, &edge_seat).await.unwrap();
    assert_eq!(counts(&store, &edge.id).await, (1, 0));
}

/// A hold released because its Checkout Session could not be created hands the seat on too.
async fn a_released_hold_promotes<S: Store + Clone>(store: S) {
    let ev = create(&store, Some(1), Some(usd(700)), Duration::days(2)).await;
    let hold = fill(&store, &ev.id, 1).await.remove(0);
    let line = line_up(&store, &ev.id, 2, now()).await;
    store.release_hold(&hold, None).await.unwrap();
    assert_eq!(counts(&store, &ev.id).await, (1, 1));
    let offer = all_bookings(&store, &ev.id).await.into_iter().find(|b| b.via_waitlist).unwrap();
    assert_eq!((offer.user_id.as_str(), offer.status), (line[0].user_id.as_str(), BookingStatus::PendingPayment));
}

store_tests!(
    join_rules,
    line_order_places_and_leaving,
    a_cancel_promotes_the_head,
    a_capacity_increase_promotes_fifo,
    an_event_cancel_empties_the_waitlist,
    offers,
    a_released_hold_promotes,
);
