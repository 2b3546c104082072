use crate::policy::{denials, template_statements, Denial, Statement};
use crate::yaml::{functions, template};
use fake_stripe::FakeStripe;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use tests::apigw::{select, Behaviour, Route};

mod fake_stripe;
mod requests;
mod workers;

/// One authorisation IAM makes for a request: action, resource, partition keys.
#[derive(Debug)]
struct Access {
    action: String,
    resource: String,
    keys: Vec<String>,
}

fn partition_key(item: &serde_json::Value) -> String {
    item[shared::keys::PK]["S"].as_str().unwrap_or_else(|| panic!("no string PK in {item}")).to_string()
}

/// The authorisations a DynamoDB request needs. A transaction's parts are authorised as their
/// underlying actions; parts with the same action are pooled here, which is stricter than
/// checking them one by one (one statement must then admit all of their keys).
fn accesses(op: &str, body: &serde_json::Value) -> Vec<Access> {
    let single = |action: &str, keys: Vec<String>| {
        vec![Access { action: format!("dynamodb:{action}"), resource: "table".into(), keys }]
    };
    match op {
        "GetItem" | "UpdateItem" | "DeleteItem" => single(op, vec![partition_key(&body["Key"])]),
        "PutItem" => single(op, vec![partition_key(&body["Item"])]),
        "BatchGetItem" => {
            let tables = body["RequestItems"].as_object().expect("RequestItems");
            let keys = tables.values().flat_map(|t| t["Keys"].as_array().expect("Keys").iter().map(partition_key));
            single(op, keys.collect())
        }
        "TransactWriteItems" | "TransactGetItems" => {
            let mut pooled: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for part in body["TransactItems"].as_array().expect("TransactItems") {
                let (kind, inner) = part.as_object().and_then(|o| o.iter().next()).expect("one part");
                let (action, key) = match kind.as_str() {
                    "Put" => ("PutItem", &inner["Item"]),
                    "Update" => ("UpdateItem", &inner["Key"]),
                    "Delete" => ("DeleteItem", &inner["Key"]),
                    "ConditionCheck" => ("ConditionCheckItem", &inner["Key"]),
                    "Get" => ("GetItem", &inner["Key"]),
                    other => panic!("unknown transaction part {other}"),
                };
                pooled.entry(action).or_default().push(partition_key(key));
            }
            pooled.into_iter().flat_map(|(action, keys)| single(action, keys)).collect()
        }
        "Query" => {
            let (resource, attr) = match body["IndexName"].as_str() {
                Some(name) => {
                    let ix = shared::table::TABLE.indexes.iter().find(|ix| ix.name == name).expect("known index");
                    (format!("index/{name}"), ix.partition_key)
                }
                None => ("table".to_string(), shared::table::TABLE.partition_key),
            };
            let names = &body["ExpressionAttributeNames"];
            let expr = body["KeyConditionExpression"].as_str().expect("KeyConditionExpression");
            let words: Vec<&str> = expr.split_whitespace().collect();
            let keys = words
                .windows(3)
                .filter(|w| w[1] == "=" && names[w[0]].as_str().unwrap_or(w[0]) == attr)
                .filter_map(|w| body["ExpressionAttributeValues"][w[2]]["S"].as_str().map(String::from))
                .collect();
            vec![Access { action: "dynamodb:Query".into(), resource, keys }]
        }
        // Scan, BatchWriteItem, DescribeTable…: the functions have no business sending them; no key
        // recorded, so no scoped statement allows them.
        other => vec![Access { action: format!("dynamodb:{other}"), resource: "table".into(), keys: vec![] }],
    }
}

/// Sends requests as API Gateway would route them, and checks every DynamoDB call each one makes
/// against the policy of the function that answers it.
struct Wire {
    app: std::sync::Arc<shared::App<shared::store::DynamoStore>>,
    log: tests::CallLog,
    routes: Vec<Route>,
    policies: BTreeMap<String, Vec<Statement>>,
    denials: BTreeMap<String, Vec<Denial>>,
    checked: std::cell::RefCell<BTreeSet<String>>,
}

impl Wire {
    fn check(&self, function: &str, what: &str) {
        for (op, body) in self.log.take_requests() {
            for a in accesses(&op, &body) {
                let allowed = self.policies[function].iter().any(|s| s.allows(&a.action, &a.resource, &a.keys));
                assert!(allowed, "{what}: {function} sent {op}, which needs {a:?}: template.yaml does not allow it");
                let denied = self.denials[function].iter().any(|d| d.denies(&a.action, &a.resource, &a.keys));
                assert!(!denied, "{what}: {function} sent {op}, which needs {a:?}: template.yaml denies it");
                let keys: BTreeSet<String> =
                    a.keys.iter().map(|k| k.split('#').next().unwrap_or_default().to_string()).collect();
                self.checked.borrow_mut().insert(format!("{function}: {} {} {keys:?}", a.action, a.resource));
            }
        }
    }

