//! `GET /bookings/{id}/calendar.ics` on both stores: the RFC 5545 file as a calendar app reads it
//! (CRLF, folding at 75 octets on UTF-8 boundaries, TEXT escaping, UTC times), what it says as the
//! booking changes (SEQUENCE, STATUS), who may read it, its JSON errors, and its DynamoDB calls.
//! The file is parsed here independently of the writer: unfolded and unescaped as §3.1 and
//! §3.3.11 say a reader does.

use lambda_http::{Body, Response};
use serde_json::json;
use shared::model::Role;
use shared::Store;
use std::sync::Arc;
use tests::*;

mod payments_harness;
use payments_harness::Paid;

type AppOf<S> = Arc<shared::App<S>>;

/// `2030-08-01T23:30:00-02:00` is 01:30 UTC the next day: DTSTART must say so.
const START: &str = "2030-08-01T23:30:00-02:00";
const DTSTART: &str = "20300802T013000Z";
/// START + 95 minutes.
const DTEND: &str = "20300802T030500Z";

/// A title at the 200-character limit that needs every escape and folds mid-character: 2-, 3-
/// and 4-octet characters, a backslash, `;` and `,`.
fn long_title() -> String {
    let t = "Yoga; flow, breath \\ stretch — Ōm 🧘 ".repeat(6);
    t.chars().take(200).collect::<String>().trim_end().to_string()
}

const DESCRIPTION: &str =
    "Line one: bring a mat, water; a towel.\r\nLine two\nLine three \\ \"quoted\"\n\nEnd — ½ price 🧘‍♀️";

async fn event<S: Store>(app: &AppOf<S>, owner: &str, title: &str, description: &str) -> String {
    let body = json!({
        "title": title, "description": description, "type": "Yoga", "datetime": START,
        "duration_minutes": 95, "capacity": 5,
    });
    let resp = call(app, request("POST", "/events", Some(owner), Some(body))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

async fn book<S: Store>(app: &AppOf<S>, token: &str, event_id: &str) -> String {
    let resp = call(app, request("POST", "/bookings/", Some(token), Some(json!({"event_id": event_id})))).await;
    assert_eq!(status(&resp), 201, "{:?}", json(&resp));
    json(&resp)["id"].as_str().unwrap().to_string()
}

async fn ics<S: Store>(app: &AppOf<S>, token: Option<&str>, booking: &str) -> Response<Body> {
    call(app, request("GET", &format!("/bookings/{booking}/calendar.ics"), token, None)).await
}

fn text(resp: &Response<Body>) -> String {
    String::from_utf8(resp.body().as_ref().to_vec()).expect("a calendar file is UTF-8")
}

/// The file checked against §3.1's physical rules, then unfolded into `(name, value)` lines.
fn parse(file: &str) -> Vec<(String, String)> {
    assert!(file.ends_with("\r\n"), "the last line ends with CRLF too");
    assert_eq!(file.matches('\n').count(), file.matches("\r\n").count(), "a bare LF: {file:?}");
    assert_eq!(file.matches('\r').count(), file.matches("\r\n").count(), "a bare CR: {file:?}");
    for line in file.split_terminator("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        assert!(!line.starts_with('\t'), "this writer folds with one space: {line:?}");
    }
    // §3.1: "unfolding is accomplished by removing the CRLF and the linear white-space character
    // that immediately follows".
    file.replace("\r\n ", "")
        .split_terminator("\r\n")
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap_or_else(|| panic!("not NAME:value: {l:?}"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// §3.3.11 read back: `\\`, `\;`, `\,`, `\n`/`\N`; a lone backslash before anything else is not
/// valid TEXT.
fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some(';') => out.push(';'),
                Some(',') => out.push(','),
                Some('n' | 'N') => out.push('\n'),
                other => panic!("invalid escape \\{other:?} in {value:?}"),
            },
            ';' | ',' => panic!("unescaped {c:?} in TEXT {value:?}"),
            c => out.push(c),
        }
    }
    out
}

fn prop<'a>(lines: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut found = lines.iter().filter(|(n, _)| n == name);
    let first = found.next().map(|(_, v)| v.as_str());
    assert!(found.next().is_none(), "{name} appears twice");
    first
}

fn names(lines: &[(String, String)]) -> Vec<&str> {
    lines.iter().map(|(n, _)| n.as_str()).collect()
}

const STRUCTURE: &[&str] = &[
    "BEGIN",
    "PRODID",
    "VERSION",
    "CALSCALE",
    "METHOD",
    "BEGIN",
    "UID",
    "DTSTAMP",
    "DTSTART",
    "DTEND",
    "SEQUENCE",
    "STATUS",
    "SUMMARY",
    "DESCRIPTION",
    "END",
    "END",
];

