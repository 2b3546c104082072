//! HTTP load generator for `make bench`: the four cases of the issue's goal table (list, one
//! event, book, login) plus the filter and the booking history, against a running local server.
//!
//! ```text
//! cargo run --profile local -p tests --example loadgen -- URL [--duration 10] [--connections 32] [--threads 2]
//! ```
//!
//! `BENCH_ADMIN_EMAIL` / `BENCH_ADMIN_PASSWORD` name the server's bootstrap admin (it creates the
//! events). Like `wrk -t2 -c32 -d10s`: `--threads` OS threads share `--connections` keep-alive
//! HTTP/1.1 connections, each sending its next request as soon as the previous answer is read,
//! for `--duration` seconds; every latency is kept, so p50/p99 are exact. Unlike wrk, each
//! request can differ: `POST /bookings/` walks distinct (user, event) pairs, since a user books an
//! event once. It needs nothing but cargo (no wrk, no Lua, no root), and its HTTP client is a
//! few syscalls per request, so on a shared 2-core machine it takes no more CPU than wrk does.

mod client;
mod load;
mod report;
mod setup;

use client::{call, request, Conn};
use load::{fixed, load, Gen, Run};
use report::report;
use serde_json::json;
use setup::{create_event, users, PASSWORD};
use std::sync::Arc;
use std::time::Duration;

struct Opts {
    addr: String,
    duration: Duration,
    connections: usize,
    threads: usize,
    users: usize,
    events: usize,
    /// Set up the 20 events and stop after the read cases (for a cross-check with wrk).
    reads_only: bool,
}

fn opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| usage());
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut o = Opts {
        addr,
        duration: Duration::from_secs(10),
        connections: 32,
        threads: 2,
        users: 100,
        events: 0,
        reads_only: false,
    };
    while let Some(flag) = args.next() {
        if flag == "--reads-only" {
            o.reads_only = true;
            continue;
        }
        let value: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage());
        match flag.as_str() {
            "--duration" => o.duration = Duration::from_secs(value),
            "--connections" => o.connections = value as usize,
            "--threads" => o.threads = value as usize,
            "--users" => o.users = value as usize,
            "--events" => o.events = value as usize,
            _ => usage(),
        }
    }
    o
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen http://HOST:PORT [--duration S] [--connections N] [--threads N] [--users N] [--events N] [--reads-only]"
    );
    std::process::exit(2)
}

