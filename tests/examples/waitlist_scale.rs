//! Join and promotion latency with 100 vs 10,000 users waiting, on the embedded store and (when
//! `AWS_ENDPOINT_URL_DYNAMODB` is set, e.g. under `scripts/moto.sh`) DynamoDB on moto. The issue
//! asks both to stay flat: the 10,000 figure at most 1.5× the 100 one.
//!
//! Per store and line length W: an event of 50 seats, full; W users join (the seeding, timed);
//! then 200 more joins are timed one by one (a join is last in line), and 50 cancels that each
//! promote the head of the line. For reference, in the same store (moto's cost grows with its
//! table: it copies the table per transaction item), 50 cancels of another event nobody waits
//! for. Medians and 90th percentiles, in ms.
//!
//! ```text
//! cargo run --profile local -p tests --example waitlist_scale [-- W...]      (default 100 10000)
//! VENV=.venv bash -c 'source scripts/moto.sh && cargo run -p tests --example waitlist_scale'
//! ```

use chrono::Duration as Days;
use shared::Store;
use std::time::{Duration, Instant};
use tests::waitlist::{cancel, create, entry, fill, line_up};

const SEATS: usize = 50;
const JOINS: usize = 200;

fn stats(mut d: Vec<Duration>) -> String {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    format!("{:.3} / {:.3}", ms(d[d.len() / 2]), ms(d[d.len() * 9 / 10]))
}

async fn measure<S: Store + Clone>(name: &str, store: S, waiting: usize) {
    let ev = create(&store, Some(SEATS as u32), None, Days::days(3)).await;
    let seats = fill(&store, &ev.id, SEATS).await;
    let seeding = Instant::now();
    line_up(&store, &ev.id, waiting, shared::time::now() - Days::days(1)).await;
    let seeded = seeding.elapsed();

    let mut joins = Vec::with_capacity(JOINS);
    for _ in 0..JOINS {
        let e = entry(&ev.id, &shared::model::new_id(), shared::time::now());
        let t = Instant::now();
        store.join_waitlist(&e, shared::time::now()).await.expect("join");
        joins.push(t.elapsed());
    }
    let mut promotions = Vec::with_capacity(SEATS);
    for b in &seats {
        let t = Instant::now();
        cancel(&store, b).await.expect("cancel");
        promotions.push(t.elapsed());
    }
    let e = store.get_event(&ev.id).await.expect("read").expect("event");
    assert_eq!(
        (e.seats_booked as usize, e.waitlist_count as usize),
        (SEATS, waiting + JOINS - SEATS),
        "each cancel promoted one"
    );

    let quiet = create(&store, Some(SEATS as u32), None, Days::days(3)).await;
    let mut plain = Vec::with_capacity(SEATS);
    for b in fill(&store, &quiet.id, SEATS).await {
        let t = Instant::now();
        cancel(&store, &b).await.expect("cancel");
        plain.push(t.elapsed());
    }
    println!(
        "| {name} | {waiting} | {:.1} s | {} | {} | {} |",
        seeded.as_secs_f64(),
        stats(joins),
        stats(promotions),
        stats(plain)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100, 10_000] } else { sizes };
    println!("| store | waiting | seeding | join (median / p90 ms) | cancel that promotes | cancel, nobody waiting |");
    println!("|---|---|---|---|---|---|");
    for &w in &sizes {
        measure("embedded", tests::memory_store(), w).await;
    }
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok() {
        for &w in &sizes {
            measure("DynamoDB (moto)", tests::dynamo_store().await, w).await;
        }
    }
}
