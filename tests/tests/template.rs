//! `template.yaml` against the code: the `Table` resource equals what `shared::table::create_table`
//! builds (checked on moto with DescribeTable, and statically against `shared::table::TABLE`), the
//! IAM stays least-privilege (no scans, no wildcards), the stream filter selects the entity name the
//! code writes, and every HTTP fixture in `events/` is routed by the HTTP API to the function it is
//! meant for.

use serde_yaml::Value;
use shared::table::TABLE;
use std::collections::{BTreeMap, BTreeSet};

fn template() -> Value {
    let path = tests::workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// CloudFormation short forms (`!Ref`, `!Sub`, `!GetAtt`, `!If`) parse as tagged values; look through
/// the tag to the value.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = untag(v);
    for (i, key) in path.iter().enumerate() {
        cur = untag(cur.get(*key).unwrap_or_else(|| panic!("template has no {}", path[..=i].join("."))));
    }
    cur
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).as_str().unwrap_or_else(|| panic!("{} is not a string", path.join(".")))
}

fn seq(v: &Value) -> &[Value] {
    untag(v).as_sequence().map(Vec::as_slice).unwrap_or_else(|| panic!("not a list: {v:?}"))
}

fn s(v: &Value, key: &str) -> String {
    str_at(v, &[key]).to_string()
}

/// `(attribute, HASH|RANGE)` pairs in order.
fn key_schema(v: &Value) -> Vec<(String, String)> {
    seq(v).iter().map(|k| (s(k, "AttributeName"), s(k, "KeyType"))).collect()
}

/// What the template declares for `Table`, in the shape DescribeTable returns.
#[derive(Debug, PartialEq)]
struct TableShape {
    keys: Vec<(String, String)>,
    attributes: BTreeSet<(String, String)>,
    /// index name -> (key schema, projection type)
    indexes: BTreeMap<String, (Vec<(String, String)>, String)>,
    stream_view: String,
    billing_mode: String,
    ttl_attribute: String,
}

fn template_table(t: &Value) -> TableShape {
    let table = at(t, &["Resources", "Table"]);
    assert_eq!(str_at(table, &["Type"]), "AWS::DynamoDB::Table");
    let p = at(table, &["Properties"]);
    assert_eq!(at(p, &["TimeToLiveSpecification", "Enabled"]).as_bool(), Some(true), "TTL enabled");
    TableShape {
        keys: key_schema(at(p, &["KeySchema"])),
        attributes: seq(at(p, &["AttributeDefinitions"]))
            .iter()
            .map(|a| (s(a, "AttributeName"), s(a, "AttributeType")))
            .collect(),
        indexes: seq(at(p, &["GlobalSecondaryIndexes"]))
            .iter()
            .map(|ix| {
                (
                    s(ix, "IndexName"),
                    (key_schema(at(ix, &["KeySchema"])), str_at(ix, &["Projection", "ProjectionType"]).to_string()),
                )
            })
            .collect(),
        stream_view: str_at(p, &["StreamSpecification", "StreamViewType"]).to_string(),
        billing_mode: str_at(p, &["BillingMode"]).to_string(),
        ttl_attribute: str_at(p, &["TimeToLiveSpecification", "AttributeName"]).to_string(),
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn spec_table() -> TableShape {
    TableShape {
        keys: vec![pair(TABLE.partition_key, "HASH"), pair(TABLE.sort_key, "RANGE")],
        attributes: TABLE.key_attributes().into_iter().map(|a| pair(a, "S")).collect(),
        indexes: TABLE
            .indexes
            .iter()
            .map(|ix| {
                (
                    ix.name.to_string(),
                    (vec![pair(ix.partition_key, "HASH"), pair(ix.sort_key, "RANGE")], "ALL".to_string()),
                )
            })
            .collect(),
        stream_view: TABLE.stream_view.to_string(),
        billing_mode: TABLE.billing_mode.to_string(),
        ttl_attribute: TABLE.ttl_attribute.to_string(),
    }
}

#[test]
fn table_resource_matches_the_table_spec() {
    assert_eq!(template_table(&template()), spec_table());
}

#[test]
fn table_is_retained_and_recoverable() {
    let t = template();
    let table = at(&t, &["Resources", "Table"]);
    assert_eq!(str_at(table, &["DeletionPolicy"]), "Retain");
    assert_eq!(str_at(table, &["UpdateReplacePolicy"]), "Retain");
    assert_eq!(
        at(table, &["Properties", "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"]).as_bool(),
        Some(true)
    );
}

/// GIVEN a table created on moto by `shared::table::create_table` (what the admin CLI and the tests
/// use) WHEN it is described THEN it is exactly the `Table` resource of template.yaml.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_created_by_code_matches_template_on_moto() {
    use aws_sdk_dynamodb::types::KeySchemaElement;
    let store = tests::dynamo_store().await;
    let client = store.client();
    let described = client.describe_table().table_name(store.table()).send().await.expect("DescribeTable");
    let d = described.table().expect("table description");
    let keys = |ks: &[KeySchemaElement]| -> Vec<(String, String)> {
        ks.iter().map(|k| pair(k.attribute_name(), k.key_type().as_str())).collect()
    };
    let ttl = client.describe_time_to_live().table_name(store.table()).send().await.expect("DescribeTimeToLive");
    let actual = TableShape {
        keys: keys(d.key_schema()),
        attributes: d
            .attribute_definitions()
            .iter()
            .map(|a| pair(a.attribute_name(), a.attribute_type().as_str()))
            .collect(),
        indexes: d
            .global_secondary_indexes()
            .iter()
            .map(|ix| {
                let projection = ix.projection().and_then(|p| p.projection_type()).map(|p| p.as_str()).unwrap_or("");
                (ix.index_name().unwrap_or_default().to_string(), (keys(ix.key_schema()), projection.to_string()))
            })
            .collect(),
        stream_view: d
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        billing_mode: d
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str().to_string())
            .unwrap_or_default(),
        ttl_attribute: ttl.time_to_live_description().and_then(|t| t.attribute_name()).unwrap_or_default().to_string(),
    };
    assert_eq!(actual, template_table(&template()));
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    at(t, &["Resources"])
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().expect("logical id").to_string(), r))
        .collect()
}

