//! all-MiniLM-L6-v2 as an ONNX graph, built in memory from the model's own
//! `model.safetensors` with ONNX Runtime's model editor API — no exported
//! `.onnx` file, so the weights stay the sha256-checked upstream ones.
//!
//! The graph is BERT as Hugging Face's `BertModel` computes it, followed by
//! sentence-transformers' mean pooling over the attention mask and L2
//! normalisation, so one run returns finished sentence vectors:
//!
//! ```text
//! input_ids, attention_mask: int64 [batch, sequence]
//! h = LayerNorm(f32(word[input_ids]) + token_type[0] + position[0..sequence])   (word: f16)
//! 6 × { a = Attention(h, Wqkv, bqkv, mask)            (com.microsoft, 12 heads)
//!       h = LayerNorm(h + a·Wo + bo)
//!       h = LayerNorm(h + BiasGelu(h·Wi, bi)·Wo2 + bo2) }
//! embedding = normalise(Σ h·mask / max(Σ mask, 1e-9))   float [batch, 384]
//! ```
//!
//! Weights are stored `[out, in]` (PyTorch's `Linear`); they are transposed
//! once here so every projection is a plain `MatMul`. The contrib operators
//! (`Attention`, `BiasGelu`) are ONNX Runtime's CPU kernels for exactly these
//! patterns (the ones its transformer optimizer emits); the others are
//! standard ONNX at opset 17.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use ort::editor::{Graph, Model, Node, Opset, ONNX_DOMAIN};
use ort::memory::Allocator;
use ort::operator::Attribute;
use ort::value::{Outlet, PrimitiveTensorElementType, Shape, SymbolicDimensions, Tensor, TensorElementType, ValueType};

/// BERT's shape as the model's `config.json` gives it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

/// Contrib operators' domain.
const MS_DOMAIN: &str = "com.microsoft";
/// ONNX opset of the standard operators (LayerNormalization needs 17).
const OPSET: u32 = 17;

/// One tensor's place in a safetensors file.
#[derive(serde::Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// The float tensors of a safetensors file (format: a little-endian u64
/// header length, a JSON header naming each tensor's dtype, shape and byte
/// range, then the data), read one at a time.
struct Weights {
    file: File,
    base: u64,
    entries: HashMap<String, Entry>,
}

impl Weights {
    fn open(path: &Path) -> Result<Self, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|e| format!("not a safetensors file: {e}"))?;
        let len = u64::from_le_bytes(len);
        if len > 100 << 20 {
            return Err("not a safetensors file (header too large)".into());
        }
        let mut header = vec![0u8; len as usize];
        file.read_exact(&mut header).map_err(|e| format!("not a safetensors file: {e}"))?;
        let mut entries: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| format!("not a safetensors file: {e}"))?;
        entries.remove("__metadata__");
        let entries = entries
            .into_iter()
            .map(|(k, v)| serde_json::from_value(v).map(|e| (k, e)))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("not a safetensors file: {e}"))?;
        Ok(Weights { file, base: 8 + len, entries })
    }

    /// The f32 tensor `name` with its shape.
    fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
        let e = self.entries.get(name).ok_or_else(|| format!("{name} is missing"))?;
        let [start, end] = e.data_offsets;
        let bytes_wanted = e.shape.iter().try_fold(4usize, |n, &d| n.checked_mul(d));
        let fits = self.file.metadata().is_ok_and(|m| self.base.saturating_add(end) <= m.len());
        let n = match bytes_wanted {
            Some(b) if e.dtype == "F32" && fits && end.checked_sub(start) == Some(b as u64) => b / 4,
            _ => return Err(format!("{name} is not an F32 tensor of shape {:?} inside the file", e.shape)),
        };
        let mut bytes = vec![0u8; 4 * n];
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.base + start))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| format!("{name}: {e}"))?;
        Ok((e.shape.clone(), bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
    }

    /// `name` checked against `shape`.
    fn shaped(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let (have, data) = self.f32(name)?;
        if have != shape {
            return Err(format!("{name} has shape {have:?}, expected {shape:?}"));
        }
        Ok(data)
    }
}

