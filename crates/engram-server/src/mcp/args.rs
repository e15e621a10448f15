//! The arguments of the MCP tools that address something by id (a memory, a
//! session) — the HTTP API takes those from the path. The other tools take the
//! service's own inputs (`engram_core::service::inputs`), whose JSON Schemas
//! MCP publishes; the same validation runs as over HTTP.

use engram_core::service::inputs::{AddTurns, PatchInput, TurnInput};
use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

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
    /// The fields to change; absent ones stay.
    pub patch: PatchInput,
    /// Only if the memory is still at this version.
    #[serde(default)]
    pub if_version: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTurnsArgs {
    /// The conversation's id (created on first use).
    #[schemars(with = "engram_core::schema::SessionId")]
    pub session_id: String,
    /// Where its distilled memories go (fixed by the first call; default ["sessions", id]).
    #[serde(default)]
    #[schemars(with = "Option<engram_core::schema::NamespaceIn>")]
    pub namespace: Option<Vec<String>>,
    #[schemars(length(min = 1, max = 1000))]
    pub turns: Vec<TurnInput>,
}

impl AddTurnsArgs {
    pub fn into_input(self) -> (String, AddTurns) {
        (self.session_id, AddTurns { namespace: self.namespace, turns: self.turns })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    /// The conversation's id.
    #[schemars(with = "engram_core::schema::SessionId")]
    pub session_id: String,
}
