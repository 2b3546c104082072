//! The functions' DynamoDB client (`shared::aws::lambda_dynamodb_client_from`) against an endpoint
//! that accepts connections and never answers: each attempt ends at the attempt timeout, the call
//! at the operation timeout, and the client gets a 503 with `Retry-After` instead of waiting for
//! the Lambda timeout (and API Gateway's bare 5xx).

use shared::aws::dynamodb_limits;
use shared::store::DynamoStore;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TCP server that accepts every connection, reads nothing and answers nothing, and counts them.
fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut open = Vec::new(); // kept open: the client must time out, not see a reset
        for conn in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            open.push(conn);
        }
    });
    (format!("http://{addr}"), accepted)
}

fn lambda_env(endpoint: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| match name {
        "AWS_REGION" => Some("eu-west-1".into()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(endpoint.to_string()),
        _ => None,
    }
}

/// GIVEN DynamoDB that accepts the connection and never answers WHEN a function reads an event
/// (one GetItem) THEN it answers 503 `unavailable` with `Retry-After` once the operation timeout
/// has passed, having retried the attempt that timed out.
#[tokio::test]
async fn a_silent_dynamodb_is_a_503_within_the_operation_timeout() {
    let (endpoint, accepted) = silent_server();
    let client = shared::aws::lambda_dynamodb_client_from(lambda_env(&endpoint)).expect("client");
    let app = tests::app(DynamoStore::new(client, "t"));
    let req = tests::request("GET", "/events/01JBQ2S3T4V5W6X7Y8Z9A0B1C2", None, None);
    let started = Instant::now();
    // Without the client's timeouts this waits forever; 10 s is far above the 2 s it must take.
    let resp = tokio::time::timeout(Duration::from_secs(10), events::router(&app, req))
        .await
        .expect("the request was still waiting for DynamoDB after 10 s: no attempt/operation timeout");
    let took = started.elapsed();
    assert_eq!(tests::status(&resp), 503, "{:?}", tests::json(&resp));
    assert_eq!(tests::error_code(&resp), "unavailable");
    assert!(resp.headers().contains_key("retry-after"));
    assert!(took >= dynamodb_limits::ATTEMPT, "gave up before one attempt timed out: {took:?}");
    assert!(took < dynamodb_limits::OPERATION + Duration::from_millis(900), "took {took:?}");
    assert!(accepted.load(Ordering::SeqCst) >= 2, "the timed-out attempt was not retried");
}

/// The limits the docs multiply (docs/deploy.md, Timeouts) are the ones the client carries.
#[test]
fn the_client_carries_the_documented_limits() {
    let client = shared::aws::lambda_dynamodb_client_from(lambda_env("http://127.0.0.1:9")).unwrap();
    let conf = client.config();
    let timeouts = conf.timeout_config().expect("timeouts set");
    assert_eq!(timeouts.connect_timeout(), Some(dynamodb_limits::CONNECT));
    assert_eq!(timeouts.read_timeout(), Some(dynamodb_limits::READ));
    assert_eq!(timeouts.operation_attempt_timeout(), Some(dynamodb_limits::ATTEMPT));
    assert_eq!(timeouts.operation_timeout(), Some(dynamodb_limits::OPERATION));
    let retries = conf.retry_config().expect("retries set");
    assert_eq!(retries.max_attempts(), dynamodb_limits::MAX_ATTEMPTS);
    let docs = std::fs::read_to_string(tests::workspace_root().join("docs/deploy.md")).unwrap();
    for figure in ["attempt timeout 1 s", "operation timeout 2 s", "3 attempts"] {
        assert!(docs.contains(figure), "docs/deploy.md does not state the DynamoDB {figure}");
    }
}
