use super::fake_stripe::FakeStripe;
use super::Wire;
use serde_json::json;
use shared::model::Role;
use shared::store::{DynamoStore, Store};
use std::collections::BTreeMap;
use tests::request as req;

/// The notifier the later phases share, and the CRM endpoint it delivers to: the endpoint must
/// outlive the notifier, which the waitlist phase still uses.
pub struct Crm {
    pub notifier: crm_notifier::Notifier<DynamoStore>,
    _endpoint: wiremock::MockServer,
}

/// crm-notifier: deliver a new booking to a CRM (read + write of its delivery record), then
/// the same booking again (read only).
pub async fn crm(wire: &Wire, store: DynamoStore, booking_id: &str) -> Crm {
    let booking = store.get_booking(booking_id).await.unwrap().expect("booking exists");
    wire.log.take();
    let crm = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&crm)
        .await;
    let vars = BTreeMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks", crm.uri())),
        ("CRM_WEBHOOK_SECRET", tests::WEBHOOK_SECRET.to_string()),
    ]);
    let config = crm_notifier::CrmConfig::from_lookup(|name| vars.get(name).cloned()).expect("CRM config");
    let notifier = crm_notifier::Notifier::from_config(store, &config).expect("notifier");
    for round in ["first delivery", "redelivery"] {
        notifier.deliver(&booking).await.unwrap_or_else(|e| panic!("{round}: {e}"));
        wire.check("CrmNotifierFunction", round);
    }
    // Its cancellation's record on the stream: the booking's messages (one Query of its
    // collection, the cancellation claimed and finished), then again (the Query alone).
    for round in ["messages", "messages again"] {
        let outcome = notifier.deliver_booking(&booking.id).await.unwrap_or_else(|e| panic!("{round}: {e}"));
        assert_eq!(outcome.sent().count(), usize::from(round == "messages"), "{round}: {outcome:?}");
        wire.check("CrmNotifierFunction", round);
    }

    // crm-sweeper, CRM part: a sweep ten minutes later finds the bookings never delivered in the
    // pending index, reads them, claims and delivers them; a second sweep only queries.
    let clock = crm_notifier::ManualClock::new();
    clock.advance(std::time::Duration::from_secs(600));
    let sweeper = crm_notifier::Notifier::from_config(notifier.store().clone(), &config)
        .expect("notifier")
        .with_clock(std::sync::Arc::new(clock));
    let budget = sweeper.budget_within(std::time::Duration::ZERO, None);
    for round in ["sweep", "empty sweep"] {
        let report = crm_notifier::sweep(&sweeper, &crm_notifier::SweepConfig::default(), None, budget)
            .await
            .unwrap_or_else(|e| panic!("{round}: {e}"));
        // The second attendee's free booking and the two paid ones confirmed by their webhook,
        // then those two's cancellations (they were confirmed); never the holds that expired or
        // were released.
        assert_eq!(report.delivered, if round == "sweep" { 5 } else { 0 }, "{round}: {report:?}");
        wire.check("CrmSweeperFunction", round);
    }
    Crm { notifier, _endpoint: crm }
}

/// Lifecycle: a reschedule and a cancel through the events function; a first batch of each by
/// the notifier (the job's stream record), the rest by the sweeper (a job left due); the
/// cancel covers a free booking, a paid one (refund task) and an open hold (expiry task).
pub async fn lifecycle(wire: &Wire, stripe: &FakeStripe, lifecycle_store: &DynamoStore) {
    let (_, lifecycle_owner) = tests::user(&wire.app, Role::Facilitator).await;
    let paid_event = json!({"title": "Gong", "type": "Sound", "datetime": tests::in_days(4),
        "price": {"amount": 2500, "currency": "eur"}});
    let (status, big) = wire.send(req("POST", "/events", Some(&lifecycle_owner), Some(paid_event))).await;
    assert_eq!(status, 201, "{big}");
    let big = big["id"].as_str().unwrap().to_string();
    for paid in [true, true, false] {
        let (_, tok) = tests::user(&wire.app, Role::Attendee).await;
        let (status, b) = wire.send(req("POST", "/bookings", Some(&tok), Some(json!({"event_id": big})))).await;
        assert_eq!(status, 201, "{b}");
        if paid {
            let id = b["id"].as_str().unwrap().to_string();
            wire.stripe_event(&format!("evt_life_{id}"), "checkout.session.completed", stripe.pay(&id)).await;
        }
    }
    let moved = json!({"datetime": tests::in_days(5)});
    assert_eq!(wire.send(req("PATCH", &format!("/events/{big}"), Some(&lifecycle_owner), Some(moved))).await.0, 200);
    wire.log.take();
    let r = shared::lifecycle::run_batch(lifecycle_store, &big, 2, shared::time::now(), &|_| {}).await.unwrap();
    assert_eq!(r.rescheduled, 2, "{r:?}");
    wire.check("CrmNotifierFunction", "reschedule batch");
    assert_eq!(wire.send(req("POST", &format!("/events/{big}/cancel"), Some(&lifecycle_owner), None)).await.0, 200);
    let r = shared::lifecycle::run_batch(lifecycle_store, &big, 2, shared::time::now(), &|_| {}).await.unwrap();
    assert_eq!(r.cancelled, 2, "{r:?}");
    wire.check("CrmNotifierFunction", "cancel batch");
    let jobs = shared::lifecycle::run_due_jobs(lifecycle_store, 2, None, &|_| {}).await.unwrap();
    assert_eq!((jobs.cancelled, jobs.finished), (1, 1), "{jobs:?}");
    wire.check("CrmSweeperFunction", "lifecycle jobs");
}

