//! An OpenAI-compatible embeddings provider (`POST {base_url}/embeddings`):
//! OpenAI, Ollama, vLLM, TEI and others speak this wire format.
//!
//! Timeouts, retries with backoff and the circuit breaker are `api.rs`'s.

use std::time::Duration;

use engram_core::backoff::Backoff;
use engram_core::breaker::Breaker;
use engram_core::clock::SharedClock;
use serde_json::{json, Value};

use crate::api::{ApiClient, CallError};
use crate::{EmbedError, Embedder};

pub use crate::api::{BREAKER_COOL_DOWN, BREAKER_THRESHOLD};

/// How to reach the provider.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    /// API root, e.g. `https://api.openai.com/v1` (without `/embeddings`).
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer …` when not empty.
    pub api_key: String,
    pub dims: usize,
    /// Per attempt.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

/// The provider client.
pub struct OpenAiEmbedder {
    opts: OpenAiOptions,
    client: ApiClient,
}

impl OpenAiEmbedder {
    /// A client whose circuit breaker reads `clock`.
    pub fn new(opts: OpenAiOptions, clock: SharedClock) -> Self {
        Self::with_backoff(
            opts,
            Backoff::new(Duration::from_millis(200), crate::api::MAX_BACKOFF),
            Breaker::new(BREAKER_THRESHOLD, BREAKER_COOL_DOWN, clock),
        )
    }

    /// With a chosen first backoff and breaker (tests use short ones).
    pub fn with_backoff(opts: OpenAiOptions, backoff: Backoff, breaker: Breaker) -> Self {
        let url = format!("{}/embeddings", opts.base_url.trim_end_matches('/'));
        let client = ApiClient::new(
            "embedding provider",
            url,
            opts.api_key.clone(),
            opts.timeout,
            opts.max_retries,
            backoff,
            breaker,
        );
        OpenAiEmbedder { opts, client }
    }

    /// Waits between attempts with `sleep` (tests record the waits instead
    /// of waiting).
    pub fn waiting_with(mut self, sleep: crate::api::Sleeper) -> Self {
        self.client = self.client.waiting_with(sleep);
        self
    }
}

/// Reads `{"data":[{"index":i,"embedding":[…]}…]}` into vectors in input order,
/// normalised to unit length.
fn parse(text: &str, expected: usize, dims: usize) -> Result<Vec<Vec<f32>>, String> {
    let bad = |why: &str| format!("the embedding provider's answer is unusable: {why}");
    let v: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let data = v["data"].as_array().ok_or_else(|| bad("no data array"))?;
    if data.len() != expected {
        return Err(bad(&format!("{} embeddings for {expected} texts", data.len())));
    }
    let mut out = vec![Vec::new(); expected];
    for (pos, item) in data.iter().enumerate() {
        let i = item["index"].as_u64().map(|i| i as usize).unwrap_or(pos);
        let vec: Vec<f32> = item["embedding"]
            .as_array()
            .ok_or_else(|| bad("an item has no embedding"))?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("an embedding holds a non-number"))?;
        if vec.len() != dims {
            return Err(format!(
                "the provider returned {}-dimensional vectors but embedder.dims is {dims}; fix the configuration",
                vec.len()
            ));
        }
        let slot = out.get_mut(i).ok_or_else(|| bad("an index is out of range"))?;
        *slot = vec;
    }
    for v in &mut out {
        if v.is_empty() || engram_core::vector::normalise(v).is_none() {
            return Err(bad("a missing or zero vector"));
        }
    }
    Ok(out)
}

impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.opts.model
    }

    fn dims(&self) -> usize {
        self.opts.dims
    }

    fn unavailable(&self) -> Option<String> {
        self.client
            .paused()
            .then(|| "the embedding provider failed repeatedly; calls are paused (circuit breaker open)".to_owned())
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let body = json!({ "model": self.opts.model, "input": texts, "encoding_format": "float" }).to_string();
        self.client.post(&body, |text| parse(text, texts.len(), self.opts.dims)).map_err(|e| match e {
            CallError::Refused(m) => EmbedError::Invalid(m),
            CallError::Unavailable(m) => EmbedError::Unavailable(m),
        })
    }
}
