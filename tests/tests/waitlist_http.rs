//! The waitlist routes in-process on both stores, through the same routers the Lambda functions
//! run (API Gateway v2 fixtures where one exists): `POST`/`DELETE`/`GET /events/{id}/waitlist`,
//! `waiting` in `GET /bookings/`, `already_waiting` on `POST /bookings/`, `waitlist_count` in
//! every events response, and the DynamoDB calls of each route (moto).

use lambda_http::{Body, Response};
use serde_json::json;
use shared::model::Role;
use shared::Store;
use tests::*;

mod waitlist_http_harness;

use waitlist_http_harness::hostile::hostile_requests_never_get_a_5xx;
use waitlist_http_harness::*;

/// GIVEN a full event WHEN users join, join again, book, and leave THEN every answer is the
/// contract's, in the order `Store::join_waitlist` documents, and the counts follow.
async fn join_and_leave<S: Store + Clone>(store: S) {
    let app = app(store);
    let (ev, owner, holder, _) = full_event(&app).await;
    let ((bob, b), (_, c)) = two_in_line_order(&app).await;

    // Through the API Gateway fixture, as deployed (`ANY /events/{id}/{proxy+}`).
    let resp = events::router(&app, fixture("events-waitlist-join", &[("TOKEN", &b), ("EVENT_ID", &ev)])).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    let joined = json(&resp);
    assert_eq!(joined["event_id"], ev.as_str());
    assert_eq!(joined["user_id"], bob.id.as_str());
    assert_eq!(joined["position"], 1);
    let at = shared::time::parse(joined["joined_at"].as_str().unwrap()).expect("RFC 3339");
    assert!((shared::time::now() - at).num_seconds() <= 5);
    assert_eq!(joined.as_object().unwrap().len(), 4, "exactly {{event_id, user_id, position, joined_at}}: {joined}");
    // An empty object is no body too; the trailing slash is the same route.
    let resp = call(&app, request("POST", &format!("/events/{ev}/waitlist/"), Some(&c), Some(json!({})))).await;
    assert_eq!((status(&resp), json(&resp)["position"].clone()), (201, json!(2)), "{:?}", json(&resp));
    assert_eq!(get_event(&app, &ev).await["waitlist_count"], 2);

    let cases = vec![
        ("join again", join(&app, &b, &ev).await, 409, "already_waiting"),
        ("book while waiting", book(&app, &b, &ev).await, 409, "already_waiting"),
        ("the seat holder joins", join(&app, &holder, &ev).await, 409, "already_booked"),
    ];
    for (what, resp, want, code) in cases {
        assert_eq!(outcome(&resp), (want, code.to_string()), "{what}: {:?}", json(&resp));
    }

    // Leave (the fixture), leave again, leave a line one never joined.
    let resp = events::router(&app, fixture("events-waitlist-leave", &[("TOKEN", &c), ("EVENT_ID", &ev)])).await;
    assert_eq!((status(&resp), json(&resp)), (200, json!({"msg": "Left the waitlist"})));
    assert_eq!(outcome(&leave(&app, &c, &ev).await), (404, "not_found".into()), "left already");
    assert_eq!(outcome(&leave(&app, &holder, &ev).await), (404, "not_found".into()), "booked, not waiting");
    let unknown = "01NOSUCHEVENT0000000000000";
    assert_eq!(outcome(&leave(&app, &c, unknown).await), (404, "not_found".into()));
    assert_eq!(get_event(&app, &ev).await["waitlist_count"], 1);
    // Having left, one may join again: at the end of the line.
    let resp = join(&app, &c, &ev).await;
    assert_eq!((status(&resp), json(&resp)["position"].clone()), (201, json!(2)));
    let resp = leave(&app, &b, &ev).await;
    assert_eq!(status(&resp), 200);
    let page = json(&line(&app, &owner, &ev).await);
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page[0]["position"], 1, "the line moved up: {page}");
}

