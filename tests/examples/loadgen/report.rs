//! The table of docs/benchmarks.md, each case against the Flask baseline.

use crate::load::Run;

/// The baseline: the original Flask service under gunicorn (2 workers) on this machine,
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

pub fn report(rows: &[(String, Run)]) {
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
