//! `template.yaml` against the code: the `Table` resource equals what `shared::table::create_table`
//! builds (checked on moto with DescribeTable, and statically against `shared::table::TABLE`), the
//! IAM stays least-privilege (no scans, no wildcards, every table statement scoped to the partition
//! keys `shared::keys` builds for the entities the function owns, index statements only
//! `dynamodb:Query` on a named index, and every DynamoDB call the functions make on moto allowed by
//! their own policy), the stream filter selects the entity name the code writes, and every HTTP
//! fixture in `events/` is routed by the HTTP API to the function it is meant for.

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

// ---------------------------------------------------------------- IAM: partition-key scoping

/// A statement's resource as the template writes it: `table`, `index/<name>`, or the `!GetAtt`
/// / `!Sub` text of anything else (`Table.StreamArn`, `CrmDeadLetterQueue.Arn`).
fn resource_name(v: &Value) -> String {
    let text = untag(v).as_str().unwrap_or_else(|| panic!("resource {v:?} is not a !GetAtt/!Sub string"));
    match (text, text.strip_prefix("${Table.Arn}/index/")) {
        ("Table.Arn", _) => "table".into(),
        (_, Some(index)) => format!("index/{index}"),
        _ => text.to_string(),
    }
}

/// One or several strings (IAM accepts both forms).
fn strings(v: &Value) -> BTreeSet<String> {
    match untag(v) {
        Value::Sequence(list) => list.iter().map(|s| untag(s).as_str().expect("a string").to_string()).collect(),
        Value::String(s) => BTreeSet::from([s.clone()]),
        Value::Bool(b) => BTreeSet::from([b.to_string()]),
        other => panic!("expected a string or a list of strings, got {other:?}"),
    }
}

const LEADING_KEYS: &str = "dynamodb:LeadingKeys";

/// An IAM statement of a function's policy, in the shape the checks below need.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Statement {
    sid: String,
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
    /// `ForAllValues:StringLike` patterns on `dynamodb:LeadingKeys`.
    leading_keys: Option<BTreeSet<String>>,
    /// `Null: {dynamodb:LeadingKeys: 'false'}`: a request without a partition key (a Scan) does not
    /// match, which `ForAllValues` alone would let through.
    requires_leading_keys: bool,
}

impl Statement {
    fn scoped(&self) -> bool {
        self.leading_keys.as_ref().is_some_and(|p| !p.is_empty()) && self.requires_leading_keys
    }

    /// Whether this statement allows `action` on `resource` for a request naming these partition
    /// keys (every key must match a pattern: `ForAllValues`).
    fn allows(&self, action: &str, resource: &str, keys: &[String]) -> bool {
        if !self.actions.contains(action) || !self.resources.contains(resource) {
            return false;
        }
        if self.requires_leading_keys && keys.is_empty() {
            return false;
        }
        match &self.leading_keys {
            Some(patterns) => keys.iter().all(|k| patterns.iter().any(|p| glob(p, k))),
            None => true,
        }
    }
}

