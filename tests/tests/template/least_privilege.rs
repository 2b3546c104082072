use crate::policy::{actions, table_policies, template_statements, Statement};
use crate::yaml::{at, functions, seq, str_at, template, untag};
use std::collections::{BTreeMap, BTreeSet};

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

/// DynamoDB actions that read or write items; the stream actions are on the stream, not here.
pub const ITEM_ACTIONS: &[&str] = &[
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

pub const WRITE_ACTIONS: &[&str] = &[
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

/// Independent of the expected grants (`grants.rs`): whatever a statement is called, an item
/// action (above all a write) is allowed only on the table or a named index, and only with a
/// LeadingKeys condition whose patterns each start with a fixed prefix, so never for a request
/// without a partition key.
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
