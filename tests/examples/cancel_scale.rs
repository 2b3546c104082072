//! Wall time of cancelling an event of N bookings (default 10,000) on the local server's embedded
//! store: the bookings are made through the real route, then `POST /events/{id}/cancel` is sent
//! and `GET /events/{id}` is polled until `bookings_to_cancel` is 0, the fan-out running in the
//! local server's background task (`local_server::jobs::hook`, batches of
//! `shared::lifecycle::BATCH`) exactly as `make run` runs it. For docs/benchmarks.md:
//!
//! ```text
//! cargo run --profile local -p tests --example cancel_scale [-- N...]   (default 10000)
//! ```

use serde_json::json;
use shared::model::Role;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::{call, json as body, memory_store, request, status, user, users};

async fn measure(n: usize) {
    let store = memory_store();
    let mut app = shared::App::new(store.clone(), &tests::config()).expect("config");
    app = app.with_job_hook(local_server::jobs::hook(store.clone(), None));
    let app = Arc::new(app);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let ev = json!({"title": "Festival", "type": "Yoga", "datetime": tests::in_days(30), "capacity": n});
    let resp = call(&app, request("POST", "/events", Some(&owner), Some(ev))).await;
    let id = body(&resp)["id"].as_str().expect("event id").to_string();
    let seeding = Instant::now();
    for token in users(&app, n, Role::Attendee).await {
        let resp = call(&app, request("POST", "/bookings", Some(&token), Some(json!({"event_id": id})))).await;
        assert_eq!(status(&resp), 201);
    }
    let seeded = seeding.elapsed();
    let path = format!("/events/{id}");
    let started = Instant::now();
    let resp = call(&app, request("POST", &format!("{path}/cancel"), Some(&owner), None)).await;
    assert_eq!(status(&resp), 200);
    let answered = started.elapsed();
    assert_eq!(body(&resp)["bookings_to_cancel"], n);
    loop {
        let left = body(&call(&app, request("GET", &path, None, None)).await)["bookings_to_cancel"].as_u64();
        if left == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drained = started.elapsed();
    // The job ends with the batch that finds the count at 0.
    while shared::Store::get_job(&store, &id).await.expect("job read").is_some() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let done = started.elapsed();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "| {n} | {} | {} | {} | {} | {:.1} µs | {} |",
        ms(seeded),
        ms(answered),
        ms(drained),
        ms(done),
        done.as_secs_f64() * 1e6 / n as f64,
        n.div_ceil(shared::lifecycle::BATCH),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10_000] } else { sizes };
    println!(
        "| bookings | seeding (route) | cancel answered | bookings_to_cancel = 0 | job gone | per booking | batches |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        measure(n).await;
    }
}