/// The explicit statements of a function's policies; anything this checker does not understand
/// (other effects, `NotAction`, other condition operators) fails the test rather than being
/// half-read.
fn statements(id: &str, f: &Value) -> Vec<Statement> {
    let mut out = Vec::new();
    for policy in seq(at(f, &["Properties", "Policies"])) {
        for st in seq(at(policy, &["Statement"])) {
            let m = untag(st).as_mapping().unwrap_or_else(|| panic!("{id}: statement {st:?} is not a mapping"));
            for key in m.keys() {
                let key = key.as_str().unwrap_or_default();
                assert!(
                    ["Sid", "Effect", "Action", "Resource", "Condition"].contains(&key),
                    "{id}: statement element {key} is not supported here (NotAction/NotResource widen access)"
                );
            }
            let sid = str_at(st, &["Sid"]).to_string();
            assert_eq!(str_at(st, &["Effect"]), "Allow", "{id}/{sid}");
            let (mut leading_keys, mut requires_leading_keys) = (None, false);
            if let Some(cond) = untag(st).get("Condition") {
                for (op, body) in untag(cond).as_mapping().expect("Condition is a mapping") {
                    let op = op.as_str().unwrap_or_default();
                    let body = untag(body).as_mapping().expect("condition operator body is a mapping");
                    let keys: Vec<&str> = body.keys().map(|k| k.as_str().unwrap_or_default()).collect();
                    assert_eq!(keys, [LEADING_KEYS], "{id}/{sid}: {op} conditions only dynamodb:LeadingKeys");
                    let values = strings(&body[LEADING_KEYS]);
                    match op {
                        "ForAllValues:StringLike" => leading_keys = Some(values),
                        "Null" => {
                            assert_eq!(
                                values,
                                BTreeSet::from(["false".to_string()]),
                                "{id}/{sid}: Null must be 'false'"
                            );
                            requires_leading_keys = true;
                        }
                        other => panic!("{id}/{sid}: condition operator {other} is not expected"),
                    }
                }
            }
            out.push(Statement {
                actions: strings(at(st, &["Action"])),
                resources: match untag(at(st, &["Resource"])) {
                    Value::Sequence(list) => list.iter().map(resource_name).collect(),
                    single => BTreeSet::from([resource_name(single)]),
                },
                sid,
                leading_keys,
                requires_leading_keys,
            });
        }
    }
    out
}

fn template_statements(t: &Value) -> BTreeMap<String, Vec<Statement>> {
    functions(t).into_iter().map(|(id, f)| (id.clone(), statements(&id, f))).collect()
}

/// IAM `StringLike`: `*` is any run of characters (`#` included), `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[test]
fn glob_is_iam_string_like() {
    assert!(glob("EVENT#*", "EVENT#01JBQ"));
    assert!(glob("EVENT#*", "EVENT#"));
    assert!(glob("USER#*#BOOKINGS", "USER#u1#BOOKINGS"));
    assert!(!glob("USER#*#BOOKINGS", "USER#u1"));
    assert!(glob("EVENTS", "EVENTS"));
    assert!(!glob("EVENTS", "EVENTS#x"));
    assert!(!glob("EVENT#*", "USER#1"));
    assert!(!glob("EVENT#*", "XEVENT#1"));
    assert!(glob("IDEMPOTENCY#*#*", "IDEMPOTENCY#u#k"));
    assert!(!glob("IDEMPOTENCY#*#*", "IDEMPOTENCY#u"));
    assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
}

/// Stands for an id in a key built by `shared::keys`; the policy has `*` where it lands.
const ANY: &str = "{id}";

/// The `StringLike` pattern that admits exactly the keys `key` stands for.
fn pattern_of(key: &str) -> String {
    key.replace(ANY, "*")
}

/// What a function's policy must say: the statement, with its partition keys built by
/// `shared::keys` (so a change of key layout that the policy does not follow fails here).
struct Grant {
    sid: &'static str,
    actions: &'static [&'static str],
    resource: String,
    /// `None`: no partition-key condition: not a table resource (stream, queue), or a `Query` on a
    /// named index (AWS documents `dynamodb:LeadingKeys` only for the table's partition key).
    keys: Option<Vec<String>>,
}

impl Grant {
    fn statement(&self) -> Statement {
        let leading_keys = self.keys.as_ref().map(|keys| keys.iter().map(|k| pattern_of(k)).collect());
        Statement {
            sid: self.sid.to_string(),
            actions: self.actions.iter().map(|a| a.to_string()).collect(),
            resources: BTreeSet::from([self.resource.clone()]),
            requires_leading_keys: leading_keys.is_some(),
            leading_keys,
        }
    }
}

