//! The request shapes every transport accepts (HTTP bodies, MCP tool
//! arguments), deserialised strictly: unknown fields are errors. With the
//! `schema` feature they also describe themselves as JSON Schema (field docs
//! become descriptions), which MCP publishes for its tools.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One memory to write.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MemoryInput {
    /// Namespace segments, e.g. ["users", "alice"].
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::NamespaceIn"))]
    pub namespace: Vec<String>,
    /// What to remember (at most 32 KiB).
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 32768)))]
    pub text: String,
    /// A key unique in the namespace: writing it again updates the memory.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 512)))]
    pub key: Option<String>,
    /// "episodic" (default: events) or "semantic" (stable facts and preferences).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::TierName>"))]
    pub tier: Option<String>,
    /// Any JSON object kept with the memory.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 64)))]
    pub tags: Option<Vec<String>>,
    /// Flat metadata: scalars or arrays of scalars.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Forget after this many seconds.
    #[serde(default)]
    pub ttl_seconds: Option<f64>,
    /// Never expires nor decays.
    #[serde(default)]
    pub pinned: Option<bool>,
    /// 0 to 1 (default 0.5); citing the memory raises it.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub salience: Option<f64>,
    /// The caller's own vector for `text` (dimension must match the tenant's model).
    #[serde(default)]
    pub embedding: Option<Vec<f32>>,
}

/// `POST /v1/memories`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateMemories {
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 1000)))]
    pub memories: Vec<MemoryInput>,
    /// `"indexed"`: return once the memories are findable by meaning.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::Wait>"))]
    pub wait: Option<String>,
}

/// `PATCH /v1/memories/{id}`: absent fields stay; `null` clears `data` or `ttl_seconds`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchInput {
    /// New text (re-embedded).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 32768)))]
    pub text: Option<String>,
    /// "episodic" or "semantic".
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::TierName>"))]
    pub tier: Option<String>,
    /// New data; null removes it.
    #[serde(default, deserialize_with = "nullable")]
    pub data: Option<Option<Map<String, Value>>>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 64)))]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub salience: Option<f64>,
    #[serde(default)]
    pub pinned: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub ttl_seconds: Option<Option<f64>>,
}

/// `POST /v1/memories/search`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchInput {
    /// Words or a question; without it, the filter's matches, newest first.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 10000)))]
    pub query: Option<String>,
    /// Only memories under this namespace.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::PrefixIn>"))]
    pub namespace_prefix: Option<Vec<String>>,
    /// Any of "episodic", "semantic".
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<crate::schema::TierName>>"))]
    pub tiers: Option<Vec<String>>,
    /// MongoDB-style filter, e.g. {"metadata.topic": "food", "tags": {"$in": ["x"]}}.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::Filter>"))]
    pub filter: Option<Value>,
    /// "hybrid" (default), "vector" or "keyword".
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::SearchMode>"))]
    pub mode: Option<String>,
    /// Most results (default 10, at most 1000).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub limit: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 100000)))]
    pub offset: Option<i64>,
    /// Give each score's parts.
    #[serde(default)]
    pub explain: Option<bool>,
    /// The caller's own vector for `query` (bring-your-own embeddings): used
    /// instead of embedding `query` on the server.
    #[serde(default)]
    pub query_embedding: Option<Vec<f32>>,
    /// How much a memory's neighbours (written just before and after it in
    /// its namespace) lend it of their relevance, 0–1 (default 0.5; 0 = off).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub context_weight: Option<f64>,
    /// Drop results scoring below this (needs a query).
    #[serde(default)]
    pub min_score: Option<f64>,
}

/// `GET /v1/memories` query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::TierName>"))]
    pub tier: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub limit: Option<i64>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One turn of `POST /v1/sessions/{id}/turns`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TurnInput {
    /// `user`, `assistant`, `system`, `tool`, or a speaker's name.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 64)))]
    pub role: String,
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 32768)))]
    pub content: String,
    /// When it was said (RFC 3339); default now.
    #[serde(default)]
    pub at: Option<String>,
    /// Flat metadata; `speaker` or `name` names who said it in distilled memories.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

/// `POST /v1/sessions/{id}/turns`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AddTurns {
    /// Where the session's distilled memories go (fixed by the first append;
    /// default `["sessions", <id>]`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::NamespaceIn>"))]
    pub namespace: Option<Vec<String>>,
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 1000)))]
    pub turns: Vec<TurnInput>,
}

/// `POST /v1/recall`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RecallInput {
    #[cfg_attr(feature = "schema", schemars(length(max = 10000)))]
    pub query: String,
    /// The conversation in progress: its window is the working tier, and its
    /// namespace the default scope.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::SessionId>"))]
    pub session_id: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::PrefixIn>"))]
    pub namespace_prefix: Option<Vec<String>>,
    /// Most results (default 10, at most 100).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub limit: Option<i64>,
    /// Most tokens of `context` (default 1000, at most 100 000), counted with
    /// the embedding model's tokenizer.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100000)))]
    pub token_budget: Option<i64>,
    /// The caller's own vector for `query` (as in search): used instead of
    /// embedding the query on the server.
    #[serde(default)]
    pub query_embedding: Option<Vec<f32>>,
    /// Drop results scoring below this (after the intent's tier weights).
    #[serde(default)]
    pub min_score: Option<f64>,
    /// Long-term memories count only when the best is at least this similar
    /// to the query (cosine, 0–1; default the server's
    /// `recall_relevance_floor`; 0 turns it off).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub relevance_floor: Option<f64>,
}
