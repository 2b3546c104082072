//! `template.yaml` against the code: the `Table` resource equals what `shared::table::create_table`
//! builds (checked on moto with DescribeTable, and statically against `shared::table::TABLE`), the
//! IAM stays least-privilege (no scans, no wildcards, every table statement scoped to the partition
//! keys `shared::keys` builds for the entities the function owns, index statements only
//! `dynamodb:Query` on a named index, and every DynamoDB call the functions make on moto allowed by
//! their own policy), and the stream filter selects the entity name the code writes. The HTTP API's
//! routes are checked in `template_routes.rs`, the operational settings in `template_ops.rs`.

use serde_yaml::Value;
use shared::table::TABLE;
use std::collections::{BTreeMap, BTreeSet};
use tests::apigw::{select, Behaviour, Route};

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

/// `RetainExceptOnCreate`: kept on stack deletion, deleted only when the operation that created it
/// rolls back. `UpdateReplacePolicy` has no such value (Delete, Retain, Snapshot only; DynamoDB has
/// no Snapshot), so a replacement keeps the old table.
#[test]
fn table_is_retained_and_recoverable() {
    let t = template();
    let table = at(&t, &["Resources", "Table"]);
    assert_eq!(str_at(table, &["DeletionPolicy"]), "RetainExceptOnCreate");
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

/// A function's policies but its `ReadSecrets` one (secretsmanager:GetSecretValue on the secrets
/// it reads at init, possibly under `!If`), which tests/tests/template_secrets.rs checks.
fn table_policies(f: &Value) -> Vec<&Value> {
    let is_secrets = |p: &Value| {
        let mut acts = Vec::new();
        actions(p, &mut acts);
        !acts.is_empty() && acts.iter().all(|a| a.starts_with("secretsmanager:"))
    };
    seq(at(f, &["Properties", "Policies"])).iter().filter(|p| !is_secrets(p)).collect()
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
        (
            "AuthFunction",
            &[
                "dynamodb:BatchGetItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ][..],
        ),
        (
            "EventsFunction",
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
            "PaymentsFunction",
            &["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"][..],
        ),
        (
            "CrmNotifierFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:DescribeStream",
                "dynamodb:GetItem",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "sqs:SendMessage",
            ][..],
        ),
        (
            "CrmSweeperFunction",
            &[
                "dynamodb:BatchGetItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ][..],
        ),
    ]);
    let fns = functions(&t);
    assert_eq!(
        fns.iter().map(|(id, _)| id.as_str()).collect::<BTreeSet<_>>(),
        expected.keys().copied().collect::<BTreeSet<_>>()
    );
    for (id, f) in &fns {
        for p in table_policies(f) {
            // Explicit statements only: no SAM policy templates such as DynamoDBCrudPolicy (which
            // include Scan), no managed policy names.
            assert!(untag(p).get("Statement").is_some(), "{id}: policy {p:?} is not an explicit document");
        }
        // What the function may do: its Allow statements (DenySessions is checked on its own).
        let mut acts = Vec::new();
        for p in table_policies(f) {
            seq(at(p, &["Statement"]))
                .iter()
                .filter(|st| str_at(st, &["Effect"]) == "Allow")
                .for_each(|st| actions(st, &mut acts));
        }
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
    for policy in table_policies(f) {
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
            if str_at(st, &["Effect"]) == "Deny" {
                assert_eq!(sid, "DenySessions", "{id}: the only Deny statement is DenySessions");
                continue;
            }
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
                // login: e-mail guard → user; /auth/me, /auth/password: the user; logout: the family
                scoped("ReadAccounts", &["dynamodb:GetItem"], "table", vec![user(id).0, email(id).0, session(id).0]),
                // refresh: the family and its user in one BatchGetItem
                scoped("ReadSessionAndUser", &["dynamodb:BatchGetItem"], "table", vec![session(id).0, user(id).0]),
                // register: one transaction of two puts
                scoped("Register", &["dynamodb:PutItem"], "table", vec![user(id).0, email(id).0]),
                // login: a new family; refresh: its rotation; reuse, logout: its revocation
                scoped("Sessions", &["dynamodb:PutItem", "dynamodb:UpdateItem"], "table", vec![session(id).0]),
                // password change: hash + epoch; refresh: the epoch's ConditionCheck
                scoped(
                    "ChangePassword",
                    &["dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"],
                    "table",
                    vec![user(id).0],
                ),
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
                // the event; the caller's user item for their current role (read only); a join's
                // first read: event, the caller's guard and user in one BatchGetItem
                scoped(
                    "ReadItems",
                    &["dynamodb:GetItem", "dynamodb:BatchGetItem"],
                    "table",
                    vec![event(id).0, attendee(id, id).0, user(id).0],
                ),
                // events; a join or leave (entry, guard, waitlist_count); a promote job
                scoped(
                    "WriteEvents",
                    &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    "table",
                    vec![event(id).0, wait_entry(id, &shared::time::now(), id).0, attendee(id, id).0, job(id).0],
                ),
                // the owner's view of the line: a consistent Query of the base table
                scoped(
                    "QueryWaitlists",
                    &["dynamodb:Query"],
                    "table",
                    vec![wait_entry(id, &shared::time::now(), id).0],
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
                        payment_task(id).0,
                        idempotency(id, id).0,
                        user(id).0,
                    ],
                ),
                // book: attendee guard, booking, idempotency record, and the CRM delivery record
                // (free) or the hold's payment task (paid); cancel of a paid booking: refund task
                scoped(
                    "PutBookingItems",
                    &["dynamodb:PutItem"],
                    "table",
                    vec![attendee(id, id).0, booking(id).0, delivery(id).0, payment_task(id).0, idempotency(id, id).0],
                ),
                // book / cancel / release: seat counter; cancel: booking status; the hold's
                // Checkout Session; a refund's outcome
                scoped("UpdateBookingItems", &["dynamodb:UpdateItem"], "table", vec![event(id).0, booking(id).0]),
                // cancel: attendee guard, a hold's task; a hold released because Stripe failed:
                // booking, guard, task, idempotency record; a refund recorded: its task
                scoped(
                    "DeleteBookingItems",
                    &["dynamodb:DeleteItem"],
                    "table",
                    vec![attendee(id, id).0, booking(id).0, payment_task(id).0, idempotency(id, id).0],
                ),
                // my bookings (GSI1, `USER#<id>#BOOKINGS`), an event's (GSI2, `EVENT#<id>#BOOKINGS`)
                unscoped("QueryUserBookings", &["dynamodb:Query"], &gsi1),
                unscoped("QueryEventBookings", &["dynamodb:Query"], &gsi2),
                // the head of the line when a cancel or a released hold promotes; each place in
                // line of GET /bookings/ (COUNT)
                scoped(
                    "QueryWaitlists",
                    &["dynamodb:Query"],
                    "table",
                    vec![wait_entry(id, &shared::time::now(), id).0],
                ),
            ],
        ),
        (
            "PaymentsFunction",
            vec![
                // the booking an event is about; the event when an expiry promotes
                scoped("ReadBookings", &["dynamodb:GetItem"], "table", vec![booking(id).0, event(id).0]),
                // a hold paid: its CRM delivery record; an expired offer's booking.expired; an
                // expiry's promotion: the guard, the booking, its delivery record or offer task
                scoped(
                    "PutBookingItems",
                    &["dynamodb:PutItem"],
                    "table",
                    vec![delivery(id).0, attendee(id, id).0, booking(id).0, payment_task(id).0],
                ),
                // a hold settled: the booking's status; expired: the event's seat counter; a
                // late payment's refund recorded
                scoped("UpdateSettledItems", &["dynamodb:UpdateItem"], "table", vec![booking(id).0, event(id).0]),
                // the hold's (or refund's) payment task; an expired hold's attendee guard
                scoped(
                    "DeleteSettledItems",
                    &["dynamodb:DeleteItem"],
                    "table",
                    vec![payment_task(id).0, attendee(id, id).0],
                ),
                // the head of the line when an expiry promotes
                scoped(
                    "QueryWaitlists",
                    &["dynamodb:Query"],
                    "table",
                    vec![wait_entry(id, &shared::time::now(), id).0],
                ),
            ],
        ),
        (
            "CrmNotifierFunction",
            vec![
                // the booking's collection: one Query (booking + messages), a claim and an
                // outcome per message, a refused claim's record re-read
                scoped(
                    "DeliveryRecords",
                    &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    "table",
                    vec![delivery(id).0],
                ),
                // lifecycle batches: the job and its event
                scoped("LifecycleReads", &["dynamodb:GetItem"], "table", vec![job(id).0, event(id).0]),
                // a booking's cancel or reschedule (booking, seat counter, guard, a hold's task) and
                // the job's claim, progress and end; promotions (entry, guard, booking, delivery
                // record or offer task), a waitlist cleared; an offer opened (booking, its task,
                // its booking.offered record)
                scoped(
                    "LifecycleWrites",
                    &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    "table",
                    vec![booking(id).0, event(id).0, attendee(id, id).0, payment_task(id).0, job(id).0],
                ),
                // an event's bookings (GSI2, `EVENT#<id>#BOOKINGS`)
                unscoped("QueryEventBookings", &["dynamodb:Query"], &gsi2),
                // the head of the line (promotion, clearing)
                scoped(
                    "QueryWaitlists",
                    &["dynamodb:Query"],
                    "table",
                    vec![wait_entry(id, &shared::time::now(), id).0],
                ),
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
        (
            "CrmSweeperFunction",
            vec![
                // a due-payments page's bookings; a booking with pending CRM messages and its
                // messages (one Query of its collection); a refused claim's record when not
                // returned; the booking a settlement re-reads
                scoped(
                    "ReadBookings",
                    &["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
                    "table",
                    vec![booking(id).0, delivery(id).0],
                ),
                // a delivery's outcome; the delivery record of a hold the sweep confirms; an
                // offer's records; a promotion's guard, booking, delivery record or offer task
                scoped("PutBookingItems", &["dynamodb:PutItem"], "table", vec![delivery(id).0, attendee(id, id).0]),
                // a delivery's claim; a hold settled (booking status, an expired hold's seat
                // counter); a refund recorded
                scoped(
                    "UpdateSweptItems",
                    &["dynamodb:UpdateItem"],
                    "table",
                    vec![delivery(id).0, booking(id).0, event(id).0],
                ),
                // a settled hold's or recorded refund's task; an expired hold's attendee guard
                scoped(
                    "DeleteSettledItems",
                    &["dynamodb:DeleteItem"],
                    "table",
                    vec![payment_task(id).0, attendee(id, id).0],
                ),
                // lifecycle jobs left by a stopped batch: the job and its event
                scoped("LifecycleReads", &["dynamodb:GetItem"], "table", vec![job(id).0, event(id).0]),
                unscoped("QueryEventBookings", &["dynamodb:Query"], &gsi2),
                // the pending deliveries (GSI1, `CRM#PENDING#<day>`), the due payment tasks
                // (GSI1, `PAY#DUE#<day>`) and the due lifecycle jobs (GSI1, `JOBS`)
                unscoped("QueryDueWork", &["dynamodb:Query"], &gsi1),
                // the head of the line (promotion, clearing)
                scoped(
                    "QueryWaitlists",
                    &["dynamodb:Query"],
                    "table",
                    vec![wait_entry(id, &shared::time::now(), id).0],
                ),
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

/// A function's `DenySessions` statement: the item actions it refuses, on which resources, for a
/// request naming any partition key matching a pattern (`ForAnyValue:StringLike`).
struct Denial {
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
    patterns: BTreeSet<String>,
}

impl Denial {
    /// IAM's `ForAnyValue`: one matching key is enough; a request naming no key is not denied
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
    fn denies(&self, action: &str, resource: &str, keys: &[String]) -> bool {
        self.actions.contains(action)
            && self.resources.contains(resource)
            && keys.iter().any(|k| self.patterns.iter().any(|p| glob(p, k)))
    }
}

/// The Deny statements of a function's table policies; only the shape DenySessions has is read.
fn denials(id: &str, f: &Value) -> Vec<Denial> {
    let mut out = Vec::new();
    for policy in table_policies(f) {
        for st in seq(at(policy, &["Statement"])).iter().filter(|st| str_at(st, &["Effect"]) == "Deny") {
            let cond = untag(at(st, &["Condition"])).as_mapping().expect("Condition is a mapping");
            let ops: Vec<&str> = cond.keys().map(|k| k.as_str().unwrap_or_default()).collect();
            assert_eq!(ops, ["ForAnyValue:StringLike"], "{id}: DenySessions conditions");
            let body = untag(at(st, &["Condition", "ForAnyValue:StringLike"]));
            out.push(Denial {
                actions: strings(at(st, &["Action"])),
                resources: match untag(at(st, &["Resource"])) {
                    Value::Sequence(list) => list.iter().map(resource_name).collect(),
                    single => BTreeSet::from([resource_name(single)]),
                },
                patterns: strings(&body[LEADING_KEYS]),
            });
        }
    }
    out
}

/// Refresh-token families are the auth function's alone (issue 19): every other function's
/// policy denies each item action on a request naming any `SESSION#` partition, so no Allow,
/// today's or a broader one added later, reaches them; none of today's allows it anyway.
#[test]
fn refresh_token_families_are_denied_to_every_function_but_auth() {
    let t = template();
    let family = shared::keys::session("01JBQ2S3T4V5W6X7Y8Z9A0B1C1").0;
    let user = shared::keys::user("01JBQ2S3T4V5W6X7Y8Z9A0B1C2").0;
    let allows = template_statements(&t);
    for (id, f) in functions(&t) {
        let denied = denials(&id, f);
        if id == "AuthFunction" {
            assert!(denied.is_empty(), "the auth function owns the sessions");
            for action in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"] {
                assert!(allows[&id].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&family))));
            }
            continue;
        }
        assert_eq!(denied.len(), 1, "{id}: one DenySessions statement");
        let d = &denied[0];
        assert_eq!(d.patterns, BTreeSet::from([format!("{}*", shared::keys::SESSION_PREFIX)]), "{id}");
        assert_eq!(d.resources, BTreeSet::from(["table".to_string(), "index/*".to_string()]), "{id}");
        // A Scan names no partition key: ForAnyValue cannot match it (no Allow grants one).
        for action in ITEM_ACTIONS.iter().filter(|a| **a != "dynamodb:Scan") {
            assert!(d.denies(action, "table", std::slice::from_ref(&family)), "{id}: {action} on {family} not denied");
            assert!(d.denies(action, "table", &[user.clone(), family.clone()]), "{id}: {action} in a batch");
            assert!(
                !allows[&id].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&family))),
                "{id} may {action} {family}"
            );
        }
        assert!(!d.denies("dynamodb:GetItem", "table", std::slice::from_ref(&user)), "{id}: denies more than sessions");
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
        (entity::WAITING, attendee(e, u).0),
        (entity::WAIT_ENTRY, wait_entry(e, &shared::time::now(), u).0),
        (entity::JOB, job(e).0),
        (entity::BOOKING, booking(b).0),
        (entity::DELIVERY, delivery(b).0),
        (entity::PAYMENT_TASK, payment_task(b).0),
        (entity::IDEMPOTENCY, idempotency(u, "retry-7f3a").0),
        (entity::SESSION, session(b).0),
    ]
}