fn scoped(sid: &'static str, actions: &'static [&'static str], resource: &str, keys: Vec<String>) -> Grant {
    Grant { sid, actions, resource: resource.to_string(), keys: Some(keys) }
}

fn unscoped(sid: &'static str, actions: &'static [&'static str], resource: &str) -> Grant {
    Grant { sid, actions, resource: resource.to_string(), keys: None }
}

/// Per function, every statement it may have. Derived from what the code does to the table:
/// `shared/src/store/dynamo.rs` and the handlers (`docs/data-model.md`, access patterns).
fn expected_grants() -> BTreeMap<&'static str, Vec<Grant>> {
    use shared::keys::*;
    let id = ANY;
    let gsi1 = format!("index/{GSI1}");
    let gsi2 = format!("index/{GSI2}");
    BTreeMap::from([
        (
            "AuthFunction",
            vec![
                // login: e-mail guard → user; /auth/me: the user
                scoped("ReadAccounts", &["dynamodb:GetItem"], "table", vec![user(id).0, email(id).0]),
                // register: one transaction of two puts
                scoped("Register", &["dynamodb:PutItem"], "table", vec![user(id).0, email(id).0]),
                scoped(
                    "LoginThrottle",
                    &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    "table",
                    vec![login_throttle(id).0],
                ),
            ],
        ),
        (
            "EventsFunction",
            vec![
                // the event; the caller's user item for their current role (read only)
                scoped("ReadItems", &["dynamodb:GetItem"], "table", vec![event(id).0, user(id).0]),
                scoped(
                    "WriteEvents",
                    &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    "table",
                    vec![event(id).0],
                ),
                // list (GSI1, the `EVENTS` partition) and filter by type (GSI2, `TYPE#<type>`)
                unscoped("QueryAllEvents", &["dynamodb:Query"], &gsi1),
                unscoped("QueryEventsByType", &["dynamodb:Query"], &gsi2),
            ],
        ),
        (
            "BookingsFunction",
            vec![
                scoped(
                    "ReadItems",
                    &["dynamodb:GetItem", "dynamodb:BatchGetItem"],
                    "table",
                    vec![
                        event(id).0,
                        attendee(id, id).0,
                        booking(id).0,
                        delivery(id).0,
                        idempotency(id, id).0,
                        user(id).0,
                    ],
                ),
                // book: attendee guard, booking, idempotency record
                scoped(
                    "PutBookingItems",
                    &["dynamodb:PutItem"],
                    "table",
                    vec![attendee(id, id).0, booking(id).0, idempotency(id, id).0],
                ),
                // book / cancel: seat counter; cancel: booking status
                scoped("UpdateBookingItems", &["dynamodb:UpdateItem"], "table", vec![event(id).0, booking(id).0]),
                // cancel: attendee guard
                scoped("DeleteAttendeeGuards", &["dynamodb:DeleteItem"], "table", vec![attendee(id, id).0]),
                // my bookings (GSI1, `USER#<id>#BOOKINGS`), an event's (GSI2, `EVENT#<id>#BOOKINGS`)
                unscoped("QueryUserBookings", &["dynamodb:Query"], &gsi1),
                unscoped("QueryEventBookings", &["dynamodb:Query"], &gsi2),
            ],
        ),
        (
            "CrmNotifierFunction",
            vec![
                scoped("DeliveryRecords", &["dynamodb:GetItem", "dynamodb:PutItem"], "table", vec![delivery(id).0]),
                unscoped(
                    "ReadStream",
                    &[
                        "dynamodb:DescribeStream",
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator",
                        "dynamodb:ListStreams",
                    ],
                    "Table.StreamArn",
                ),
                unscoped("OnFailureDestination", &["sqs:SendMessage"], "CrmDeadLetterQueue.Arn"),
            ],
        ),
    ])
}

#[test]
fn iam_statements_match_the_keys_each_function_owns() {
    let got = template_statements(&template());
    let want: BTreeMap<String, Vec<Statement>> = expected_grants()
        .into_iter()
        .map(|(id, grants)| (id.to_string(), grants.iter().map(Grant::statement).collect()))
        .collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (id, want) in &want {
        let mut got = got[id].clone();
        let mut want = want.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{id}: IAM statements (Sid, actions, resource, LeadingKeys patterns)");
    }
}

/// DynamoDB actions that read or write items; the stream actions are on the stream, not here.
const ITEM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:PartiQLSelect",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
];

const STREAM_ACTIONS: &[&str] =
    &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"];

const WRITE_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
];

