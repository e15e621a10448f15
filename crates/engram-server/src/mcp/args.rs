//! The MCP tools' arguments: JSON Schemas for clients (field docs become
//! descriptions), converted into the service's inputs — the same validation
//! runs as over HTTP.

use engram_core::service::inputs::{AddTurns, MemoryInput, PatchInput, RecallInput, SearchInput, TurnInput};
use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RememberArgs {
    /// Namespace segments, e.g. ["users", "alice"].
    pub namespace: Vec<String>,
    /// What to remember (at most 32 KiB).
    pub text: String,
    /// "episodic" (default) or "semantic" (stable facts and preferences).
    #[serde(default)]
    pub tier: Option<String>,
    /// A key unique in the namespace: writing it again updates the memory.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Flat metadata: scalars or arrays of scalars.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Never expires nor decays.
    #[serde(default)]
    pub pinned: Option<bool>,
    /// Forget after this many seconds.
    #[serde(default)]
    pub ttl_seconds: Option<f64>,
}

impl From<RememberArgs> for MemoryInput {
    fn from(a: RememberArgs) -> Self {
        MemoryInput {
            namespace: a.namespace,
            text: a.text,
            tier: a.tier,
            key: a.key,
            tags: a.tags,
            metadata: a.metadata,
            pinned: a.pinned,
            ttl_seconds: a.ttl_seconds,
            ..MemoryInput::default()
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallArgs {
    /// What the agent needs to know, in words.
    pub query: String,
    /// The conversation in progress (its recent turns are the working tier).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Only memories under this namespace (default: the session's, else all).
    #[serde(default)]
    pub namespace_prefix: Option<Vec<String>>,
    /// Most results (default 10, at most 100).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Most tokens of the returned context (default 1000).
    #[serde(default)]
    pub token_budget: Option<i64>,
}

impl From<RecallArgs> for RecallInput {
    fn from(a: RecallArgs) -> Self {
        RecallInput {
            query: a.query,
            session_id: a.session_id,
            namespace_prefix: a.namespace_prefix,
            limit: a.limit,
            token_budget: a.token_budget,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words or a question; without it, the filter's matches, newest first.
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub namespace_prefix: Option<Vec<String>>,
    /// Any of "episodic", "semantic".
    #[serde(default)]
    pub tiers: Option<Vec<String>>,
    /// MongoDB-style filter, e.g. {"metadata.topic": "food", "tags": {"$in": ["x"]}}.
    #[serde(default)]
    pub filter: Option<Value>,
    /// "hybrid" (default), "vector" or "keyword".
    #[serde(default)]
    pub mode: Option<String>,
    /// Most results (default 10).
    #[serde(default)]
    pub limit: Option<i64>,
}

impl From<SearchArgs> for SearchInput {
    fn from(a: SearchArgs) -> Self {
        SearchInput {
            query: a.query,
            namespace_prefix: a.namespace_prefix,
            tiers: a.tiers,
            filter: a.filter,
            mode: a.mode,
            limit: a.limit,
            ..SearchInput::default()
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// The memory's id.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The memory's id.
    pub id: String,
    #[serde(default)]
    pub text: Option<String>,
    /// "episodic" or "semantic".
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// 0 to 1.
    #[serde(default)]
    pub salience: Option<f64>,
    #[serde(default)]
    pub pinned: Option<bool>,
    /// Only if the memory is still at this version.
    #[serde(default)]
    pub if_version: Option<i64>,
}

impl UpdateArgs {
    pub fn into_patch(self) -> (String, PatchInput, Option<i64>) {
        let patch = PatchInput {
            text: self.text,
            tier: self.tier,
            tags: self.tags,
            metadata: self.metadata,
            salience: self.salience,
            pinned: self.pinned,
            ..PatchInput::default()
        };
        (self.id, patch, self.if_version)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnArg {
    /// "user", "assistant", … or a speaker's name.
    pub role: String,
    pub content: String,
    /// When it was said (RFC 3339); default now.
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTurnsArgs {
    /// The conversation's id (created on first use).
    pub session_id: String,
    /// Where its distilled memories go (fixed by the first call; default ["sessions", id]).
    #[serde(default)]
    pub namespace: Option<Vec<String>>,
    pub turns: Vec<TurnArg>,
}

impl AddTurnsArgs {
    pub fn into_input(self) -> (String, AddTurns) {
        let turns = self
            .turns
            .into_iter()
            .map(|t| TurnInput { role: t.role, content: t.content, at: t.at, metadata: t.metadata })
            .collect();
        (self.session_id, AddTurns { namespace: self.namespace, turns })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    /// The conversation's id.
    pub session_id: String,
}
