//! An OpenAI-compatible embeddings provider (`POST {base_url}/embeddings`):
//! OpenAI, Ollama, vLLM, TEI and others speak this wire format.
//!
//! Every call has a timeout; transient failures (connection errors, timeouts,
//! 408, 429, 5xx) are retried with exponential backoff (honouring a
//! `Retry-After` of a few seconds); a circuit breaker stops calling a provider
//! that keeps failing and answers `unavailable` at once until it cools down.
//! Client errors (other 4xx) are not retried. The API key is sent as a bearer
//! token and never logged.

use std::time::Duration;

use engram_core::breaker::Breaker;
use serde_json::{json, Value};

use crate::{EmbedError, Embedder};

/// Consecutive failed calls that open the breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls.
pub const BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

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
    url: String,
    agent: ureq::Agent,
    breaker: Breaker,
    backoff: Duration,
}

enum Attempt {
    Done(Vec<Vec<f32>>),
    /// Worth retrying, after at least this long.
    Transient(String, Option<Duration>),
    Fatal(EmbedError),
}

impl OpenAiEmbedder {
    pub fn new(opts: OpenAiOptions) -> Self {
        Self::with_backoff(opts, Duration::from_millis(200), Breaker::new(BREAKER_THRESHOLD, BREAKER_COOL_DOWN))
    }

    /// With a chosen first backoff and breaker (tests use short ones).
    pub fn with_backoff(opts: OpenAiOptions, backoff: Duration, breaker: Breaker) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}/embeddings", opts.base_url.trim_end_matches('/'));
        OpenAiEmbedder { opts, url, agent, breaker, backoff }
    }

    fn attempt(&self, body: &str, expected: usize) -> Attempt {
        let mut req = self.agent.post(&self.url).header("content-type", "application/json");
        if !self.opts.api_key.is_empty() {
            req = req.header("authorization", format!("Bearer {}", self.opts.api_key));
        }
        let mut resp = match req.send(body) {
            Ok(r) => r,
            Err(e) => return Attempt::Transient(format!("request failed: {e}"), None),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let text = match resp.body_mut().read_to_string() {
            Ok(t) => t,
            Err(e) => return Attempt::Transient(format!("reading the response failed: {e}"), None),
        };
        match status {
            200 => match parse(&text, expected, self.opts.dims) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Fatal(e),
            },
            408 | 429 | 500..=599 => Attempt::Transient(format!("the provider answered {status}"), retry_after),
            _ => Attempt::Fatal(EmbedError::Invalid(format!(
                "the embedding provider refused the request ({status}): {}",
                snippet(&text)
            ))),
        }
    }
}

/// The provider's error message, shortened (never the request, which holds no secret anyway).
fn snippet(text: &str) -> String {
    let msg = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.to_owned());
    msg.chars().take(200).collect()
}

/// Reads `{"data":[{"index":i,"embedding":[…]}…]}` into vectors in input order,
/// normalised to unit length.
fn parse(text: &str, expected: usize, dims: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let bad = |why: &str| EmbedError::Unavailable(format!("the embedding provider's answer is unusable: {why}"));
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
            return Err(EmbedError::Unavailable(format!(
                "the provider returned {}-dimensional vectors but embedder.dims is {dims}; fix the configuration",
                vec.len()
            )));
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

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if let Err(wait) = self.breaker.admit() {
            return Err(EmbedError::Unavailable(format!(
                "the embedding provider is failing; calls resume in {} s",
                wait.as_secs().max(1)
            )));
        }
        let body = json!({ "model": self.opts.model, "input": texts, "encoding_format": "float" }).to_string();
        let mut delay = self.backoff;
        let mut last = String::new();
        for attempt in 0..=self.opts.max_retries {
            if attempt > 0 {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            match self.attempt(&body, texts.len()) {
                Attempt::Done(v) => {
                    self.breaker.success();
                    return Ok(v);
                }
                Attempt::Fatal(e) => {
                    // The provider answered: it is up, the request was wrong.
                    self.breaker.success();
                    return Err(e);
                }
                Attempt::Transient(why, retry_after) => {
                    tracing::warn!(attempt, error = %why, "embedding provider call failed");
                    if let Some(r) = retry_after {
                        delay = delay.max(r);
                    }
                    last = why;
                }
            }
        }
        self.breaker.failure();
        Err(EmbedError::Unavailable(format!(
            "the embedding provider failed after {} attempts: {last}",
            self.opts.max_retries + 1
        )))
    }
}