/// The issue this guards against: the events function could rewrite a user's role, the notifier
/// could put anything anywhere. Each function may write only the entities it owns (and whatever
/// shares their partition: LeadingKeys cannot tell sort keys apart).
#[test]
fn no_function_can_write_a_partition_it_does_not_own() {
    use shared::keys::entity::*;
    let owned: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("AuthFunction", &[USER, EMAIL, LOGIN_THROTTLE, SESSION][..]),
        // an event's attendee guards and waitlist entries live in its partition
        ("EventsFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB][..]),
        // a booking's delivery record and payment task live in its partition; an event's job in
        // the event's (these functions write the seat counter, so LeadingKeys cannot keep them
        // from the job item: its writers are the events function and the lifecycle batches);
        // each of them promotes from the event's waitlist (entry deleted, guard turned)
        (
            "BookingsFunction",
            &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK, IDEMPOTENCY][..],
        ),
        ("PaymentsFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK][..]),
        // lifecycle batches: the event (seat counter), its guards, its waitlist and its job
        ("CrmNotifierFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK][..]),
        ("CrmSweeperFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK][..]),
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
    // The notifier updates an event's seat counter and its job (lifecycle batches). Since
    // waitlists it also puts in the event's partition (a promotion turns the user's guard into
    // an attendee guard with a conditional Put); LeadingKeys cannot tell that item from the
    // event's own, so PutItem there is no longer refused by IAM: the conditions of the
    // transaction are what keep the event item intact.
    let event = shared::keys::event("01JBQ2S3T4V5W6X7Y8Z9A0B1C2").0;
    // The webhook (no JWT, reachable by anyone who can sign as Stripe) touches no account, login or
    // idempotency record.
    for pk in [
        shared::keys::user("01JBQ2S3T4V5W6X7Y8Z9A0B1C1").0,
        shared::keys::email("asha@example.com").0,
        shared::keys::idempotency("01JBQ2S3T4V5W6X7Y8Z9A0B1C1", "k").0,
    ] {
        for action in ITEM_ACTIONS {
            assert!(
                !all["PaymentsFunction"].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&pk))),
                "PaymentsFunction may {action} {pk}"
            );
        }
    }
    // …while what each owns stays writable.
    assert!(all["EventsFunction"].iter().any(|s| s.allows(
        "dynamodb:UpdateItem",
        "table",
        std::slice::from_ref(&event)
    )));
}

