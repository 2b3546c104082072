//! The start-up cost of reading secrets with `GetSecretValue` (shared::secrets), on Secrets
//! Manager as moto serves it on loopback: wall-clock of a whole load as `main` runs it (client
//! built, connection opened, requests signed and sent, answers parsed), for one secret, two at
//! once (what bookings, payments and the sweeper read) and, for comparison, two one after the
//! other on one connection. Not a test: figures for docs/benchmarks.md.
//!
//!   source scripts/moto.sh && cargo run -p tests --example secrets_roundtrip [RUNS]
//!
//! moto is a Python server that handles one request at a time, so the two-at-once case shows
//! what concurrency saves only where the server answers in parallel (Secrets Manager does).

use shared::secrets::{Secrets, JWT_SECRET, STRIPE_SECRET_KEY};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(50);
    std::env::var("AWS_ENDPOINT_URL").expect("run under scripts/moto.sh (AWS_ENDPOINT_URL)");
    let client = shared::aws::lambda_secrets_client().expect("client");
    let mut arns = Vec::new();
    for value in ["roundtrip-jwt-key-0123456789abcdef0123456789", "sk_test_roundtrip"] {
        let name = format!("roundtrip/{}", ulid::Ulid::new());
        let out = client.create_secret().name(name).secret_string(value).send().await.expect("CreateSecret");
        arns.push(out.arn().unwrap().to_string());
    }
    let vars: HashMap<String, String> = HashMap::from([
        ("JWT_SECRET_ID".to_string(), arns[0].clone()),
        ("STRIPE_SECRET_KEY_ID".to_string(), arns[1].clone()),
    ]);
    let lookup = |name: &str| vars.get(name).cloned();

    let mut one = Vec::new();
    let mut two = Vec::new();
    let mut sequential = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        Secrets::load_with(&[JWT_SECRET], lookup).await.expect("one secret");
        one.push(t.elapsed());

        let t = Instant::now();
        Secrets::load_with(&[JWT_SECRET, STRIPE_SECRET_KEY], lookup).await.expect("two secrets");
        two.push(t.elapsed());

        let t = Instant::now();
        let c = shared::aws::lambda_secrets_client().expect("client");
        for arn in &arns {
            c.get_secret_value().secret_id(arn).send().await.expect("GetSecretValue");
        }
        sequential.push(t.elapsed());
    }
    println!("GetSecretValue on moto (loopback, HTTP), {runs} cold loads each (new client and connection):");
    for (label, samples) in
        [("1 secret", &mut one), ("2 secrets, concurrent", &mut two), ("2 secrets, sequential", &mut sequential)]
    {
        let (p50, p90) = (percentile(samples, 0.5), percentile(samples, 0.9));
        println!("  {label:<24} p50 {:>6.2} ms   p90 {:>6.2} ms", p50.as_secs_f64() * 1e3, p90.as_secs_f64() * 1e3);
    }
}