/// `index/<name>` for an index of `shared::table::TABLE`.
fn named_index(resource: &str) -> bool {
    shared::table::TABLE.indexes.iter().any(|ix| resource == format!("index/{}", ix.name))
}

/// A `dynamodb:Query` and nothing else, on named indexes only: read-only and pinned to the index by
/// its ARN, so it needs no LeadingKeys condition (which AWS documents only for the table's
/// partition key).
fn is_index_query(st: &Statement) -> bool {
    st.actions.iter().eq(["dynamodb:Query"]) && !st.resources.is_empty() && st.resources.iter().all(|r| named_index(r))
}

/// Independent of the table above: whatever a statement is called, an item action (above all a
/// write) is allowed only on the table or a named index, and only with a LeadingKeys condition
/// whose patterns each start with a fixed prefix, so never for a request without a partition key.
/// The one exception is [`is_index_query`]: `dynamodb:Query` alone, on named indexes alone.
#[test]
fn no_item_action_is_allowed_without_a_leading_keys_condition() {
    for (id, statements) in template_statements(&template()) {
        for st in statements {
            let item_actions: Vec<&String> = st.actions.iter().filter(|a| ITEM_ACTIONS.contains(&a.as_str())).collect();
            let on_table = st.resources.iter().any(|r| r == "table" || r.starts_with("index/"));
            if item_actions.is_empty() && !on_table {
                // the stream and the dead-letter queue
                assert!(
                    st.actions.iter().all(|a| !a.starts_with("dynamodb:") || STREAM_ACTIONS.contains(&a.as_str())),
                    "{id}/{}: unexpected DynamoDB action in {:?}",
                    st.sid,
                    st.actions
                );
                continue;
            }
            let writes = item_actions.iter().any(|a| WRITE_ACTIONS.contains(&a.as_str()));
            let what = if writes { "write action" } else { "item action" };
            assert!(
                st.scoped() || is_index_query(&st),
                "{id}/{}: {what} {:?} without ForAllValues:StringLike dynamodb:LeadingKeys plus Null 'false' \
                 (only dynamodb:Query alone on named indexes may go without)",
                st.sid,
                item_actions
            );
            assert!(
                !item_actions.is_empty() && st.actions.len() == item_actions.len(),
                "{id}/{}: mixes item actions with others: {:?}",
                st.sid,
                st.actions
            );
            assert!(
                st.resources.iter().all(|r| r == "table" || named_index(r)),
                "{id}/{}: item actions only on the table or a named index, got {:?}",
                st.sid,
                st.resources
            );
            for p in st.leading_keys.iter().flatten() {
                let fixed = p.split(['*', '?']).next().unwrap_or_default();
                assert!(
                    fixed == p || fixed.contains('#'),
                    "{id}/{}: LeadingKeys pattern {p:?} must start with a whole key prefix such as EVENT#",
                    st.sid
                );
            }
        }
    }
}

/// Every partition of the table, by entity, as `shared::keys` builds it for real ids.
fn table_partitions() -> Vec<(&'static str, String)> {
    use shared::keys::*;
    let (u, e, b) = ("01JBQ2S3T4V5W6X7Y8Z9A0B1C1", "01JBQ2S3T4V5W6X7Y8Z9A0B1C2", "01JBQ2S3T4V5W6X7Y8Z9A0B1C3");
    vec![
        (entity::USER, user(u).0),
        (entity::EMAIL, email("asha@example.com").0),
        (entity::LOGIN_THROTTLE, login_throttle("asha@example.com").0),
        (entity::EVENT, event(e).0),
        (entity::ATTENDEE, attendee(e, u).0),
        (entity::BOOKING, booking(b).0),
        (entity::DELIVERY, delivery(b).0),
        (entity::IDEMPOTENCY, idempotency(u, "retry-7f3a").0),
    ]
}

