//! The memory record, its tiers and provenance, and the validated inputs that
//! create or change one.

use serde::Serialize;
use serde_json::{Map, Value};

use super::namespace::Namespace;
use crate::error::{Error, Result};
use crate::time::{serde_rfc3339, Millis};

/// Longest memory text, in bytes.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Most tags on one memory.
pub const MAX_TAGS: usize = 64;
/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 128;
/// Most entries in `metadata`.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// Longest `ttl_seconds` (100 years).
pub const MAX_TTL_SECONDS: i64 = 100 * 365 * 86_400;
/// Salience given to a new memory when the caller does not say.
pub const DEFAULT_SALIENCE: f64 = 0.5;

/// Which long-term tier a memory lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Episodic,
    Semantic,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Episodic => "episodic",
            Tier::Semantic => "semantic",
        }
    }

    /// Decodes the stored form ([`Tier::as_str`]); anything else is episodic.
    pub fn from_stored(s: &str) -> Self {
        if s == "semantic" {
            Tier::Semantic
        } else {
            Tier::Episodic
        }
    }

    /// Parses a caller's tier; `field` names it in the error.
    pub fn parse(s: &str, field: &str) -> Result<Self> {
        match s {
            "episodic" => Ok(Tier::Episodic),
            "semantic" => Ok(Tier::Semantic),
            other => Err(Error::invalid(format!("{field} must be \"episodic\" or \"semantic\", got {other:?}"))),
        }
    }
}

/// Who made a write: the caller — `key:<key id>` or `jwt:<subject>`, none in
/// loopback dev mode — and the agent it named (the `x-agent-id` header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writer {
    pub by: Option<String>,
    pub agent_id: Option<String>,
}

/// Where a memory came from. A memory written by a caller records who made
/// its latest write (`by`, `agent_id`; absent when unknown).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Written through the memories API (or MCP).
    Api {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    },
    /// Written through the LangGraph store API.
    Store {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    },
    /// Distilled from a session's turns `turns[0]..=turns[1]`.
    Session { session_id: String, turns: [i64; 2] },
}

impl Source {
    /// Written through the memories API by `w`.
    pub fn api(w: &Writer) -> Self {
        Source::Api { by: w.by.clone(), agent_id: w.agent_id.clone() }
    }

    /// Written through the LangGraph store API by `w`.
    pub fn store(w: &Writer) -> Self {
        Source::Store { by: w.by.clone(), agent_id: w.agent_id.clone() }
    }

    /// Records `w` as the maker of the latest write (a distilled memory keeps
    /// its session as its source).
    pub fn written_by(&mut self, w: &Writer) {
        if let Source::Api { by, agent_id } | Source::Store { by, agent_id } = self {
            *by = w.by.clone();
            *agent_id = w.agent_id.clone();
        }
    }
}

/// One long-term memory as stored and returned.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Memory {
    pub id: String,
    pub namespace: Namespace,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub tier: Tier,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    pub salience: f64,
    pub pinned: bool,
    pub version: i64,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub created_at: Millis,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub updated_at: Millis,
    #[serde(serialize_with = "serde_rfc3339::serialize_opt")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::Rfc3339>"))]
    pub expires_at: Option<Millis>,
    pub source: Source,
    /// How the searchable text was derived from `data` (LangGraph items):
    /// `None` = the whole value, `Some(false)` = not indexed, `Some([..])` = fields.
    #[serde(skip)]
    pub index: Option<Value>,
    /// TTL in milliseconds, kept so reads can refresh `expires_at`.
    #[serde(skip)]
    pub ttl_ms: Option<i64>,
}

/// A validated request to write one memory.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub namespace: Namespace,
    pub key: Option<String>,
    pub tier: Tier,
    pub text: String,
    pub data: Option<Map<String, Value>>,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    pub salience: f64,
    pub pinned: bool,
    pub ttl_ms: Option<i64>,
    pub source: Source,
    pub index: Option<Value>,
    /// A caller-supplied unit vector (already checked against the tenant's model).
    pub embedding: Option<Vec<f32>>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum WriteStatus {
    Created,
    Updated,
    Merged,
}

/// A validated partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MemoryPatch {
    pub text: Option<String>,
    pub tier: Option<Tier>,
    pub data: Option<Option<Map<String, Value>>>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub salience: Option<f64>,
    pub pinned: Option<bool>,
    /// `Some(None)` removes the expiry.
    pub ttl_ms: Option<Option<i64>>,
    /// Who patches (recorded in the memory's source; not a change by itself).
    pub writer: Writer,
}