async fn calendar_file_follows_rfc_5545<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, asha) = user(&app, Role::Attendee).await;
    let title = long_title();
    let ev = event(&app, &owner, &title, DESCRIPTION).await;
    let id = book(&app, &asha, &ev).await;

    let before = shared::time::now();
    let resp = ics(&app, Some(&asha), &id).await;
    assert_eq!(status(&resp), 200, "{}", text(&resp));
    assert_eq!(resp.headers()["content-type"], "text/calendar; charset=utf-8");
    let file = text(&resp);
    let lines = parse(&file);
    assert_eq!(names(&lines), STRUCTURE, "{file}");
    let values: Vec<&str> = lines.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        [values[0], values[2], values[3], values[4], values[5], values[14], values[15]],
        ["VCALENDAR", "2.0", "GREGORIAN", "PUBLISH", "VEVENT", "VEVENT", "VCALENDAR"]
    );
    assert_eq!(prop(&lines, "PRODID"), Some("-//Ahoum//Booking API//EN"));
    assert_eq!(prop(&lines, "UID"), Some(format!("{id}@ahoum").as_str()));
    assert_eq!(prop(&lines, "DTSTART"), Some(DTSTART));
    assert_eq!(prop(&lines, "DTEND"), Some(DTEND));
    let stamp = prop(&lines, "DTSTAMP").unwrap();
    let stamp = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").expect("UTC basic form").and_utc();
    assert!(stamp >= before && stamp <= shared::time::now(), "{stamp}");
    assert_eq!(prop(&lines, "SEQUENCE"), Some("0"));
    assert_eq!(prop(&lines, "STATUS"), Some("CONFIRMED"));
    assert_eq!(unescape(prop(&lines, "SUMMARY").unwrap()), title);
    // CRLF and a lone LF are each one line break.
    assert_eq!(unescape(prop(&lines, "DESCRIPTION").unwrap()), DESCRIPTION.replace("\r\n", "\n"));
    // Both long values really were folded (SUMMARY into four lines, DESCRIPTION into two).
    assert_eq!(file.split_terminator("\r\n").filter(|l| l.starts_with(' ')).count(), 4, "{file}");

    // The same booking again: the same UID and the same file but for DTSTAMP.
    let again = text(&ics(&app, Some(&asha), &id).await);
    let stamp_free = |f: &str| parse(f).into_iter().filter(|(n, _)| n != "DTSTAMP").collect::<Vec<_>>();
    assert_eq!(stamp_free(&again), stamp_free(&file));
    // Trailing slash, as every route.
    let slash = call(&app, request("GET", &format!("/bookings/{id}/calendar.ics/"), Some(&asha), None)).await;
    assert_eq!(status(&slash), 200);
}