/// GIVEN events in every state WHEN a user joins THEN the refusal is the first that applies of
/// 404, `event_cancelled`, `event_started`, `seats_available`, `already_booked`, `already_waiting`;
/// and auth and bad input are 401 / 400 / 405.
async fn refusals<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let free_seats = event(&app, &owner, Some(5), 3).await;
    let unlimited = event(&app, &owner, None, 3).await;
    // Started, and with a free seat: `event_started` comes first.
    let started = event(&app, &owner, Some(5), -1).await;
    let cancelled = event(&app, &owner, Some(1), 3).await;
    assert_eq!(status(&book(&app, &a, &cancelled).await), 201, "full, and booked by the joiner");
    let resp = call(&app, request("POST", &format!("/events/{cancelled}/cancel"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200);
    // Booked by the joiner and with free seats: `seats_available` before `already_booked`.
    assert_eq!(status(&book(&app, &a, &free_seats).await), 201);
    let (ev, _, _, _) = full_event(&app).await;
    let path = format!("/events/{ev}/waitlist");
    let raw = |body: &str| raw_request("POST", &path, Some(&a), body);
    let cases = vec![
        ("unknown event", join(&app, &a, "01NOSUCHEVENT0000000000000").await, 404, "not_found"),
        ("impossible id", join(&app, &a, "no%20such").await, 404, "not_found"),
        ("cancelled (and booked)", join(&app, &a, &cancelled).await, 409, "event_cancelled"),
        ("started (seats free)", join(&app, &a, &started).await, 409, "event_started"),
        ("seats free (and booked)", join(&app, &a, &free_seats).await, 409, "seats_available"),
        ("no capacity limit", join(&app, &a, &unlimited).await, 409, "seats_available"),
        ("no token", call(&app, request("POST", &path, None, None)).await, 401, "unauthorized"),
        ("bad token", join(&app, "not.a.token", &ev).await, 401, "unauthorized"),
        ("account gone", join(&app, &token_only(&app, Role::Attendee), &ev).await, 401, "unauthorized"),
        ("unknown body field", call(&app, raw(r#"{"seats": 2}"#)).await, 400, "unknown_field"),
        ("body not JSON", call(&app, raw("join me")).await, 400, "invalid_json"),
        ("body not an object", call(&app, raw("[]")).await, 400, "invalid_json"),
        (
            "unknown query parameter",
            call(&app, request("POST", &format!("{path}?position=1"), Some(&a), None)).await,
            400,
            "validation_failed",
        ),
        ("DELETE without a token", call(&app, request("DELETE", &path, None, None)).await, 401, "unauthorized"),
        ("GET without a token", call(&app, request("GET", &path, None, None)).await, 401, "unauthorized"),
    ];
    for (what, resp, want, code) in cases {
        assert_eq!(outcome(&resp), (want, code.to_string()), "{what}: {:?}", json(&resp));
    }
    for method in ["PUT", "PATCH"] {
        let resp = call(&app, request(method, &path, Some(&a), None)).await;
        assert_eq!(outcome(&resp), (405, "method_not_allowed".into()), "{method}");
        assert_eq!(resp.headers()["allow"], "GET, POST, DELETE");
    }
    // None of the refusals wrote anything.
    for e in [&free_seats, &unlimited, &started, &cancelled, &ev] {
        assert_eq!(get_event(&app, e).await["waitlist_count"], 0, "{e}");
    }
}

/// GIVEN a line of five WHEN the owner, an admin, another facilitator or an attendee reads it
/// THEN owner and admin see it in order with names and emails, paged by `limit`/`cursor`/`Link`;
/// the others get 403, an unknown event 404.
async fn owner_reads_the_line<S: Store + Clone>(store: S) {
    let app = app(store);
    let (ev, owner, holder, _) = full_event(&app).await;
    let mut waiting = Vec::new();
    for _ in 0..5 {
        let (u, t) = user(&app, Role::Attendee).await;
        let resp = join(&app, &t, &ev).await;
        assert_eq!(status(&resp), 201);
        waiting.push((json(&resp)["joined_at"].as_str().unwrap().to_string(), u));
    }
    // The line's order: `joined_at`, ties by user id.
    waiting.sort_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));
    let waiting: Vec<_> = waiting.into_iter().map(|(_, u)| u).collect();
    let resp = events::router(&app, fixture("events-waitlist", &[("TOKEN", &owner), ("EVENT_ID", &ev)])).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    assert!(resp.headers().get("link").is_none(), "one page");
    let all = json(&resp);
    let rows = all.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 5);
    for (i, (row, u)) in rows.iter().zip(&waiting).enumerate() {
        assert_eq!(row["position"], i + 1, "{row}");
        assert_eq!((row["user_id"].as_str(), row["name"].as_str()), (Some(u.id.as_str()), Some(u.name.as_str())));
        assert_eq!(row["email"], u.email.as_str());
        assert!(shared::time::parse(row["joined_at"].as_str().unwrap()).is_some());
    }
    let (_, admin) = user(&app, Role::Admin).await;
    assert_eq!(json(&line(&app, &admin, &ev).await), all, "an admin sees the same");

    // Pages of two: following `Link` visits every entry once, in order, positions continuing.
    let mut uri = format!("/events/{ev}/waitlist?limit=2");
    let mut seen = Vec::new();
    for _ in 0..5 {
        let resp = call(&app, request("GET", &uri, Some(&owner), None)).await;
        assert_eq!(status(&resp), 200, "{:?}", json(&resp));
        seen.extend(json(&resp).as_array().unwrap().iter().cloned());
        let Some(link) = resp.headers().get("link") else { break };
        let link = link.to_str().unwrap();
        uri = link.trim_start_matches('<').split('>').next().unwrap().to_string();
        assert!(uri.contains("limit=2") && uri.contains("cursor="), "{link}");
    }
    assert_eq!(&seen, rows, "paged = one page");

    let (_, other) = user(&app, Role::Facilitator).await;
    let cases = vec![
        ("the seat holder", line(&app, &holder, &ev).await, 403, "forbidden"),
        ("another facilitator", line(&app, &other, &ev).await, 403, "forbidden"),
        ("unknown event", line(&app, &owner, "01NOSUCHEVENT0000000000000").await, 404, "not_found"),
        (
            "bad limit",
            call(&app, request("GET", &format!("/events/{ev}/waitlist?limit=0"), Some(&owner), None)).await,
            400,
            "validation_failed",
        ),
        (
            "forged cursor",
            call(&app, request("GET", &format!("/events/{ev}/waitlist?cursor=abc"), Some(&owner), None)).await,
            400,
            "validation_failed",
        ),
    ];
    for (what, resp, want, code) in cases {
        assert_eq!(outcome(&resp), (want, code.to_string()), "{what}: {:?}", json(&resp));
    }
}

/// GIVEN a user waiting for two events WHEN they read `GET /bookings/` THEN `waiting` lists both
/// with their places and the events' current details; once a cancel promotes them, the booking is
/// under `upcoming` and the entry is gone, and the next in line moved up.
async fn waiting_in_my_bookings<S: Store + Clone>(store: S) {
    let app = app(store);
    let (first, first_owner, holder, seat) = full_event(&app).await;
    let (second, _, _, _) = full_event(&app).await;
    let ((_, ahead), (_, me)) = two_in_line_order(&app).await;
    assert_eq!(status(&join(&app, &ahead, &second).await), 201);
    for ev in [&first, &second] {
        assert_eq!(status(&join(&app, &me, ev).await), 201);
    }
    let resp = call(
        &app,
        request("PATCH", &format!("/events/{first}"), Some(&first_owner), Some(json!({"title": "Gong Bath"}))),
    )
    .await;
    assert_eq!(status(&resp), 200);
    let history = json(&call(&app, request("GET", "/bookings/", Some(&me), None)).await);
    assert_eq!((history["upcoming"].clone(), history["past"].clone()), (json!([]), json!([])), "{history}");
    let waiting = history["waiting"].as_array().expect("waiting is a list");
    // Oldest first: by `joined_at`, then event id (both joins may fall in one second).
    let mut places: Vec<(&str, &str, u64)> = waiting
        .iter()
        .map(|w| (w["joined_at"].as_str().unwrap(), w["event_id"].as_str().unwrap(), w["position"].as_u64().unwrap()))
        .collect();
    let listed = places.clone();
    places.sort();
    assert_eq!(listed, places, "oldest first: {history}");
    let place = |ev: &str| places.iter().find(|p| p.1 == ev).map(|p| p.2);
    assert_eq!((place(&first), place(&second)), (Some(1), Some(2)), "{history}");
    let on_first = waiting.iter().find(|w| w["event_id"] == first.as_str()).unwrap();
    assert_eq!(on_first["event"]["title"], "Gong Bath", "the event as it is now");
    assert_eq!(on_first["event"]["id"], first.as_str());
    for w in waiting {
        for key in ["id", "title", "datetime", "duration_minutes", "type", "facilitator_id"] {
            assert!(w["event"].get(key).is_some(), "event.{key}: {w}");
        }
        assert!(shared::time::parse(w["joined_at"].as_str().unwrap()).is_some());
    }
    // Only the default view lists it.
    let cancelled = json(&call(&app, request("GET", "/bookings/?status=cancelled", Some(&me), None)).await);
    assert_eq!(cancelled["waiting"], json!([]));

    // The seat holder cancels: the first in line gets the seat in the same write.
    let resp = call(&app, request("DELETE", &format!("/bookings/{seat}"), Some(&holder), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let history = json(&call(&app, request("GET", "/bookings", Some(&me), None)).await);
    let upcoming = history["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 1, "{history}");
    assert_eq!(
        (upcoming[0]["event_id"].as_str(), upcoming[0]["status"].as_str()),
        (Some(first.as_str()), Some("confirmed"))
    );
    assert_eq!(history["waiting"].as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history["waiting"][0]["event_id"], second.as_str());
    let ev = get_event(&app, &first).await;
    assert_eq!((ev["seats_booked"].clone(), ev["waitlist_count"].clone()), (json!(1), json!(0)), "{ev}");
    // Promoted, so no longer waiting and booked now.
    assert_eq!(outcome(&leave(&app, &me, &first).await), (404, "not_found".into()));
    assert_eq!(outcome(&join(&app, &me, &first).await), (409, "already_booked".into()));
    // `ahead` leaves the second line: I am next.
    assert_eq!(status(&leave(&app, &ahead, &second).await), 200);
    let history = json(&call(&app, request("GET", "/bookings", Some(&me), None)).await);
    assert_eq!(history["waiting"][0]["position"], 1, "{history}");
    let other = json(&call(&app, request("GET", "/bookings", Some(&ahead), None)).await);
    assert_eq!(other["waiting"], json!([]), "{other}");
}

/// Every events response carries `waitlist_count` (create, get, list, filter, update, cancel).
async fn events_show_waitlist_count<S: Store + Clone>(store: S) {
    let app = app(store);
    let (ev, owner, _, _) = full_event(&app).await;
    let (_, a) = user(&app, Role::Attendee).await;
    assert_eq!(status(&join(&app, &a, &ev).await), 201);
    assert_eq!(get_event(&app, &ev).await["waitlist_count"], 1);
    for uri in ["/events/", "/events/filter?type=meditation"] {
        let list = json(&call(&app, request("GET", uri, None, None)).await);
        let mine = list.as_array().unwrap().iter().find(|e| e["id"] == ev.as_str()).cloned();
        assert_eq!(mine.map(|e| e["waitlist_count"].clone()), Some(json!(1)), "{uri}: {list}");
        assert!(list.as_array().unwrap().iter().all(|e| e["waitlist_count"].is_u64()), "{uri}");
    }
    let resp =
        call(&app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(json!({"title": "Gong"})))).await;
    assert_eq!(json(&resp)["waitlist_count"], 1);
    // The store keeps it; a client cannot set it.
    let resp =
        call(&app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(json!({"waitlist_count": 0})))).await;
    assert_eq!(outcome(&resp), (400, "unknown_field".into()), "{:?}", json(&resp));
    let resp = call(&app, request("POST", &format!("/events/{ev}/cancel"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200);
    assert!(json(&resp)["waitlist_count"].is_u64(), "{:?}", json(&resp));
}

/// GIVEN a full event WHEN one user sends 10 joins at once, 30 users join at once, and the first
/// user sends 10 leaves at once THEN exactly one join and one leave of the first user succeed,
/// every other user is in the line exactly once, and `waitlist_count` is exact throughout.
async fn concurrent_joins_and_leaves<S: Store + Clone>(store: S) {
    let app = app(store);
    let (ev, owner, _, _) = full_event(&app).await;
    let (_, first) = user(&app, Role::Attendee).await;
    let codes = |resps: Vec<Response<Body>>| -> Vec<(u16, String)> {
        let mut v: Vec<_> = resps.iter().map(outcome).collect();
        v.sort();
        v
    };
    let joins = futures::future::join_all((0..10).map(|_| join(&app, &first, &ev))).await;
    let mut want = vec![(201, String::new())];
    want.extend(std::iter::repeat_n((409, "already_waiting".to_string()), 9));
    assert_eq!(codes(joins), want, "one user, 10 joins at once");
    let tokens = users(&app, 30, Role::Attendee).await;
    let joins = futures::future::join_all(tokens.iter().map(|t| join(&app, t, &ev))).await;
    assert!(joins.iter().all(|r| status(r) == 201), "{:?}", joins.iter().map(outcome).collect::<Vec<_>>());
    assert_eq!(get_event(&app, &ev).await["waitlist_count"], 31);
    let leaves = futures::future::join_all((0..10).map(|_| leave(&app, &first, &ev))).await;
    let mut want = vec![(200, String::new())];
    want.extend(std::iter::repeat_n((404, "not_found".to_string()), 9));
    assert_eq!(codes(leaves), want, "one user, 10 leaves at once");
    assert_eq!(get_event(&app, &ev).await["waitlist_count"], 30);
    let resp = call(&app, request("GET", &format!("/events/{ev}/waitlist?limit=100"), Some(&owner), None)).await;
    let rows = json(&resp);
    let rows = rows.as_array().unwrap();
    let positions: Vec<u64> = rows.iter().map(|r| r["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, (1..=30).collect::<Vec<u64>>());
    let mut ids: Vec<&str> = rows.iter().map(|r| r["user_id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "each user once");
    // Each user's own view of their place agrees with the owner's list.
    for t in tokens.iter().take(5) {
        let mine = json(&call(&app, request("GET", "/bookings", Some(t), None)).await);
        let place = mine["waiting"][0]["position"].as_u64().unwrap();
        let me = &rows[usize::try_from(place).unwrap() - 1];
        let token_user = app.tokens.verify(t).unwrap().id;
        assert_eq!(me["user_id"], token_user.as_str(), "place {place}");
    }
}

/// GIVEN a full event with one user waiting WHEN its owner adds a seat (the promote job written,
/// not yet run) THEN nobody outside the line can book that seat (409 `event_full`, answered from
/// the read), and the job's batch (`lifecycle::run_batch`, as the stream or the sweeper runs it)
/// hands it to the first in line.
async fn seats_users_wait_for_are_theirs<S: Store + Clone>(store: S) {
    let app = app(store);
    let (ev, owner, _, _) = full_event(&app).await;
    let (_, waiting) = user(&app, Role::Attendee).await;
    let (_, outsider) = user(&app, Role::Attendee).await;
    assert_eq!(status(&join(&app, &waiting, &ev).await), 201);
    let more = json!({"capacity": 2});
    let resp = call(&app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(more))).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    assert_eq!((json(&resp)["seats_left"].clone(), json(&resp)["waitlist_count"].clone()), (json!(1), json!(1)));
    assert_eq!(outcome(&book(&app, &outsider, &ev).await), (409, "event_full".into()), "the free seat is the line's");
    let report = shared::lifecycle::run_batch(&app.store, &ev, 25, shared::time::now(), &|_| {}).await.unwrap();
    let history = json(&call(&app, request("GET", "/bookings", Some(&waiting), None)).await);
    assert_eq!(history["upcoming"].as_array().map(Vec::len), Some(1), "{history} after {report:?}");
    assert_eq!(history["waiting"], json!([]));
    let event = get_event(&app, &ev).await;
    assert_eq!((event["seats_booked"].clone(), event["waitlist_count"].clone()), (json!(2), json!(0)), "{event}");
    assert_eq!(outcome(&book(&app, &outsider, &ev).await), (409, "event_full".into()), "full again");
}

store_tests!(
    hostile_requests_never_get_a_5xx,
    join_and_leave,
    refusals,
    owner_reads_the_line,
    waiting_in_my_bookings,
    events_show_waitlist_count,
    concurrent_joins_and_leaves,
    seats_users_wait_for_are_theirs
);

/// GIVEN DynamoDB (moto) WHEN each waitlist route runs THEN it makes exactly the calls below, and
/// never a Scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_calls_per_route() {
    let (store, log) = dynamo_counted().await;
    let app = app(store);
    let (ev, owner, _, _) = full_event(&app).await;
    let (_, a) = user(&app, Role::Attendee).await;
    let (_, b) = user(&app, Role::Attendee).await;
    let mut report = CallReport::new(&log);
    assert_eq!(status(&join(&app, &a, &ev).await), 201);
    // The event, the caller's guard and account in one read; the transaction; the place in line
    // (a strongly consistent read of the event's count).
    report.exactly("POST /events/{id}/waitlist", &["BatchGetItem", "TransactWriteItems", "GetItem"]);
    assert_eq!(outcome(&join(&app, &a, &ev).await), (409, "already_waiting".into()));
    report.exactly("POST /events/{id}/waitlist (already waiting)", &["BatchGetItem"]);
    assert_eq!(outcome(&book(&app, &a, &ev).await), (409, "already_waiting".into()));
    report.exactly("POST /bookings (waiting)", &["BatchGetItem"]);
    assert_eq!(status(&join(&app, &b, &ev).await), 201);
    log.take();
    assert_eq!(status(&line(&app, &owner, &ev).await), 200);
    // The event and the caller's role in one read; the line's head (base table, consistent).
    report.exactly("GET /events/{id}/waitlist", &["BatchGetItem", "Query"]);
    let first = call(&app, request("GET", &format!("/events/{ev}/waitlist?limit=1"), Some(&owner), None)).await;
    let link = first.headers()["link"].to_str().unwrap().to_string();
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_string();
    log.take();
    let second = json(&call(&app, request("GET", &next, Some(&owner), None)).await);
    assert_eq!(second[0]["position"], 2, "{second}");
    // A later page also counts the entries up to its cursor (its first place in line).
    report.exactly("GET /events/{id}/waitlist (second page)", &["BatchGetItem", "Query", "Query"]);
    assert_eq!(status(&call(&app, request("GET", "/bookings", Some(&b), None)).await), 200);
    // The bookings and the waiting entries (two index queries, side by side), one count of the
    // entries ahead per entry, one read of the events.
    report.exactly("GET /bookings (waiting for one event)", &["Query", "Query", "Query", "BatchGetItem"]);
    assert_eq!(status(&leave(&app, &a, &ev).await), 200);
    // The guard (strongly consistent), then the transaction.
    report.exactly("DELETE /events/{id}/waitlist", &["GetItem", "TransactWriteItems"]);
    assert_eq!(outcome(&leave(&app, &a, &ev).await), (404, "not_found".into()));
    report.exactly("DELETE /events/{id}/waitlist (not waiting)", &["GetItem"]);
    // A seat added while users wait is theirs: its promote job is written with the change, and a
    // booking by anyone else is refused from the read (no transaction is tried).
    let more = json!({"capacity": 2});
    let resp = call(&app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(more))).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    // The caller's role; the update on condition that it promotes nobody (refused, the event
    // comes back); the update with the promote job in one transaction; the answer.
    report.exactly(
        "PATCH /events/{id} (capacity up, users waiting)",
        &["GetItem", "UpdateItem", "TransactWriteItems", "GetItem"],
    );
    assert_eq!(outcome(&book(&app, &a, &ev).await), (409, "event_full".into()));
    report.exactly("POST /bookings (a seat users wait for)", &["BatchGetItem"]);
    report.print();
}
