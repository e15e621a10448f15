//! The local model: sentence-transformers all-MiniLM-L6-v2 (BERT, 384 dims) run
//! in-process with ONNX Runtime.
//!
//! Matches `SentenceTransformer.encode`: WordPiece tokens truncated at 256,
//! padded to the longest text of the batch (the tokenizer file's fixed padding is
//! overridden), mean pooling over the attention mask, then L2 normalisation —
//! all but the tokenizer inside one ONNX graph ([`graph`]) built from the
//! upstream `model.safetensors`.
//!
//! ONNX Runtime is loaded at run time from [`RUNTIME_FILE`] in the model
//! directory (`engram model fetch` puts it there, from the `onnxruntime` wheel
//! on PyPI). Why ONNX Runtime and not candle: `docs/decisions.md` (The local
//! embedder).

mod graph;
mod runtime;
mod worker;

use std::path::{Path, PathBuf};

use ort::environment::ThreadManager;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

pub use runtime::{RUNTIME_FILE, RUNTIME_VERSION};
pub use worker::{BACKLOG_SLICE, INTERACTIVE_BATCH};

use crate::{EmbedError, Embedder};

/// The model's name as recorded with every vector.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// Its output dimension.
pub const DIMS: usize = 384;
/// Tokens kept per text (sentence-transformers' `max_seq_length`).
pub const MAX_TOKENS: usize = 256;
/// The model's files the model directory must hold (besides [`RUNTIME_FILE`]).
pub const FILES: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];

/// all-MiniLM-L6-v2 on the CPU, run by one thread ([`worker`]) at the lowest
/// scheduling priority, queries ahead of the backlog.
pub struct LocalEmbedder {
    worker: worker::Worker,
    /// The tokenizer without truncation or padding, for counting tokens.
    counter: Tokenizer,
}

/// ONNX Runtime's pool threads, started at the model's priority.
struct ModelThreads;

impl ThreadManager for ModelThreads {
    type Thread = std::thread::JoinHandle<()>;

    fn create(&self, work: impl FnOnce() + Send + 'static) -> ort::Result<Self::Thread> {
        std::thread::Builder::new()
            .name("engram-model-pool".into())
            .spawn(move || {
                worker::lower_priority();
                work();
            })
            .map_err(|e| ort::Error::new(format!("cannot start a model thread: {e}")))
    }

    fn join(thread: Self::Thread) -> ort::Result<()> {
        thread.join().map_err(|_| ort::Error::new("a model thread panicked"))
    }
}

fn unavailable(dir: &Path, what: impl std::fmt::Display) -> EmbedError {
    EmbedError::Unavailable(format!(
        "cannot load the model from {}: {what}; run `make model` (or `engram model fetch`) to fetch it",
        dir.display()
    ))
}

impl LocalEmbedder {
    /// Loads the model from a directory holding [`FILES`] and [`RUNTIME_FILE`],
    /// running it on one thread per core.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with_threads(dir, 0)
    }

    /// [`LocalEmbedder::load`] with a thread count (0: one per core).
    pub fn load_with_threads(dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        let path = |f: &str| -> Result<PathBuf, EmbedError> {
            let p = dir.join(f);
            if p.is_file() {
                Ok(p)
            } else {
                Err(unavailable(dir, format!("{f} is missing")))
            }
        };
        let config_text = std::fs::read_to_string(path("config.json")?).map_err(|e| unavailable(dir, e))?;
        let config: graph::Config =
            serde_json::from_str(&config_text).map_err(|e| unavailable(dir, format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(path("tokenizer.json")?).map_err(|e| unavailable(dir, e))?;
        let mut counter = tokenizer.clone();
        counter.with_padding(None);
        counter.with_truncation(None).map_err(|e| unavailable(dir, e))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| unavailable(dir, e))?;
        let weights = path("model.safetensors")?;
        let env = runtime::environment(&path(RUNTIME_FILE)?).map_err(|e| unavailable(dir, e))?;
        let model = graph::build(&weights, &config).map_err(|e| unavailable(dir, format!("model.safetensors: {e}")))?;
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
        let mut session = Session::builder(&env)
            .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::All).map_err(Into::into))
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            // No arena: activations go back to the allocator after each run,
            // instead of the arena keeping its high-water mark for good.
            .and_then(|b| {
                b.with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
                    .map_err(Into::into)
            })
            .and_then(|b| b.with_thread_manager(ModelThreads).map_err(Into::into))
            .and_then(|b| model.into_session(&b))
            .map_err(|e| unavailable(dir, format!("ONNX Runtime: {e}")))?;
        let worker = worker::Worker::start(move |texts| forward(&mut session, &tokenizer, texts))
            .map_err(|e| unavailable(dir, format!("cannot start the model's thread: {e}")))?;
        let me = LocalEmbedder { worker, counter };
        release_freed_memory();
        let probe = me.embed(&["probe"]).map_err(|e| unavailable(dir, format!("the probe embedding failed: {e}")))?;
        if probe.first().map(Vec::len) != Some(DIMS) {
            return Err(unavailable(dir, format!("the model does not produce {DIMS}-dimensional vectors")));
        }
        Ok(me)
    }
}

/// Hands the C allocator's free pages back to the OS: building the graph
/// copies the weights through several buffers, and glibc otherwise keeps the
/// freed ones resident.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs the model on `texts`: tokens, one run of the graph, vectors in order.
fn forward(session: &mut Session, tokenizer: &Tokenizer, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
    let enc = tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| format!("tokenizer: {e}"))?;
    let rows = enc.len();
    let cols = enc.first().map(|e| e.get_ids().len()).unwrap_or(0);
    let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
        enc.iter().flat_map(|e| f(e).iter().map(|&x| i64::from(x))).collect()
    };
    let shape = [rows as i64, cols as i64];
    let ids = Tensor::from_array((shape, flat(&|e| e.get_ids()))).map_err(|e| e.to_string())?;
    let mask = Tensor::from_array((shape, flat(&|e| e.get_attention_mask()))).map_err(|e| e.to_string())?;
    let out = session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask]).map_err(|e| e.to_string())?;
    let (_, data) = out["embedding"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
    if data.len() != rows * DIMS {
        return Err(format!("the model returned {} values for {rows} texts", data.len()));
    }
    Ok(data.chunks_exact(DIMS).map(<[f32]>::to_vec).collect())
}

impl LocalEmbedder {
    fn run(&self, texts: &[&str], backlog: bool) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.worker.embed(texts, backlog).map_err(|e| EmbedError::Unavailable(format!("model inference failed: {e}")))
    }
}

impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        MODEL_NAME
    }

    fn dims(&self) -> usize {
        DIMS
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        self.counter.encode(text, false).ok().map(|e| e.len())
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(texts, false)
    }

    fn embed_backlog(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(texts, true)
    }
}
