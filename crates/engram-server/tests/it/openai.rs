//! The OpenAI-compatible embedding provider against a local HTTP server that
//! speaks the OpenAI embeddings wire format (`POST /v1/embeddings`): success,
//! retries with backoff, timeouts, client errors, the circuit breaker, and a
//! whole engram server embedding through it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engram_core::backoff::Backoff;
use engram_core::breaker::Breaker;
use engram_core::clock::ManualClock;
use engram_embed::openai::{OpenAiEmbedder, OpenAiOptions};
use engram_embed::Embedder;
use engram_server::config::EmbedderSection;
use serde_json::{json, Value};

use crate::support::{Opts, TestServer};

const DIMS: usize = 8;

/// What the stand-in does with the next request.
#[derive(Clone, Debug)]
enum Reply {
    Ok,
    Status(u16, Option<u64>),
    Sleep(Duration),
}

/// A request as the stand-in saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
}

struct StandIn {
    addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A deterministic vector for a text: texts sharing words get similar vectors.
fn vector_of(text: &str) -> Vec<f64> {
    let mut v = vec![0.0; DIMS];
    for w in text.to_lowercase().split_whitespace() {
        let h = w.bytes().fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
        v[(h % DIMS as u64) as usize] += 1.0;
    }
    v[DIMS - 1] += 0.01;
    v
}

impl StandIn {
    fn start() -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let script: Arc<Mutex<VecDeque<Reply>>> = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (script2, seen2) = (Arc::clone(&script), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (script, seen) = (Arc::clone(&script2), Arc::clone(&seen2));
                std::thread::spawn(move || serve_one(stream, &script, &seen));
            }
        });
        StandIn { addr, script, seen }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn then(&self, replies: &[Reply]) {
        self.script.lock().unwrap().extend(replies.iter().cloned());
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_one(stream: std::net::TcpStream, script: &Mutex<VecDeque<Reply>>, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let (mut len, mut authorization) = (0usize, None);
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "authorization" => authorization = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock().unwrap().push(Seen { path: path.clone(), authorization, body: body.clone() });
        let reply = script.lock().unwrap().pop_front().unwrap_or(Reply::Ok);
        let (status, extra, text) = match reply {
            Reply::Status(code, retry_after) => (
                code,
                retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default(),
                json!({"error": {"message": format!("scripted {code}"), "type": "test"}}).to_string(),
            ),
            Reply::Sleep(d) => {
                std::thread::sleep(d);
                (200, String::new(), ok_body(&body))
            }
            Reply::Ok => (200, String::new(), ok_body(&body)),
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// A chat-completions answer playing the distilling model: one memory per
/// transcript line `[n] date speaker: text`, as the JSON object asked for.
fn chat_body(req: &Value) -> String {
    let transcript = req["messages"][1]["content"].as_str().unwrap_or("");
    let memories: Vec<Value> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix('['))
        .filter_map(|l| {
            let (n, rest) = l.split_once("] ")?;
            let (_, said) = rest.split_once(' ')?;
            let (speaker, text) = said.split_once(": ")?;
            let n: i64 = n.parse().ok()?;
            Some(json!({"text": format!("{speaker} noted: {text}"), "turns": [n, n], "speakers": [speaker], "salience": 0.7}))
        })
        .collect();
    let content = json!({"memories": memories, "summary": format!("{} turns summarised", memories.len())}).to_string();
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": req["model"],
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]})
    .to_string()
}

