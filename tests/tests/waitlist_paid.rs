//! Paid waitlist offers end to end, on both stores: a freed seat of a priced event goes to the
//! first in line as an offer; its Checkout Session is opened after the promotion (Stripe's
//! stand-in, with Stripe's rules); the CRM hears `booking.offered`, then `booking.expired` when
//! it ends unpaid, and the next in line gets the seat, down the line; a paid offer is confirmed
//! with `"via": "waitlist"`. Stripe down at the promotion keeps the seat held until the payment
//! sweep opens the offer; a session Stripe refuses (too little time left) ends the offer.

use chrono::Duration;
use serde_json::{json, Value};
use shared::model::{Booking, BookingStatus, MessageKind, PaymentTask, PaymentTaskKind};
use shared::offers::{open_due_offers, open_offer, OfferOutcome};
use shared::payments::{sweep_payments, PaymentProvider};
use shared::store::PendingQuery;
use shared::time::{format, Timestamp};
use shared::{App, Store};
use std::sync::Arc;
use tests::crm::{notifier, Crm};
use tests::store_tests;
use tests::stripe_stub::{StripeStub, StripeStubExt};
use tests::waitlist::*;

const WEBHOOK_SECRET: &str = "whsec_waitlist_paid_0123456789";

fn now() -> Timestamp {
    shared::time::now()
}

/// A store with Stripe's stand-in, a CRM stand-in, the notifier the stream runs (with Stripe,
/// as deployed) and the app the webhook route runs.
struct Rig<S: Store> {
    store: S,
    stub: StripeStub,
    provider: Arc<dyn PaymentProvider>,
    crm: Crm,
    notifier: crm_notifier::Notifier<S>,
    app: App<S>,
}

async fn rig<S: Store + Clone>(store: S) -> Rig<S> {
    let stub = StripeStub::start().await;
    let provider: Arc<dyn PaymentProvider> = Arc::new(stub.client());
    let crm = Crm::start().await;
    let notifier = notifier(store.clone(), &crm).with_payments(provider.clone());
    let mut config = tests::config();
    config.stripe_webhook_secret = Some(WEBHOOK_SECRET.into());
    let app = App::new(store.clone(), &config).unwrap().with_payments(provider.clone());
    Rig { store, stub, provider, crm, notifier, app }
}

impl<S: Store> Rig<S> {
    /// A Stripe event about `session`, signed, to `POST /payments/webhook` → its `effect`.
    async fn webhook(&self, event_type: &str, session: Value) -> String {
        let body =
            json!({"id": format!("evt_{}", shared::model::new_id()), "type": event_type, "data": {"object": session}})
                .to_string();
        let mut req = tests::raw_request("POST", "/payments/webhook", None, &body);
        let signature = shared::payments::sign(body.as_bytes(), WEBHOOK_SECRET, now().timestamp());
        req.headers_mut().insert("stripe-signature", signature.parse().unwrap());
        let resp = payments::router(&self.app, req).await;
        let answer = tests::json(&resp);
        assert_eq!(tests::status(&resp), 200, "{answer}");
        answer["effect"].as_str().unwrap().to_string()
    }

    /// What the stream does for a new message record of the booking: its messages, in order.
    async fn deliver(&self, booking_id: &str) {
        self.notifier.deliver_booking(booking_id).await.unwrap();
    }

    async fn booking(&self, id: &str) -> Booking {
        self.store.get_booking(id).await.unwrap().expect("booking exists")
    }

    /// The seat-holding offer of the event, made by the waitlist.
    async fn offer(&self, event_id: &str) -> Booking {
        let all = all_bookings(&self.store, event_id).await;
        let mut offers: Vec<Booking> = all.into_iter().filter(|b| b.via_waitlist && b.status.holds_seat()).collect();
        assert_eq!(offers.len(), 1, "one offer holds the seat: {offers:?}");
        offers.remove(0)
    }
}

/// The payment task of the booking, from the due-payments index.
async fn task<S: Store>(store: &S, booking_id: &str, due_at: Timestamp) -> Option<PaymentTask> {
    let before = due_at + Duration::seconds(1);
    let q = PendingQuery { day: due_at.date_naive(), from: due_at, before, after: None, limit: 100 };
    store.due_payment_tasks(&q).await.unwrap().items.into_iter().find(|t| t.booking_id == booking_id)
}

