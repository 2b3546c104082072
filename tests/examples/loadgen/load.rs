//! Load as `wrk` makes it: threads sharing keep-alive connections, each sending its next request
//! as soon as the previous answer is read, every latency kept.

use crate::client::Conn;
use crate::Opts;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one case measured.
pub struct Run {
    pub requests: usize,
    pub non_2xx: usize,
    pub errors: usize,
    elapsed: Duration,
    /// Microseconds, sorted.
    latencies: Vec<u32>,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i] as f64 / 1000.0
    }

    pub fn mean(&self) -> f64 {
        self.latencies.iter().map(|&l| l as f64).sum::<f64>() / self.latencies.len().max(1) as f64 / 1000.0
    }
}

/// Request `k` (0, 1, 2, … across all connections) of a case; `None` when the case has no more.
pub type Gen = Arc<dyn Fn(u64) -> Option<Arc<Vec<u8>>> + Send + Sync>;

/// Runs `gen` on `o.connections` connections for `o.duration`.
pub fn load(o: &Opts, gen: Gen) -> Run {
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

pub fn fixed(req: Vec<u8>) -> Gen {
    let req = Arc::new(req);
    Arc::new(move |_| Some(req.clone()))
}
