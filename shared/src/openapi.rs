//! Schema-only types for the OpenAPI document (feature `openapi`, enabled by the generator in
//! `openapi/` alone). The views hold borrowed strings and [`Rfc3339`](crate::time::Rfc3339)
//! wrappers; these name what a client sees instead: an opaque id, a UTC time.

use serde_json::json;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// An opaque id; a component, so that every id field points at one description.
pub struct Id;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("Opaque identifier (a ULID today). Do not assume integers or any format."))
            .examples([json!("01J8Z3V4W5X6Y7Z8A9B0C1D2E3")])
            .into()
    }
}

impl ToSchema for Id {}

/// A time as the API writes it (inlined where used).
pub struct UtcTime;

impl PartialSchema for UtcTime {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .description(Some("RFC 3339, always UTC with `Z`, whole seconds."))
            .examples([json!("2025-08-01T10:00:00Z")])
            .into()
    }
}

impl ToSchema for UtcTime {}

/// The roles `POST /auth/register` accepts (`admin` is granted by operators only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // a schema, never built
pub enum SelfAssignedRole {
    Attendee,
    Facilitator,
}
