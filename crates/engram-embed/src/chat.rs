//! A distiller that asks an OpenAI-compatible chat model
//! (`POST {base_url}/chat/completions`, JSON output) to turn a stretch of
//! conversation into memories. Timeouts, retries and the circuit breaker are
//! `api.rs`'s; any failure — the provider down, an answer that is not the JSON
//! asked for — is a `DistillError`, and the service falls back to the
//! extractive distiller, so distillation never stalls on a provider.

use std::time::Duration;

use engram_core::backoff::Backoff;
use engram_core::breaker::Breaker;
use engram_core::clock::SharedClock;
use engram_core::distill::{DistillError, DistillRequest, Distillation, DistilledMemory, Distiller, SUMMARY_MAX_CHARS};
use engram_core::time::iso_date;
use serde_json::{json, Value};

use crate::api::{ApiClient, CallError, BREAKER_COOL_DOWN, BREAKER_THRESHOLD};

/// Most memories taken from one answer.
const MAX_MEMORIES: usize = 64;

/// What the model is asked to do.
const INSTRUCTIONS: &str = "You turn a stretch of a conversation into long-term memories for an AI agent. \
Keep facts, preferences, plans, events and decisions; drop greetings, thanks and small talk. \
Write each memory as one self-contained sentence naming who it is about; replace relative dates \
(\"yesterday\", \"last week\") with absolute ones using the turn's date. \
Answer with a JSON object only: {\"memories\": [{\"text\": string, \"turns\": [first, last], \
\"speakers\": [string], \"entities\": [string], \"salience\": number 0-1}], \"summary\": string}. \
\"turns\" are the numbers of the turns a memory comes from; \"summary\" updates the running summary \
given (at most 2000 characters).";

/// How to reach the chat provider.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// API root, e.g. `https://api.openai.com/v1` (without `/chat/completions`).
    pub base_url: String,
    pub model: String,
    pub api_key: String,
    pub timeout: Duration,
    pub max_retries: u32,
}

/// The chat distiller.
pub struct ChatDistiller {
    name: String,
    model: String,
    client: ApiClient,
}

impl ChatDistiller {
    /// A client whose circuit breaker reads `clock`.
    pub fn new(opts: ChatOptions, clock: SharedClock) -> Self {
        Self::with_backoff(
            opts,
            Backoff::new(Duration::from_millis(500), crate::api::MAX_BACKOFF),
            Breaker::new(BREAKER_THRESHOLD, BREAKER_COOL_DOWN, clock),
        )
    }

    /// With a chosen first backoff and breaker (tests use short ones).
    pub fn with_backoff(opts: ChatOptions, backoff: Backoff, breaker: Breaker) -> Self {
        let url = format!("{}/chat/completions", opts.base_url.trim_end_matches('/'));
        let client =
            ApiClient::new("chat provider", url, opts.api_key, opts.timeout, opts.max_retries, backoff, breaker);
        ChatDistiller { name: format!("chat:{}", opts.model), model: opts.model, client }
    }
}

/// The turns as the model reads them: `[3] 2023-05-08 Caroline: text`.
fn transcript(req: &DistillRequest) -> String {
    let mut out = String::new();
    if !req.summary.is_empty() {
        out.push_str("Running summary so far:\n");
        out.push_str(&req.summary);
        out.push_str("\n\n");
    }
    out.push_str("Turns:\n");
    for t in &req.turns {
        let speaker =
            t.metadata.get("speaker").or_else(|| t.metadata.get("name")).and_then(Value::as_str).unwrap_or(&t.role);
        out.push_str(&format!("[{}] {} {}: {}\n", t.index, iso_date(t.local_time().date()), speaker, t.content));
    }
    out
}

/// Reads the model's JSON into a distillation; anything malformed is an error.
fn parse(text: &str, req: &DistillRequest) -> Result<Distillation, String> {
    let bad = |why: &str| format!("the chat provider's answer is unusable: {why}");
    let v: Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let content = v["choices"][0]["message"]["content"].as_str().ok_or_else(|| bad("no message content"))?;
    let out: Value = serde_json::from_str(content.trim()).map_err(|_| bad("the content is not a JSON object"))?;
    let items = out["memories"].as_array().ok_or_else(|| bad("no memories array"))?;
    let (first, last) = match (req.turns.first(), req.turns.last()) {
        (Some(f), Some(l)) => (f.index, l.index),
        _ => return Ok(Distillation { memories: Vec::new(), summary: req.summary.clone() }),
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).take(16).collect())
            .unwrap_or_default()
    };
    let mut memories = Vec::new();
    for item in items.iter().take(MAX_MEMORIES) {
        let Some(text) = item["text"].as_str().map(str::trim).filter(|t| !t.is_empty()) else {
            continue;
        };
        // Turn numbers outside the stretch are the model's mistake: clamp them.
        let from = item["turns"][0].as_i64().unwrap_or(first).clamp(first, last);
        let to = item["turns"][1].as_i64().unwrap_or(from).clamp(from, last);
        let at = req.turns.iter().find(|t| t.index >= from).unwrap_or(&req.turns[0]).local_time();
        let metadata = req.turns.iter().find(|t| t.index == from).map(|t| t.metadata.clone()).unwrap_or_default();
        memories.push(DistilledMemory {
            text: text.to_owned(),
            turn_from: from,
            turn_to: to,
            speakers: strings(&item["speakers"]),
            at,
            entities: strings(&item["entities"]),
            key_phrases: Vec::new(),
            salience: item["salience"].as_f64().unwrap_or(0.5).clamp(0.0, 1.0),
            metadata,
        });
    }
    let summary = out["summary"].as_str().unwrap_or(&req.summary).chars().take(SUMMARY_MAX_CHARS).collect();
    Ok(Distillation { memories, summary })
}

impl Distiller for ChatDistiller {
    fn name(&self) -> &str {
        &self.name
    }

    fn distill(&self, req: &DistillRequest) -> Result<Distillation, DistillError> {
        if req.turns.is_empty() {
            return Ok(Distillation { memories: Vec::new(), summary: req.summary.clone() });
        }
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": transcript(req)},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        })
        .to_string();
        self.client.post(&body, |text| parse(text, req)).map_err(|e| match e {
            CallError::Refused(m) | CallError::Unavailable(m) => DistillError(m),
        })
    }
}
