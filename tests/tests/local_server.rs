//! The local server over real HTTP: every route reachable on one port through the Lambda
//! routers, the CRM webhook delivered in the background by the notifier's retry loop, and what
//! that loop gave up on delivered by the deployed sweeper's sweep, which `make run` runs too.

use serde_json::{json, Value};
use shared::store::MemoryStore;
use shared::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CRM_DELAY: Duration = Duration::from_millis(800);

struct Local {
    base: String,
    http: reqwest::Client,
}

impl Local {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("local server answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
    }

    async fn login(&self, name: &str, email: &str, role: &str) -> String {
        let body = json!({"name": name, "email": email, "password": "password123", "role": role});
        assert_eq!(self.send(reqwest::Method::POST, "/auth/register", None, Some(body)).await.0, 201);
        let body = json!({"email": email, "password": "password123"});
        let (status, v, _) = self.send(reqwest::Method::POST, "/auth/login/", None, Some(body)).await;
        assert_eq!(status, 200);
        v["access_token"].as_str().unwrap().to_string()
    }
}

async fn start(app: shared::App<MemoryStore>) -> Local {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = local_server::router(Arc::new(app));
    tokio::spawn(async move { local_server::axum::serve(listener, router).await });
    Local { base, http: reqwest::Client::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn booking_returns_before_a_slow_failing_crm_which_still_gets_one_signed_delivery() {
    // GIVEN a CRM that fails twice, then accepts; every answer takes CRM_DELAY
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_delay(CRM_DELAY))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(CRM_DELAY))
        .with_priority(2)
        .mount(&crm)
        .await;
    let vars = HashMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks/bookings", crm.uri())),
        ("CRM_WEBHOOK_SECRET", tests::WEBHOOK_SECRET.to_string()),
    ]);
    let crm_config = crm_notifier::CrmConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let store = MemoryStore::new();
    let notifier = Arc::new(crm_notifier::Notifier::from_config(store.clone(), &crm_config).unwrap());
    let policy = crm_notifier::RetryPolicy {
        max_attempts: 5,
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
    };
    let app = shared::App::new(store, &tests::config())
        .unwrap()
        .with_booking_hook(crm_notifier::booking_hook(notifier, policy));
    let local = start(app).await;
    use reqwest::Method;

    // WHEN a facilitator publishes an event and an attendee books it over HTTP
    assert_eq!(local.send(Method::GET, "/health", None, None).await.1, json!({"status": "ok"}));
    let fac = local.login("Fa Cilitator", "fac@example.com", "facilitator").await;
    let att = local.login("At Tendee", "att@example.com", "attendee").await;
    let body = json!({"title": "Yoga Nidra", "type": "Yoga", "datetime": "2031-01-01T07:00:00", "facilitator_id": "FAC001", "capacity": 5});
    let (status, ev, headers) = local.send(Method::POST, "/events/", Some(&fac), Some(body)).await;
    assert_eq!(status, 201);
    let event_id = ev["id"].as_str().unwrap().to_string();
    assert_eq!(headers["location"], format!("/events/{event_id}"));
    let started = Instant::now();
    let (status, booking, _) =
        local.send(Method::POST, "/bookings", Some(&att), Some(json!({"event_id": event_id}))).await;
    let took = started.elapsed();

    // THEN the booking answers long before even one CRM response could arrive
    assert_eq!(status, 201, "{booking:?}");
    assert!(took < CRM_DELAY / 2, "booking took {took:?}");
    let booking_id = booking["id"].as_str().unwrap().to_string();

    // AND the CRM gets 3 attempts (500, 500, 200), each signed and identical
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = Vec::new();
    while Instant::now() < deadline {
        received = crm.received_requests().await.unwrap();
        let (_, list, _) = local.send(Method::GET, &format!("/events/{event_id}/bookings"), Some(&fac), None).await;
        if list[0]["crm_status"]["status"] == "delivered" {
            assert_eq!(list[0]["crm_status"]["attempts"], 3);
            assert_eq!(list[0]["crm_status"]["last_http_status"], 200);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(received.len(), 3, "500, 500, then 200");
    for r in &received {
        let headers: HashMap<String, String> =
            r.headers.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string())).collect();
        assert_eq!(headers["webhook-id"], booking_id);
        let (id, timestamp, signature) =
            (&headers["webhook-id"], &headers["webhook-timestamp"], &headers["webhook-signature"]);
        assert!(
            tests::verify_signature(tests::WEBHOOK_SECRET, id, timestamp, &r.body, signature),
            "signature of {headers:?}"
        );
        let payload: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(payload["booking_id"], booking_id.as_str());
        assert_eq!(payload["user"], json!({"name": "At Tendee", "email": "att@example.com"}));
        assert_eq!(payload["facilitator_id"], "FAC001");
        assert_eq!(payload["event_datetime"], "2031-01-01T07:00:00Z");
    }
    assert_eq!(received[0].body, received[2].body, "retries send the same payload");

    // AND the other routes are served on the same port
    let (status, mine, _) = local.send(Method::GET, "/bookings/", Some(&att), None).await;
    assert_eq!((status, mine["upcoming"][0]["id"].as_str()), (200, Some(booking_id.as_str())));
    let (status, list, _) = local.send(Method::GET, "/events/filter?type=YOGA", None, None).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(1)));
    let (status, err, _) = local.send(Method::GET, "/nowhere", None, None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("not_found")));
    let big = "x".repeat(70 * 1024);
    let (status, err, _) = local.send(Method::POST, "/auth/register", None, Some(json!({"name": big}))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_crm_url_nothing_is_sent_and_booking_works() {
    let crm = MockServer::start().await;
    let app = shared::App::new(MemoryStore::new(), &tests::config()).unwrap();
    let local = start(app).await;
    let fac = local.login("F", "f@example.com", "facilitator").await;
    let att = local.login("A", "a@example.com", "attendee").await;
    let body = json!({"title": "Breath", "type": "Breathwork", "datetime": "2031-01-01T07:00:00Z"});
    let (_, ev, _) = local.send(reqwest::Method::POST, "/events", Some(&fac), Some(body)).await;
    let (status, _, _) =
        local.send(reqwest::Method::POST, "/bookings", Some(&att), Some(json!({"event_id": ev["id"]}))).await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(crm.received_requests().await.unwrap().is_empty());
}

/// GIVEN `make run`'s server (`local_server::serve`, as main.rs starts it) with a CRM that is down
/// for the 5 tries of the background delivery, then back
/// WHEN an attendee books during the outage
/// THEN the booking says `retrying` once the background delivery gives up, and the local sweep
/// (every second here; `CRM_SWEEP_MIN_AGE_SECONDS` leaves the booking to the background delivery
/// first, as deployed it is left to the stream) delivers it: 6 POSTs, the last one accepted.
async fn the_local_sweep_delivers_what_the_background_delivery_gave_up_on<S: Store + Clone>(store: S) {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(5)
        .with_priority(1)
        .mount(&crm)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).with_priority(2).mount(&crm).await;
    let vars = HashMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks/bookings", crm.uri())),
        ("CRM_WEBHOOK_SECRET", tests::WEBHOOK_SECRET.to_string()),
        ("LOCAL_SWEEP_INTERVAL_SECONDS", "1".to_string()),
        ("CRM_SWEEP_MIN_AGE_SECONDS", "20".to_string()),
        ("SEED_SAMPLE_EVENTS", "0".to_string()),
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = Local { base: format!("http://{}", listener.local_addr().unwrap()), http: reqwest::Client::new() };
    let var = move |name: &str| vars.get(name).cloned();
    tokio::spawn(async move {
        let never = || Ok(std::future::pending::<()>());
        local_server::serve(store, tests::config(), false, listener, var, never).await.expect("server runs");
    });
    use reqwest::Method;
    let deadline = Instant::now() + Duration::from_secs(10);
    while local.http.get(format!("{}/health", local.base)).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fac = local.login("Fa Cilitator", "fac@example.com", "facilitator").await;
    let att = local.login("At Tendee", "att@example.com", "attendee").await;
    let body =
        json!({"title": "Yoga Nidra", "type": "Yoga", "datetime": "2031-01-01T07:00:00Z", "facilitator_id": "FAC001"});
    let (status, ev, _) = local.send(Method::POST, "/events/", Some(&fac), Some(body)).await;
    assert_eq!(status, 201, "{ev}");
    let event_id = ev["id"].as_str().unwrap().to_string();
    let (status, booking, _) =
        local.send(Method::POST, "/bookings", Some(&att), Some(json!({"event_id": event_id}))).await;
    assert_eq!(status, 201, "{booking}");
    let booking_id = booking["id"].as_str().unwrap().to_string();
    let attendees = format!("/events/{event_id}/bookings");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_given_up = false;
    let crm_status = loop {
        let (_, list, _) = local.send(Method::GET, &attendees, Some(&fac), None).await;
        let crm_status = list[0]["crm_status"].clone();
        if crm_status["status"] == "retrying" && crm_status["attempts"] == 5 {
            seen_given_up = true;
        }
        if crm_status["status"] == "delivered" || Instant::now() > deadline {
            break crm_status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(seen_given_up, "the background delivery tried 5 times and gave up first");
    assert_eq!(crm_status["status"], "delivered", "the local sweep delivers it: {crm_status}");
    assert_eq!((crm_status["attempts"].clone(), crm_status["last_http_status"].clone()), (json!(6), json!(200)));
    let received = crm.received_requests().await.unwrap();
    assert_eq!(received.len(), 6, "5 failures, then one delivery");
    for r in &received {
        assert_eq!(r.headers.get("webhook-id").unwrap().to_str().unwrap(), booking_id);
    }
    // Delivered is final: later sweeps send nothing more.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(crm.received_requests().await.unwrap().len(), 6);
}

tests::store_tests!(the_local_sweep_delivers_what_the_background_delivery_gave_up_on);
