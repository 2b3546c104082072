//! The set-up steps the cases need, over one connection: events and logged-in attendees.

use crate::client::{call, Conn};
use serde_json::json;

fn future_time(minutes: i64) -> String {
    shared::time::format(&(shared::time::now() + chrono::Duration::days(30) + chrono::Duration::minutes(minutes)))
}

pub async fn create_event(c: &mut Conn, admin: &str, i: usize, capacity: Option<u32>) -> String {
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

pub const PASSWORD: &str = "bench-password-1";

/// Registers `n` attendees and logs each in once: their emails and tokens.
pub async fn users(c: &mut Conn, tag: &str, n: usize) -> Vec<(String, String)> {
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
