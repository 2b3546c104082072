use crate::yaml::{at, functions, seq, str_at, untag};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A function's policies but its `ReadSecrets` one (secretsmanager:GetSecretValue on the secrets
/// it reads at init, possibly under `!If`), which tests/tests/template_secrets.rs checks.
pub fn table_policies(f: &Value) -> Vec<&Value> {
    let is_secrets = |p: &Value| {
        let mut acts = Vec::new();
        actions(p, &mut acts);
        !acts.is_empty() && acts.iter().all(|a| a.starts_with("secretsmanager:"))
    };
    seq(at(f, &["Properties", "Policies"])).iter().filter(|p| !is_secrets(p)).collect()
}

/// Every `Action` string of every IAM statement anywhere under `v`.
pub fn actions(v: &Value, out: &mut Vec<String>) {
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

/// An IAM statement of a function's policy, in the shape the checks need.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Statement {
    pub sid: String,
    pub actions: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    /// `ForAllValues:StringLike` patterns on `dynamodb:LeadingKeys`.
    pub leading_keys: Option<BTreeSet<String>>,
    /// `Null: {dynamodb:LeadingKeys: 'false'}`: a request without a partition key (a Scan) does not
    /// match, which `ForAllValues` alone would let through.
    pub requires_leading_keys: bool,
}

impl Statement {
    pub fn scoped(&self) -> bool {
        self.leading_keys.as_ref().is_some_and(|p| !p.is_empty()) && self.requires_leading_keys
    }

    /// Whether this statement allows `action` on `resource` for a request naming these partition
    /// keys (every key must match a pattern: `ForAllValues`).
    pub fn allows(&self, action: &str, resource: &str, keys: &[String]) -> bool {
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

pub fn template_statements(t: &Value) -> BTreeMap<String, Vec<Statement>> {
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

/// A function's `DenySessions` statement: the item actions it refuses, on which resources, for a
/// request naming any partition key matching a pattern (`ForAnyValue:StringLike`).
pub struct Denial {
    pub actions: BTreeSet<String>,
    pub resources: BTreeSet<String>,
    pub patterns: BTreeSet<String>,
}

impl Denial {
    /// IAM's `ForAnyValue`: one matching key is enough; a request naming no key is not denied
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
    pub fn denies(&self, action: &str, resource: &str, keys: &[String]) -> bool {
        self.actions.contains(action)
            && self.resources.contains(resource)
            && keys.iter().any(|k| self.patterns.iter().any(|p| glob(p, k)))
    }
}

/// The Deny statements of a function's table policies; only the shape DenySessions has is read.
pub fn denials(id: &str, f: &Value) -> Vec<Denial> {
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
