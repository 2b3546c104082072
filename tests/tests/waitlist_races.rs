//! Waitlist races on both stores (embedded, and DynamoDB on moto), many tasks at once: cancels
//! that all promote, a join racing the last cancel, a promotion racing the promoted user's own
//! booking attempt. What must hold whatever the interleaving: as many promoted as seats freed,
//! the head of the line first, nobody twice, counters exact, and never a free seat while
//! someone waits for it.

use futures::future::join_all;
use shared::error::Error;
use shared::model::{new_id, Booking, BookingStatus};
use shared::Store;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::waitlist::*;

fn now() -> shared::time::Timestamp {
    shared::time::now()
}

/// Watches the event until `stop`, a read every `pause` (zero: as often as the runtime lets it):
/// a free seat while users wait (and the event promotes) must never be seen → how many reads
/// it made.
fn watch<S: Store + Clone>(
    store: &S,
    event_id: &str,
    stop: &Arc<AtomicBool>,
    pause: Duration,
) -> tokio::task::JoinHandle<usize> {
    let (store, event_id, stop) = (store.clone(), event_id.to_string(), stop.clone());
    tokio::spawn(async move {
        let mut reads = 0;
        while !stop.load(Ordering::Relaxed) {
            let e = store.get_event(&event_id).await.unwrap().unwrap();
            let free = e.capacity.is_some_and(|c| e.seats_booked < c);
            assert!(!(free && e.waitlist_count > 0), "a free seat while {} wait: {e:?}", e.waitlist_count);
            reads += 1;
            if pause.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(pause).await;
            }
        }
        reads
    })
}