/// Every `Action` string of every IAM statement anywhere under `v`.
fn actions(v: &Value, out: &mut Vec<String>) {
    match untag(v) {
        Value::Mapping(m) => {
            for (k, child) in m {
                if k.as_str() == Some("Action") {
                    match untag(child) {
                        Value::String(a) => out.push(a.clone()),
                        Value::Sequence(list) => {
                            out.extend(list.iter().filter_map(|a| untag(a).as_str().map(String::from)))
                        }
                        other => panic!("unexpected Action {other:?}"),
                    }
                } else {
                    actions(child, out);
                }
            }
        }
        Value::Sequence(list) => list.iter().for_each(|c| actions(c, out)),
        _ => {}
    }
}

#[test]
fn iam_is_least_privilege() {
    let text = std::fs::read_to_string(tests::workspace_root().join("template.yaml")).unwrap();
    assert!(!text.to_lowercase().contains("dynamodb:scan"), "template.yaml must never grant dynamodb:Scan");
    let t = template();
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("AuthFunction", &["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"][..]),
        (
            "EventsFunction",
            &["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"][..],
        ),
        (
            "BookingsFunction",
            &[
                "dynamodb:BatchGetItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ][..],
        ),
        (
            "CrmNotifierFunction",
            &[
                "dynamodb:DescribeStream",
                "dynamodb:GetItem",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                "dynamodb:PutItem",
                "sqs:SendMessage",
            ][..],
        ),
    ]);
    let fns = functions(&t);
    assert_eq!(
        fns.iter().map(|(id, _)| id.as_str()).collect::<BTreeSet<_>>(),
        expected.keys().copied().collect::<BTreeSet<_>>()
    );
    for (id, f) in &fns {
        let policies = seq(at(f, &["Properties", "Policies"]));
        for p in policies {
            // Explicit statements only: no SAM policy templates such as DynamoDBCrudPolicy (which
            // include Scan), no managed policy names.
            assert!(untag(p).get("Statement").is_some(), "{id}: policy {p:?} is not an explicit document");
        }
        let mut acts = Vec::new();
        actions(at(f, &["Properties", "Policies"]), &mut acts);
        assert!(acts.iter().all(|a| !a.contains('*')), "{id}: wildcard action in {acts:?}");
        let got: BTreeSet<&str> = acts.iter().map(String::as_str).collect();
        let want: BTreeSet<&str> = expected[id.as_str()].iter().copied().collect();
        assert_eq!(got, want, "{id}: IAM actions");
    }
    assert!(!text.contains("Resource: '*'") && !text.contains("Resource: \"*\""), "no Resource: *");
}

