//! Test harness shared by the integration tests: stores (embedded, and DynamoDB on the moto
//! server that `make test` starts), an SDK interceptor recording DynamoDB calls and the report
//! of calls per route, request builders, the `events/*.json` fixtures and the CRM webhook's
//! signature check, and the Stripe stand-in (crate `stripe-standin`) tied to the payments client ([`stripe_stub`]).

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use sha2::Sha256;
use shared::config::Config;
use shared::store::{DynamoStore, MemoryStore};
use shared::App;
use std::sync::{Arc, Mutex};

pub mod apigw;
pub mod crm;
pub mod dynamo_waitlist;
pub mod streams;
pub mod stripe_stub;
pub mod waitlist;

pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

pub fn config() -> Config {
    Config {
        jwt_secret: Some(TEST_SECRET.as_bytes().to_vec()),
        jwt_previous_secrets: Vec::new(),
        jwt_issuer: shared::config::DEFAULT_ISSUER.into(),
        jwt_audience: shared::config::DEFAULT_AUDIENCE.into(),
        jwt_ttl_secs: 3600,
        table_name: None,
        payments_enabled: false,
        stripe_webhook_secret: None,
    }
}

pub fn app<S: shared::Store>(store: S) -> Arc<App<S>> {
    Arc::new(App::new(store, &config()).expect("test config is valid"))
}

pub fn memory_store() -> MemoryStore {
    MemoryStore::new()
}

/// Every DynamoDB request the SDK put on the wire, in order (retries included): its operation
/// (`?` without an `x-amz-target`), its JSON body, and the answer once it is read.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Log>>);

/// The exchanges since the last take, and how many takes there were: an answer read after a
/// take belongs to a request that is no longer in the log.
#[derive(Debug, Default)]
struct Log {
    takes: usize,
    exchanges: Vec<Exchange>,
}

/// One request on the wire and what came back (`resp` is `Null` and `ok` false until then, or
/// for good when the attempt failed before an answer).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub op: String,
    pub req: Value,
    pub resp: Value,
    pub ok: bool,
}

/// Where an attempt's request sits in the log (takes so far, position), kept in the attempt's
/// own config bag so the answer finds its request even when requests run concurrently.
#[derive(Debug, Clone, Copy)]
struct ExchangeIndex(usize, usize);

impl Storable for ExchangeIndex {
    type Storer = StoreReplace<Self>;
}

impl CallLog {
    /// The operations sent since the last take.
    pub fn take(&self) -> Vec<String> {
        self.take_exchanges().into_iter().map(|e| e.op).collect()
    }

    /// The requests sent since the last take: operation and JSON body.
    pub fn take_requests(&self) -> Vec<(String, Value)> {
        self.take_exchanges().into_iter().map(|e| (e.op, e.req)).collect()
    }

    /// The requests and their answers since the last take.
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        let mut log = self.0.lock().unwrap();
        log.takes += 1;
        std::mem::take(&mut log.exchanges)
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let req = ctx.request();
        let op = req.headers().get("x-amz-target").map(|t| t.rsplit('.').next().unwrap_or(t)).unwrap_or("?");
        let body = req.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
        let mut log = self.0.lock().unwrap();
        cfg.interceptor_state().store_put(ExchangeIndex(log.takes, log.exchanges.len()));
        log.exchanges.push(Exchange { op: op.to_string(), req: body, resp: Value::Null, ok: false });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(&ExchangeIndex(takes, i)) = cfg.load::<ExchangeIndex>() else { return Ok(()) };
        let resp = ctx.response();
        let body = resp.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
        let mut log = self.0.lock().unwrap();
        if log.takes != takes {
            return Ok(());
        }
        if let Some(exchange) = log.exchanges.get_mut(i) {
            exchange.resp = body;
            exchange.ok = resp.status().is_success();
        }
        Ok(())
    }
}

/// The DynamoDB calls of one route after another, as the `dynamodb_calls_per_route` tests check
/// them: no route may Scan, and each adds a line `route: n (ops)` to the report they print.
pub struct CallReport {
    log: CallLog,
    lines: Vec<String>,
}

impl CallReport {
    /// Counts from now: the calls already in `log` are dropped.
    pub fn new(log: &CallLog) -> Self {
        log.take();
        CallReport { log: log.clone(), lines: Vec::new() }
    }

    /// The calls `route` made since the previous route, asserted free of Scans and reported.
    fn take(&mut self, route: &str) -> Vec<String> {
        let calls = self.log.take();
        assert!(!calls.iter().any(|c| c == "Scan"), "{route} issued a Scan: {calls:?}");
        self.lines.push(format!("{route}: {} ({})", calls.len(), calls.join(", ")));
        calls
    }

    /// `route` made at most `max` calls.
    pub fn at_most(&mut self, route: &str, max: usize) {
        let calls = self.take(route);
        assert!(calls.len() <= max, "{route}: {calls:?}");
    }

    /// `route` made exactly the calls `want`, in that order.
    pub fn exactly(&mut self, route: &str, want: &[&str]) {
        let calls = self.take(route);
        assert_eq!(calls, want, "{route}");
    }

    pub fn print(&self) {
        println!("DynamoDB calls per route:\n  {}", self.lines.join("\n  "));
    }
}

pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).expect(
        "DynamoDB tests need a DynamoDB endpoint: run them with `make test`, which starts moto \
             and exports AWS_ENDPOINT_URL_DYNAMODB",
    )
}

