//! JSON Schemas (schemars 1) of the types whose serialised form is written
//! by hand: timestamps (RFC 3339 strings, stored as milliseconds) and
//! namespaces (arrays of segments). The `schema` feature derives the rest
//! from the types themselves; the server publishes them in its OpenAPI
//! document and MCP in its tool descriptions.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

/// An RFC 3339 timestamp, e.g. `2026-12-06T23:11:30.123Z` (how every
/// `Millis` and `LocalTime` field is written).
pub struct Rfc3339;

impl JsonSchema for Rfc3339 {
    fn schema_name() -> Cow<'static, str> {
        "Rfc3339".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl JsonSchema for crate::time::LocalTime {
    fn schema_name() -> Cow<'static, str> {
        Rfc3339::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        Rfc3339::json_schema(g)
    }
}

impl JsonSchema for crate::model::Namespace {
    fn schema_name() -> Cow<'static, str> {
        "Namespace".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Namespace segments, e.g. [\"users\", \"alice\"]: 1-8 segments of 1-64 characters of [A-Za-z0-9_.:@-] (the root of a listing is empty).",
            "type": "array",
            "items": { "type": "string" },
            "maxItems": crate::model::namespace::MAX_SEGMENTS
        })
    }
}
