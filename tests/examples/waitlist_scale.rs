//! Join and promotion latency with 100 vs 10,000 users waiting, on the embedded store and (when
//! `AWS_ENDPOINT_URL_DYNAMODB` is set, e.g. under `scripts/moto.sh`) DynamoDB on moto. The issue
//! asks both to stay flat: the 10,000 figure at most 1.5× the 100 one.
//!
//! Per store and line length W: an event of S seats, full; W users join (the seeding, timed);
//! then J more joins are timed one by one (a join is last in line), and S cancels that each
//! promote the head of the line. For reference, in the same store (moto's cost grows with its
//! table: it copies the table per transaction item), S cancels of another event nobody waits
//! for. Medians and 90th percentiles, in ms. Embedded: S = 50, J = 200; moto: S = J = 20.
//!
//! ```text
//! cargo run --profile local -p tests --example waitlist_scale [-- W...]      (default 100 10000)
//! VENV=.venv bash -c 'source scripts/moto.sh && cargo run -p tests --example waitlist_scale'
//! ```

use chrono::Duration as Days;
use shared::Store;
use std::time::{Duration, Instant};
use tests::waitlist::{cancel, create, entry, fill, line_up};

fn stats(mut d: Vec<Duration>) -> String {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    format!("{:.3} / {:.3}", ms(d[d.len() / 2]), ms(d[d.len() * 9 / 10]))
}

/// `seats` cancels and `joins` joins timed (moto: fewer, it takes ~0.2 s a request here).
/// DynamoDB's calls per operation and items its Queries read (`ScannedCount`) per operation, from
/// the wire: what DynamoDB's latency and bill follow, whatever moto's own costs.
fn per_op(log: Option<&tests::CallLog>, ops: usize) -> String {
    let Some(log) = log else { return "–".into() };
    let exchanges = log.take_exchanges();
    let scanned: u64 = exchanges.iter().filter_map(|e| e.resp.get("ScannedCount").and_then(|v| v.as_u64())).sum();
    format!("{:.1} calls, {:.1} items queried", exchanges.len() as f64 / ops as f64, scanned as f64 / ops as f64)
}

async fn measure<S: Store + Clone>(
    name: &str,
    store: S,
    log: Option<&tests::CallLog>,
    waiting: usize,
    seats: usize,
    joins: usize,
) {
    let ev = create(&store, Some(seats as u32), None, Days::days(3)).await;
    let held = fill(&store, &ev.id, seats).await;
    let seeding = Instant::now();
    line_up(&store, &ev.id, waiting, shared::time::now() - Days::days(1)).await;
    let seeded = seeding.elapsed();

    let _ = per_op(log, 1);
    let mut joined = Vec::with_capacity(joins);
    for _ in 0..joins {
        let e = entry(&ev.id, &shared::model::new_id(), shared::time::now());
        let t = Instant::now();
        store.join_waitlist(&e, shared::time::now()).await.expect("join");
        joined.push(t.elapsed());
    }
    let join_calls = per_op(log, joins);
    let mut promotions = Vec::with_capacity(seats);
    for b in &held {
        let t = Instant::now();
        cancel(&store, b).await.expect("cancel");
        promotions.push(t.elapsed());
    }
    let promotion_calls = per_op(log, seats);
    // The head of the line alone: the one read a promotion adds whose cost could follow the line.
    let mut head = Vec::with_capacity(seats);
    for _ in 0..seats {
        let t = Instant::now();
        store.waitlist(&ev.id, None, 1).await.expect("head");
        head.push(t.elapsed());
    }
    let e = store.get_event(&ev.id).await.expect("read").expect("event");
    assert_eq!(
        (e.seats_booked as usize, e.waitlist_count as usize),
        (seats, waiting + joins - seats),
        "each cancel promoted one"
    );

    let quiet = create(&store, Some(seats as u32), None, Days::days(3)).await;
    let mut plain = Vec::with_capacity(seats);
    for b in fill(&store, &quiet.id, seats).await {
        let t = Instant::now();
        cancel(&store, &b).await.expect("cancel");
        plain.push(t.elapsed());
    }
    println!(
        "| {name} | {waiting} | {:.1} s | {} | {} | {} | {} | {join_calls} | {promotion_calls} |",
        seeded.as_secs_f64(),
        stats(joined),
        stats(promotions),
        stats(head),
        stats(plain)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![100, 10_000] } else { sizes };
    println!(
        "| store | waiting | seeding | join (median / p90 ms) | cancel that promotes | head of the line alone \
         | cancel, nobody waiting | per join | per promoting cancel |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &w in &sizes {
        measure("embedded", tests::memory_store(), None, w, 50, 200).await;
    }
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok() {
        for &w in &sizes {
            let (store, log) = tests::dynamo_counted().await;
            measure("DynamoDB (moto)", store, Some(&log), w, 20, 20).await;
        }
    }
}