impl MemoryPatch {
    pub fn is_empty(&self) -> bool {
        self.text.is_none()
            && self.tier.is_none()
            && self.data.is_none()
            && self.tags.is_none()
            && self.metadata.is_none()
            && self.salience.is_none()
            && self.pinned.is_none()
            && self.ttl_ms.is_none()
    }
}

/// Checks a memory's text.
pub fn validate_text(text: &str, field: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    if text.contains('\0') {
        return Err(Error::invalid(nul_message(field)));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::invalid(format!(
            "{field} is {} bytes; the limit is {MAX_TEXT_BYTES} bytes (32 KiB)",
            text.len()
        )));
    }
    Ok(())
}

/// Checks a key: 1–512 bytes, no control characters.
pub fn validate_key(key: &str, field: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(format!("{field} must be 1-{MAX_KEY_BYTES} bytes, got {}", key.len())));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{field} must not contain control characters")));
    }
    Ok(())
}

/// Checks tags: at most 64, each 1–128 bytes without control characters.
pub fn validate_tags(tags: &[String], field: &str) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(format!("{field} has {} tags; the limit is {MAX_TAGS}", tags.len())));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.len() > MAX_TAG_BYTES || t.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "{field}[{i}] must be 1-{MAX_TAG_BYTES} bytes without control characters"
            )));
        }
    }
    Ok(())
}

/// Checks metadata: a flat object (values are scalars or arrays of scalars),
/// at most 64 entries, names like filter field names.
pub fn validate_metadata(meta: &Map<String, Value>, field: &str) -> Result<()> {
    if meta.len() > MAX_METADATA_ENTRIES {
        return Err(Error::invalid(format!("{field} has {} entries; the limit is {MAX_METADATA_ENTRIES}", meta.len())));
    }
    for (name, value) in meta {
        if !crate::filter::field_name_ok(name) {
            return Err(Error::invalid(format!(
                "{field}.{name:?}: metadata names are 1-64 characters of A-Z a-z 0-9 _ -"
            )));
        }
        let scalar = |v: &Value| !matches!(v, Value::Object(_) | Value::Array(_));
        let ok = match value {
            Value::Array(items) => items.iter().all(scalar),
            v => scalar(v),
        };
        if !ok {
            return Err(Error::invalid(format!(
                "{field}.{name} must be a scalar or an array of scalars (metadata is flat); put nested data in `data`"
            )));
        }
        validate_json_strings(value, &format!("{field}.{name}"))?;
    }
    Ok(())
}

fn nul_message(field: &str) -> String {
    format!("{field} must not contain the NUL character (U+0000)")
}

/// Refuses U+0000 in a JSON value's strings and member names. No backend
/// stores it (PostgreSQL's `text` and `jsonb` cannot hold it), so every
/// backend refuses it the same way.
pub fn validate_json_strings(v: &Value, field: &str) -> Result<()> {
    match v {
        Value::String(s) if s.contains('\0') => Err(Error::invalid(nul_message(field))),
        Value::Array(items) => items.iter().try_for_each(|i| validate_json_strings(i, field)),
        Value::Object(members) => validate_object_strings(members, field),
        _ => Ok(()),
    }
}

/// [`validate_json_strings`] of an object.
pub fn validate_object_strings(members: &Map<String, Value>, field: &str) -> Result<()> {
    for (name, v) in members {
        if name.contains('\0') {
            return Err(Error::invalid(nul_message(field)));
        }
        validate_json_strings(v, &format!("{field}.{name}"))?;
    }
    Ok(())
}

/// Checks salience is a number in 0..=1.
pub fn validate_salience(s: f64, field: &str) -> Result<()> {
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::invalid(format!("{field} must be between 0 and 1, got {s}")));
    }
    Ok(())
}

/// Converts `ttl_seconds` to milliseconds after checking its range.
pub fn ttl_seconds_to_ms(ttl: f64, field: &str) -> Result<i64> {
    if !ttl.is_finite() || ttl <= 0.0 || ttl > MAX_TTL_SECONDS as f64 {
        return Err(Error::invalid(format!(
            "{field} must be a positive number of seconds up to {MAX_TTL_SECONDS}, got {ttl}"
        )));
    }
    Ok(((ttl * 1000.0).ceil() as i64).max(1))
}