/// The issue this guards against: the events function could rewrite a user's role, the notifier
/// could put anything anywhere. Each function may write only the entities it owns (and whatever
/// shares their partition: LeadingKeys cannot tell sort keys apart).
#[test]
fn no_function_can_write_a_partition_it_does_not_own() {
    use shared::keys::entity::*;
    let owned: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("AuthFunction", &[USER, EMAIL, LOGIN_THROTTLE][..]),
        // an event's attendee guards live in its partition
        ("EventsFunction", &[EVENT, ATTENDEE][..]),
        // a booking's delivery record lives in its partition
        ("BookingsFunction", &[EVENT, ATTENDEE, BOOKING, DELIVERY, IDEMPOTENCY][..]),
        ("CrmNotifierFunction", &[BOOKING, DELIVERY][..]),
    ]);
    let all = template_statements(&template());
    for (id, statements) in &all {
        for write in WRITE_ACTIONS {
            for (entity, pk) in table_partitions() {
                let allowed = statements.iter().any(|s| s.allows(write, "table", std::slice::from_ref(&pk)));
                assert!(
                    !allowed || owned[id.as_str()].contains(&entity),
                    "{id} may {write} {pk} ({entity}), which it does not own"
                );
            }
        }
        // Requests without a partition key match no statement (the ForAllValues pitfall): on the
        // table, no item action; on an index, nothing but `Query` (a Scan stays refused), which is
        // scoped by the index ARN alone.
        for action in ITEM_ACTIONS {
            assert!(
                !statements.iter().any(|s| s.allows(action, "table", &[])),
                "{id}: {action} on the table without a partition key is allowed"
            );
            if *action == "dynamodb:Query" {
                continue;
            }
            for ix in shared::table::TABLE.indexes {
                let resource = format!("index/{}", ix.name);
                assert!(
                    !statements.iter().any(|s| s.allows(action, &resource, &[])),
                    "{id}: {action} on {resource} without a partition key is allowed"
                );
            }
        }
    }
    // The specific complaints of the issue.
    let user = shared::keys::user("01JBQ2S3T4V5W6X7Y8Z9A0B1C1").0;
    for action in ["dynamodb:PutItem", "dynamodb:UpdateItem"] {
        assert!(!all["EventsFunction"].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&user))));
    }
    let event = shared::keys::event("01JBQ2S3T4V5W6X7Y8Z9A0B1C2").0;
    assert!(!all["CrmNotifierFunction"].iter().any(|s| s.allows(
        "dynamodb:PutItem",
        "table",
        std::slice::from_ref(&event)
    )));
    // …while what each owns stays writable.
    assert!(all["EventsFunction"].iter().any(|s| s.allows(
        "dynamodb:UpdateItem",
        "table",
        std::slice::from_ref(&event)
    )));
}

// ---------------------------------------------------------------- IAM vs the calls on the wire

/// Every DynamoDB request the SDK sends: operation and JSON body.
#[derive(Clone, Debug, Default)]
struct WireLog(std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>);

impl WireLog {
    fn take(&self) -> Vec<(String, serde_json::Value)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl aws_sdk_dynamodb::config::Intercept for WireLog {
    fn name(&self) -> &'static str {
        "WireLog"
    }

    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let req = ctx.request();
        let op = req.headers().get("x-amz-target").map(|t| t.rsplit('.').next().unwrap_or(t)).unwrap_or("?");
        let body = req.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
        self.0.lock().unwrap().push((op.to_string(), body));
        Ok(())
    }
}

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
    log: WireLog,
    routes: Vec<Route>,
    policies: BTreeMap<String, Vec<Statement>>,
    checked: std::cell::RefCell<BTreeSet<String>>,
}

impl Wire {
    fn check(&self, function: &str, what: &str) {
        for (op, body) in self.log.take() {
            for a in accesses(&op, &body) {
                let allowed = self.policies[function].iter().any(|s| s.allows(&a.action, &a.resource, &a.keys));
                assert!(allowed, "{what}: {function} sent {op}, which needs {a:?}: template.yaml does not allow it");
                let keys: BTreeSet<String> =
                    a.keys.iter().map(|k| k.split('#').next().unwrap_or_default().to_string()).collect();
                self.checked.borrow_mut().insert(format!("{function}: {} {} {keys:?}", a.action, a.resource));
            }
        }
    }