/// `[rows, cols]` row-major → `[cols, rows]`.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Graph under construction: nodes and initializers, with fresh value names.
struct Builder {
    graph: Graph,
    alloc: Allocator,
    next: usize,
}

type R<T> = Result<T, String>;

fn ort_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Builder {
    fn value(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}_{}", self.next)
    }

    /// A constant tensor named `name` (weights, axes, scalars).
    fn init<T: PrimitiveTensorElementType + Copy + std::fmt::Debug + 'static>(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[T],
    ) -> R<String> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut t = Tensor::<T>::new(&self.alloc, dims).map_err(ort_err)?;
        t.extract_tensor_mut().1.copy_from_slice(data);
        self.graph.add_initializer(name, t, false).map_err(ort_err)?;
        Ok(name.to_owned())
    }

    /// Adds `op(inputs) -> one fresh output` and returns the output's name.
    fn op(&mut self, op: &str, domain: &str, inputs: &[&str], attrs: Vec<Attribute>) -> R<String> {
        let out = self.value(op);
        let node = Node::new(op, domain, format!("{out}_node"), inputs, [out.as_str()], attrs).map_err(ort_err)?;
        self.graph.add_node(node).map_err(ort_err)?;
        Ok(out)
    }

    fn onnx(&mut self, op: &str, inputs: &[&str]) -> R<String> {
        self.op(op, ONNX_DOMAIN, inputs, Vec::new())
    }

    fn layer_norm(&mut self, x: &str, gamma: &str, beta: &str, eps: f32) -> R<String> {
        let attrs =
            vec![Attribute::new("axis", -1i64).map_err(ort_err)?, Attribute::new("epsilon", eps).map_err(ort_err)?];
        self.op("LayerNormalization", ONNX_DOMAIN, &[x, gamma, beta], attrs)
    }
}

fn dynamic(ty: TensorElementType, dims: &[(i64, &str)]) -> ValueType {
    ValueType::Tensor {
        ty,
        shape: Shape::new(dims.iter().map(|d| d.0)),
        dimension_symbols: SymbolicDimensions::new(dims.iter().map(|d| d.1.to_owned())),
    }
}

