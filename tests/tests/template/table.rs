use crate::yaml::{at, seq, str_at, template};
use serde_yaml::Value;
use shared::table::TABLE;
use std::collections::{BTreeMap, BTreeSet};

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