    async fn send(&self, req: lambda_http::Request) -> (u16, serde_json::Value) {
        let (method, path) = (req.method().to_string(), req.uri().path().to_string());
        let what = format!("{method} {}", req.uri());
        let function =
            route_for(&self.routes, &method, &path).unwrap_or_else(|| panic!("no route for {what}")).function.clone();
        self.log.take();
        let resp = tests::call(&self.app, req).await;
        self.check(&function, &what);
        let status = tests::status(&resp);
        assert!(status < 500, "{what}: {status} {:?}", String::from_utf8_lossy(resp.body().as_ref()));
        (status, serde_json::from_slice(resp.body().as_ref()).unwrap_or_default())
    }
}

fn with_idempotency_key(mut req: lambda_http::Request, key: &str) -> lambda_http::Request {
    req.headers_mut().insert("idempotency-key", key.parse().unwrap());
    req
}

/// GIVEN every function's policy as template.yaml states it WHEN the functions serve a day of
/// requests (and their failure paths) on moto THEN every DynamoDB call they make is allowed by
/// their own policy, as [`accesses`] and [`Statement::allows`] model IAM: a narrower policy cannot
/// silently cut off a call the code makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dynamodb_call_is_allowed_by_the_calling_functions_policy() {
    use serde_json::json;
    use shared::model::Role;
    use shared::store::Store;
    use tests::request as req;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(tests::endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await;
    let log = WireLog::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(log.clone()).build(),
    );
    let table = format!("ahoum-iam-{}", ulid::Ulid::new().to_string().to_lowercase());
    shared::table::create_table(&client, &table).await.expect("create table on moto");
    let store = shared::store::DynamoStore::new(client, table);
    let t = template();
    let wire = Wire {
        app: tests::app(store.clone()),
        log,
        routes: routes(&t),
        policies: template_statements(&t),
        checked: Default::default(),
    };

    // auth: register, a taken e-mail, failed and successful logins (throttle window opened,
    // counted, cleared), me, health, OpenAPI.
    let email = format!("iam.{}@example.com", ulid::Ulid::new().to_string().to_lowercase());
    let account = json!({"name": "Asha Rao", "email": email, "password": "correct horse battery"});
    assert_eq!(wire.send(req("POST", "/auth/register", None, Some(account.clone()))).await.0, 201);
    assert_eq!(wire.send(req("POST", "/auth/register", None, Some(account))).await.0, 409);
    let wrong = json!({"email": email, "password": "wrong password!"});
    assert_eq!(wire.send(req("POST", "/auth/login", None, Some(wrong.clone()))).await.0, 401);
    assert_eq!(wire.send(req("POST", "/auth/login", None, Some(wrong))).await.0, 401);
    let unknown = json!({"email": "nobody@example.com", "password": "wrong password!"});
    assert_eq!(wire.send(req("POST", "/auth/login", None, Some(unknown))).await.0, 401);
    let (status, login) = wire
        .send(req("POST", "/auth/login", None, Some(json!({"email": email, "password": "correct horse battery"}))))
        .await;
    assert_eq!(status, 200, "{login}");
    let attendee = login["access_token"].as_str().expect("token").to_string();
    assert_eq!(wire.send(req("GET", "/auth/me", Some(&attendee), None)).await.0, 200);
    wire.send(req("GET", "/health", None, None)).await;
    wire.send(req("GET", "/openapi.json", None, None)).await;

    // events: create, list, filter, get, update (own, and someone else's: 403), delete.
    let (_, owner) = tests::user(&wire.app, Role::Facilitator).await;
    let (_, other) = tests::user(&wire.app, Role::Facilitator).await;
    let (_, admin) = tests::user(&wire.app, Role::Admin).await;
    let when = (chrono::Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let new_event = json!({"title": "Morning Yoga", "type": "Yoga", "datetime": when, "capacity": 5});
    let (status, ev) = wire.send(req("POST", "/events", Some(&owner), Some(new_event.clone()))).await;
    assert_eq!(status, 201, "{ev}");
    let ev = ev["id"].as_str().unwrap().to_string();
    let spare =
        wire.send(req("POST", "/events", Some(&owner), Some(new_event))).await.1["id"].as_str().unwrap().to_string();
    wire.send(req("GET", "/events", None, None)).await;
    wire.send(req("GET", "/events/filter?type=yoga", None, None)).await;
    wire.send(req("GET", "/events/filter?rating=1", None, None)).await;
    wire.send(req("GET", &format!("/events/{ev}"), None, None)).await;
    assert_eq!(
        wire.send(req("PATCH", &format!("/events/{ev}"), Some(&owner), Some(json!({"title": "Yoga"})))).await.0,
        200
    );
    assert_eq!(
        wire.send(req("PATCH", &format!("/events/{ev}"), Some(&other), Some(json!({"title": "Mine"})))).await.0,
        403
    );
    assert_eq!(wire.send(req("DELETE", &format!("/events/{spare}"), Some(&other), None)).await.0, 403);
    assert_eq!(wire.send(req("DELETE", &format!("/events/{spare}"), Some(&owner), None)).await.0, 200);

    // bookings: book (plain, with an Idempotency-Key, its replay, a double booking), list, get
    // (own, admin), an event's bookings, cancel (twice), and an event with bookings is kept.
    let (status, booked) = wire.send(req("POST", "/bookings", Some(&attendee), Some(json!({"event_id": ev})))).await;
    assert_eq!(status, 201, "{booked}");
    let booking_id = booked["id"].as_str().unwrap().to_string();
    assert_eq!(wire.send(req("POST", "/bookings", Some(&attendee), Some(json!({"event_id": ev})))).await.0, 409);
    let (_, second) = tests::user(&wire.app, Role::Attendee).await;
    let keyed =
        || with_idempotency_key(req("POST", "/bookings", Some(&second), Some(json!({"event_id": ev}))), "iam-k1");
    assert_eq!(wire.send(keyed()).await.0, 201);
    assert_eq!(wire.send(keyed()).await.0, 201, "replayed");
    assert_eq!(wire.send(req("DELETE", &format!("/events/{ev}"), Some(&owner), None)).await.0, 409);
    wire.send(req("GET", "/bookings", Some(&attendee), None)).await;
    wire.send(req("GET", "/bookings?status=cancelled", Some(&attendee), None)).await;
    assert_eq!(wire.send(req("GET", &format!("/bookings/{booking_id}"), Some(&attendee), None)).await.0, 200);
    assert_eq!(wire.send(req("GET", &format!("/bookings/{booking_id}"), Some(&admin), None)).await.0, 200);
    assert_eq!(wire.send(req("GET", &format!("/bookings/{booking_id}"), Some(&second), None)).await.0, 404);
    assert_eq!(wire.send(req("GET", &format!("/events/{ev}/bookings"), Some(&owner), None)).await.0, 200);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{booking_id}"), Some(&attendee), None)).await.0, 200);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{booking_id}"), Some(&attendee), None)).await.0, 409);

    // crm-notifier: deliver a new booking to a CRM (read + write of its delivery record), then
    // the same booking again (read only).
    let booking = store.get_booking(&booking_id).await.unwrap().expect("booking exists");
    wire.log.take();
    let crm = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&crm)
        .await;
    let vars = BTreeMap::from([
        ("CRM_WEBHOOK_URL", format!("{}/hooks", crm.uri())),
        ("CRM_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()),
    ]);
    let config = crm_notifier::CrmConfig::from_lookup(|name| vars.get(name).cloned()).expect("CRM config");
    let notifier = crm_notifier::Notifier::from_config(store, &config).expect("notifier");
    for round in ["first delivery", "redelivery"] {
        notifier.deliver(&booking).await.unwrap_or_else(|e| panic!("{round}: {e}"));
        wire.check("CrmNotifierFunction", round);
    }

    // The scenario reached every function (a route that stopped calling DynamoDB would make the
    // checks above vacuous).
    let checked = wire.checked.borrow();
    for f in ["AuthFunction", "EventsFunction", "BookingsFunction", "CrmNotifierFunction"] {
        assert!(checked.iter().any(|c| c.starts_with(f)), "{f} made no DynamoDB call");
    }
    println!("{}", checked.iter().cloned().collect::<Vec<_>>().join("\n"));
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