#[test]
fn functions_build_their_own_binary_on_arm64() {
    let t = template();
    assert_eq!(str_at(&t, &["Globals", "Function", "Runtime"]), "provided.al2023");
    assert_eq!(seq(at(&t, &["Globals", "Function", "Architectures"])).len(), 1);
    assert_eq!(str_at(&seq(at(&t, &["Globals", "Function", "Architectures"]))[0], &[]), "arm64");
    let bins = BTreeMap::from([
        ("AuthFunction", "auth"),
        ("EventsFunction", "events"),
        ("BookingsFunction", "bookings"),
        ("CrmNotifierFunction", "crm-notifier"),
    ]);
    for (id, f) in functions(&t) {
        assert_eq!(str_at(f, &["Metadata", "BuildMethod"]), "rust-cargolambda", "{id}");
        let bin = str_at(f, &["Metadata", "BuildProperties", "Binary"]);
        assert_eq!(Some(&bin), bins.get(id.as_str()), "{id}");
        assert_eq!(str_at(f, &["Properties", "CodeUri"]), ".", "{id}: built from the workspace root");
        let dir = tests::workspace_root().join("functions").join(bin);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(manifest.contains(&format!("name = \"{bin}\"")), "{id}: functions/{bin} is package {bin}");
        assert!(dir.join("src/main.rs").exists(), "{id}: functions/{bin} has a binary");
    }
}

#[test]
fn stream_mapping_selects_new_booking_items_only() {
    let t = template();
    let m = at(&t, &["Resources", "CrmStreamMapping", "Properties"]);
    let filters = seq(at(m, &["FilterCriteria", "Filters"]));
    assert_eq!(filters.len(), 1);
    let pattern: serde_json::Value = serde_json::from_str(str_at(&filters[0], &["Pattern"])).expect("filter is JSON");
    assert_eq!(pattern["eventName"], serde_json::json!(["INSERT"]));
    assert_eq!(
        pattern["dynamodb"]["NewImage"][shared::keys::ENTITY]["S"],
        serde_json::json!([shared::keys::entity::BOOKING])
    );
    assert_eq!(str_at(m, &["StartingPosition"]), "LATEST");
    assert_eq!(at(m, &["BisectBatchOnFunctionError"]).as_bool(), Some(true));
    assert_eq!(seq(at(m, &["FunctionResponseTypes"]))[0].as_str(), Some("ReportBatchItemFailures"));
    assert!(at(m, &["DestinationConfig", "OnFailure", "Destination"]).is_string());
    assert_eq!(
        at(&t, &["Resources", "CrmDeadLetterQueue", "Properties", "MessageRetentionPeriod"]).as_u64(),
        Some(14 * 24 * 3600)
    );
}

/// One HTTP API route: method (`ANY` here) and path segments, or `None` for `$default`.
struct Route {
    function: String,
    method: String,
    segments: Option<Vec<String>>,
}

fn routes(t: &Value) -> Vec<Route> {
    let mut out = Vec::new();
    for (id, f) in functions(t) {
        let Some(events) = untag(at(f, &["Properties"])).get("Events") else {
            continue;
        };
        for (_, e) in untag(events).as_mapping().expect("Events mapping") {
            if str_at(e, &["Type"]) != "HttpApi" {
                continue;
            }
            let props = untag(e).get("Properties").map(untag);
            let get = |k: &str| props.and_then(|p| p.get(k)).map(untag).and_then(Value::as_str).map(String::from);
            out.push(Route {
                function: id.clone(),
                method: get("Method").unwrap_or_else(|| "ANY".into()).to_uppercase(),
                segments: get("Path").map(|p| p.split('/').skip(1).map(String::from).collect()),
            });
        }
    }
    out
}