/// The v2 fields every message of `b` carries, and `type`.
fn v2(b: &Booking, event_type: &str) -> Value {
    json!({
        "type": event_type,
        "booking_id": b.id,
        "user": {"name": b.user_name, "email": b.user_email},
        "event_id": b.event_id,
        "facilitator_id": OWNER,
        "event_title": "Sold out",
        "event_datetime": format(&b.event.datetime),
        "booked_at": format(&b.created_at),
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// A's offer is opened (its session at Stripe ends exactly when the offer does), A lets it
/// expire (Stripe's `checkout.session.expired`), B gets the seat and pays: the CRM hears A
/// offered, A expired, B offered, B confirmed via the waitlist, with exactly the contract's
/// payloads and in that order; C still waits.
async fn paid_offers_cascade_down_the_line<S: Store + Clone>(store: S) {
    let r = rig(store).await;
    let ev = create(&r.store, Some(1), Some(usd(2500)), Duration::days(3)).await;
    let holder = fill(&r.store, &ev.id, 1).await.remove(0);
    let line = line_up(&r.store, &ev.id, 3, now() - Duration::minutes(10)).await;
    cancel(&r.store, &holder).await.unwrap();
    let a = r.offer(&ev.id).await;
    assert_eq!((a.user_id.as_str(), a.status), (line[0].user_id.as_str(), BookingStatus::PendingPayment));
    assert_eq!(counts(&r.store, &ev.id).await, (1, 2), "the seat changed hands; two still wait");

    // The promotion's Offer task on the stream: the session is opened.
    let a_task = task(&r.store, &a.id, a.created_at).await.expect("Offer task due at once");
    assert_eq!(a_task.kind, PaymentTaskKind::Offer);
    let answer =
        crm_notifier::handle_batch(&r.notifier, tests::streams::image_event("INSERT", "payment_task", &a_task)).await;
    assert!(answer.batch_item_failures.is_empty());
    let a = r.booking(&a.id).await;
    let pay = a.payment.clone().unwrap();
    let session = r.stub.session_for(&a.id).expect("a session for A");
    assert_eq!(session["expires_at"].as_i64(), Some(pay.expires_at.timestamp()), "the session ends with the offer");
    assert_eq!(pay.checkout_session_id.as_deref(), session["id"].as_str());
    let create = r.stub.session_creates().pop().unwrap();
    assert_eq!(create.idempotency_key.as_deref(), Some(a.id.as_str()), "a retry reuses the session");
    assert_eq!(task(&r.store, &a.id, pay.expires_at).await.map(|t| t.kind), Some(PaymentTaskKind::Hold));
    r.deliver(&a.id).await;

    // Unpaid: Stripe ends the session and says so; B gets the seat.
    let effect = r.webhook("checkout.session.expired", r.stub.expire(session["id"].as_str().unwrap())).await;
    assert_eq!(effect, "expired");
    assert_eq!(r.booking(&a.id).await.status, BookingStatus::Expired);
    r.deliver(&a.id).await;
    let b = r.offer(&ev.id).await;
    assert_eq!(b.user_id, line[1].user_id);
    assert_eq!(counts(&r.store, &ev.id).await, (1, 1));
    assert_eq!(open_due_offers(&r.store, r.provider.as_ref(), now(), &|_| {}).await.unwrap(), 1);
    let b = r.booking(&b.id).await;
    r.deliver(&b.id).await;

    // B pays: confirmed; its booking's MODIFY on the stream sends booking.confirmed.
    let b_session = r.stub.session_for(&b.id).unwrap();
    assert_eq!(
        r.webhook("checkout.session.completed", r.stub.pay(b_session["id"].as_str().unwrap())).await,
        "confirmed"
    );
    let b = r.booking(&b.id).await;
    assert_eq!(b.status, BookingStatus::Confirmed);
    let answer = crm_notifier::handle_batch(&r.notifier, tests::streams::image_event("MODIFY", "booking", &b)).await;
    assert!(answer.batch_item_failures.is_empty());

    let posted = r.crm.posted().await;
    let ids: Vec<&str> = posted.iter().map(|p| p.webhook_id.as_str()).collect();
    let (a_offered, a_expired, b_offered) =
        (format!("{}:offered", a.id), format!("{}:expired", a.id), format!("{}:offered", b.id));
    assert_eq!(ids, [a_offered.as_str(), a_expired.as_str(), b_offered.as_str(), b.id.as_str()], "order");
    let money = json!({"amount": 2500, "currency": "usd"});
    let a_end = format(&pay.expires_at);
    assert_eq!(
        posted[0].body,
        with(
            v2(&a, "booking.offered"),
            with(money.clone(), json!({"checkout_url": session["url"], "expires_at": a_end}))
        )
    );
    assert_eq!(posted[1].body, with(v2(&a, "booking.expired"), with(money.clone(), json!({"expires_at": a_end}))));
    let b_pay = b.payment.clone().unwrap();
    assert_eq!(
        posted[2].body,
        with(
            v2(&b, "booking.offered"),
            with(money.clone(), json!({"checkout_url": b_pay.checkout_url, "expires_at": format(&b_pay.expires_at)}))
        )
    );
    assert_eq!(posted[3].body, with(v2(&b, "booking.confirmed"), with(money, json!({"via": "waitlist"}))));
    // The owner's attendee list reads exactly these records (possible_messages).
    let a = r.booking(&a.id).await;
    let read = r.store.get_messages(&[a.clone(), b.clone()]).await.unwrap();
    let mut kinds: Vec<(String, MessageKind)> = read.iter().map(|d| (d.booking_id.clone(), d.kind)).collect();
    kinds.sort();
    let mut want = vec![
        (a.id.clone(), MessageKind::Offered),
        (a.id.clone(), MessageKind::Expired),
        (b.id.clone(), MessageKind::Offered),
        (b.id.clone(), MessageKind::Confirmed),
    ];
    want.sort();
    assert_eq!(kinds, want);
    assert_eq!(counts(&r.store, &ev.id).await, (1, 1), "C still waits");
}

/// Stripe is down when B is promoted: the stream's attempt fails without failing the batch, the
/// seat stays held by the offer (Offer task still due), each sweep retries it while Stripe is
/// down, and the first sweep after opens it; asking again reuses the one session.
async fn stripe_down_at_the_promotion_keeps_the_seat_until_the_sweep_opens_it<S: Store + Clone>(store: S) {
    let r = rig(store).await;
    let ev = create(&r.store, Some(1), Some(usd(900)), Duration::days(2)).await;
    let holder = fill(&r.store, &ev.id, 1).await.remove(0);
    let line = line_up(&r.store, &ev.id, 2, now() - Duration::minutes(5)).await;
    r.stub.set_down(true).await;
    cancel(&r.store, &holder).await.unwrap();
    let offer = r.offer(&ev.id).await;
    assert_eq!(offer.user_id, line[0].user_id);
    let offer_task = task(&r.store, &offer.id, offer.created_at).await.unwrap();
    let answer =
        crm_notifier::handle_batch(&r.notifier, tests::streams::image_event("INSERT", "payment_task", &offer_task))
            .await;
    assert!(answer.batch_item_failures.is_empty(), "Stripe down never holds back the shard");
    // The sweep reads tasks due before its `now` (whole seconds): a second after the promotion.
    let swept = sweep_payments(&r.store, r.provider.as_ref(), now() + Duration::seconds(1), 1, &|_| {}).await.unwrap();
    assert_eq!((swept.errors, swept.offers_opened), (1, 0), "{swept:?}");
    let held = r.booking(&offer.id).await;
    assert_eq!((held.status, held.has_checkout_session()), (BookingStatus::PendingPayment, false));
    assert_eq!(task(&r.store, &offer.id, offer.created_at).await.map(|t| t.kind), Some(PaymentTaskKind::Offer));
    assert_eq!(counts(&r.store, &ev.id).await, (1, 1), "the seat is held, the second still waits");
    assert!(r.crm.posted().await.is_empty(), "the CRM hears of an offer only once it can be paid");

    r.stub.set_down(false).await;
    let swept = sweep_payments(&r.store, r.provider.as_ref(), now() + Duration::seconds(1), 1, &|_| {}).await.unwrap();
    assert_eq!((swept.errors, swept.offers_opened), (0, 1), "{swept:?}");
    let opened = r.booking(&offer.id).await;
    let pay = opened.payment.clone().unwrap();
    assert!(pay.checkout_url.is_some());
    assert_eq!(task(&r.store, &offer.id, pay.expires_at).await.map(|t| t.kind), Some(PaymentTaskKind::Hold));
    // A driver that read the offer before it opened tries again: same Idempotency-Key, same
    // parameters, so Stripe answers with the same session; one booking.offered record.
    let again = open_offer(&r.store, r.provider.as_ref(), &offer, now()).await.unwrap();
    assert_eq!(again, OfferOutcome::Opened(opened.clone()));
    assert_eq!(r.stub.session_count(), 1);
    r.deliver(&offer.id).await;
    assert_eq!(r.crm.sent().await, [(format!("{}:offered", offer.id), "booking.offered".to_string())]);
}

/// Stripe's clock runs 4 minutes ahead of ours and the event starts in 33: the offer (until the
/// start) would end under 30 minutes after Stripe creates its session, so Stripe refuses it
/// (`expires_at`); the offer ends `expired`, the CRM hears nothing (it never heard of it), and the
/// next in line is offered the seat, refused the same way. An offer with under 30 minutes left
/// by our own clock is not even sent to Stripe.
async fn a_session_stripe_refuses_ends_the_offer<S: Store + Clone>(store: S) {
    let r = rig(store).await;
    r.stub.set_clock_skew(240);
    let ev = create(&r.store, Some(1), Some(usd(900)), Duration::minutes(33)).await;
    let holder = fill(&r.store, &ev.id, 1).await.remove(0);
    let line = line_up(&r.store, &ev.id, 2, now() - Duration::minutes(5)).await;
    cancel(&r.store, &holder).await.unwrap();
    let first = r.offer(&ev.id).await;
    let seen = std::sync::Mutex::new(Vec::new());
    let handled =
        open_due_offers(&r.store, r.provider.as_ref(), now(), &|o| seen.lock().unwrap().push(o.clone())).await.unwrap();
    assert_eq!(handled, 2, "{:?}", seen.lock().unwrap());
    let refused = r.stub.refused();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|q| q.error.as_deref() == Some("parameter_invalid_integer")), "{refused:?}");
    let all = all_bookings(&r.store, &ev.id).await;
    let offers: Vec<&Booking> = all.iter().filter(|b| b.via_waitlist).collect();
    assert_eq!(offers.len(), 2);
    assert_eq!(offers.iter().map(|b| b.user_id.as_str()).collect::<Vec<_>>(), [&line[0].user_id, &line[1].user_id]);
    assert!(offers.iter().all(|b| b.status == BookingStatus::Expired), "{offers:?}");
    assert_eq!(counts(&r.store, &ev.id).await, (0, 0), "the seat is free for a direct booking");
    r.deliver(&first.id).await;
    assert!(r.crm.posted().await.is_empty(), "an offer never opened owes the CRM nothing");

    // By our own clock: 32 minutes to the start, opened 3 minutes late → 29 minutes left.
    // The same store, a new Stripe stand-in (default skew).
    let r = rig(r.store.clone()).await;
    let ev = create(&r.store, Some(1), Some(usd(900)), Duration::minutes(32)).await;
    let holder = fill(&r.store, &ev.id, 1).await.remove(0);
    line_up(&r.store, &ev.id, 1, now()).await;
    cancel(&r.store, &holder).await.unwrap();
    let late = r.offer(&ev.id).await;
    let outcome = open_offer(&r.store, r.provider.as_ref(), &late, now() + Duration::minutes(3)).await.unwrap();
    assert!(matches!(outcome, OfferOutcome::Expired(ref b) if b.id == late.id), "{outcome:?}");
    assert!(r.stub.session_creates().is_empty(), "not sent to Stripe");
}

/// Stripe's clock runs 2 seconds behind ours: an offer for an event days away must still be a
/// session Stripe accepts when opened at once (at most 24 hours after Stripe creates it).
async fn an_offer_opened_at_once_fits_stripes_longest_session<S: Store + Clone>(store: S) {
    let r = rig(store).await;
    r.stub.set_clock_skew(-2);
    let ev = create(&r.store, Some(1), Some(usd(900)), Duration::days(5)).await;
    let holder = fill(&r.store, &ev.id, 1).await.remove(0);
    line_up(&r.store, &ev.id, 1, now()).await;
    cancel(&r.store, &holder).await.unwrap();
    let offer = r.offer(&ev.id).await;
    let outcome = open_offer(&r.store, r.provider.as_ref(), &offer, offer.created_at).await.unwrap();
    assert!(matches!(outcome, OfferOutcome::Opened(_)), "{outcome:?}: {:?}", r.stub.refused());
}

/// An opened offer whose webhook never came: the payment sweep, once its time is up, finds the
/// session still open, expires it at Stripe and the offer: `booking.expired` is owed and the
/// next in line holds the seat with an offer of its own (its Offer task due).
async fn the_sweep_ends_an_unpaid_offer_and_promotes_the_next<S: Store + Clone>(store: S) {
    let r = rig(store).await;
    let ev = create(&r.store, Some(1), Some(usd(900)), Duration::days(3)).await;
    let holder = fill(&r.store, &ev.id, 1).await.remove(0);
    let line = line_up(&r.store, &ev.id, 2, now() - Duration::minutes(5)).await;
    cancel(&r.store, &holder).await.unwrap();
    let a = r.offer(&ev.id).await;
    assert_eq!(open_due_offers(&r.store, r.provider.as_ref(), now(), &|_| {}).await.unwrap(), 1);
    let ends = a.payment.clone().unwrap().expires_at;
    let later = ends + Duration::minutes(1);
    let swept = sweep_payments(&r.store, r.provider.as_ref(), later, 2, &|_| {}).await.unwrap();
    assert_eq!((swept.expired, swept.errors), (1, 0), "{swept:?}");
    let session = r.stub.session_for(&a.id).unwrap();
    assert_eq!(session["status"], "expired", "ended at Stripe too: nobody pays a seat that is gone");
    assert_eq!(r.booking(&a.id).await.status, BookingStatus::Expired);
    let b = r.offer(&ev.id).await;
    assert_eq!((b.user_id.as_str(), b.status), (line[1].user_id.as_str(), BookingStatus::PendingPayment));
    assert_eq!(task(&r.store, &b.id, later).await.map(|t| t.kind), Some(PaymentTaskKind::Offer));
    r.deliver(&a.id).await;
    assert_eq!(
        r.crm.sent().await.into_iter().map(|(_, t)| t).collect::<Vec<_>>(),
        ["booking.offered", "booking.expired"]
    );
}

/// The CRM was down when B's offer was sent, B pays, and the confirming MODIFY reaches the
/// stream: the stream sends the still-owed `booking.offered` first, then `booking.confirmed`.
async fn a_paid_offer_is_confirmed_after_its_offer_message<S: Store + Clone>(store: S) {
    let r = rig(store).await;
    let ev = create(&r.store, Some(1), Some(usd(900)), Duration::days(3)).await;
    let holder = fill(&r.store, &ev.id, 1).await.remove(0);
    line_up(&r.store, &ev.id, 1, now()).await;
    cancel(&r.store, &holder).await.unwrap();
    let b = r.offer(&ev.id).await;
    open_due_offers(&r.store, r.provider.as_ref(), now(), &|_| {}).await.unwrap();
    r.crm.set_down(true);
    r.deliver(&b.id).await;
    r.crm.set_down(false);
    let session = r.stub.session_for(&b.id).unwrap();
    assert_eq!(r.webhook("checkout.session.completed", r.stub.pay(session["id"].as_str().unwrap())).await, "confirmed");
    let b = r.booking(&b.id).await;
    let answer = crm_notifier::handle_batch(&r.notifier, tests::streams::image_event("MODIFY", "booking", &b)).await;
    assert!(answer.batch_item_failures.is_empty());
    let delivered: Vec<String> = r.crm.sent().await.into_iter().map(|(_, t)| t).collect();
    // The first POST (CRM down, 503) and then the two in order.
    assert_eq!(delivered, ["booking.offered", "booking.offered", "booking.confirmed"]);
}

/// The local server, over HTTP: a cancel (`DELETE /bookings/{id}`) of a priced event's seat and
/// of a free event's, and a capacity increase (`PATCH /events/{id}`) of a free one, each answered
/// at once; in the background the follow-up opens the priced offer's session and the CRM gets
/// `booking.offered` for it, `booking.confirmed` with `"via": "waitlist"` for the free
/// promotions (the capacity increase's through its promote job).
async fn the_local_server_opens_offers_and_tells_the_crm_after_the_routes<S: Store + Clone>(store: S) {
    use shared::model::Role;
    let r = rig(store).await;
    let hooked = Arc::new(crm_notifier::Notifier::from_config(r.store.clone(), &tests::crm::config(&r.crm)).unwrap());
    let on_booking = crm_notifier::booking_hook(hooked, crm_notifier::RetryPolicy::default());
    let app = App::new(r.store.clone(), &tests::config()).unwrap().with_payments(r.provider.clone());
    let app = app.with_booking_hook(on_booking.clone());
    let followup =
        Arc::new(local_server::promotions::FollowUp::new(r.store.clone(), Some(r.provider.clone()), Some(on_booking)));
    let (owner, owner_token) = tests::user(&app, Role::Facilitator).await;
    let (holder, holder_token) = tests::user(&app, Role::Attendee).await;
    let (free_holder, free_token) = tests::user(&app, Role::Attendee).await;
    let mut events = Vec::new();
    for price in [Some(usd(1500)), None] {
        let mut ev = event(Some(1), price, Duration::days(2), now());
        (ev.owner_id, ev.facilitator_id) = (owner.id.clone(), owner.id.clone());
        r.store.create_event(&ev).await.unwrap();
        events.push(ev);
    }
    let (paid, free) = (&events[0], &events[1]);
    let held = book(&r.store, &paid.id, &holder.id).await.unwrap();
    let seat = book(&r.store, &free.id, &free_holder.id).await.unwrap();
    let paid_line = line_up(&r.store, &paid.id, 1, now()).await;
    let free_line = line_up(&r.store, &free.id, 3, now()).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = local_server::router_with(Arc::new(app), Some(followup));
    tokio::spawn(async move { local_server::axum::serve(listener, routes).await });
    let http = reqwest::Client::new();
    for (id, token) in [(&held.id, &holder_token), (&seat.id, &free_token)] {
        let resp = http.delete(format!("{base}/bookings/{id}")).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    let patch = http
        .patch(format!("{base}/events/{}", free.id))
        .bearer_auth(&owner_token)
        .header("content-type", "application/json")
        .body(json!({"capacity": 3}).to_string())
        .send()
        .await
        .unwrap();
    let status = patch.status().as_u16();
    assert_eq!(status, 200, "{}", patch.text().await.unwrap_or_default());

    // The CRM hears of every promotion within seconds (besides the free seat holder's own
    // booking.confirmed and booking.cancelled, owed by the cancel).
    let promoted = |posted: &[tests::crm::Posted], kind: &str| -> Vec<Value> {
        let seat_id = json!(seat.id);
        posted.iter().map(|p| p.body.clone()).filter(|b| b["type"] == kind && b["booking_id"] != seat_id).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let posted = loop {
        let posted = r.crm.posted().await;
        let done = promoted(&posted, "booking.offered").len() == 1 && promoted(&posted, "booking.confirmed").len() == 3;
        if done || std::time::Instant::now() > deadline {
            break posted;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let offer = r.offer(&paid.id).await;
    assert_eq!(offer.user_id, paid_line[0].user_id);
    let offered = promoted(&posted, "booking.offered");
    assert_eq!(offered.len(), 1, "{posted:?}");
    assert_eq!(offered[0]["booking_id"], json!(offer.id));
    assert_eq!(offered[0]["checkout_url"], json!(offer.payment.unwrap().checkout_url), "the session was opened");
    let mut confirmed: Vec<String> = promoted(&posted, "booking.confirmed")
        .iter()
        .map(|b| {
            assert_eq!(b["via"], "waitlist", "{b}");
            b["user"]["email"].as_str().unwrap().to_string()
        })
        .collect();
    confirmed.sort();
    let mut want: Vec<String> = free_line.iter().map(|e| e.user_email.clone()).collect();
    want.sort();
    assert_eq!(confirmed, want, "the cancel's promotion and the capacity increase's two");
    assert_eq!(counts(&r.store, &free.id).await, (3, 0));
}

store_tests!(
    the_local_server_opens_offers_and_tells_the_crm_after_the_routes,
    paid_offers_cascade_down_the_line,
    stripe_down_at_the_promotion_keeps_the_seat_until_the_sweep_opens_it,
    a_session_stripe_refuses_ends_the_offer,
    an_offer_opened_at_once_fits_stripes_longest_session,
    the_sweep_ends_an_unpaid_offer_and_promotes_the_next,
    a_paid_offer_is_confirmed_after_its_offer_message,
);
