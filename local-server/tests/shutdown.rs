//! The `local-server` binary on SIGTERM: it stops like on Ctrl-C, finishing the request in flight
//! and letting the CRM delivery that a booking started in the background finish (retry included)
//! before exiting with status 0.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The server process, killed if the test ends before it exits.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    fn start(crm_url: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-server"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("JWT_SECRET", "shutdown-test-secret-0123456789abcdef0123456789")
            .env("SEED_SAMPLE_EVENTS", "false")
            .env("CRM_WEBHOOK_URL", crm_url)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start local-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server { child, lines, log: Vec::new() }
    }

    /// The next log line containing `needle`, waiting up to `timeout`.
    fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {needle:?}; log so far:\n{}", self.log.join("\n")),
            }
        }
    }

    fn rest_of_log(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        self.log.join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn send(http: &reqwest::Client, base: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http.post(format!("{base}{path}")).header("content-type", "application/json").body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("local server answers");
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

async fn login(http: &reqwest::Client, base: &str, email: &str, role: &str) -> String {
    let body = json!({"name": "Test User", "email": email, "password": "password123", "role": role});
    assert_eq!(send(http, base, "/auth/register", None, body).await.0, 201);
    let (status, v) = send(http, base, "/auth/login", None, json!({"email": email, "password": "password123"})).await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_the_pending_crm_delivery_and_exits_0() {
    // GIVEN a CRM that fails the first POST at once and answers the retry slowly
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .with_priority(2)
        .mount(&crm)
        .await;
    let mut server = Server::start(&format!("{}/hooks/bookings", crm.uri()));
    let line = server.wait_for_line("listening on http://", Duration::from_secs(60));
    let base = line[line.find("http://").unwrap()..].split_whitespace().next().unwrap().to_string();
    let http = reqwest::Client::new();

    // AND a booking made over HTTP, whose CRM delivery runs in the background
    let fac = login(&http, &base, "fac@example.com", "facilitator").await;
    let att = login(&http, &base, "att@example.com", "attendee").await;
    let body = json!({"title": "Yoga Nidra", "type": "Yoga", "datetime": "2031-01-01T07:00:00Z", "capacity": 5});
    let (status, event) = send(&http, &base, "/events", Some(&fac), body).await;
    assert_eq!(status, 201, "{event}");
    let (status, booking) = send(&http, &base, "/bookings", Some(&att), json!({"event_id": event["id"]})).await;
    assert_eq!(status, 201, "{booking}");

    // AND a request in flight: headers sent, body not yet complete
    let body = json!({"name": "Late Comer", "email": "late@example.com", "password": "password123"}).to_string();
    let (head, tail) = body.split_at(10);
    let mut late = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        late,
        "POST /auth/register HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // WHEN the process gets SIGTERM (the CRM's first POST has failed; the retry is 1 s away)
    let signalled = Instant::now();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    server.wait_for_line("SIGTERM", Duration::from_secs(10));

    // THEN the request in flight is still answered
    late.write_all(tail.as_bytes()).unwrap();
    let mut answer = String::new();
    late.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    // AND the process exits 0, only after the CRM answered the retry
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(30), "still running; log:\n{}", server.rest_of_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let waited = signalled.elapsed();
    let log = server.rest_of_log();
    assert_eq!(exit.code(), Some(0), "exit status {exit:?}; log:\n{log}");
    assert!(waited >= Duration::from_millis(2000), "exited after {waited:?}: before the retry could be answered");
    let received = crm.received_requests().await.unwrap();
    let ids: Vec<Value> = received.iter().map(|r| r.body_json::<Value>().unwrap()["booking_id"].clone()).collect();
    assert_eq!(ids, vec![booking["id"].clone(), booking["id"].clone()], "the 503, then the retry");
    assert!(log.contains("CRM notified"), "the retry's 200 was not recorded before exit; log:\n{log}");
}
