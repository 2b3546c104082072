//! Item 11 of the hardening issue: an SDK retry of a transaction that committed but whose answer
//! was lost must not turn the success into `already_booked` / `already_cancelled`.
//!
//! An interceptor replaces successful TransactWriteItems answers with 500s, as timeouts or dropped
//! connections would. DynamoDB answers a request carrying an already used ClientRequestToken with
//! the first outcome (the moto wrapper in scripts/moto_server.py implements that documented rule);
//! a request with a new token runs the transaction again and its own conditions refuse it.
//! The SDK keeps one token across its own retries (it fills the field itself when unset); these
//! tests lose every answer of the SDK's attempts, so only the store's operation-derived token can
//! turn the committed write into the success it was.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::body::SdkBody;
use serde_json::json;
use shared::model::Role;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tests::*;

/// Drops the next `armed` successful TransactWriteItems answers and records the tokens sent.
#[derive(Clone, Debug, Default)]
struct LoseNextCommit {
    armed: Arc<AtomicUsize>,
    tokens: Arc<Mutex<Vec<String>>>,
    last_op: Arc<Mutex<String>>,
    transactions_sent: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
}

impl LoseNextCommit {
    fn take_one(&self) -> bool {
        self.armed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

/// The SDK's default retry policy: 3 attempts of one `send()`.
const SDK_ATTEMPTS: usize = 3;

impl Intercept for LoseNextCommit {
    fn name(&self) -> &'static str {
        "LoseNextCommit"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = ctx.request().headers().get("x-amz-target").unwrap_or_default().rsplit('.').next().unwrap_or_default();
        if op == "TransactWriteItems" {
            self.transactions_sent.fetch_add(1, Ordering::SeqCst);
            let body: serde_json::Value =
                serde_json::from_slice(ctx.request().body().bytes().unwrap_or_default()).unwrap_or_default();
            self.tokens.lock().unwrap().push(body["ClientRequestToken"].as_str().unwrap_or_default().to_string());
        }
        *self.last_op.lock().unwrap() = op.to_string();
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_tx = *self.last_op.lock().unwrap() == "TransactWriteItems";
        if is_tx && ctx.response().status().as_u16() == 200 && self.take_one() {
            self.lost.fetch_add(1, Ordering::SeqCst);
            let resp = ctx.response_mut();
            *resp.status_mut() = 500u16.try_into()?;
            *resp.body_mut() = SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"answer lost"}"#,
            );
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_commit_is_answered_with_its_success() {
    let lose = LoseNextCommit::default();
    let app = app(dynamo_with(lose.clone()).await);
    let (_, owner) = user(&app, Role::Facilitator).await;
    let (_, attendee) = user(&app, Role::Attendee).await;
    let body = json!({"title": "Retry", "type": "Yoga", "datetime": in_days(2), "capacity": 3});
    let ev = json(&call(&app, request("POST", "/events", Some(&owner), Some(body))).await)["id"]
        .as_str()
        .unwrap()
        .to_string();

    lose.tokens.lock().unwrap().clear();
    lose.armed.store(SDK_ATTEMPTS, Ordering::SeqCst);
    let before = lose.transactions_sent.load(Ordering::SeqCst);
    let resp = call(&app, request("POST", "/bookings", Some(&attendee), Some(json!({"event_id": ev})))).await;
    assert_eq!(lose.lost.load(Ordering::SeqCst), SDK_ATTEMPTS, "the committed answers were not dropped");
    assert_eq!(lose.transactions_sent.load(Ordering::SeqCst) - before, SDK_ATTEMPTS + 1, "no retry after the SDK's");
    assert_eq!(status(&resp), 201, "a booking that committed was answered {:?}", json(&resp));
    let booking = json(&resp)["id"].as_str().unwrap().to_string();
    let tokens = lose.tokens.lock().unwrap().split_off(0);
    assert!(tokens.iter().all(|t| t == &tokens[0] && t.starts_with(&booking)), "{tokens:?} for {booking}");
    let event = json(&call(&app, request("GET", &format!("/events/{ev}"), None, None)).await);
    assert_eq!(event["seats_booked"], 1, "the retry booked a second seat");

    lose.armed.store(SDK_ATTEMPTS, Ordering::SeqCst);
    let resp = call(&app, request("DELETE", &format!("/bookings/{booking}"), Some(&attendee), None)).await;
    assert_eq!(lose.lost.load(Ordering::SeqCst), 2 * SDK_ATTEMPTS);
    assert_eq!(status(&resp), 200, "a cancel that committed was answered {:?}", json(&resp));
    let event = json(&call(&app, request("GET", &format!("/events/{ev}"), None, None)).await);
    assert_eq!(event["seats_booked"], 0);
    // A second cancel is a new request with its own token: it must not replay the first.
    let resp = call(&app, request("DELETE", &format!("/bookings/{booking}"), Some(&attendee), None)).await;
    assert_eq!((status(&resp), error_code(&resp)), (409, "already_cancelled".into()));
}