/// The OpenAI answer, items deliberately in reverse order (clients must use `index`).
fn ok_body(req: &Value) -> String {
    if req.get("messages").is_some() {
        return chat_body(req);
    }
    let inputs: Vec<String> = match &req["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap_or("").to_owned()).collect(),
        _ => vec![],
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector_of(t)}))
        .collect();
    json!({"object": "list", "data": data, "model": req["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}})
        .to_string()
}

fn options(s: &StandIn) -> OpenAiOptions {
    OpenAiOptions {
        base_url: s.base_url(),
        model: "test-embed".into(),
        api_key: "sk-test-secret".into(),
        dims: DIMS,
        timeout: Duration::from_millis(500),
        max_retries: 2,
    }
}

fn embedder(s: &StandIn, breaker: Breaker) -> OpenAiEmbedder {
    OpenAiEmbedder::with_backoff(
        options(s),
        Backoff::new(Duration::from_millis(20), Duration::from_millis(80)),
        breaker,
    )
}

#[test]
fn embeds_in_input_order_with_the_key_and_model() {
    let s = StandIn::start();
    let e = embedder(&s, Breaker::new(5, Duration::from_secs(30), engram_core::clock::system()));
    let out = e.embed(&["red apple", "green pear", "red apple pie"]).unwrap();
    assert_eq!(out.len(), 3);
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!((cos(&out[0], &out[0]) - 1.0).abs() < 1e-5, "unit length");
    assert!(cos(&out[0], &out[2]) > cos(&out[0], &out[1]), "order kept despite reversed items");
    let seen = s.seen();
    assert_eq!(seen[0].path, "/v1/embeddings");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-test-secret"));
    assert_eq!(seen[0].body["model"], "test-embed");
    assert_eq!(seen[0].body["input"], json!(["red apple", "green pear", "red apple pie"]));
}

#[test]
fn transient_failures_are_retried_with_backoff() {
    let s = StandIn::start();
    s.then(&[Reply::Status(503, None), Reply::Status(429, Some(0))]);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::clone(&waits);
    let e = embedder(&s, Breaker::new(5, Duration::from_secs(30), engram_core::clock::system()))
        .waiting_with(Arc::new(move |d| w.lock().unwrap().push(d)));
    assert_eq!(e.embed(&["x"]).unwrap().len(), 1);
    assert_eq!(s.seen().len(), 3, "two retries");
    // The backoff doubles from 20 ms; the 429's Retry-After of 0 s asks for no more.
    assert_eq!(*waits.lock().unwrap(), [Duration::from_millis(20), Duration::from_millis(40)]);
    // A longer Retry-After is honoured (up to 10 s) instead of the backoff.
    waits.lock().unwrap().clear();
    s.then(&[Reply::Status(503, Some(2))]);
    assert_eq!(e.embed(&["y"]).unwrap().len(), 1);
    assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(2)]);
}

#[test]
fn timeouts_and_client_errors_fail_clearly() {
    let s = StandIn::start();
    s.then(&[
        Reply::Sleep(Duration::from_secs(2)),
        Reply::Sleep(Duration::from_secs(2)),
        Reply::Sleep(Duration::from_secs(2)),
    ]);
    let e = embedder(&s, Breaker::new(5, Duration::from_secs(30), engram_core::clock::system()));
    let err = e.embed(&["x"]).unwrap_err().to_string();
    assert!(err.contains("3 attempts"), "{err}");
    // A 400 is the request's fault: not retried, the provider's message shown.
    let s = StandIn::start();
    s.then(&[Reply::Status(400, None)]);
    let e = embedder(&s, Breaker::new(5, Duration::from_secs(30), engram_core::clock::system()));
    let err = e.embed(&["x"]).unwrap_err().to_string();
    assert!(err.contains("400") && err.contains("scripted 400"), "{err}");
    assert_eq!(s.seen().len(), 1);
    assert!(!err.contains("sk-test-secret"), "the key never appears in errors");
}

#[test]
fn the_breaker_opens_after_repeated_failures_and_recovers() {
    let s = StandIn::start();
    s.then(&vec![Reply::Status(500, None); 6]);
    let clock = ManualClock::new(0);
    let e = embedder(&s, Breaker::new(2, Duration::from_secs(30), clock.clone()));
    assert!(e.embed(&["a"]).is_err());
    assert!(e.embed(&["a"]).is_err());
    assert_eq!(s.seen().len(), 6, "two calls of three attempts");
    let err = e.embed(&["a"]).unwrap_err().to_string();
    assert!(err.contains("resume in 30 s"), "refused at once: {err}");
    assert_eq!(s.seen().len(), 6, "no request while open");
    clock.advance(30_000);
    assert!(e.embed(&["a"]).is_ok(), "a trial after the cool-down closes it");
}

#[test]
fn a_server_embeds_through_the_provider() {
    let s = StandIn::start();
    let section = EmbedderSection {
        provider: "openai".into(),
        base_url: s.base_url(),
        model: "test-embed".into(),
        api_key: "sk-test-secret".into(),
        dims: DIMS as i64,
        ..Default::default()
    };
    let server = TestServer::start_with(Opts { embedder_section: Some(section), ..Default::default() });
    let c = server.client();
    c.remember(json!([
        {"namespace": ["o"], "text": "red apple"},
        {"namespace": ["o"], "text": "blue sky over the sea"},
    ]));
    c.wait_embedded(json!(["o"]));
    let out = c.search(json!({"query": "apple red", "mode": "vector", "limit": 1}));
    assert_eq!(out["results"][0]["memory"]["text"], "red apple", "{out}");
    let bodies: Vec<Value> = s.seen().into_iter().map(|x| x.body["input"].clone()).collect();
    assert!(bodies.iter().any(|b| b == &json!(["apple red"])), "the query was embedded by the provider: {bodies:?}");
}

