//! The embedding contract: what turns texts into vectors.
//!
//! The trait lives here so the domain (the embedding queue, search, dedup) can
//! use an embedder without depending on any implementation; `engram-embed`
//! provides the local model and the OpenAI-compatible HTTP provider.

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

impl From<EmbedError> for crate::Error {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::Invalid(m) => crate::Error::invalid(m),
            EmbedError::Unavailable(m) => crate::Error::unavailable(m),
        }
    }
}

/// Turns texts into unit vectors of a fixed dimension. Calls block (they run a
/// model or a network round trip): call them from a blocking thread.
pub trait Embedder: Send + Sync {
    /// A stable name recorded per tenant with its vectors (e.g. `all-MiniLM-L6-v2`).
    fn model(&self) -> &str;
    /// The vector dimension.
    fn dims(&self) -> usize;
    /// Tokens `text` takes in this model (for packing prompts), when the
    /// embedder knows its tokenizer.
    fn count_tokens(&self, _text: &str) -> Option<usize> {
        None
    }
    /// Embeds a batch; the output has one unit vector per input, in order.
    /// For callers waiting on the answer (a query, a write that waits for its
    /// vectors).
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// [`Embedder::embed`] for the embedding queue's backlog: an embedder
    /// that schedules its work may run it after waiting interactive calls and
    /// at a lower priority than serving requests.
    fn embed_backlog(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed(texts)
    }
    /// Why the embedder cannot embed now (e.g. its provider failed
    /// repeatedly and its circuit breaker is open), if it cannot; for
    /// readiness.
    fn unavailable(&self) -> Option<String> {
        None
    }
}