fn main() {
    let o = opts();
    let admin_email = std::env::var("BENCH_ADMIN_EMAIL").expect("BENCH_ADMIN_EMAIL");
    let admin_password = std::env::var("BENCH_ADMIN_PASSWORD").expect("BENCH_ADMIN_PASSWORD");
    let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut rows: Vec<(String, Run)> = Vec::new();
    let tag = format!("{}", std::process::id());

    // The list holds 20 events, as in the Flask measurement: the sample events plus enough more.
    let (admin, first_id, history_token) = setup.block_on(async {
        let mut c = Conn::open(&o.addr).await.expect("connect to the server");
        let login = json!({"email": admin_email, "password": admin_password});
        let admin = call(&mut c, "POST", "/auth/login", None, Some(login), 200).await["access_token"]
            .as_str()
            .expect("admin token")
            .to_string();
        let listed = call(&mut c, "GET", "/events/?limit=100", None, None, 200).await;
        let existing = listed.as_array().map_or(0, Vec::len);
        assert!(existing <= 20, "the server already holds {existing} events; start a fresh one");
        for i in existing..20 {
            create_event(&mut c, &admin, i, Some(20)).await;
        }
        let listed = call(&mut c, "GET", "/events/", None, None, 200).await;
        assert_eq!(listed.as_array().map(Vec::len), Some(20));
        let first_id = listed[0]["id"].as_str().expect("id").to_string();
        // A user with 5 bookings, for the history case.
        let (_, history) = users(&mut c, &format!("{tag}-history"), 1).await.remove(0);
        for e in listed.as_array().expect("list").iter().rev().take(5) {
            let body = json!({"event_id": e["id"]});
            call(&mut c, "POST", "/bookings/", Some(&history), Some(body), 201).await;
        }
        (admin, first_id, history)
    });

    let cases: Vec<(String, Vec<u8>)> = vec![
        ("GET /events/ (20 events)".into(), request("GET", "/events/", None, None)),
        ("GET /events/{id}".into(), request("GET", &format!("/events/{first_id}"), None, None)),
        (
            "GET /events/filter?type=yoga&rating=4.5".into(),
            request("GET", "/events/filter?type=yoga&rating=4.5", None, None),
        ),
        ("GET /bookings/ (5 bookings)".into(), request("GET", "/bookings/", Some(&history_token), None)),
    ];
    for (name, req) in cases {
        eprintln!("loadgen: {name}: {} s on {} connections", o.duration.as_secs(), o.connections);
        rows.push((name, load(&o, fixed(req))));
    }
    if o.reads_only {
        report(&rows);
        println!("\nevent id for GET /events/{{id}}: {first_id}");
        return;
    }

    // Bookings: distinct (user, event) pairs, request k → user k mod U, event k div U. Enough
    // events without a seat limit for ~60,000 bookings a second.
    let events_needed =
        if o.events > 0 { o.events } else { (60_000 * o.duration.as_secs() as usize).div_ceil(o.users) };
    eprintln!("loadgen: set-up for POST /bookings/: {} users, {events_needed} events", o.users);
    let (tokens, event_ids, emails) = setup.block_on(async {
        let mut c = Conn::open(&o.addr).await.expect("connect");
        let accounts = users(&mut c, &format!("{tag}-book"), o.users).await;
        let mut ids = Vec::with_capacity(events_needed);
        for i in 0..events_needed {
            ids.push(create_event(&mut c, &admin, 1000 + i, None).await);
        }
        let emails: Vec<String> = accounts.iter().map(|(e, _)| e.clone()).collect();
        (accounts.into_iter().map(|(_, t)| t).collect::<Vec<_>>(), ids, emails)
    });
    let pairs = (tokens.len() * event_ids.len()) as u64;
    let bodies: Vec<Vec<u8>> = event_ids.iter().map(|id| json!({ "event_id": id }).to_string().into_bytes()).collect();
    let heads: Vec<String> = tokens
        .iter()
        .map(|t| {
            format!(
                "POST /bookings/ HTTP/1.1\r\nhost: bench\r\naccept: application/json\r\nauthorization: Bearer {t}\r\ncontent-type: application/json\r\n"
            )
        })
        .collect();
    let users_n = tokens.len() as u64;
    let book: Gen = Arc::new(move |k| {
        if k >= pairs {
            return None;
        }
        let (head, body) = (&heads[(k % users_n) as usize], &bodies[(k / users_n) as usize]);
        let mut req = Vec::with_capacity(head.len() + body.len() + 32);
        req.extend_from_slice(head.as_bytes());
        req.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        req.extend_from_slice(body);
        Some(Arc::new(req))
    });
    eprintln!("loadgen: POST /bookings/: {} s on {} connections", o.duration.as_secs(), o.connections);
    let run = load(&o, book);
    assert!(
        (run.requests as u64) < pairs,
        "POST /bookings/ ran out of distinct (user, event) pairs; pass a larger --events"
    );
    rows.push((format!("POST /bookings/ ({} users × {} events)", o.users, event_ids.len()), run));

    // Logins: argon2id per request, cycling through the users (a success clears the throttle).
    let logins: Vec<Arc<Vec<u8>>> = emails
        .iter()
        .map(|e| Arc::new(request("POST", "/auth/login", None, Some(&json!({"email": e, "password": PASSWORD})))))
        .collect();
    let login: Gen = Arc::new(move |k| Some(logins[k as usize % logins.len()].clone()));
    eprintln!("loadgen: POST /auth/login: {} s on {} connections", o.duration.as_secs(), o.connections);
    rows.push(("POST /auth/login".into(), load(&o, login)));
    report(&rows);
}
