//! A JSON-over-HTTP client for OpenAI-compatible APIs, shared by the
//! embeddings provider and the chat distiller.
//!
//! Every call has a timeout; transient failures (connection errors, timeouts,
//! 408, 429, 5xx) are retried with exponential backoff (honouring a
//! `Retry-After` of a few seconds); a circuit breaker stops calling a provider
//! that keeps failing and answers `unavailable` at once until it cools down.
//! Client errors (other 4xx) are not retried. The API key is sent as a bearer
//! token and never logged.

use std::sync::Arc;
use std::time::Duration;

use engram_core::backoff::Backoff;
use engram_core::breaker::Breaker;
use serde_json::Value;

/// Consecutive failed calls that open the breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls.
pub const BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Longest wait between two attempts of one call.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// An HTTP agent with a timeout for the whole call; certificates are checked
/// against the operating system's trust store (so a proxy's or company's own
/// certificate authority, installed there, is trusted). With
/// `status_as_error`, a 4xx or 5xx answer is an error.
pub fn agent(timeout: Duration, status_as_error: bool) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(status_as_error)
        .tls_config(tls)
        .build()
        .into()
}

/// Waits between attempts.
pub type Sleeper = Arc<dyn Fn(Duration) + Send + Sync>;

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The provider refused the request (a 4xx other than 408/429).
    Refused(String),
    /// The provider is failing, unreachable, or answered something unusable.
    Unavailable(String),
}

/// One endpoint of a provider.
pub struct ApiClient {
    url: String,
    api_key: String,
    agent: ureq::Agent,
    breaker: Breaker,
    backoff: Backoff,
    /// How the client waits between attempts (tests record the waits instead).
    sleep: Sleeper,
    max_retries: u32,
    /// "embedding provider", "chat provider": names it in messages.
    what: &'static str,
}

enum Attempt<T> {
    Done(T),
    /// Worth retrying, after at least this long.
    Transient(String, Option<Duration>),
    Fatal(CallError),
}

impl ApiClient {
    /// Whether calls are refused now (the breaker is open).
    pub fn paused(&self) -> bool {
        self.breaker.is_open()
    }

    /// A client for `url` with `timeout` per attempt and `max_retries` after
    /// the first, waiting `backoff` between attempts.
    pub fn new(
        what: &'static str,
        url: String,
        api_key: String,
        timeout: Duration,
        max_retries: u32,
        backoff: Backoff,
        breaker: Breaker,
    ) -> Self {
        let agent = agent(timeout, false);
        ApiClient { url, api_key, agent, breaker, backoff, sleep: Arc::new(std::thread::sleep), max_retries, what }
    }

    /// Waits between attempts with `sleep` instead of sleeping the thread.
    pub fn waiting_with(mut self, sleep: Sleeper) -> Self {
        self.sleep = sleep;
        self
    }

    /// POSTs `body` and reads a 200 answer with `parse` (whose error makes the
    /// answer unusable: not retried).
    pub fn post<T>(&self, body: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, CallError> {
        if let Err(wait) = self.breaker.admit() {
            return Err(CallError::Unavailable(format!(
                "the {} is failing; calls resume in {} s",
                self.what,
                wait.as_secs().max(1)
            )));
        }
        let mut last = String::new();
        let mut asked: Option<Duration> = None;
        for attempt in 0..=self.max_retries {
            if attempt > 0 {
                (self.sleep)(self.backoff.delay(attempt - 1).max(asked.take().unwrap_or_default()));
            }
            match self.attempt(body, &parse) {
                Attempt::Done(v) => {
                    self.breaker.success();
                    return Ok(v);
                }
                Attempt::Fatal(e) => {
                    // The provider answered: it is up, the request or answer was wrong.
                    self.breaker.success();
                    return Err(e);
                }
                Attempt::Transient(why, retry_after) => {
                    tracing::warn!(attempt, provider = self.what, error = %why, "provider call failed");
                    asked = retry_after;
                    last = why;
                }
            }
        }
        self.breaker.failure();
        Err(CallError::Unavailable(format!("the {} failed after {} attempts: {last}", self.what, self.max_retries + 1)))
    }

    fn attempt<T>(&self, body: &str, parse: &impl Fn(&str) -> Result<T, String>) -> Attempt<T> {
        let mut req = self.agent.post(&self.url).header("content-type", "application/json");
        if !self.api_key.is_empty() {
            req = req.header("authorization", format!("Bearer {}", self.api_key));
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
            200 => match parse(&text) {
                Ok(v) => Attempt::Done(v),
                Err(why) => Attempt::Fatal(CallError::Unavailable(why)),
            },
            408 | 429 | 500..=599 => Attempt::Transient(format!("the provider answered {status}"), retry_after),
            _ => Attempt::Fatal(CallError::Refused(format!(
                "the {} refused the request ({status}): {}",
                self.what,
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