// ---------------------------------------------------------------- IAM vs the calls on the wire

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

/// Stripe as the code sees it ([`shared::payments::PaymentProvider`]), in memory: enough to drive
/// every path of the bookings, payments and sweeper functions that touches the table. What goes
/// over the wire to Stripe is `tests/tests/payments.rs`'s business.
#[derive(Default)]
struct FakeStripe {
    sessions: std::sync::Mutex<BTreeMap<String, serde_json::Value>>,
    fail_creates: std::sync::atomic::AtomicUsize,
    fail_refunds: std::sync::atomic::AtomicUsize,
}

type StripeFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = shared::Result<T>> + Send + 'a>>;

impl FakeStripe {
    fn fail(counter: &std::sync::atomic::AtomicUsize) -> bool {
        use std::sync::atomic::Ordering;
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    fn session(&self, id: &str) -> shared::Result<shared::payments::CheckoutSession> {
        let json = self.sessions.lock().unwrap().get(id).cloned();
        let json = json.ok_or_else(|| shared::Error::PaymentProviderUnavailable(format!("no session {id}")))?;
        Ok(serde_json::from_value(json).expect("a Checkout Session"))
    }

    /// The booking's session as the payer leaves it: complete and paid.
    fn pay(&self, booking_id: &str) -> serde_json::Value {
        self.update(booking_id, |s| {
            s["status"] = "complete".into();
            s["payment_status"] = "paid".into();
            s["payment_intent"] = format!("pi_{booking_id}").into();
        })
    }

    /// The booking's session as Stripe ends it unpaid.
    fn expire(&self, booking_id: &str) -> serde_json::Value {
        self.update(booking_id, |s| s["status"] = "expired".into())
    }

    fn update(&self, booking_id: &str, change: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
        let mut sessions = self.sessions.lock().unwrap();
        let s = sessions.get_mut(&format!("cs_{booking_id}")).expect("a session for the booking");
        change(s);
        s.clone()
    }
}

impl shared::payments::PaymentProvider for FakeStripe {
    fn create_checkout<'a>(
        &'a self,
        req: &'a shared::payments::CheckoutRequest<'a>,
    ) -> StripeFuture<'a, shared::payments::CheckoutSession> {
        Box::pin(async move {
            if Self::fail(&self.fail_creates) {
                return Err(shared::Error::PaymentProviderUnavailable("Stripe answered 500".into()));
            }
            let id = format!("cs_{}", req.booking_id);
            let session = serde_json::json!({
                "id": id, "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                "status": "open", "payment_status": "unpaid", "payment_intent": null,
                "client_reference_id": req.booking_id, "metadata": {"booking_id": req.booking_id},
                "amount_total": req.amount, "currency": req.currency,
            });
            self.sessions.lock().unwrap().insert(id.clone(), session);
            self.session(&id)
        })
    }

    fn retrieve_checkout<'a>(&'a self, session_id: &'a str) -> StripeFuture<'a, shared::payments::CheckoutSession> {
        Box::pin(async move { self.session(session_id) })
    }

    fn expire_checkout<'a>(&'a self, session_id: &'a str) -> StripeFuture<'a, shared::payments::CheckoutSession> {
        Box::pin(async move {
            if let Some(s) = self.sessions.lock().unwrap().get_mut(session_id).filter(|s| s["status"] == "open") {
                s["status"] = "expired".into();
            }
            self.session(session_id)
        })
    }

    fn refund<'a>(
        &'a self,
        payment_intent: &'a str,
        booking_id: &'a str,
    ) -> StripeFuture<'a, shared::payments::Refund> {
        Box::pin(async move {
            if Self::fail(&self.fail_refunds) {
                return Err(shared::Error::PaymentProviderUnavailable("Stripe answered 500".into()));
            }
            assert_eq!(payment_intent, format!("pi_{booking_id}"), "refund of the booking's own payment");
            Ok(shared::payments::Refund { id: format!("re_{booking_id}"), status: "succeeded".into() })
        })
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
    // sessions: refresh (read + transaction), reuse of the spent token (revoke), logout, and a
    // password change (its throttle, the conditional write).
    let spent = login["refresh_token"].as_str().expect("refresh token").to_string();
    let (status, rotated) = wire.send(req("POST", "/auth/refresh", None, Some(json!({"refresh_token": spent})))).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(wire.send(req("POST", "/auth/refresh", None, Some(json!({"refresh_token": spent})))).await.0, 401);
    assert_eq!(wire.send(req("POST", "/auth/logout", None, Some(json!({"refresh_token": spent})))).await.0, 200);
    let password = json!({"current_password": "correct horse battery", "new_password": "correct horse battery 2"});
    assert_eq!(wire.send(req("POST", "/auth/password", Some(&attendee), Some(password))).await.0, 200);
    wire.send(req("GET", "/health", None, None)).await;
    wire.send(req("GET", "/openapi.json", None, None)).await;

    // events: create, list, filter, get, update (own, and someone else's: 403), delete.
    let (_, owner) = tests::user(&wire.app, Role::Facilitator).await;
    let (_, other) = tests::user(&wire.app, Role::Facilitator).await;
    let (_, admin) = tests::user(&wire.app, Role::Admin).await;
    let new_event = json!({"title": "Morning Yoga", "type": "Yoga", "datetime": tests::in_days(3), "capacity": 5});
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
    // (own, admin), the calendar file (own, admin, another's), an event's bookings, cancel
    // (twice), and an event with bookings is kept.
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
    let calendar = format!("/bookings/{booking_id}/calendar.ics");
    assert_eq!(wire.send(req("GET", &calendar, Some(&attendee), None)).await.0, 200);
    assert_eq!(wire.send(req("GET", &calendar, Some(&admin), None)).await.0, 200);
    assert_eq!(wire.send(req("GET", &calendar, Some(&second), None)).await.0, 404);
    assert_eq!(wire.send(req("GET", &format!("/events/{ev}/bookings"), Some(&owner), None)).await.0, 200);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{booking_id}"), Some(&attendee), None)).await.0, 200);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{booking_id}"), Some(&attendee), None)).await.0, 409);

    // payments: a priced event; a paid booking (seat hold, Checkout Session attached), confirmed
    // by its webhook, the webhook replayed, then cancelled (refund asked and recorded); a hold
    // expired by its webhook, and paid after all (refunded by the webhook); a hold released
    // because Stripe failed (502, its Idempotency-Key record deleted too); a hold cancelled (its
    // session expired at Stripe); the sweep settling a hold whose webhook never came and
    // retrying a refund Stripe refused at the cancel.
    let priced = json!({"title": "Sound Bath", "type": "Meditation", "datetime": tests::in_days(3), "capacity": 10,
        "price": {"amount": 2500, "currency": "eur"}});
    let (status, paid_ev) = wire.send(req("POST", "/events", Some(&owner), Some(priced))).await;
    assert_eq!(status, 201, "{paid_ev}");
    let paid_ev = paid_ev["id"].as_str().unwrap().to_string();
    let book = |token: &str| req("POST", "/bookings", Some(token), Some(json!({"event_id": paid_ev})));
    let mut holds = Vec::new();
    for _ in 0..5 {
        let (_, token) = tests::user(&wire.app, Role::Attendee).await;
        let (status, hold) = wire.send(book(&token)).await;
        assert_eq!((status, hold["status"].as_str()), (201, Some("pending_payment")), "{hold}");
        holds.push((token, hold["id"].as_str().unwrap().to_string()));
    }
    let [(paid_tok, paid), (_, expired), (_, late), (pending_tok, pending), (_, swept)] = &holds[..] else {
        unreachable!()
    };
    let answer = wire.stripe_event("evt_paid", "checkout.session.completed", stripe.pay(paid)).await;
    assert_eq!(answer["effect"], "confirmed", "{answer}");
    assert_eq!(wire.stripe_event("evt_paid", "checkout.session.completed", stripe.pay(paid)).await["effect"], "none");
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{paid}"), Some(paid_tok), None)).await.0, 200);
    assert_eq!(
        wire.stripe_event("evt_exp", "checkout.session.expired", stripe.expire(expired)).await["effect"],
        "expired"
    );
    wire.stripe_event("evt_late_exp", "checkout.session.expired", stripe.expire(late)).await;
    let answer = wire.stripe_event("evt_late_paid", "checkout.session.completed", stripe.pay(late)).await;
    assert_eq!(answer["effect"], "refund_requested", "{answer}");
    stripe.fail_creates.store(1, std::sync::atomic::Ordering::SeqCst);
    let (_, unlucky) = tests::user(&wire.app, Role::Attendee).await;
    let (status, failed) = wire.send_any(with_idempotency_key(book(&unlucky), "iam-stripe-down")).await;
    assert_eq!((status, failed["error"]["code"].as_str()), (502, Some("payment_provider_unavailable")), "{failed}");
    let (_, left) = wire.send(req("GET", "/bookings", Some(&unlucky), None)).await;
    assert_eq!(left["upcoming"], json!([]), "nothing stays held after a 502: {left}");
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{pending}"), Some(pending_tok), None)).await.0, 200);
    // A refund Stripe refuses at the cancel stays owed (its task), for the sweep.
    let (_, refused_tok) = tests::user(&wire.app, Role::Attendee).await;
    let (_, refused) = wire.send(book(&refused_tok)).await;
    let refused = refused["id"].as_str().unwrap().to_string();
    wire.stripe_event("evt_refused", "checkout.session.completed", stripe.pay(&refused)).await;
    stripe.fail_refunds.store(1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(wire.send(req("DELETE", &format!("/bookings/{refused}"), Some(&refused_tok), None)).await.0, 200);
    // crm-sweeper, payment part: a minute after the last hold's time is up (no webhook came); keys
    // are whole seconds, so "exactly at expiry" would race the clock.
    wire.log.take();
    let later = shared::time::now() + chrono::Duration::minutes(shared::model::HOLD_MINUTES + 1);
    let report = shared::payments::sweep_payments(&store, provider.as_ref(), later, 1, &|_| {}).await.unwrap();
    assert_eq!((report.expired, report.refunds, report.errors), (1, 1, 0), "{report:?}");
    wire.check("CrmSweeperFunction", "payment sweep");
    let swept = store.get_booking(swept).await.unwrap().unwrap();
    assert_eq!(swept.status, shared::model::BookingStatus::Expired);

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
        ("CRM_WEBHOOK_SECRET", tests::WEBHOOK_SECRET.to_string()),
    ]);
    let config = crm_notifier::CrmConfig::from_lookup(|name| vars.get(name).cloned()).expect("CRM config");
    let notifier = crm_notifier::Notifier::from_config(store, &config).expect("notifier");
    for round in ["first delivery", "redelivery"] {
        notifier.deliver(&booking).await.unwrap_or_else(|e| panic!("{round}: {e}"));
        wire.check("CrmNotifierFunction", round);
    }
    // Its cancellation's record on the stream: the booking's messages (one Query of its
    // collection, the cancellation claimed and finished), then again (the Query alone).
    for round in ["messages", "messages again"] {
        let outcome = notifier.deliver_booking(&booking.id).await.unwrap_or_else(|e| panic!("{round}: {e}"));
        assert_eq!(outcome.sent().count(), usize::from(round == "messages"), "{round}: {outcome:?}");
        wire.check("CrmNotifierFunction", round);
    }

    // crm-sweeper, CRM part: a sweep ten minutes later finds the bookings never delivered in the
    // pending index, reads them, claims and delivers them; a second sweep only queries.
    let clock = crm_notifier::ManualClock::new();
    clock.advance(std::time::Duration::from_secs(600));
    let sweeper = crm_notifier::Notifier::from_config(notifier.store().clone(), &config)
        .expect("notifier")
        .with_clock(std::sync::Arc::new(clock));
    let budget = sweeper.budget_within(std::time::Duration::ZERO, None);
    for round in ["sweep", "empty sweep"] {
        let report = crm_notifier::sweep(&sweeper, &crm_notifier::SweepConfig::default(), None, budget)
            .await
            .unwrap_or_else(|e| panic!("{round}: {e}"));
        // The second attendee's free booking and the two paid ones confirmed by their webhook,
        // then those two's cancellations (they were confirmed); never the holds that expired or
        // were released.
        assert_eq!(report.delivered, if round == "sweep" { 5 } else { 0 }, "{round}: {report:?}");
        wire.check("CrmSweeperFunction", round);
    }

    // Lifecycle: a reschedule and a cancel through the events function; a first batch of each by
    // the notifier (the job's stream record), the rest by the sweeper (a job left due); the
    // cancel covers a free booking, a paid one (refund task) and an open hold (expiry task).
    let (_, lifecycle_owner) = tests::user(&wire.app, Role::Facilitator).await;
    let paid_event = json!({"title": "Gong", "type": "Sound", "datetime": tests::in_days(4),
        "price": {"amount": 2500, "currency": "eur"}});
    let (status, big) = wire.send(req("POST", "/events", Some(&lifecycle_owner), Some(paid_event))).await;
    assert_eq!(status, 201, "{big}");
    let big = big["id"].as_str().unwrap().to_string();
    for paid in [true, true, false] {
        let (_, tok) = tests::user(&wire.app, Role::Attendee).await;
        let (status, b) = wire.send(req("POST", "/bookings", Some(&tok), Some(json!({"event_id": big})))).await;
        assert_eq!(status, 201, "{b}");
        if paid {
            let id = b["id"].as_str().unwrap().to_string();
            wire.stripe_event(&format!("evt_life_{id}"), "checkout.session.completed", stripe.pay(&id)).await;
        }
    }
    let moved = json!({"datetime": tests::in_days(5)});
    assert_eq!(wire.send(req("PATCH", &format!("/events/{big}"), Some(&lifecycle_owner), Some(moved))).await.0, 200);
    let lifecycle_store = notifier.store().clone();
    wire.log.take();
    let r = shared::lifecycle::run_batch(&lifecycle_store, &big, 2, shared::time::now(), &|_| {}).await.unwrap();
    assert_eq!(r.rescheduled, 2, "{r:?}");
    wire.check("CrmNotifierFunction", "reschedule batch");
    assert_eq!(wire.send(req("POST", &format!("/events/{big}/cancel"), Some(&lifecycle_owner), None)).await.0, 200);
    let r = shared::lifecycle::run_batch(&lifecycle_store, &big, 2, shared::time::now(), &|_| {}).await.unwrap();
    assert_eq!(r.cancelled, 2, "{r:?}");
    wire.check("CrmNotifierFunction", "cancel batch");
    let jobs = shared::lifecycle::run_due_jobs(&lifecycle_store, 2, None, &|_| {}).await.unwrap();
    assert_eq!((jobs.cancelled, jobs.finished), (1, 1), "{jobs:?}");
    wire.check("CrmSweeperFunction", "lifecycle jobs");

    // Waitlists. Events function: a join's first read (event, guard, user) and its write, the
    // owner's page of the line, a leave. Bookings function: a user's places in line, a cancel
    // that hands the seat to the first in line (free: confirmed; priced: an offer). Notifier: an
    // offer opened from its task's stream record, its messages. Payments: an opened offer
    // expired by its webhook, the next promoted. Sweeper: that offer opened by the payment
    // sweep, then expired by it when its time is up, the next promoted. (A capacity increase's
    // promote job makes the same promotion items, through promote_waitlist.)
    let (_, wl_owner) = tests::user(&wire.app, Role::Facilitator).await;
    let mut line_events = Vec::new();
    for price in [None, Some(json!({"amount": 1500, "currency": "eur"}))] {
        let body =
            json!({"title": "Full", "type": "Yoga", "datetime": tests::in_days(3), "capacity": 1, "price": price});
        let (status, ev) = wire.send(req("POST", "/events", Some(&wl_owner), Some(body))).await;
        assert_eq!(status, 201, "{ev}");
        let ev = ev["id"].as_str().unwrap().to_string();
        let (_, holder) = tests::user(&wire.app, Role::Attendee).await;
        let (status, held) = wire.send(req("POST", "/bookings", Some(&holder), Some(json!({"event_id": ev})))).await;
        assert_eq!(status, 201, "{held}");
        let mut waiting = Vec::new();
        for i in 0..3 {
            let (user, _) = tests::user(&wire.app, Role::Attendee).await;
            wire.log.take();
            let context = lifecycle_store.booking_context(&ev, &user.id, None).await.unwrap();
            assert!(context.event.is_some() && !context.waiting);
            let entry = shared::model::WaitEntry {
                event_id: ev.clone(),
                user_id: user.id.clone(),
                user_name: user.name.clone(),
                user_email: user.email.clone(),
                joined_at: shared::time::now() + chrono::Duration::seconds(i),
            };
            lifecycle_store.join_waitlist(&entry, shared::time::now()).await.unwrap();
            wire.check("EventsFunction", "waitlist join");
            waiting.push(user);
        }
        lifecycle_store.waitlist(&ev, None, 10).await.unwrap();
        wire.check("EventsFunction", "waitlist page");
        lifecycle_store.user_waitlist(&waiting[0].id).await.unwrap();
        wire.check("BookingsFunction", "places in line");
        let held = held["id"].as_str().unwrap().to_string();
        assert_eq!(wire.send(req("DELETE", &format!("/bookings/{held}"), Some(&holder), None)).await.0, 200);
        line_events.push((ev, waiting));
    }
    let (free_line, _) = &line_events[0];
    let (paid_line, paid_waiting) = &line_events[1];
    lifecycle_store.leave_waitlist(free_line, &line_events[0].1[2].id).await.unwrap();
    wire.check("EventsFunction", "waitlist leave");
    // A capacity increase with a user waiting: its promote job (events), one batch by the
    // notifier (the job's stream record) promoting them.
    let more = json!({"capacity": 2});
    assert_eq!(wire.send(req("PATCH", &format!("/events/{free_line}"), Some(&wl_owner), Some(more))).await.0, 200);
    wire.log.take();
    let r = shared::lifecycle::run_batch(&lifecycle_store, free_line, 25, shared::time::now(), &|_| {}).await.unwrap();
    assert_eq!(r.promoted, 1, "{r:?}");
    wire.check("CrmNotifierFunction", "promote batch");
    let offer_of = |user_id: String| {
        let store = lifecycle_store.clone();
        let ev = paid_line.clone();
        async move {
            let all = tests::waitlist::all_bookings(&store, &ev).await;
            all.into_iter().find(|b| b.user_id == user_id && b.status.holds_seat()).expect("an offer")
        }
    };
    let first = offer_of(paid_waiting[0].id.clone()).await;
    wire.log.take();
    let opened =
        shared::offers::open_offer(&lifecycle_store, provider.as_ref(), &first, shared::time::now()).await.unwrap();
    assert!(matches!(opened, shared::offers::OfferOutcome::Opened(_)), "{opened:?}");
    wire.check("CrmNotifierFunction", "offer opened from its stream record");
    let answer = wire.stripe_event("evt_offer_exp", "checkout.session.expired", stripe.expire(&first.id)).await;
    assert_eq!(answer["effect"], "expired", "{answer}");
    notifier.deliver_booking(&first.id).await.unwrap();
    wire.check("CrmNotifierFunction", "offered and expired messages");
    let second = offer_of(paid_waiting[1].id.clone()).await;
    wire.log.take();
    let at = shared::time::now() + chrono::Duration::seconds(1);
    let report = shared::payments::sweep_payments(&lifecycle_store, provider.as_ref(), at, 1, &|_| {}).await.unwrap();
    assert_eq!((report.offers_opened, report.errors), (1, 0), "{report:?}");
    wire.check("CrmSweeperFunction", "offer opened by the payment sweep");
    let ends = second.payment.as_ref().unwrap().expires_at + chrono::Duration::minutes(1);
    let report = shared::payments::sweep_payments(&lifecycle_store, provider.as_ref(), ends, 2, &|_| {}).await.unwrap();
    assert_eq!((report.expired, report.errors), (1, 0), "{report:?}");
    wire.check("CrmSweeperFunction", "offer expired by the payment sweep, the next promoted");
    offer_of(paid_waiting[2].id.clone()).await;

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
        ("PaymentsFunction", "payments"),
        ("CrmNotifierFunction", "crm-notifier"),
        ("CrmSweeperFunction", "crm-sweeper"),
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