    async fn send(&self, req: lambda_http::Request) -> (u16, serde_json::Value) {
        let what = format!("{} {}", req.method(), req.uri());
        let (status, body) = self.send_any(req).await;
        assert!(status < 500, "{what}: {status} {body}");
        (status, body)
    }

    /// [`Wire::send`] for a request whose answer may be a 5xx (Stripe unavailable: 502).
    async fn send_any(&self, req: lambda_http::Request) -> (u16, serde_json::Value) {
        let (method, path) = (req.method().to_string(), req.uri().path().to_string());
        let what = format!("{method} {}", req.uri());
        let function = select(&self.routes, &method, &path, Behaviour::REPORTED)
            .unwrap_or_else(|e| panic!("{e}"))
            .function
            .clone();
        self.log.take();
        // Boxed: the dispatch future of every route is large in debug builds (the test thread
        // has a 2 MiB stack).
        let resp = Box::pin(tests::call(&self.app, req)).await;
        self.check(&function, &what);
        (tests::status(&resp), serde_json::from_slice(resp.body().as_ref()).unwrap_or_default())
    }

    /// A Stripe event about `session`, signed as Stripe signs it, to `POST /payments/webhook`.
    async fn stripe_event(&self, event_id: &str, event_type: &str, session: serde_json::Value) -> serde_json::Value {
        let body = serde_json::json!({"id": event_id, "type": event_type, "data": {"object": session}}).to_string();
        let signature = shared::payments::sign(body.as_bytes(), STRIPE_WEBHOOK_SECRET, shared::time::now().timestamp());
        let mut req = tests::raw_request("POST", "/payments/webhook", None, &body);
        req.headers_mut().insert("stripe-signature", signature.parse().unwrap());
        let (status, answer) = self.send(req).await;
        assert_eq!(status, 200, "{event_type}: {answer}");
        answer
    }
}

const STRIPE_WEBHOOK_SECRET: &str = "whsec_template_test_0123456789";

fn with_idempotency_key(mut req: lambda_http::Request, key: &str) -> lambda_http::Request {
    req.headers_mut().insert("idempotency-key", key.parse().unwrap());
    req
}

// HTTP API routes: tests/tests/template_routes.rs, on the model in `tests::apigw`.

fn routes(t: &Value) -> Vec<Route> {
    tests::apigw::template_routes(t)
}

/// GIVEN every function's policy as template.yaml states it WHEN the functions serve a day of
/// requests (and their failure paths) on moto THEN every DynamoDB call they make is allowed by
/// their own policy, as [`accesses`] and [`Statement::allows`] model IAM: a narrower policy cannot
/// silently cut off a call the code makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dynamodb_call_is_allowed_by_the_calling_functions_policy() {
    let log = tests::CallLog::default();
    let store = tests::dynamo_with(log.clone()).await;
    let t = template();
    // Payments on, as with both Stripe secrets given: bookings, payments and the sweeper get a
    // Stripe client, the payments function the webhook secret.
    let stripe = std::sync::Arc::new(FakeStripe::default());
    let mut config = tests::config();
    config.stripe_webhook_secret = Some(STRIPE_WEBHOOK_SECRET.into());
    let provider: std::sync::Arc<dyn shared::payments::PaymentProvider> = stripe.clone();
    let app = shared::App::new(store.clone(), &config).expect("test config").with_payments(provider.clone());
    let wire = Wire {
        app: std::sync::Arc::new(app),
        log,
        routes: routes(&t),
        policies: template_statements(&t),
        denials: functions(&t).into_iter().map(|(id, f)| (id.clone(), denials(&id, f))).collect(),
        checked: Default::default(),
    };

    let attendee = requests::accounts(&wire).await;
    let (owner, admin, ev) = requests::events(&wire).await;
    let booking_id = requests::bookings(&wire, &attendee, &owner, &admin, &ev).await;
    requests::payments(&wire, &stripe, &store, &owner).await;
    let crm = workers::crm(&wire, store, &booking_id).await;
    let lifecycle_store = crm.notifier.store().clone();
    workers::lifecycle(&wire, &stripe, &lifecycle_store).await;
    workers::waitlists(&wire, &stripe, &lifecycle_store, &crm.notifier).await;

    // The scenario reached every function (a route that stopped calling DynamoDB would make the
    // checks above vacuous).
    let checked = wire.checked.borrow();
    for f in [
        "AuthFunction",
        "EventsFunction",
        "BookingsFunction",
        "PaymentsFunction",
        "CrmNotifierFunction",
        "CrmSweeperFunction",
    ] {
        assert!(checked.iter().any(|c| c.starts_with(f)), "{f} made no DynamoDB call");
    }
    println!("{}", checked.iter().cloned().collect::<Vec<_>>().join("\n"));
}
