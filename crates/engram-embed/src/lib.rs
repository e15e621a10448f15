//! Embedders: the contract that turns texts into vectors.
//!
//! This crate is kept apart from `engram-core` because the local model
//! (candle + tokenizers) dominates build and link time. [`local`] runs
//! all-MiniLM-L6-v2 in-process; the OpenAI-compatible HTTP provider joins it
//! (see DESIGN.md §6).

pub mod local;

pub use local::LocalEmbedder;

/// Why an embedding could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The input cannot be embedded (empty, too long, wrong shape).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The model or provider is not available right now.
    #[error("embedder unavailable: {0}")]
    Unavailable(String),
}

/// Turns texts into unit vectors of a fixed dimension.
pub trait Embedder: Send + Sync {
    /// A stable name recorded with every vector (e.g. `all-MiniLM-L6-v2`).
    fn model(&self) -> &str;
    /// The vector dimension.
    fn dims(&self) -> usize;
    /// Embeds a batch; the output has one vector per input, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}