/// Lambda event filtering as AWS documents it for the patterns used here
/// (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html): every field of
/// the pattern must be in the record (AND), a list of values matches a record value equal to any
/// of them (OR); objects nest. `[{"exists": false}]` matches a leaf the record does not have,
/// also when a level above it is missing
/// (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html#filtering-ddb-exists).
/// Any other form (operators such as `prefix`, `exists: true`, numbers) is refused rather than
/// half-modelled.
fn filter_matches(pattern: &serde_json::Value, record: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match pattern {
        J::Object(fields) => fields.iter().all(|(k, p)| match record.get(k) {
            Some(r) => filter_matches(p, r),
            None => matches_absent(p),
        }),
        // Present, so it exists.
        J::Array(_) if is_not_exists(pattern) => false,
        J::Array(values) => {
            assert!(values.iter().all(J::is_string), "only exact string matches are modelled: {pattern}");
            values.contains(record)
        }
        other => panic!("a filter pattern leaf must be a list of values, got {other}"),
    }
}

fn is_not_exists(p: &serde_json::Value) -> bool {
    *p == serde_json::json!([{"exists": false}])
}

/// A pattern a missing field satisfies: `exists: false` at every leaf below it.
fn matches_absent(p: &serde_json::Value) -> bool {
    match p {
        serde_json::Value::Object(fields) => fields.values().all(matches_absent),
        other => is_not_exists(other),
    }
}

