//! A CRM stand-in for the notifier's tests: a real HTTP server (wiremock) that answers 503 while
//! switched down and 200 otherwise, and checks every request's Standard Webhooks signature as a
//! receiver would (<https://www.standardwebhooks.com/>: HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! under the `whsec_` key, header `webhook-signature: v1,<base64>`). Also what the notifier's
//! test files share when their CRM is a plain wiremock server, and the sweep budget they all use.

use crate::{verify_signature, WEBHOOK_SECRET};
use crm_notifier::{Budget, CrmConfig, Notifier};
use serde_json::Value;
use shared::store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers 503 while `down`, else 200.
#[derive(Clone, Default)]
struct Switch(Arc<AtomicBool>);

impl Respond for Switch {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        ResponseTemplate::new(if self.0.load(Ordering::SeqCst) { 503 } else { 200 })
    }
}

pub struct Crm {
    pub server: MockServer,
    down: Switch,
}

/// One POST as the CRM received it, its signature checked as a Standard Webhooks receiver does.
#[derive(Debug)]
pub struct Posted {
    pub webhook_id: String,
    pub body: Value,
}

impl Crm {
    pub async fn start() -> Crm {
        let server = MockServer::start().await;
        let down = Switch::default();
        Mock::given(method("POST")).respond_with(down.clone()).mount(&server).await;
        Crm { server, down }
    }

    pub fn set_down(&self, down: bool) {
        self.down.0.store(down, Ordering::SeqCst);
    }

    pub async fn posted(&self) -> Vec<Posted> {
        let requests = self.server.received_requests().await.unwrap();
        requests
            .iter()
            .map(|r| {
                let header = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let id = header("webhook-id");
                let signed = verify_signature(
                    WEBHOOK_SECRET,
                    &id,
                    &header("webhook-timestamp"),
                    &r.body,
                    &header("webhook-signature"),
                );
                assert!(signed, "a POST whose signature does not verify for webhook-id {id}");
                Posted { webhook_id: id, body: r.body_json().unwrap() }
            })
            .collect()
    }

    /// (webhook-id, type) of every POST, in order.
    pub async fn sent(&self) -> Vec<(String, String)> {
        self.posted().await.into_iter().map(|p| (p.webhook_id, p.body["type"].as_str().unwrap().to_string())).collect()
    }
}

/// A notifier's configuration for this CRM (signed with the tests' key), with the defaults.
pub fn config(crm: &Crm) -> CrmConfig {
    let vars = HashMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks", crm.server.uri())),
        ("CRM_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
    ]);
    CrmConfig::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

/// No retries inside an invocation: each handed batch is one attempt per message.
pub fn notifier<S: Store>(store: S, crm: &Crm) -> Notifier<S> {
    let vars = HashMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks", crm.server.uri())),
        ("CRM_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("CRM_TIMEOUT_MS", "2000".to_string()),
        ("CRM_RETRY_BUDGET_SECONDS", "0".to_string()),
    ]);
    Notifier::from_config(store, &CrmConfig::from_lookup(|name| vars.get(name).cloned()).unwrap()).unwrap()
}

/// Booking ids of the POSTs a plain wiremock CRM received, in order.
pub async fn posted_ids(crm: &MockServer) -> Vec<String> {
    crm.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json::<Value>().unwrap()["booking_id"].as_str().unwrap().to_string())
        .collect()
}

/// No deadline: a sweep by hand.
pub fn unlimited() -> Budget {
    Budget { retry_until: chrono::DateTime::<chrono::Utc>::MIN_UTC, stop_at: None }
}
