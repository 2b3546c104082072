//! Latency of the read routes as the embedded store grows: for 1k, 10k and 100k events (and as
//! many bookings), the list, a deep list page, the filter, one event and a user's booking history,
//! each called in-process through the local server's dispatch (routing, JSON, the store), as
//! `make run` serves them minus the socket. For `make bench`:
//!
//! ```text
//! cargo run --profile local -p tests --example store_scale [-- SIZES...]   (default 1000 10000 100000)
//! ```
//!
//! Data: events 10 minutes apart from 30 days ahead; types cycle Yoga, Meditation, Breathwork,
//! Retreat and ratings 3.0 … 5.0 in steps of 0.5, so 10 % of events match
//! `type=yoga&rating=4.5` at every size and a page of 50 always evaluates the same ~125 entries.
//! Bookings: one per event, by users holding 10 each; the measured user holds 20.

use serde_json::json;
use shared::model::{EventInput, Role};
use shared::Store;
use std::time::{Duration, Instant};
use tests::{app, call, memory_store, request, status, user};

const WARMUP: usize = 300;
const CALLS: usize = 3_000;

struct Timing {
    p50: Duration,
    p99: Duration,
}

fn timing(mut samples: Vec<Duration>) -> Timing {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    Timing { p50: at(0.50), p99: at(0.99) }
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

async fn measure(size: usize) -> Vec<(String, Timing)> {
    let store = memory_store();
    let app = app(store.clone());
    let seeding = Instant::now();
    let start = shared::time::now() + chrono::Duration::days(30);
    let types = ["Yoga", "Meditation", "Breathwork", "Retreat"];
    let mut ids = Vec::with_capacity(size);
    for i in 0..size {
        let input: EventInput = serde_json::from_value(json!({
            "title": format!("Session {i}"),
            "description": "A seeded session of the store scale benchmark.",
            "type": types[i % types.len()],
            "rating": 3.0 + 0.5 * (i % 5) as f64,
            "datetime": shared::time::format(&(start + chrono::Duration::minutes(10 * i as i64))),
        }))
        .expect("valid event input");
        let event = input.into_event("bench-owner", shared::time::now()).expect("valid event");
        store.create_event(&event).await.expect("create event");
        ids.push(event.id);
    }
    // As many bookings as events, through the real route: users of 10 bookings each.
    let mut token = String::new();
    for (i, id) in ids.iter().enumerate() {
        if i % 10 == 0 {
            token = user(&app, Role::Attendee).await.1;
        }
        let resp = call(&app, request("POST", "/bookings/", Some(&token), Some(json!({"event_id": id})))).await;
        assert_eq!(status(&resp), 201);
    }
    // The measured user: 20 bookings spread over the whole range.
    let (_, me) = user(&app, Role::Attendee).await;
    for k in 0..20 {
        let id = &ids[k * size / 20];
        let resp = call(&app, request("POST", "/bookings/", Some(&me), Some(json!({"event_id": id})))).await;
        assert_eq!(status(&resp), 201);
    }
    eprintln!("store_scale: {size} events + {} bookings seeded in {:.1} s", size + 20, seeding.elapsed().as_secs_f64());

    let middle = shared::time::format(&(start + chrono::Duration::minutes(10 * (size / 2) as i64)));
    let middle_id = ids[size / 2].clone();
    let routes: Vec<(&str, String, Option<&str>)> = vec![
        ("GET /events/?limit=50", "/events/?limit=50".into(), None),
        ("GET /events/?limit=50&from=<middle>", format!("/events/?limit=50&from={middle}"), None),
        (
            "GET /events/filter?type=yoga&rating=4.5&limit=50",
            "/events/filter?type=yoga&rating=4.5&limit=50".into(),
            None,
        ),
        ("GET /events/{id}", format!("/events/{middle_id}"), None),
        ("GET /bookings/ (20 bookings)", "/bookings/".into(), Some(me.as_str())),
    ];
    let mut out = Vec::new();
    for (name, uri, token) in routes {
        let mut samples = Vec::with_capacity(CALLS);
        for i in 0..WARMUP + CALLS {
            let req = request("GET", &uri, token, None);
            let t0 = Instant::now();
            let resp = call(&app, req).await;
            let took = t0.elapsed();
            assert_eq!(status(&resp), 200, "{uri}");
            if i == 0 {
                let body: serde_json::Value = serde_json::from_slice(resp.body().as_ref()).expect("JSON");
                let n = body.as_array().map(Vec::len).unwrap_or_else(|| {
                    body["upcoming"].as_array().map_or(0, Vec::len) + body["past"].as_array().map_or(0, Vec::len)
                });
                let want = if name.contains("{id}") {
                    0
                } else if name.contains("bookings") {
                    20
                } else {
                    50
                };
                assert!(want == 0 || n == want, "{uri}: {n} items, want {want}");
            }
            if i >= WARMUP {
                samples.push(took);
            }
        }
        out.push((name.to_string(), timing(samples)));
    }
    out
}

fn main() {
    let sizes: Vec<usize> = {
        let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
        if args.is_empty() {
            vec![1_000, 10_000, 100_000]
        } else {
            args
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let results: Vec<(usize, Vec<(String, Timing)>)> = sizes.iter().map(|&n| (n, rt.block_on(measure(n)))).collect();

    println!();
    println!("{WARMUP} warm-up calls, then {CALLS} timed calls per route and size; µs per call (p50 / p99).");
    println!();
    let mut head = String::from("| route |");
    let mut rule = String::from("|---|");
    for (n, _) in &results {
        head.push_str(&format!(" {n} events p50 / p99 |"));
        rule.push_str("---|");
    }
    if results.len() > 1 {
        head.push_str(" p50 largest / smallest |");
        rule.push_str("---|");
    }
    println!("{head}\n{rule}");
    for (r, (name, _)) in results[0].1.iter().enumerate() {
        let mut line = format!("| `{name}` |");
        for (_, timings) in &results {
            let t = &timings[r].1;
            line.push_str(&format!(" {} / {} |", us(t.p50), us(t.p99)));
        }
        if results.len() > 1 {
            let first = results[0].1[r].1.p50.as_secs_f64();
            let last = results[results.len() - 1].1[r].1.p50.as_secs_f64();
            line.push_str(&format!(" {:.2}× |", last / first));
        }
        println!("{line}");
    }
}