/// The mapping's filter patterns; a record that matches any of them invokes the function (the
/// same page: "If an event satisfies any one of the filters, Lambda sends the event").
fn stream_filters(t: &Value) -> Vec<serde_json::Value> {
    let m = at(t, &["Resources", "CrmStreamMapping", "Properties"]);
    let filters = seq(at(m, &["FilterCriteria", "Filters"]));
    filters.iter().map(|f| serde_json::from_str(str_at(f, &["Pattern"])).expect("filter is JSON")).collect()
}

fn passes(filters: &[serde_json::Value], record: &serde_json::Value) -> bool {
    filters.iter().any(|p| filter_matches(p, record))
}

#[test]
fn filter_model_follows_the_documented_semantics() {
    use serde_json::json;
    let p = json!({"a": ["x", "y"], "b": {"c": ["z"]}});
    assert!(filter_matches(&p, &json!({"a": "y", "b": {"c": "z", "d": 1}, "e": 2})));
    assert!(!filter_matches(&p, &json!({"a": "w", "b": {"c": "z"}})), "OR within a list only");
    assert!(!filter_matches(&p, &json!({"a": "x"})), "every field must be present");
    assert!(!filter_matches(&p, &json!({"a": "x", "b": {"c": "Z"}})), "case-sensitive");
    let absent = json!({"a": ["x"], "l": {"S": [{"exists": false}]}});
    assert!(filter_matches(&absent, &json!({"a": "x"})), "a missing attribute does not exist");
    assert!(!filter_matches(&absent, &json!({"a": "x", "l": {"S": "owner"}})));
}