/// Builds the sentence-embedding graph of the BERT in `weights` (a
/// safetensors file) and `config`; inputs `input_ids` and `attention_mask`
/// (int64 `[batch, sequence]`), output `embedding` (float `[batch, hidden]`,
/// unit length).
pub fn build(weights: &Path, config: &Config) -> R<Model> {
    if config.hidden_act != "gelu" || config.position_embedding_type != "absolute" {
        return Err(format!(
            "unsupported BERT variant (hidden_act {}, position_embedding_type {})",
            config.hidden_act, config.position_embedding_type
        ));
    }
    let w = Weights::open(weights)?;
    let (hid, inter) = (config.hidden_size, config.intermediate_size);
    let eps = config.layer_norm_eps as f32;
    let mut b = Builder { graph: Graph::new().map_err(ort_err)?, alloc: Allocator::default(), next: 0 };
    b.graph
        .set_inputs([
            Outlet::new("input_ids", dynamic(TensorElementType::Int64, &[(-1, "batch"), (-1, "sequence")])),
            Outlet::new("attention_mask", dynamic(TensorElementType::Int64, &[(-1, "batch"), (-1, "sequence")])),
        ])
        .map_err(ort_err)?;
    b.graph
        .set_outputs([Outlet::new(
            "embedding",
            dynamic(TensorElementType::Float32, &[(-1, "batch"), (hid as i64, "")]),
        )])
        .map_err(ort_err)?;

    // Embeddings: word + token type 0 + position, then LayerNorm.
    let (word_shape, word) = w.f32("embeddings.word_embeddings.weight")?;
    if word_shape.len() != 2 || word_shape[1] != hid {
        return Err(format!("embeddings.word_embeddings.weight has shape {word_shape:?}"));
    }
    // The vocabulary's table is kept as f16 and a row made f32 once looked
    // up: half its 47 MB, and every output within 1e-6 of cosine of the f32
    // table's (the table feeds a LayerNorm; see tests/it, the reference vectors).
    let word: Vec<half::f16> = word.iter().map(|&x| half::f16::from_f32(x)).collect();
    let word = b.init("word_embeddings", &word_shape, &word)?;
    let (pos_shape, pos) = w.f32("embeddings.position_embeddings.weight")?;
    let pos = b.init("position_embeddings", &pos_shape, &pos)?;
    let (_, types) = w.f32("embeddings.token_type_embeddings.weight")?;
    let type0 = b.init("token_type_0", &[hid], types.get(..hid).ok_or("token_type_embeddings is empty")?)?;
    let zero = b.init("zero", &[], &[0i64])?;
    let one = b.init("one", &[], &[1i64])?;
    let axis1 = b.init("axis_1", &[1], &[1i64])?;
    let axis2 = b.init("axis_2", &[1], &[2i64])?;
    let tiny_count = b.init("min_count", &[], &[1e-9f32])?;
    let tiny_norm = b.init("min_norm", &[], &[1e-12f32])?;

    let to = |t: i64| Attribute::new("to", t).map_err(ort_err);
    let words = b.onnx("Gather", &[&word, "input_ids"])?;
    let words = b.op("Cast", ONNX_DOMAIN, &[&words], vec![to(1)?])?; // FLOAT
    let shape = b.onnx("Shape", &["input_ids"])?;
    let seq = b.onnx("Gather", &[&shape, &one])?;
    let positions = b.onnx("Range", &[&zero, &seq, &one])?;
    let pos_vecs = b.onnx("Gather", &[&pos, &positions])?;
    let x = b.onnx("Add", &[&words, &type0])?;
    let x = b.onnx("Add", &[&x, &pos_vecs])?;
    let g = b.init("embeddings_ln_g", &[hid], &w.shaped("embeddings.LayerNorm.weight", &[hid])?)?;
    let be = b.init("embeddings_ln_b", &[hid], &w.shaped("embeddings.LayerNorm.bias", &[hid])?)?;
    let mut h = b.layer_norm(&x, &g, &be, eps)?;

    let mask_i32 = b.op("Cast", ONNX_DOMAIN, &["attention_mask"], vec![to(6)?])?; // INT32
    let mask_f = b.op("Cast", ONNX_DOMAIN, &["attention_mask"], vec![to(1)?])?; // FLOAT

    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}.");
        let linear = |b: &mut Builder, name: &str, out: usize, inp: usize| -> R<(String, String)> {
            let wt = transpose(&w.shaped(&format!("{p}{name}.weight"), &[out, inp])?, out, inp);
            let bias = w.shaped(&format!("{p}{name}.bias"), &[out])?;
            let tag = format!("l{l}_{}", name.replace('.', "_"));
            Ok((b.init(&format!("{tag}_w"), &[inp, out], &wt)?, b.init(&format!("{tag}_b"), &[out], &bias)?))
        };
        let norm = |b: &mut Builder, name: &str| -> R<(String, String)> {
            let tag = format!("l{l}_{}", name.replace('.', "_"));
            Ok((
                b.init(&format!("{tag}_g"), &[hid], &w.shaped(&format!("{p}{name}.weight"), &[hid])?)?,
                b.init(&format!("{tag}_b"), &[hid], &w.shaped(&format!("{p}{name}.bias"), &[hid])?)?,
            ))
        };

        // Q, K and V side by side: [hid, 3·hid] and [3·hid], as Attention takes them.
        let (mut qkv_w, mut qkv_b) = (vec![0.0f32; hid * 3 * hid], Vec::with_capacity(3 * hid));
        for (j, part) in ["query", "key", "value"].iter().enumerate() {
            let wt = transpose(&w.shaped(&format!("{p}attention.self.{part}.weight"), &[hid, hid])?, hid, hid);
            for r in 0..hid {
                qkv_w[r * 3 * hid + j * hid..r * 3 * hid + (j + 1) * hid].copy_from_slice(&wt[r * hid..(r + 1) * hid]);
            }
            qkv_b.extend(w.shaped(&format!("{p}attention.self.{part}.bias"), &[hid])?);
        }
        let qkv_w = b.init(&format!("l{l}_qkv_w"), &[hid, 3 * hid], &qkv_w)?;
        let qkv_b = b.init(&format!("l{l}_qkv_b"), &[3 * hid], &qkv_b)?;
        let heads = Attribute::new("num_heads", config.num_attention_heads as i64).map_err(ort_err)?;
        let a = b.op("Attention", MS_DOMAIN, &[&h, &qkv_w, &qkv_b, &mask_i32], vec![heads])?;

        let (wo, bo) = linear(&mut b, "attention.output.dense", hid, hid)?;
        let (g1, b1) = norm(&mut b, "attention.output.LayerNorm")?;
        let y = b.onnx("MatMul", &[&a, &wo])?;
        let y = b.onnx("Add", &[&y, &bo])?;
        let y = b.onnx("Add", &[&y, &h])?;
        let h1 = b.layer_norm(&y, &g1, &b1, eps)?;

        let (wi, bi) = linear(&mut b, "intermediate.dense", inter, hid)?;
        let (wo2, bo2) = linear(&mut b, "output.dense", hid, inter)?;
        let (g2, b2) = norm(&mut b, "output.LayerNorm")?;
        let z = b.onnx("MatMul", &[&h1, &wi])?;
        let z = b.op("BiasGelu", MS_DOMAIN, &[&z, &bi], Vec::new())?;
        let z = b.onnx("MatMul", &[&z, &wo2])?;
        let z = b.onnx("Add", &[&z, &bo2])?;
        let z = b.onnx("Add", &[&z, &h1])?;
        h = b.layer_norm(&z, &g2, &b2, eps)?;
    }

    // Mean pooling over the attention mask, then L2 normalisation.
    let keep = |keepdims: i64| Attribute::new("keepdims", keepdims).map(|a| vec![a]).map_err(ort_err);
    let m3 = b.onnx("Unsqueeze", &[&mask_f, &axis2])?;
    let masked = b.onnx("Mul", &[&h, &m3])?;
    let attrs = keep(0)?;
    let summed = b.op("ReduceSum", ONNX_DOMAIN, &[&masked, &axis1], attrs)?;
    let attrs = keep(0)?;
    let count = b.op("ReduceSum", ONNX_DOMAIN, &[&m3, &axis1], attrs)?;
    let count = b.onnx("Max", &[&count, &tiny_count])?;
    let mean = b.onnx("Div", &[&summed, &count])?;
    let sq = b.onnx("Mul", &[&mean, &mean])?;
    let attrs = keep(1)?;
    let sq = b.op("ReduceSum", ONNX_DOMAIN, &[&sq, &axis1], attrs)?;
    let norm = b.onnx("Sqrt", &[&sq])?;
    let norm = b.onnx("Max", &[&norm, &tiny_norm])?;
    let node = Node::new("Div", ONNX_DOMAIN, "embedding_node", [mean.as_str(), norm.as_str()], ["embedding"], [])
        .map_err(ort_err)?;
    b.graph.add_node(node).map_err(ort_err)?;

    let mut model =
        Model::new([Opset::new(ONNX_DOMAIN, OPSET).map_err(ort_err)?, Opset::new(MS_DOMAIN, 1).map_err(ort_err)?])
            .map_err(ort_err)?;
    model.set_graph(b.graph).map_err(ort_err)?;
    Ok(model)
}
