//! The table definition in one place: the admin CLI creates it from this, tests create their
//! tables from it, and a test checks `template.yaml` against it.

pub struct IndexSpec {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
}

pub struct TableSpec {
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// All projected `ALL`.
    pub indexes: &'static [IndexSpec],
    /// Stream view type.
    pub stream_view: &'static str,
    pub ttl_attribute: &'static str,
    pub billing_mode: &'static str,
}

pub const TABLE: TableSpec = TableSpec {
    partition_key: crate::keys::PK,
    sort_key: crate::keys::SK,
    indexes: &[
        IndexSpec { name: crate::keys::GSI1, partition_key: crate::keys::GSI1PK, sort_key: crate::keys::GSI1SK },
        IndexSpec { name: crate::keys::GSI2, partition_key: crate::keys::GSI2PK, sort_key: crate::keys::GSI2SK },
    ],
    stream_view: "NEW_IMAGE",
    ttl_attribute: crate::keys::TTL,
    billing_mode: "PAY_PER_REQUEST",
};

impl TableSpec {
    /// Every key attribute (all strings), table keys first.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut attrs = vec![self.partition_key, self.sort_key];
        for ix in self.indexes {
            attrs.push(ix.partition_key);
            attrs.push(ix.sort_key);
        }
        attrs
    }
}

/// Creates the table exactly as `template.yaml` declares it (checked by a test), with the TTL.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> crate::Result<()> {
    use crate::Error;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    };
    let key = |attr: &str, kind: KeyType| {
        KeySchemaElement::builder().attribute_name(attr).key_type(kind).build().map_err(Error::internal)
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(TABLE.billing_mode))
        .key_schema(key(TABLE.partition_key, KeyType::Hash)?)
        .key_schema(key(TABLE.sort_key, KeyType::Range)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(TABLE.stream_view))
                .build()
                .map_err(Error::internal)?,
        );
    for attr in TABLE.key_attributes() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(Error::internal)?,
        );
    }
    for ix in TABLE.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(ix.name)
                .key_schema(key(ix.partition_key, KeyType::Hash)?)
                .key_schema(key(ix.sort_key, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(Error::internal)?,
        );
    }
    request.send().await.map_err(|e| {
        Error::internal(format!("CreateTable {name}: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)))
    })?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TABLE.ttl_attribute)
                .build()
                .map_err(Error::internal)?,
        )
        .send()
        .await
        .map_err(|e| {
            Error::internal(format!(
                "UpdateTimeToLive {name}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            ))
        })?;
    Ok(())
}