/// HTTP API route selection: the most specific matching route wins (literal segments beat path
/// variables); nothing matched → `$default`.
fn route_for<'a>(routes: &'a [Route], method: &str, path: &str) -> Option<&'a Route> {
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let mut best: Option<(usize, &Route)> = None;
    for r in routes {
        let Some(pattern) = &r.segments else { continue };
        if r.method != "ANY" && r.method != method {
            continue;
        }
        if pattern.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let ok = pattern.iter().zip(&segs).all(|(p, s)| {
            if p.starts_with('{') && p.ends_with('}') {
                !s.is_empty()
            } else if p == s {
                literal += 1;
                true
            } else {
                false
            }
        });
        if ok {
            match best {
                Some((n, other)) if n == literal => {
                    panic!("{method} {path}: ambiguous between {} and {}", other.function, r.function)
                }
                Some((n, _)) if n > literal => {}
                _ => best = Some((literal, r)),
            }
        }
    }
    best.map(|(_, r)| r).or_else(|| routes.iter().find(|r| r.segments.is_none()))
}

/// The function a fixture is written for, from its file name (events/README.md lists them).
fn intended_function(name: &str) -> &'static str {
    if name.starts_with("events-bookings") || name.starts_with("bookings-") {
        "BookingsFunction"
    } else if name.starts_with("events-") {
        "EventsFunction"
    } else if name.starts_with("auth-") || name.starts_with("health") {
        "AuthFunction"
    } else {
        panic!("events/{name}.json: unknown fixture prefix (auth-, health, events-, bookings-)")
    }
}

/// Placeholders `scripts/invoke-test.sh` knows how to fill.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("TOKEN", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
    ("EMAIL", "asha@example.com"),
    ("EVENT_ID", "01JBQ2S3T4V5W6X7Y8Z9A0B1C2"),
    ("BOOKING_ID", "01JBQ2S3T4V5W6X7Y8Z9A0B1C3"),
    ("DATETIME", "2030-08-01T10:00:00Z"),
    ("IDEMPOTENCY_KEY", "retry-7f3a"),
];

#[test]
fn every_http_fixture_is_routed_to_its_function() {
    let t = template();
    let routes = routes(&t);
    assert!(routes.iter().any(|r| r.segments.is_none()), "a $default route answers unknown paths");
    let dir = tests::workspace_root().join("events");
    let mut checked = 0;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("events/ exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".json").map(String::from))
        .collect();
    names.sort();
    for name in names {
        let raw: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
                .unwrap_or_else(|e| panic!("events/{name}.json is not JSON: {e}"));
        if raw.get("rawPath").is_none() {
            continue; // stream and other non-HTTP fixtures
        }
        let text = tests::fixture_text(&name, PLACEHOLDERS);
        if let Some(i) = text.find("${") {
            panic!(
                "events/{name}.json: placeholder {} is not one invoke-test.sh fills",
                &text[i..text.len().min(i + 20)]
            );
        }
        let req = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("events/{name}.json is not an API Gateway request: {e}"));
        let path = req.uri().path().to_string();
        assert_eq!(raw["rawPath"].as_str(), raw["requestContext"]["http"]["path"].as_str(), "{name}: rawPath");
        let method = req.method().as_str().to_string();
        let route =
            route_for(&routes, &method, &path).unwrap_or_else(|| panic!("{name}: no route for {method} {path}"));
        let want = intended_function(&name);
        // Unknown paths fall through to `$default`, which the auth function answers with a JSON 404.
        assert_eq!(route.function, want, "events/{name}.json ({method} {path}) reaches {}", route.function);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} HTTP fixtures found in events/");
}

#[test]
fn every_contract_path_is_routed_with_and_without_trailing_slash() {
    let routes = routes(&template());
    let cases = [
        ("/auth/register", "AuthFunction"),
        ("/auth/login", "AuthFunction"),
        ("/auth/me", "AuthFunction"),
        ("/health", "AuthFunction"),
        ("/openapi.json", "AuthFunction"),
        ("/events", "EventsFunction"),
        ("/events/filter", "EventsFunction"),
        ("/events/01JBQ2S3T4V5W6X7Y8Z9A0B1C2", "EventsFunction"),
        ("/events/01JBQ2S3T4V5W6X7Y8Z9A0B1C2/bookings", "BookingsFunction"),
        ("/bookings", "BookingsFunction"),
        ("/bookings/01JBQ2S3T4V5W6X7Y8Z9A0B1C3", "BookingsFunction"),
    ];
    for (path, function) in cases {
        for p in [path.to_string(), format!("{path}/")] {
            let r = route_for(&routes, "GET", &p).unwrap_or_else(|| panic!("no route for {p}"));
            assert!(r.segments.is_some(), "{p} only reaches $default");
            assert_eq!(r.function, function, "{p}");
        }
    }
}