/// The notifier is invoked for booking items whose new image is `confirmed` (a free booking's
/// INSERT, a paid booking's confirming MODIFY) and for the INSERT of every CRM message record but
/// the confirmation's (which the booking's image already sends), and for nothing else: not a seat
/// hold, its expiry, a cancellation's booking MODIFY, a refund, a claim, a removal or another
/// entity; and for a lifecycle job's image without a lease owner (the cancel's or reschedule's
/// write, and each batch's saved cursor), never for a claim or the job's deletion; and for a
/// waitlist offer's `Offer` payment task INSERT (its session is opened), never for a hold's task
/// or the MODIFY that turns the offer's task into its hold. Checked field by field against the names and values the code writes, and by running
/// the patterns over every stream fixture in `events/` (`tests/tests/crm_notifier/payload.rs` and
/// `crm_messages/` check what the handler sends for them).
#[test]
fn stream_mapping_selects_confirmed_bookings_new_messages_and_unleased_jobs_only() {
    use serde_json::json;
    use shared::model::MessageKind;
    let t = template();
    let filters = stream_filters(&t);
    assert_eq!(filters.len(), 4, "{filters:?}");
    // Lambda's default quota: five filters per event source mapping
    // (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
    assert!(filters.len() <= 5);
    let (booking, message) = (&filters[0], &filters[1]);
    assert_eq!(booking["eventName"], json!(["INSERT", "MODIFY"]));
    let image = &booking["dynamodb"]["NewImage"];
    assert_eq!(image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::BOOKING]));
    assert_eq!(image["status"]["S"], json!([shared::model::BookingStatus::Confirmed.as_str()]));
    assert_eq!(booking.as_object().map(|o| o.len()), Some(2), "{booking}");
    assert_eq!(image.as_object().map(|o| o.len()), Some(2), "{booking}");
    // The attribute is the booking's `status` as stored (serde name), with that value.
    let stored = serde_json::to_value(shared::model::BookingStatus::Confirmed).unwrap();
    assert_eq!(image["status"]["S"][0], stored);
    // New message records, by their `kind` as serde stores it: every kind but the confirmation.
    assert_eq!(message["eventName"], json!(["INSERT"]));
    let image = &message["dynamodb"]["NewImage"];
    assert_eq!(image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::DELIVERY]));
    let others: Vec<serde_json::Value> =
        [MessageKind::Rescheduled, MessageKind::Offered, MessageKind::Expired, MessageKind::Cancelled]
            .iter()
            .map(|k| serde_json::to_value(k).unwrap())
            .collect();
    assert_eq!(image["kind"]["S"], json!(others));
    assert_eq!(image.as_object().map(|o| o.len()), Some(2), "{message}");

    let dir = tests::workspace_root().join("events");
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_prefix("stream-").and_then(|n| n.strip_suffix(".json")) else { continue };
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&name)).unwrap()).unwrap();
        let records = event["Records"].as_array().expect("Records");
        assert_eq!(records.len(), 1, "{name}");
        seen.insert(stem.to_string(), passes(&filters, &records[0]));
    }
    let want = BTreeMap::from([
        ("booking-insert".to_string(), true),
        ("booking-paid-confirmed".to_string(), true),
        ("booking-paid-pending".to_string(), false),
        ("booking-modify".to_string(), false),
        ("booking-remove".to_string(), false),
        ("delivery-cancelled-insert".to_string(), true),
        ("delivery-confirmed-insert".to_string(), false),
        ("other-entity".to_string(), false),
        // a refresh-token rotation, and the family's TTL deletion (a REMOVE by the service)
        ("session-rotate".to_string(), false),
        ("session-ttl-remove".to_string(), false),
        // a lifecycle job as the cancel writes it, and as a batch saves it: the next batch; a
        // claim (lease owner set) and the job's deletion are not
        ("job-insert".to_string(), true),
        ("job-saved".to_string(), true),
        ("job-claimed".to_string(), false),
        ("job-remove".to_string(), false),
        // waitlist offers: the booking.offered and booking.expired records; the offer's task as
        // the promotion writes it (its session is opened), not a direct booking's hold task nor
        // the MODIFY turning the offer's task into its hold
        ("delivery-offered-insert".to_string(), true),
        ("delivery-expired-insert".to_string(), true),
        ("payment-task-offer-insert".to_string(), true),
        ("payment-task-hold-insert".to_string(), false),
        ("payment-task-hold-modify".to_string(), false),
    ]);
    // Offer tasks, by the entity tag and the `kind` the store writes (serde names).
    let offers = &filters[2];
    assert_eq!(offers["eventName"], json!(["INSERT"]));
    let offer_image = &offers["dynamodb"]["NewImage"];
    assert_eq!(offer_image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::PAYMENT_TASK]));
    let task = shared::model::PaymentTask {
        booking_id: "B".into(),
        kind: shared::model::PaymentTaskKind::Offer,
        due_at: shared::time::now(),
    };
    assert_eq!(offer_image["kind"]["S"], json!([serde_json::to_value(&task).unwrap()["kind"]]));
    assert_eq!(offer_image.as_object().map(|o| o.len()), Some(2), "{offers}");
    let jobs = &filters[3];
    let job_image = &jobs["dynamodb"]["NewImage"];
    assert_eq!(job_image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::JOB]));
    // The attribute the store writes for the lease, as serde names the field.
    let mut claimed = shared::model::Job::new("E", shared::model::JobKind::Cancel, 0, shared::time::now());
    claimed.lease_owner = Some("w".into());
    assert!(serde_json::to_value(&claimed).unwrap().get("lease_owner").is_some());
    assert!(job_image["lease_owner"]["S"] == json!([{"exists": false}]), "{jobs}");
    assert_eq!(seen, want, "which stream fixtures the mapping lets through");

    let m = at(&t, &["Resources", "CrmStreamMapping", "Properties"]);
    assert_eq!(str_at(m, &["StartingPosition"]), "LATEST");
    assert_eq!(at(m, &["BisectBatchOnFunctionError"]).as_bool(), Some(true));
    assert_eq!(seq(at(m, &["FunctionResponseTypes"]))[0].as_str(), Some("ReportBatchItemFailures"));
    assert!(at(m, &["DestinationConfig", "OnFailure", "Destination"]).is_string());
    assert_eq!(
        at(&t, &["Resources", "CrmDeadLetterQueue", "Properties", "MessageRetentionPeriod"]).as_u64(),
        Some(14 * 24 * 3600)
    );
}

