//! `template.yaml` against the code: the `Table` resource equals what `shared::table::create_table`
//! builds (checked on moto with DescribeTable, and statically against `shared::table::TABLE`), the
//! IAM stays least-privilege (no scans, no wildcards, every table statement scoped to the partition
//! keys `shared::keys` builds for the entities the function owns, index statements only
//! `dynamodb:Query` on a named index, and every DynamoDB call the functions make on moto allowed by
//! their own policy), and the stream filter selects the entity name the code writes. The HTTP API's
//! routes are checked in `template_routes.rs`, the operational settings in `template_ops.rs`.

mod grants;
mod least_privilege;
mod operations;
mod ownership;
mod policy;
mod stream;
mod stripe_config;
mod table;
mod wire;
mod yaml;
