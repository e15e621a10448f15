//! Embeds texts with the local model for the benchmark scripts: reads one JSON
//! string per line from stdin, writes `{"text": …, "vector": […]}` lines to
//! stdout. `make bench-quality` uses it to give mem0 the same vectors Engram
//! computes, so both systems are compared on one model, and as the raw model
//! throughput its ingest queue is measured against (printed to stderr: texts,
//! seconds and texts/s of the embedding alone, model load excluded).
//!
//! `cargo run --release -p engram-embed --example embed_jsonl -- MODEL_DIR < texts.jsonl > vectors.jsonl`

use std::io::{BufRead, Write};

use engram_embed::{Embedder, LocalEmbedder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model_dir = std::env::args().nth(1).ok_or("usage: embed_jsonl MODEL_DIR < texts.jsonl")?;
    let model = LocalEmbedder::load(std::path::Path::new(&model_dir))?;
    let mut texts: Vec<String> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if !line.trim().is_empty() {
            texts.push(serde_json::from_str(&line)?);
        }
    }
    // Sorted by length so each batch pads little; written back in input order.
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut vectors = vec![Vec::new(); texts.len()];
    let started = std::time::Instant::now();
    for chunk in order.chunks(32) {
        let refs: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
        for (&i, v) in chunk.iter().zip(model.embed(&refs)?) {
            vectors[i] = v;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}",
        serde_json::json!({ "texts": texts.len(), "seconds": secs, "texts_per_s": texts.len() as f64 / secs })
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (text, vector) in texts.iter().zip(&vectors) {
        serde_json::to_writer(&mut out, &serde_json::json!({ "text": text, "vector": vector }))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