// HTTP API routes: tests/tests/template_routes.rs, on the model in `tests::apigw`.

fn routes(t: &Value) -> Vec<Route> {
    tests::apigw::template_routes(t)
}

// ---------------------------------------------------------------- operations

/// `Fn::If` / `Ref` / `Condition` as serde_yaml reads the short forms.
fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// Like [`at`], but the value at the end keeps its tag (`!If`, `!Ref`).
fn raw_at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let (last, parents) = path.split_last().expect("a path");
    at(v, parents).get(*last).unwrap_or_else(|| panic!("template has no {}", path.join(".")))
}

fn ref_name(v: &Value) -> Option<&str> {
    tagged(v, "Ref").and_then(Value::as_str)
}

fn resources_of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    at(t, &["Resources"])
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .map(|(id, r)| (id.as_str().unwrap().to_string(), r))
        .collect()
}

/// Every alarm notifies (the given topic, or the one the stack creates) on ALARM and OK; there is a
/// dead-letter queue depth alarm, a stream iterator-age alarm on the notifier, an `Errors` alarm for
/// every function, and a 5xx alarm on the HTTP API.
#[test]
fn alarms_cover_every_function_the_queue_the_stream_and_the_api_and_notify() {
    let t = template();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let topic = |v: &Value, id: &str, what: &str| {
        let actions = seq(at(v, &["Properties", what]));
        assert_eq!(actions.len(), 1, "{id}: {what}");
        let choice = tagged(&actions[0], "If").unwrap_or_else(|| panic!("{id}: {what} is not !If"));
        let choice = seq(choice);
        assert_eq!(choice[0].as_str(), Some("CreateAlarmTopic"), "{id}");
        assert_eq!(ref_name(&choice[1]), Some("AlarmTopic"), "{id}");
        assert_eq!(ref_name(&choice[2]), Some("AlarmTopicArn"), "{id}");
    };
    let mut metrics = BTreeSet::new();
    for (id, a) in &alarms {
        topic(a, id, "AlarmActions");
        topic(a, id, "OKActions");
        let p = at(a, &["Properties"]);
        if id == "RefundFailedAlarm" {
            // A metric of the stack's own log filters (template_ops.rs checks them).
            metrics.insert(format!(
                "{}/{}",
                serde_yaml::to_string(at(p, &["Namespace"])).unwrap().trim(),
                str_at(p, &["MetricName"])
            ));
            continue;
        }
        let dims = seq(at(p, &["Dimensions"]));
        assert_eq!(dims.len(), 1, "{id}: one dimension");
        let value = raw_at(&dims[0], &["Value"]);
        let target = ref_name(value)
            .map(String::from)
            .or_else(|| tagged(value, "GetAtt").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| panic!("{id}: dimension value is not a !Ref or !GetAtt"));
        metrics.insert(format!(
            "{}/{} {}={target}",
            str_at(p, &["Namespace"]),
            str_at(p, &["MetricName"]),
            str_at(&dims[0], &["Name"])
        ));
        assert!(at(p, &["Threshold"]).as_f64().is_some(), "{id}: threshold");
        assert_eq!(str_at(p, &["TreatMissingData"]), "notBreaching", "{id}");
    }
    let mut want: BTreeSet<String> =
        functions(&t).iter().map(|(id, _)| format!("AWS/Lambda/Errors FunctionName={id}")).collect();
    want.extend([
        "AWS/SQS/NumberOfMessagesSent QueueName=CrmDeadLetterQueue.QueueName".to_string(),
        "AWS/Lambda/IteratorAge FunctionName=CrmNotifierFunction".to_string(),
        "AWS/ApiGateway/5xx ApiId=HttpApi".to_string(),
        "${AWS::StackName}/payments/RefundFailed".to_string(),
    ]);
    assert_eq!(metrics, want);
    // The topic the stack creates only when none is given.
    let created = at(&t, &["Resources", "AlarmTopic"]);
    assert_eq!(str_at(created, &["Condition"]), "CreateAlarmTopic");
    assert_eq!(str_at(&t, &["Parameters", "AlarmTopicArn", "Default"]), "");
}

/// `sam local invoke --env-vars` overrides only variables the template declares, so the endpoint
/// override must be declared for every function; deployed with the default parameter it is absent.
#[test]
fn every_function_can_be_pointed_at_a_local_dynamodb() {
    let t = template();
    assert_eq!(str_at(&t, &["Parameters", "DynamoEndpoint", "Default"]), "");
    let var = raw_at(&t, &["Globals", "Function", "Environment", "Variables", "AWS_ENDPOINT_URL_DYNAMODB"]);
    let choice = seq(tagged(var, "If").expect("AWS_ENDPOINT_URL_DYNAMODB is an !If"));
    assert_eq!(choice[0].as_str(), Some("HasDynamoEndpoint"));
    assert_eq!(ref_name(&choice[1]), Some("DynamoEndpoint"));
    assert_eq!(ref_name(&choice[2]), Some("AWS::NoValue"));
    for (id, f) in functions(&t) {
        let own = untag(f).get("Properties").and_then(|p| p.get("Environment"));
        let own = own.and_then(|e| e.get("Variables")).and_then(|v| v.get("AWS_ENDPOINT_URL_DYNAMODB"));
        assert!(own.is_none(), "{id} overrides the global AWS_ENDPOINT_URL_DYNAMODB");
    }
}

/// CORS and X-Ray are opt-in: off with the default parameters.
#[test]
fn cors_and_tracing_are_off_by_default() {
    let t = template();
    assert_eq!(str_at(&t, &["Parameters", "CorsAllowOrigins", "Default"]), "");
    let cors = raw_at(&t, &["Resources", "HttpApi", "Properties", "CorsConfiguration"]);
    let choice = seq(tagged(cors, "If").expect("CorsConfiguration is an !If"));
    assert_eq!(choice[0].as_str(), Some("HasCors"));
    assert_eq!(ref_name(&choice[2]), Some("AWS::NoValue"));
    assert_eq!(str_at(&t, &["Parameters", "TracingMode", "Default"]), "Disabled");
    assert_eq!(ref_name(raw_at(&t, &["Globals", "Function", "Tracing"])), Some("TracingMode"));
}

/// The environment variables a function declares, with their raw (tagged) values.
fn env_vars(f: &Value) -> BTreeMap<String, &Value> {
    let Some(vars) = untag(f).get("Properties").and_then(|p| p.get("Environment")).and_then(|e| e.get("Variables"))
    else {
        return BTreeMap::new();
    };
    untag(vars).as_mapping().expect("Variables").iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v)).collect()
}

/// `!If [PaymentsOn, <then>, !Ref AWS::NoValue]`: the `then` branch.
fn only_with_payments<'a>(id: &str, name: &str, v: &'a Value) -> &'a Value {
    let choice = seq(tagged(v, "If").unwrap_or_else(|| panic!("{id}.{name} is not an !If")));
    assert_eq!(choice[0].as_str(), Some("PaymentsOn"), "{id}.{name}");
    assert_eq!(ref_name(&choice[2]), Some("AWS::NoValue"), "{id}.{name}: declared at all only with payments on");
    &choice[1]
}