async fn cancelling_raises_sequence_and_cancels_the_event<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, asha) = user(&app, Role::Attendee).await;
    let ev = event(&app, &owner, "Sound Bath", "").await;
    let id = book(&app, &asha, &ev).await;
    let first = parse(&text(&ics(&app, Some(&asha), &id).await));
    assert_eq!((prop(&first, "SEQUENCE"), prop(&first, "STATUS")), (Some("0"), Some("CONFIRMED")));
    assert_eq!(prop(&first, "DESCRIPTION"), None, "an empty description is left out");

    let resp = call(&app, request("DELETE", &format!("/bookings/{id}"), Some(&asha), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let after = parse(&text(&ics(&app, Some(&asha), &id).await));
    assert_eq!((prop(&after, "SEQUENCE"), prop(&after, "STATUS")), (Some("1"), Some("CANCELLED")));
    assert_eq!(prop(&after, "UID"), prop(&first, "UID"), "the same entry, replaced in the calendar");
    assert_eq!((prop(&after, "DTSTART"), prop(&after, "DTEND")), (Some(DTSTART), Some(DTEND)));

    // The event edited, then deleted (allowed: no active booking left): the title the booking
    // remembers, no description.
    let patch = json!({"title": "Renamed", "description": "New words"});
    let resp = call(&app, request("PATCH", &format!("/events/{ev}"), Some(&owner), Some(patch))).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let edited = parse(&text(&ics(&app, Some(&asha), &id).await));
    assert_eq!((prop(&edited, "SUMMARY"), prop(&edited, "DESCRIPTION")), (Some("Renamed"), Some("New words")));
    let resp = call(&app, request("DELETE", &format!("/events/{ev}"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200, "{:?}", json(&resp));
    let orphan = parse(&text(&ics(&app, Some(&asha), &id).await));
    assert_eq!((prop(&orphan, "SUMMARY"), prop(&orphan, "DESCRIPTION")), (Some("Sound Bath"), None));
    assert_eq!(prop(&orphan, "STATUS"), Some("CANCELLED"));
}

async fn only_the_booker_and_admins_read_it_and_errors_are_json<S: Store + Clone>(store: S) {
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, asha) = user(&app, Role::Attendee).await;
    let (_, other) = user(&app, Role::Attendee).await;
    let (_, admin) = user(&app, Role::Admin).await;
    let ev = event(&app, &owner, "Sound Bath", "Gong").await;
    let id = book(&app, &asha, &ev).await;

    let by_admin = ics(&app, Some(&admin), &id).await;
    assert_eq!(status(&by_admin), 200);
    assert_eq!(prop(&parse(&text(&by_admin)), "UID"), Some(format!("{id}@ahoum").as_str()));
    let json_error = |resp: &Response<Body>| {
        assert_eq!(resp.headers()["content-type"], "application/json");
        (status(resp), error_code(resp))
    };
    // Someone else's booking is not revealed, not even to the event's owner.
    assert_eq!(json_error(&ics(&app, Some(&other), &id).await), (404, "not_found".into()));
    assert_eq!(json_error(&ics(&app, Some(&owner), &id).await), (404, "not_found".into()));
    assert_eq!(json_error(&ics(&app, Some(&asha), "01NOSUCHBOOKING00000000000").await), (404, "not_found".into()));
    assert_eq!(json_error(&ics(&app, Some(&asha), "not%20an%20id").await), (404, "not_found".into()));
    assert_eq!(json_error(&ics(&app, None, &id).await), (401, "unauthorized".into()));
    assert_eq!(json_error(&ics(&app, Some("not.a.token"), &id).await), (401, "unauthorized".into()));
    // A valid token for an account that no longer exists reads nothing of another's.
    let gone = token_only(&app, Role::Admin);
    assert_eq!(json_error(&ics(&app, Some(&gone), &id).await), (401, "unauthorized".into()));
    // Other methods: 405 with Allow; an unknown query parameter: 400.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let resp = call(&app, request(method, &format!("/bookings/{id}/calendar.ics"), Some(&asha), None)).await;
        assert_eq!(json_error(&resp), (405, "method_not_allowed".into()), "{method}");
        assert_eq!(resp.headers()["allow"], "GET");
    }
    let resp = call(&app, request("GET", &format!("/bookings/{id}/calendar.ics?tz=x"), Some(&asha), None)).await;
    assert_eq!(json_error(&resp), (400, "validation_failed".into()));
    let resp = call(&app, request("GET", &format!("/bookings/{id}/calendar.ics/x"), Some(&asha), None)).await;
    assert_eq!(json_error(&resp), (404, "not_found".into()));
}

/// A held seat not yet paid is TENTATIVE; the hold ending unpaid makes it CANCELLED.
async fn a_pending_payment_is_tentative_and_an_expired_hold_cancelled<S: Store + Clone>(store: S) {
    let p = Paid::new(store).await;
    let ev = p.event(Some(3)).await;
    let (booking, token, session) = p.hold(&ev).await;
    let id = booking["id"].as_str().unwrap();
    let held = parse(&text(&ics(&p.app, Some(&token), id).await));
    assert_eq!((prop(&held, "STATUS"), prop(&held, "SEQUENCE")), (Some("TENTATIVE"), Some("0")));
    assert_eq!(prop(&held, "SUMMARY"), Some("Sound Bath"));
    let expired = p.stub.expire(&session);
    let body = payments_harness::stripe_event("evt_cal_expired", "checkout.session.expired", &expired);
    assert_eq!(p.effect(&body).await, "expired");
    let ended = parse(&text(&ics(&p.app, Some(&token), id).await));
    assert_eq!(prop(&ended, "STATUS"), Some("CANCELLED"));
}

store_tests!(
    calendar_file_follows_rfc_5545,
    cancelling_raises_sequence_and_cancels_the_event,
    only_the_booker_and_admins_read_it_and_errors_are_json,
    a_pending_payment_is_tentative_and_an_expired_hold_cancelled,
);

/// Two reads whoever asks: the booking, then its event (the booker) or the event and the
/// caller's role in one BatchGetItem (anyone else).
#[tokio::test]
async fn dynamodb_calls_per_route() {
    let (store, log) = dynamo_counted().await;
    let app = app(store);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, asha) = user(&app, Role::Attendee).await;
    let (_, other) = user(&app, Role::Attendee).await;
    let (_, admin) = user(&app, Role::Admin).await;
    let ev = event(&app, &owner, "Sound Bath", "Gong").await;
    let id = book(&app, &asha, &ev).await;
    let mut report = CallReport::new(&log);
    assert_eq!(status(&ics(&app, Some(&asha), &id).await), 200);
    report.exactly("GET /bookings/{id}/calendar.ics", &["GetItem", "GetItem"]);
    assert_eq!(status(&ics(&app, Some(&admin), &id).await), 200);
    report.exactly("GET /bookings/{id}/calendar.ics (admin, someone else's)", &["GetItem", "BatchGetItem"]);
    assert_eq!(status(&ics(&app, Some(&other), &id).await), 404);
    report.exactly("GET /bookings/{id}/calendar.ics (someone else's: 404)", &["GetItem", "BatchGetItem"]);
    assert_eq!(status(&ics(&app, Some(&asha), "01NOSUCHBOOKING00000000000").await), 404);
    report.exactly("GET /bookings/{id}/calendar.ics (no such booking)", &["GetItem"]);
    report.print();
}
