//! The local model beside sentence-transformers (`make bench-model`): the same
//! measurements `scripts/bench/st_model.py` takes of the reference, on the same
//! texts, so the script can put them side by side.
//!
//! - throughput: every text of `TURNS` embedded through [`embed_sorted`]'s
//!   order (sorted by length, calls of 32 — what the ingest queue does), model
//!   load excluded;
//! - query latency: each text of `QUERIES` embedded alone, one after another
//!   (p50 / p99 in ms, after 20 warm-up queries);
//! - the vectors of `TURNS` and `QUERIES`, for the cosine check against the
//!   reference, written to `OUT` as JSON lines `[…]` in input order.
//!
//! Prints one JSON object on stdout (with the process's RSS once the model is
//! loaded, after the runs, and its peak, in MB).
//!
//! `model_bench MODEL_DIR TURNS.jsonl QUERIES.jsonl OUT.jsonl` (inputs: one JSON string per line)

use std::io::{BufRead, Write};
use std::time::Instant;

use engram_embed::{Embedder, LocalEmbedder};

fn read_lines(path: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            out.push(serde_json::from_str(&line)?);
        }
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// `VmRSS` and `VmHWM` of this process in MB (Linux; 0 elsewhere).
fn rss_mb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model_dir, turns, queries, out] = args.as_slice() else {
        return Err("usage: model_bench MODEL_DIR TURNS.jsonl QUERIES.jsonl OUT.jsonl".into());
    };
    let (turns, queries) = (read_lines(turns)?, read_lines(queries)?);
    let model = LocalEmbedder::load(std::path::Path::new(model_dir))?;
    let (rss_loaded, _) = rss_mb();

    let started = Instant::now();
    let turn_vectors = engram_core::service::embed_sorted(&model, &turns, true)?;
    let secs = started.elapsed().as_secs_f64();

    for q in queries.iter().take(20) {
        model.embed(&[q.as_str()])?;
    }
    let mut query_vectors = Vec::with_capacity(queries.len());
    let mut ms = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        let v = model.embed(&[q.as_str()])?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        query_vectors.extend(v);
    }
    ms.sort_by(f64::total_cmp);

    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for v in turn_vectors.iter().chain(&query_vectors) {
        serde_json::to_writer(&mut w, v)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    let (rss_after, peak) = rss_mb();
    println!(
        "{}",
        serde_json::json!({
            "texts": turns.len(), "seconds": secs, "texts_per_s": turns.len() as f64 / secs,
            "queries": queries.len(), "query_p50_ms": percentile(&ms, 0.5), "query_p99_ms": percentile(&ms, 0.99),
            "rss_mb_loaded": rss_loaded, "rss_mb_after": rss_after, "rss_mb_peak": peak,
        })
    );
    Ok(())
}