fn chat_server(s: &StandIn) -> TestServer {
    let memory = engram_server::config::MemorySection { wm_max_turns: 4, distill_every: 2, ..Default::default() };
    let distiller = engram_server::config::DistillerSection {
        provider: "openai".into(),
        base_url: s.base_url(),
        model: "test-chat".into(),
        api_key: "sk-chat-secret".into(),
        timeout_seconds: 2.0,
        max_retries: 1,
    };
    TestServer::start_with(Opts { memory: Some(memory), distiller: Some(distiller), ..Opts::default() })
}

/// Waits until the session's namespace holds `n` memories; returns their texts.
fn distilled_texts(c: &crate::support::Client, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = c.get("/v1/memories?namespace=sessions/chat").json();
        let texts: Vec<String> =
            page["memories"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
        if texts.len() >= n {
            return texts;
        }
        assert!(Instant::now() < deadline, "only {texts:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_chat_distiller_writes_what_the_model_answers() {
    let s = StandIn::start();
    let srv = chat_server(&s);
    let c = srv.client();
    let r = c.post(
        "/v1/sessions/chat/turns",
        &json!({"turns": [
            {"role": "user", "content": "I moved to Porto in May.", "at": "2024-06-01T10:00:00Z", "metadata": {"speaker": "Ines"}},
            {"role": "assistant", "content": "How do you like it?"}
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["distilled"], json!([]), "a model is not run inside the request");
    let mut texts = distilled_texts(&c, 2);
    texts.sort();
    assert_eq!(texts, ["Ines noted: I moved to Porto in May.", "assistant noted: How do you like it?"]);
    assert_eq!(c.get("/v1/sessions/chat").json()["summary"], "2 turns summarised");
    let chat = s.seen().into_iter().find(|x| x.path == "/v1/chat/completions").expect("the chat API was called");
    assert_eq!(chat.authorization.as_deref(), Some("Bearer sk-chat-secret"));
    assert_eq!(chat.body["model"], "test-chat");
    assert_eq!(chat.body["response_format"]["type"], "json_object");
    assert!(chat.body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("[1] 2024-06-01 Ines: I moved to Porto in May."));
}

#[test]
fn a_failing_chat_provider_falls_back_to_the_extractive_distiller() {
    let s = StandIn::start();
    // Both attempts (max_retries = 1) fail.
    s.then(&[Reply::Status(503, None), Reply::Status(503, None)]);
    let srv = chat_server(&s);
    let c = srv.client();
    c.post(
        "/v1/sessions/chat/turns",
        &json!({"turns": [
            {"role": "user", "content": "My sister Ana teaches chemistry in Braga."},
            {"role": "assistant", "content": "Haha, nice!"}
        ]}),
    );
    let texts = distilled_texts(&c, 1);
    assert_eq!(texts, ["user: My sister Ana teaches chemistry in Braga."], "the extractive distiller's memory");
    assert_eq!(s.seen().iter().filter(|x| x.path == "/v1/chat/completions").count(), 2);
}

#[test]
fn readiness_names_an_embedding_provider_whose_breaker_is_open() {
    let s = StandIn::start();
    s.then(&vec![Reply::Status(500, None); 50]);
    let section = EmbedderSection {
        provider: "openai".into(),
        base_url: s.base_url(),
        model: "test-embed".into(),
        dims: DIMS as i64,
        max_retries: 0,
        ..Default::default()
    };
    let server = TestServer::start_with(Opts { embedder_section: Some(section), ..Default::default() });
    let c = server.client();
    for _ in 0..engram_embed::api::BREAKER_THRESHOLD {
        let r = c.post("/v1/memories/search", &json!({"query": "apple", "mode": "vector"}));
        assert_eq!(r.status, 503, "{}", r.text);
    }
    let r = c.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text);
    let body = r.json();
    assert_eq!(body["embedder"]["ok"], false, "{body}");
    assert!(body["embedder"]["error"].as_str().unwrap().contains("circuit breaker"), "{body}");
}
