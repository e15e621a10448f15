//! The local model: sentence-transformers all-MiniLM-L6-v2 (BERT, 384 dims) run
//! in-process with candle.
//!
//! Matches `SentenceTransformer.encode`: WordPiece tokens truncated at 256,
//! padded to the longest text of the batch (the tokenizer file's fixed padding is
//! overridden), mean pooling over the attention mask, then L2 normalisation.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::{EmbedError, Embedder};

/// The model's name as recorded with every vector.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// Its output dimension.
pub const DIMS: usize = 384;
/// Tokens kept per text (sentence-transformers' `max_seq_length`).
pub const MAX_TOKENS: usize = 256;
/// Files the model directory must hold.
pub const FILES: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];

/// all-MiniLM-L6-v2 on the CPU.
pub struct LocalEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation or padding, for counting tokens.
    counter: Tokenizer,
    device: Device,
}

fn unavailable(dir: &Path, what: impl std::fmt::Display) -> EmbedError {
    EmbedError::Unavailable(format!(
        "cannot load the model from {}: {what}; run `make model` (or `engram model fetch`) to fetch it",
        dir.display()
    ))
}

impl LocalEmbedder {
    /// Loads the model from a directory holding [`FILES`].
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let path = |f: &str| -> Result<PathBuf, EmbedError> {
            let p = dir.join(f);
            if p.is_file() {
                Ok(p)
            } else {
                Err(unavailable(dir, format!("{f} is missing")))
            }
        };
        let config_text = std::fs::read_to_string(path("config.json")?).map_err(|e| unavailable(dir, e))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| unavailable(dir, format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(path("tokenizer.json")?).map_err(|e| unavailable(dir, e))?;
        let mut counter = tokenizer.clone();
        counter.with_padding(None);
        counter.with_truncation(None).map_err(|e| unavailable(dir, e))?;
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| unavailable(dir, e))?;
        let device = Device::Cpu;
        let weights = path("model.safetensors")?;
        // candle's loader maps the file only while it copies the tensors out, so
        // the weights are held once (reading the file into a buffer first kept a
        // second, freed copy resident: +100 MB RSS).
        let tensors = candle_core::safetensors::load(&weights, &device)
            .map_err(|e| unavailable(dir, format!("model.safetensors: {e}")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| unavailable(dir, format!("model.safetensors: {e}")))?;
        let me = LocalEmbedder { model, tokenizer, counter, device };
        let probe = me.embed(&["probe"])?;
        if probe.first().map(Vec::len) != Some(DIMS) {
            return Err(unavailable(dir, format!("the model does not produce {DIMS}-dimensional vectors")));
        }
        Ok(me)
    }

    fn forward(&self, texts: &[&str]) -> candle_core::Result<Vec<Vec<f32>>> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| candle_core::Error::Msg(format!("tokenizer: {e}")))?;
        let rows = enc.len();
        let cols = enc.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            enc.iter().flat_map(|e| f(e).to_vec()).collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, cols), &self.device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, cols), &self.device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (rows, cols), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (rows, cols, 384)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (rows, cols, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (rows, 384)
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (rows, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
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
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.forward(texts).map_err(|e| EmbedError::Unavailable(format!("model inference failed: {e}")))
    }
}
