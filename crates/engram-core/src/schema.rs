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

/// `[A-Za-z0-9_.:@-]`, 1–64 of them, not `.` or `..` (a namespace segment;
/// written without look-ahead, which generators of examples do not all read).
const SEGMENT: &str =
    r"^(?:[A-Za-z0-9_:@-][A-Za-z0-9_.:@-]{0,63}|\.[A-Za-z0-9_:@-][A-Za-z0-9_.:@-]{0,62}|\.\.[A-Za-z0-9_.:@-]{1,62})$";

fn segments(min: usize) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "type": "string", "pattern": SEGMENT },
        "minItems": min,
        "maxItems": crate::model::namespace::MAX_SEGMENTS
    })
}

/// A namespace in a request: 1–8 segments.
pub struct NamespaceIn;

impl JsonSchema for NamespaceIn {
    fn schema_name() -> Cow<'static, str> {
        "NamespaceIn".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = segments(1);
        s.insert(
            "description".into(),
            "Namespace segments, e.g. [\"users\", \"alice\"]: 1-8 segments of 1-64 characters of [A-Za-z0-9_.:@-], not \".\" or \"..\".".into(),
        );
        s
    }
}

/// A namespace prefix in a request: 0–8 segments (none: everything).
pub struct PrefixIn;

impl JsonSchema for PrefixIn {
    fn schema_name() -> Cow<'static, str> {
        "PrefixIn".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = segments(0);
        s.insert("description".into(), "Namespace prefix: whole segments, 0-8 of them ([] is everything).".into());
        s
    }
}

/// A session id: 1–128 characters of `[A-Za-z0-9_.:@-]`, not `.` or `..`.
pub struct SessionId;

impl JsonSchema for SessionId {
    fn schema_name() -> Cow<'static, str> {
        "SessionId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": r"^(?:[A-Za-z0-9_:@-][A-Za-z0-9_.:@-]{0,127}|\.[A-Za-z0-9_:@-][A-Za-z0-9_.:@-]{0,126}|\.\.[A-Za-z0-9_.:@-]{1,126})$"
        })
    }
}

/// The long-term tiers, by name.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // a schema only
pub enum TierName {
    Episodic,
    Semantic,
}

/// How a search ranks.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SearchMode {
    Hybrid,
    Vector,
    Keyword,
}

/// `wait` on a write: `indexed` returns once findable by meaning.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum Wait {
    Indexed,
}

/// A key's scopes.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ScopeName {
    Read,
    Write,
    Admin,
}

/// A filter: a JSON object in the MongoDB query style.
pub struct Filter;

impl JsonSchema for Filter {
    fn schema_name() -> Cow<'static, str> {
        "Filter".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "MongoDB-style filter, e.g. {\"metadata.topic\": \"food\", \"tags\": {\"$in\": [\"x\"]}}. Fields: metadata.<name> (items: value.<name>), tags, tier, key, salience, created_at, updated_at. Operators: $eq $ne $gt $gte $lt $lte $in $nin $exists $all $and $or $not; at most 8 deep and 64 clauses.",
            "type": "object"
        })
    }
}