/// `seats` holders cancel at once with `waiting` users in line: exactly `seats` promoted, the
/// first `seats` in line, each once, seats and `waitlist_count` exact.
async fn parallel_cancels_promote_in_order<S: Store + Clone>(store: S, seats: usize, waiting: usize, pause: Duration) {
    let setup = Instant::now();
    let ev = create(&store, Some(seats as u32), None, chrono::Duration::days(3)).await;
    let held = fill(&store, &ev.id, seats).await;
    let line = line_up(&store, &ev.id, waiting, now() - chrono::Duration::hours(2)).await;
    let setup = setup.elapsed();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(&store, &ev.id, &stop, pause);
    let started = Instant::now();
    let cancels = held.into_iter().map(|b| {
        let store = store.clone();
        tokio::spawn(async move { cancel(&store, &b).await })
    });
    for (i, r) in join_all(cancels).await.into_iter().enumerate() {
        let b = r.unwrap().unwrap_or_else(|e| panic!("cancel {i}: {e}"));
        assert_eq!(b.status, BookingStatus::Cancelled);
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let reads = watcher.await.unwrap();
    println!("{seats} parallel cancels, {waiting} waiting: setup {setup:?}, cancels {took:?}, {reads} invariant reads");

    assert_eq!(counts(&store, &ev.id).await, (seats as u32, (waiting - seats) as u32));
    let all = all_bookings(&store, &ev.id).await;
    let by_user = holders(&all);
    assert!(by_user.values().all(|v| v.len() == 1), "a user holds two seats");
    let promoted: HashSet<&str> = all.iter().filter(|b| b.via_waitlist).map(|b| b.user_id.as_str()).collect();
    assert_eq!(all.iter().filter(|b| b.via_waitlist).count(), seats, "promotions: none twice");
    let head: HashSet<&str> = line[..seats].iter().map(|e| e.user_id.as_str()).collect();
    assert_eq!(promoted, head, "the first {seats} in line, nobody else");
    assert!(all.iter().filter(|b| b.via_waitlist).all(|b| b.status == BookingStatus::Confirmed));
    assert_eq!(by_user.len(), seats);
    assert_eq!(whole_line(&store, &ev.id, 100).await, line[seats..].to_vec(), "the rest keep their order");
    assert_eq!(store.user_waitlist(&line[seats].user_id).await.unwrap()[0].position, 1);
    for e in &line[..seats] {
        let ctx = store.booking_context(&ev.id, &e.user_id, None).await.unwrap();
        assert!(ctx.already_booked && !ctx.waiting, "{ctx:?}");
    }
}

/// What a client does to get a seat of a full event: join; told a seat is free, book it; told
/// the seat went, join again → whether it ended booked (else waiting).
async fn get_a_seat<S: Store>(store: &S, event_id: &str, user: &str) -> bool {
    for _ in 0..100 {
        let mine = entry(event_id, user, now());
        let joined = retrying(|| store.join_waitlist(&mine, now())).await;
        match joined {
            Ok(_) => return false,
            Err(Error::SeatsAvailable) => match retrying(|| book(store, event_id, user)).await {
                Ok(_) => return true,
                Err(Error::EventFull) => continue,
                Err(e) => panic!("booking a seat said free: {e}"),
            },
            Err(e) => panic!("join: {e}"),
        }
    }
    panic!("no answer for {user} after 100 tries");
}

/// A join (several, in fact) racing the cancel of the last seat: the seat ends with exactly one
/// of the joiners, by promotion or directly; the others wait; no seat is lost or doubled.
async fn a_join_races_the_last_cancel<S: Store + Clone>(store: S, rounds: usize, joiners: usize, pause: Duration) {
    let mut promoted_rounds = 0;
    for round in 0..rounds {
        let ev = create(&store, Some(1), None, chrono::Duration::days(3)).await;
        let seat = fill(&store, &ev.id, 1).await.remove(0);
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(&store, &ev.id, &stop, pause);
        let users: Vec<String> = (0..joiners).map(|_| new_id()).collect();
        let canceller = {
            let store = store.clone();
            tokio::spawn(async move { cancel(&store, &seat).await })
        };
        let racers = users.iter().map(|u| {
            let (store, ev, u) = (store.clone(), ev.id.clone(), u.clone());
            tokio::spawn(async move { get_a_seat(&store, &ev, &u).await })
        });
        let booked_directly = join_all(racers).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        canceller.await.unwrap().unwrap();
        stop.store(true, Ordering::Relaxed);
        watcher.await.unwrap();

        assert_eq!(counts(&store, &ev.id).await, (1, joiners as u32 - 1), "round {round}");
        let all = all_bookings(&store, &ev.id).await;
        let seated: Vec<&Booking> = all.iter().filter(|b| b.status.holds_seat()).collect();
        assert_eq!(seated.len(), 1, "round {round}: {seated:?}");
        assert!(users.contains(&seated[0].user_id), "round {round}: the seat went to a joiner");
        assert_eq!(u32::from(seated[0].via_waitlist), 1 - booked_directly as u32, "round {round}");
        promoted_rounds += usize::from(seated[0].via_waitlist);
        let waiting: HashSet<String> = whole_line(&store, &ev.id, 100).await.into_iter().map(|e| e.user_id).collect();
        assert_eq!(waiting.len(), joiners - 1);
        assert!(!waiting.contains(&seated[0].user_id), "round {round}: seated and waiting");
    }
    println!("{rounds} rounds of {joiners} joiners racing the last cancel: {promoted_rounds} by promotion");
}

/// The head of the line tries to book (and, told it waits, leaves to book directly) while the
/// seat's cancel promotes it: exactly one booking for the user in every round.
async fn a_promotion_races_the_users_own_booking<S: Store + Clone>(store: S, rounds: usize) {
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for round in 0..rounds {
        let ev = create(&store, Some(1), None, chrono::Duration::days(3)).await;
        let seat = fill(&store, &ev.id, 1).await.remove(0);
        let me = line_up(&store, &ev.id, 1, now()).await.remove(0).user_id;
        let canceller = {
            let store = store.clone();
            tokio::spawn(async move { cancel(&store, &seat).await })
        };
        let own = {
            let (store, ev, me) = (store.clone(), ev.id.clone(), me.clone());
            tokio::spawn(async move {
                for _ in 0..500 {
                    match retrying(|| book(&store, &ev, &me)).await {
                        Ok(_) => return "booked directly",
                        Err(Error::AlreadyBooked) => return "promoted",
                        Err(Error::AlreadyWaiting) => match retrying(|| store.leave_waitlist(&ev, &me)).await {
                            Ok(()) | Err(Error::NotFound(_)) => {}
                            Err(e) => panic!("leave: {e}"),
                        },
                        // Left before the cancel: the seat is not free yet.
                        Err(Error::EventFull) => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
                        Err(e) => panic!("book: {e}"),
                    }
                }
                panic!("no seat in 500 tries")
            })
        };
        canceller.await.unwrap().unwrap();
        *outcomes.entry(own.await.unwrap()).or_default() += 1;
        let all = all_bookings(&store, &ev.id).await;
        let mine: Vec<&Booking> = all.iter().filter(|b| b.user_id == me && b.status.holds_seat()).collect();
        assert_eq!(mine.len(), 1, "round {round}: {all:?}");
        assert_eq!(counts(&store, &ev.id).await, (1, 0), "round {round}");
        assert!(store.user_waitlist(&me).await.unwrap().is_empty());
    }
    println!("{rounds} rounds of a promotion racing its user's own booking: {outcomes:?}");
}

mod memory {
    use std::time::Duration;
    use tests::memory_store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_cancels_promote_in_order() {
        super::parallel_cancels_promote_in_order(memory_store(), 100, 300, Duration::ZERO).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_join_races_the_last_cancel() {
        super::a_join_races_the_last_cancel(memory_store(), 200, 8, Duration::ZERO).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_promotion_races_the_users_own_booking() {
        super::a_promotion_races_the_users_own_booking(memory_store(), 200).await
    }
}

mod dynamo {
    use std::time::Duration;
    use tests::dynamo_store;

    /// moto serves one request at a time: the watcher must not crowd out the racers.
    const MOTO_PAUSE: Duration = Duration::from_millis(20);

    /// The 100 cancels with 300 waiting, as on the embedded store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_cancels_promote_in_order() {
        super::parallel_cancels_promote_in_order(dynamo_store().await, 100, 300, MOTO_PAUSE).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_join_races_the_last_cancel() {
        super::a_join_races_the_last_cancel(dynamo_store().await, 10, 4, MOTO_PAUSE).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_promotion_races_the_users_own_booking() {
        super::a_promotion_races_the_users_own_booking(dynamo_store().await, 10).await
    }
}
