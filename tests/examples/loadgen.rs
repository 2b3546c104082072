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

use serde_json::{json, Value};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The issue's baseline: the original Flask service under gunicorn (2 workers) on this machine,
/// `wrk -t2 -c32 -d10s`. The upper figure of each range is the one a ratio is taken against.
fn flask(case: &str) -> Option<f64> {
    match case.split(" (").next()? {
        "GET /events/" => Some(1_598.0),
        "GET /events/{id}" => Some(1_541.0),
        "POST /bookings/" => Some(432.0),
        "POST /auth/login" => Some(18.0),
        _ => None,
    }
}

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

// ------------------------------------------------------------------------------------ HTTP/1.1

/// One keep-alive connection. Only what the local server sends back is understood: a status
/// line, headers and a `Content-Length` body.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Conn {
    async fn open(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(16 * 1024) })
    }

    async fn send(&mut self, mut req: &[u8]) -> io::Result<Reply> {
        while !req.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(req) {
                Ok(n) => req = &req[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        let (head_end, status, length) = loop {
            self.fill().await?;
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(invalid)?;
                let status = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("status line"))?;
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .ok_or_else(|| invalid("no content-length"))?;
                break (end + 4, status, length);
            }
        };
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        Ok(Reply { status, body: self.buf[head_end..head_end + length].to_vec() })
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            self.stream.readable().await?;
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The bytes of one request.
fn request(method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: bench\r\naccept: application/json\r\n");
    if let Some(t) = token {
        head.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// One request on a connection of its own, for the set-up steps; fails unless the status is `want`.
async fn call(c: &mut Conn, method: &str, path: &str, token: Option<&str>, body: Option<Value>, want: u16) -> Value {
    let reply = c.send(&request(method, path, token, body.as_ref())).await.expect("set-up request");
    let text = String::from_utf8_lossy(&reply.body);
    assert_eq!(reply.status, want, "{method} {path}: {text}");
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}

// ------------------------------------------------------------------------------------ load

/// What one case measured.
struct Run {
    requests: usize,
    non_2xx: usize,
    errors: usize,
    elapsed: Duration,
    /// Microseconds, sorted.
    latencies: Vec<u32>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i] as f64 / 1000.0
    }

    fn mean(&self) -> f64 {
        self.latencies.iter().map(|&l| l as f64).sum::<f64>() / self.latencies.len().max(1) as f64 / 1000.0
    }
}

/// Request `k` (0, 1, 2, … across all connections) of a case; `None` when the case has no more.
type Gen = Arc<dyn Fn(u64) -> Option<Arc<Vec<u8>>> + Send + Sync>;

/// Runs `gen` on `o.connections` connections for `o.duration`.
fn load(o: &Opts, gen: Gen) -> Run {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + o.duration;
    let per_thread: Vec<usize> =
        (0..o.threads).map(|t| o.connections / o.threads + usize::from(t < o.connections % o.threads)).collect();
    let handles: Vec<_> = per_thread
        .into_iter()
        .map(|conns| {
            let (gen, next, addr) = (gen.clone(), next.clone(), o.addr.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    let tasks = (0..conns).map(|_| connection(&addr, &gen, &next, deadline));
                    futures::future::join_all(tasks).await
                })
            })
        })
        .collect();
    let mut run = Run { requests: 0, non_2xx: 0, errors: 0, elapsed: Duration::ZERO, latencies: Vec::new() };
    for h in handles {
        for (lat, non_2xx, errors) in h.join().expect("load thread") {
            run.requests += lat.len();
            run.latencies.extend(lat);
            run.non_2xx += non_2xx;
            run.errors += errors;
        }
    }
    // Answers that arrive after the deadline are not counted, nor is the time spent on them.
    run.elapsed = started.elapsed().min(o.duration);
    run.latencies.sort_unstable();
    run
}

/// One connection's loop: latencies (µs) of the answers read before the deadline, non-2xx count,
/// connection errors (the connection is reopened after one).
async fn connection(addr: &str, gen: &Gen, next: &AtomicU64, deadline: Instant) -> (Vec<u32>, usize, usize) {
    let (mut lat, mut non_2xx, mut errors) = (Vec::with_capacity(1 << 16), 0, 0);
    let mut conn = None;
    while Instant::now() < deadline {
        if conn.is_none() {
            match Conn::open(addr).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(req) = gen(next.fetch_add(1, Ordering::Relaxed)) else { break };
        let c = conn.as_mut().expect("connection is open");
        let t0 = Instant::now();
        match c.send(&req).await {
            Ok(reply) => {
                let done = Instant::now();
                if done > deadline {
                    break;
                }
                lat.push((done - t0).as_micros().min(u32::MAX as u128) as u32);
                if !(200..300).contains(&reply.status) {
                    non_2xx += 1;
                }
            }
            Err(_) => {
                errors += 1;
                conn = None;
            }
        }
    }
    (lat, non_2xx, errors)
}

fn fixed(req: Vec<u8>) -> Gen {
    let req = Arc::new(req);
    Arc::new(move |_| Some(req.clone()))
}

// ------------------------------------------------------------------------------------ cases

fn future_time(minutes: i64) -> String {
    shared::time::format(&(shared::time::now() + chrono::Duration::days(30) + chrono::Duration::minutes(minutes)))
}

async fn create_event(c: &mut Conn, admin: &str, i: usize, capacity: Option<u32>) -> String {
    let types = ["Yoga", "Meditation", "Breathwork", "Retreat"];
    let rating = 3.0 + 0.5 * (i % 5) as f64;
    let body = json!({
        "title": format!("Bench session {i}"),
        "description": "A session created by the benchmark.",
        "type": types[i % types.len()],
        "datetime": future_time(i as i64 * 10),
        "rating": rating,
        "capacity": capacity,
    });
    call(c, "POST", "/events/", Some(admin), Some(body), 201).await["id"].as_str().expect("event id").to_string()
}

const PASSWORD: &str = "bench-password-1";

/// Registers `n` attendees and logs each in once: their emails and tokens.
async fn users(c: &mut Conn, tag: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let email = format!("bench-{tag}-{i}@example.com");
        let body = json!({"name": format!("Bench User {i}"), "email": email, "password": PASSWORD});
        call(c, "POST", "/auth/register", None, Some(body), 201).await;
        let login = json!({"email": email, "password": PASSWORD});
        let token = call(c, "POST", "/auth/login", None, Some(login), 200).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        out.push((email, token));
    }
    out
}

fn report(rows: &[(String, Run)]) {
    println!();
    println!("| case | requests | req/s | mean ms | p50 ms | p99 ms | max ms | non-2xx | Flask req/s | × Flask |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, r) in rows {
        let (f, x) = match flask(name) {
            Some(f) => (format!("{f:.0}"), format!("{:.1}×", r.rate() / f)),
            None => ("—".into(), "—".into()),
        };
        println!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {}{} | {f} | {x} |",
            r.requests,
            r.rate(),
            r.mean(),
            r.pct(0.50),
            r.pct(0.99),
            r.pct(1.0),
            r.non_2xx,
            if r.errors > 0 { format!(" (+{} conn errors)", r.errors) } else { String::new() },
        );
    }
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