/// Payments are off unless both Stripe secrets are given (and the Rules refuse one alone); the
/// secrets reach only the functions that call Stripe or check its signatures, as the ARNs of the
/// Secrets Manager secrets they read at init (never a value in the template); the events function
/// gets the switch only.
#[test]
fn stripe_secrets_reach_only_the_functions_that_need_them() {
    let t = template();
    let text = std::fs::read_to_string(tests::workspace_root().join("template.yaml")).unwrap();
    // A value: a known prefix followed by key material (a description may name the prefix).
    for prefix in ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"] {
        for (at, _) in text.match_indices(prefix) {
            let material = text[at + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).count();
            assert!(material < 8, "a Stripe secret value ({prefix}...) in template.yaml");
        }
    }
    for p in ["StripeSecretKeyArn", "StripeWebhookSecretArn", "PaymentSuccessUrl", "PaymentCancelUrl"] {
        assert_eq!(str_at(&t, &["Parameters", p, "Default"]), "", "{p}: payments are off by default");
    }
    // PaymentsOn = both ARNs non-empty.
    let on = seq(tagged(raw_at(&t, &["Conditions", "PaymentsOn"]), "And").expect("PaymentsOn is an !And"));
    let mut given: Vec<&str> = on
        .iter()
        .map(|c| {
            let eq = seq(tagged(&seq(tagged(c, "Not").expect("!Not"))[0], "Equals").expect("!Equals"));
            assert_eq!(eq[1].as_str(), Some(""));
            ref_name(&eq[0]).expect("!Ref")
        })
        .collect();
    given.sort();
    assert_eq!(given, ["StripeSecretKeyArn", "StripeWebhookSecretArn"]);
    for rule in ["StripeSecretsTogether", "PaymentRedirects"] {
        assert!(!seq(at(&t, &["Rules", rule, "Assertions"])).is_empty(), "{rule}");
    }

    let key = "StripeSecretKeyArn".to_string();
    let webhook = "StripeWebhookSecretArn".to_string();
    // function -> variable -> the parameter it holds when payments are on
    let want: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::from([
        ("AuthFunction", BTreeMap::new()),
        ("EventsFunction", BTreeMap::new()),
        (
            "BookingsFunction",
            BTreeMap::from([
                ("STRIPE_SECRET_KEY_ID", key.clone()),
                ("PAYMENT_SUCCESS_URL", "PaymentSuccessUrl".to_string()),
                ("PAYMENT_CANCEL_URL", "PaymentCancelUrl".to_string()),
            ]),
        ),
        (
            "PaymentsFunction",
            BTreeMap::from([("STRIPE_WEBHOOK_SECRET_ID", webhook.clone()), ("STRIPE_SECRET_KEY_ID", key.clone())]),
        ),
        // the notifier opens waitlist offers from their task's stream record, and the sweeper
        // those Stripe could not open at once: both create Checkout Sessions
        (
            "CrmNotifierFunction",
            BTreeMap::from([
                ("STRIPE_SECRET_KEY_ID", key.clone()),
                ("PAYMENT_SUCCESS_URL", "PaymentSuccessUrl".to_string()),
                ("PAYMENT_CANCEL_URL", "PaymentCancelUrl".to_string()),
            ]),
        ),
        (
            "CrmSweeperFunction",
            BTreeMap::from([
                ("STRIPE_SECRET_KEY_ID", key.clone()),
                ("PAYMENT_SUCCESS_URL", "PaymentSuccessUrl".to_string()),
                ("PAYMENT_CANCEL_URL", "PaymentCancelUrl".to_string()),
            ]),
        ),
    ]);
    let fns = functions(&t);
    assert_eq!(fns.iter().map(|(id, _)| id.as_str()).collect::<BTreeSet<_>>(), want.keys().copied().collect());
    for (id, f) in &fns {
        let vars = env_vars(f);
        let got: BTreeMap<&str, String> = vars
            .iter()
            .filter(|(name, _)| name.starts_with("STRIPE_") || name.starts_with("PAYMENT_"))
            // The plain secret names, declared empty for `sam local` (tests/tests/template_secrets.rs).
            .filter(|(_, v)| tagged(v, "If").is_none_or(|c| seq(c)[0].as_str() != Some("HasDynamoEndpoint")))
            .map(|(name, v)| {
                let then = only_with_payments(id, name, v);
                let held = tagged(then, "Sub")
                    .and_then(Value::as_str)
                    .or_else(|| ref_name(then))
                    .unwrap_or_else(|| panic!("{id}.{name}: neither a !Sub nor a !Ref"));
                (name.as_str(), held.to_string())
            })
            .collect();
        assert_eq!(got, want[id.as_str()], "{id}: Stripe configuration");
        // The switch: only the events function needs it (the others know from the key).
        match vars.get("PAYMENTS_ENABLED") {
            Some(v) => {
                assert_eq!(id, "EventsFunction", "{id} declares PAYMENTS_ENABLED");
                let choice = seq(tagged(v, "If").expect("PAYMENTS_ENABLED is an !If"));
                assert_eq!(choice[0].as_str(), Some("PaymentsOn"));
                assert_eq!((choice[1].as_str(), choice[2].as_str()), (Some("true"), Some("false")));
            }
            None => assert_ne!(id, "EventsFunction", "EventsFunction needs PAYMENTS_ENABLED"),
        }
    }
}

/// The webhook function: the workspace's `payments` binary, 128 MB (the global default), an
/// `Errors` alarm (checked with the others), its own log group, and more time than the global
/// 10 s for the one Stripe call it may make; the bookings function likewise; both under the HTTP
/// API's 30 s integration timeout.
#[test]
fn payments_function_is_deployed_like_the_others() {
    let t = template();
    let f = at(&t, &["Resources", "PaymentsFunction", "Properties"]);
    assert!(f.get("MemorySize").is_none(), "128 MB like the others (Globals)");
    assert_eq!(at(&t, &["Globals", "Function", "MemorySize"]).as_u64(), Some(128));
    assert_eq!(str_at(f, &["LoggingConfig", "LogFormat"]), "JSON");
    assert_eq!(ref_name(raw_at(f, &["LoggingConfig", "LogGroup"])), Some("PaymentsLogGroup"));
    for id in ["PaymentsFunction", "BookingsFunction"] {
        let timeout = at(&t, &["Resources", id, "Properties", "Timeout"]).as_u64().expect("Timeout");
        assert!((15..30).contains(&timeout), "{id}: {timeout}");
    }
    let output = str_at(&t, &["Outputs", "PaymentsWebhookUrl", "Value"]);
    assert!(output.ends_with("/payments/webhook") && output.starts_with("https://${HttpApi}."), "{output}");
}

/// The sweeper runs every 10 minutes from an EventBridge schedule, for longer than a request but
/// less than the schedule's period. The same run sweeps the payment holds (31 minutes long) whose
/// webhook never came: such a seat is freed at most one period after its hold ends
/// (docs/deploy.md, Payments).
#[test]
fn crm_sweeper_runs_every_ten_minutes() {
    let t = template();
    let f = at(&t, &["Resources", "CrmSweeperFunction", "Properties"]);
    let events = at(f, &["Events"]).as_mapping().expect("Events");
    assert_eq!(events.len(), 1);
    let (_, event) = events.iter().next().unwrap();
    assert_eq!(str_at(event, &["Type"]), "Schedule");
    assert_eq!(str_at(event, &["Properties", "Schedule"]), "rate(10 minutes)");
    let timeout = at(f, &["Timeout"]).as_u64().expect("Timeout");
    assert!((60..600).contains(&timeout), "{timeout}");
    let vars = at(f, &["Environment", "Variables"]);
    for name in [
        "CRM_WEBHOOK_URL",
        "CRM_WEBHOOK_SECRET_ID",
        "CRM_SWEEP_MIN_AGE_SECONDS",
        "CRM_SWEEP_LOOKBACK_DAYS",
        "STRIPE_SECRET_KEY_ID",
    ] {
        assert!(vars.get(name).is_some(), "{name}");
    }
}
