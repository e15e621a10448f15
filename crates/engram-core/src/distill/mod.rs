//! Distillation: a stretch of conversation (a session's recent turns) becomes
//! episodic memories with provenance, and the session's running summary grows.
//!
//! The [`Distiller`] contract lives here so the lifecycle jobs can run any
//! distiller; the default is [`Extractive`] (no model, no network). An
//! OpenAI-compatible chat distiller lives in `engram-embed`, and falls back to
//! the extractive one when the provider fails.

pub mod dates;
mod extractive;

use serde_json::{Map, Value};

use crate::time::{LocalTime, Millis, OffsetSeconds};

pub use extractive::SUMMARY_MAX_CHARS;

/// A turn as a distiller sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DistillTurn {
    /// Position in the session, from 1.
    pub index: i64,
    pub role: String,
    pub content: String,
    /// When it was said (resolves "yesterday").
    pub at: Millis,
    /// The speaker's UTC offset then, in seconds: "yesterday" is their yesterday.
    #[serde(default)]
    pub utc_offset: OffsetSeconds,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl DistillTurn {
    /// When it was said, in the speaker's offset.
    pub fn local_time(&self) -> LocalTime {
        LocalTime { at: self.at, utc_offset: self.utc_offset }
    }
}

/// What to distill.
#[derive(Debug, Clone)]
pub struct DistillRequest {
    pub session_id: String,
    /// In order.
    pub turns: Vec<DistillTurn>,
    /// The session's running summary so far.
    pub summary: String,
}

/// One memory to write.
#[derive(Debug, Clone, PartialEq)]
pub struct DistilledMemory {
    pub text: String,
    /// The turns it came from (inclusive).
    pub turn_from: i64,
    pub turn_to: i64,
    pub speakers: Vec<String>,
    /// When it happened (the first source turn's time, in its speaker's offset).
    pub at: LocalTime,
    pub entities: Vec<String>,
    pub key_phrases: Vec<String>,
    pub salience: f64,
    /// The source turn's metadata, carried over (e.g. a caller's message id).
    pub metadata: Map<String, Value>,
}

/// A distiller's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Distillation {
    pub memories: Vec<DistilledMemory>,
    /// The new running summary.
    pub summary: String,
}

/// Why a distiller failed (the caller falls back to the extractive one).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DistillError(pub String);

/// Turns turns into memories. Calls may block (a network round trip): call
/// them from a blocking thread.
pub trait Distiller: Send + Sync {
    /// A short name for logs and metrics (`extractive`, `chat:<model>`).
    fn name(&self) -> &str;
    /// Whether it is quick enough (no network, well under a millisecond a
    /// turn) to run inside the request that completes a stretch of turns.
    fn inline(&self) -> bool {
        false
    }
    fn distill(&self, req: &DistillRequest) -> Result<Distillation, DistillError>;
}

/// The default distiller: salient sentences, no model (see `extractive.rs`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Extractive;

impl Distiller for Extractive {
    fn name(&self) -> &str {
        "extractive"
    }
    fn inline(&self) -> bool {
        true
    }
    fn distill(&self, req: &DistillRequest) -> Result<Distillation, DistillError> {
        Ok(extractive::distill(req))
    }
}