/// Waitlists. Events function: a join's first read (event, guard, user) and its write, the
/// owner's page of the line, a leave. Bookings function: a user's places in line, a cancel
/// that hands the seat to the first in line (free: confirmed; priced: an offer). Notifier: an
/// offer opened from its task's stream record, its messages. Payments: an opened offer
/// expired by its webhook, the next promoted. Sweeper: that offer opened by the payment
/// sweep, then expired by it when its time is up, the next promoted. (A capacity increase's
/// promote job makes the same promotion items, through promote_waitlist.)
pub async fn waitlists(
    wire: &Wire,
    stripe: &FakeStripe,
    lifecycle_store: &DynamoStore,
    notifier: &crm_notifier::Notifier<DynamoStore>,
) {
    let (_, wl_owner) = tests::user(&wire.app, Role::Facilitator).await;
    let mut line_events = Vec::new();
    for price in [None, Some(json!({"amount": 1500, "currency": "eur"}))] {
        let body =
            json!({"title": "Full", "type": "Yoga", "datetime": tests::in_days(3), "capacity": 1, "price": price});
        let (status, ev) = wire.send(req("POST", "/events", Some(&wl_owner), Some(body))).await;
        assert_eq!(status, 201, "{ev}");
        let ev = ev["id"].as_str().unwrap().to_string();
        let (_, holder) = tests::user(&wire.app, Role::Attendee).await;
        let (status, held) = wire.send(req("POST", "/bookings", Some(&holder), Some(json!({"event_id": ev})))).await;
        assert_eq!(status, 201, "{held}");
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (user, _) = tests::user(&wire.app, Role::Attendee).await;
            wire.log.take();
            let context = lifecycle_store.booking_context(&ev, &user.id, None).await.unwrap();
            assert!(context.event.is_some() && !context.waiting);
            let entry = shared::model::WaitEntry {
                event_id: ev.clone(),
                user_id: user.id.clone(),
                user_name: user.name.clone(),
                user_email: user.email.clone(),
                joined_at: shared::time::now() + chrono::Duration::seconds(i),
            };
            lifecycle_store.join_waitlist(&entry, shared::time::now()).await.unwrap();
            wire.check("EventsFunction", "waitlist join");
            waiting.push(user);
        }
        lifecycle_store.waitlist(&ev, None, 10).await.unwrap();
        wire.check("EventsFunction", "waitlist page");
        lifecycle_store.user_waitlist(&waiting[0].id).await.unwrap();
        wire.check("BookingsFunction", "places in line");
        let held = held["id"].as_str().unwrap().to_string();
        assert_eq!(wire.send(req("DELETE", &format!("/bookings/{held}"), Some(&holder), None)).await.0, 200);
        line_events.push((ev, waiting));
    }
    let (free_line, _) = &line_events[0];
    let (paid_line, paid_waiting) = &line_events[1];
    lifecycle_store.leave_waitlist(free_line, &line_events[0].1[2].id).await.unwrap();
    wire.check("EventsFunction", "waitlist leave");
    // A capacity increase with a user waiting: its promote job (events), one batch by the
    // notifier (the job's stream record) promoting them.
    let more = json!({"capacity": 2});
    assert_eq!(wire.send(req("PATCH", &format!("/events/{free_line}"), Some(&wl_owner), Some(more))).await.0, 200);
    wire.log.take();
    let r = shared::lifecycle::run_batch(lifecycle_store, free_line, 25, shared::time::now(), &|_| {}).await.unwrap();
    assert_eq!(r.promoted, 1, "{r:?}");
    wire.check("CrmNotifierFunction", "promote batch");
    let offer_of = |user_id: String| {
        let store = lifecycle_store.clone();
        let ev = paid_line.clone();
        async move {
            let all = tests::waitlist::all_bookings(&store, &ev).await;
            all.into_iter().find(|b| b.user_id == user_id && b.status.holds_seat()).expect("an offer")
        }
    };
    let first = offer_of(paid_waiting[0].id.clone()).await;
    wire.log.take();
    let opened = shared::offers::open_offer(lifecycle_store, stripe, &first, shared::time::now()).await.unwrap();
    assert!(matches!(opened, shared::offers::OfferOutcome::Opened(_)), "{opened:?}");
    wire.check("CrmNotifierFunction", "offer opened from its stream record");
    let answer = wire.stripe_event("evt_offer_exp", "checkout.session.expired", stripe.expire(&first.id)).await;
    assert_eq!(answer["effect"], "expired", "{answer}");
    notifier.deliver_booking(&first.id).await.unwrap();
    wire.check("CrmNotifierFunction", "offered and expired messages");
    let second = offer_of(paid_waiting[1].id.clone()).await;
    wire.log.take();
    let at = shared::time::now() + chrono::Duration::seconds(1);
    let report = shared::payments::sweep_payments(lifecycle_store, stripe, at, 1, &|_| {}).await.unwrap();
    assert_eq!((report.offers_opened, report.errors), (1, 0), "{report:?}");
    wire.check("CrmSweeperFunction", "offer opened by the payment sweep");
    let ends = second.payment.as_ref().unwrap().expires_at + chrono::Duration::minutes(1);
    let report = shared::payments::sweep_payments(lifecycle_store, stripe, ends, 2, &|_| {}).await.unwrap();
    assert_eq!((report.expired, report.errors), (1, 0), "{report:?}");
    wire.check("CrmSweeperFunction", "offer expired by the payment sweep, the next promoted");
    offer_of(paid_waiting[2].id.clone()).await;
}