/// A client for the moto endpoint with a call counter, and a fresh uniquely named table.
pub async fn dynamo_counted() -> (DynamoStore, CallLog) {
    let log = CallLog::default();
    let store = dynamo_with(log.clone()).await;
    log.take();
    (store, log)
}

/// A store on a fresh table of the moto endpoint, its client carrying `interceptor`.
pub async fn dynamo_with(interceptor: impl Intercept + 'static) -> DynamoStore {
    let endpoint = endpoint();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(interceptor).build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    let table = format!("ahoum-test-{}", ulid::Ulid::new().to_string().to_lowercase());
    shared::table::create_table(&client, &table).await.expect("create test table on moto");
    DynamoStore::new(client, table)
}

pub async fn dynamo_store() -> DynamoStore {
    dynamo_counted().await.0
}

/// Runs each listed `async fn name<S: Store + Clone>(store: S)` once per backend.
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::memory_store()).await
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::dynamo_store().await).await
                }
            )*
        }
    };
}

/// A request as the local server builds it (URI path and query, no API Gateway context).
pub fn request(method: &str, uri: &str, token: Option<&str>, body: Option<Value>) -> Request {
    let mut b = http::Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => Body::Text(v.to_string()),
        None => Body::Empty,
    };
    b.body(body).expect("valid test request")
}

pub fn raw_request(method: &str, uri: &str, token: Option<&str>, body: &str) -> Request {
    let mut b = http::Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::Text(body.to_string())).expect("valid test request")
}

pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Raw text of `events/<name>.json` with `${VAR}` placeholders substituted.
pub fn fixture_text(name: &str, vars: &[(&str, &str)]) -> String {
    let path = workspace_root().join("events").join(format!("{name}.json"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (k, v) in vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    text
}

/// An API Gateway HTTP API (v2) request fixture, parsed exactly as the Lambda runtime would.
pub fn fixture(name: &str, vars: &[(&str, &str)]) -> Request {
    lambda_http::request::from_str(&fixture_text(name, vars))
        .unwrap_or_else(|e| panic!("fixture {name} is not an API Gateway request: {e}"))
}

/// RFC 3339 text of now plus `days` (negative: in the past).
pub fn in_days(days: i64) -> String {
    shared::time::format(&(shared::time::now() + chrono::Duration::days(days)))
}

/// The secret the tests configure the CRM webhook with.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Standard Webhooks verification of a CRM request signed with `secret` (`whsec_<base64 key>`):
/// `header` (`webhook-signature`, space-separated `v1,<base64>`) holds an HMAC-SHA256 of
/// `{id}.{timestamp}.{body}`. Written from the spec, independently of the crate's signer.
pub fn verify_signature(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        let Ok(sig) = STANDARD.decode(sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(&signed);
        mac.verify_slice(&sig).is_ok()
    })
}

pub fn status(resp: &Response<Body>) -> u16 {
    resp.status().as_u16()
}

pub fn json(resp: &Response<Body>) -> Value {
    let bytes: &[u8] = resp.body().as_ref();
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {:?}", String::from_utf8_lossy(bytes)))
}

/// What a hostile or careless request must get: never a 5xx, and an error is the JSON error body
/// with a `code` and a `message`. `what` names the request in a failure.
pub fn assert_handled(what: &str, resp: &Response<Body>) {
    let code = status(resp);
    assert!(code < 500, "{what} → {code}: {:?}", String::from_utf8_lossy(resp.body().as_ref()));
    if code >= 400 {
        let v = json(resp);
        assert!(v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: {v}");
        assert!(v["error"]["message"].as_str().is_some(), "{what}: {v}");
    }
}

pub fn error_code(resp: &Response<Body>) -> String {
    json(resp)["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// A new attendee/facilitator/admin with a unique id and email (not stored).
fn fresh_user(role: shared::model::Role) -> shared::model::User {
    let id = shared::model::new_id();
    shared::model::User {
        name: format!("User {}", &id[20..]),
        email: format!("{}@example.com", id.to_lowercase()),
        id,
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
            .into(),
        created_at: shared::time::now(),
        session_epoch: 0,
    }
}

/// A user created straight in the store (no argon2: these tests are about other things) and a
/// valid token for it.
pub async fn user<S: shared::Store>(app: &App<S>, role: shared::model::Role) -> (shared::model::User, String) {
    let user = fresh_user(role);
    app.store.create_user(&user).await.expect("create test user");
    let token = app.tokens.issue(&user).expect("issue test token");
    (user, token)
}

/// Sends a request through the local server's dispatch (auth, events or bookings), the same
/// path-to-function mapping API Gateway's routes implement when deployed.
pub async fn call<S: shared::Store>(app: &App<S>, req: Request) -> Response<Body> {
    local_server::dispatch(app, req).await
}

/// `n` accounts of `role`, created concurrently, and a token for each (booking reads the
/// booker's account, so a booking load test needs real ones).
pub async fn users<S: shared::Store>(app: &App<S>, n: usize, role: shared::model::Role) -> Vec<String> {
    futures::future::join_all((0..n).map(|_| user(app, role))).await.into_iter().map(|(_, token)| token).collect()
}

/// A validly signed token for a user that exists only in the token: no route that reads the
/// caller's account accepts it (401), as for an account deleted since its token was issued.
pub fn token_only<S: shared::Store>(app: &App<S>, role: shared::model::Role) -> String {
    app.tokens.issue(&fresh_user(role)).expect("issue test token")
}
