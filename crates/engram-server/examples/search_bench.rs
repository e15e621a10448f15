//! In-process search benchmark over a synthetic dataset from
//! `scripts/bench/gen_vectors.py` (base vectors + short texts, queries with
//! their texts, exact top-10): the real `MemoryService` on a real SQLite file
//! with the real local model loaded, no HTTP.
//!
//! 1. ingests every base vector as a memory with its text and the vector as a
//!    caller-supplied `embedding` (batches of 1000, one transaction each) and
//!    reports memories/s and the process RSS;
//! 2. runs every query, one at a time after a warm-up, in hybrid mode (text +
//!    `query_embedding`, so the query's embedding is excluded as DESIGN §8
//!    says), vector mode and keyword mode: p50/p99 latency per mode;
//! 3. vector recall@10 against the exact top-10 (vector mode, context off).
//!
//! `cargo run --release -p engram-server --example search_bench -- DATA_DIR MODEL_DIR [OUT.json]`
//!
//! With `SEARCH_BENCH_DB=DIR` the store lives in DIR and is kept; a later run
//! on the same DIR skips the ingest (`ingest` is then null), so the
//! searches can be profiled again and again without waiting for it;
//! `SEARCH_BENCH_MODES=hybrid,vector` runs only the modes named.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use engram_core::service::inputs::{CreateMemories, MemoryInput, SearchInput};
use engram_core::service::{AuthMode, ServiceOptions};
use engram_core::store::{SqliteOptions, SqliteStore, Store, Synchronous, VectorOptions};
use engram_core::{MemoryService, TenantCtx};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn read_f32(path: &Path, dims: usize) -> Result<Vec<Vec<f32>>, BoxError> {
    let bytes = std::fs::read(path)?;
    let flat: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(flat.chunks_exact(dims).map(<[f32]>::to_vec).collect())
}

fn read_lines(path: &Path) -> Result<Vec<String>, BoxError> {
    std::fs::read_to_string(path)?.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// Resident and peak memory of this process, in MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(data), Some(model)) = (args.get(1), args.get(2)) else {
        return Err("usage: search_bench DATA_DIR MODEL_DIR [OUT.json]".into());
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(run(Path::new(data), Path::new(model)))?;
    let text = serde_json::to_string_pretty(&result)?;
    println!("{text}");
    if let Some(out) = args.get(3) {
        std::fs::write(out, text + "\n")?;
    }
    Ok(())
}

async fn run(data: &Path, model: &Path) -> Result<Value, BoxError> {
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(data.join("meta.json"))?)?;
    let dims = meta["dims"].as_u64().ok_or("meta.json: dims")? as usize;
    let base = read_f32(&data.join("base.f32"), dims)?;
    let queries = read_f32(&data.join("queries.f32"), dims)?;
    let truth: Vec<i32> = std::fs::read(data.join("truth.i32"))?
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let texts = read_lines(&data.join("texts.jsonl"))?;
    let query_texts = read_lines(&data.join("query_texts.jsonl"))?;

    let temp = tempfile::tempdir()?;
    let dir = std::env::var_os("SEARCH_BENCH_DB").map_or_else(|| temp.path().to_path_buf(), Into::into);
    let reused = dir.join("engram.db").exists();
    let mut opts = SqliteOptions::new(dir.join("engram.db"));
    opts.readers = 8;
    opts.synchronous = Synchronous::Full;
    opts.vectors = Some(VectorOptions { dims, index_path: Some(dir.join("engram.vectors")) });
    let store = SqliteStore::open(opts)?;
    let embedder = Arc::new(engram_embed::LocalEmbedder::load(model)?);
    let opts = ServiceOptions { embedder: Some(embedder), ..ServiceOptions::default() };
    let service = MemoryService::with_options(Store::Sqlite(store), AuthMode::DevUntilKeysExist, opts);
    let ctx = TenantCtx::dev();
    let (rss_before, _) = rss_mb();

    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    // A kept store already holds them.
    let to_ingest = if reused { &base[..0] } else { &base[..] };
    for (chunk_no, chunk) in to_ingest.chunks(1000).enumerate() {
        let memories = chunk
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let i = chunk_no * 1000 + j;
                MemoryInput {
                    namespace: vec!["bench".into(), format!("n{}", i % 10)],
                    text: texts[i].clone(),
                    metadata: json!({ "i": i }).as_object().cloned(),
                    embedding: Some(v.clone()),
                    ..Default::default()
                }
            })
            .collect();
        for (status, _) in service.create_memories(&ctx, CreateMemories { memories, wait: None }).await? {
            *statuses.entry(format!("{status:?}").to_lowercase()).or_default() += 1;
        }
        if chunk_no % 10 == 9 {
            eprintln!("ingested {} in {:.1} s", (chunk_no + 1) * 1000, started.elapsed().as_secs_f64());
        }
    }
    let ingest_s = started.elapsed().as_secs_f64();
    let (rss_ingest, peak_ingest) = rss_mb();

    let search = |mode: &'static str, q: usize, context: bool, with_text: bool| SearchInput {
        query: with_text.then(|| query_texts[q].clone()),
        namespace_prefix: Some(vec!["bench".into()]),
        mode: Some(mode.into()),
        limit: Some(10),
        query_embedding: (mode != "keyword").then(|| queries[q].clone()),
        context_weight: (!context).then_some(0.0),
        ..Default::default()
    };
    for q in 0..50.min(queries.len()) {
        service.search(&ctx, search("hybrid", q, true, true)).await?;
    }
    let mut modes = serde_json::Map::new();
    let mut recall_sum = 0.0;
    let only = std::env::var("SEARCH_BENCH_MODES").unwrap_or_default();
    for (name, mode, context) in [("hybrid", "hybrid", true), ("vector", "vector", false), ("keyword", "keyword", true)]
        .into_iter()
        .filter(|(name, ..)| only.is_empty() || only.split(',').any(|m| m == *name))
    {
        let mut lat = Vec::with_capacity(queries.len());
        for q in 0..queries.len() {
            let t = Instant::now();
            let out = service.search(&ctx, search(mode, q, context, true)).await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            if mode == "vector" {
                let want: std::collections::HashSet<i64> =
                    truth[q * 10..q * 10 + 10].iter().map(|&i| i as i64).collect();
                let found = out.results.iter().filter_map(|h| h.memory.metadata.get("i").and_then(Value::as_i64));
                recall_sum += found.filter(|i| want.contains(i)).count() as f64 / 10.0;
            }
        }
        lat.sort_by(f64::total_cmp);
        modes.insert(
            name.into(),
            json!({
                "p50_ms": percentile(&lat, 0.5),
                "p99_ms": percentile(&lat, 0.99),
                "mean_ms": lat.iter().sum::<f64>() / lat.len().max(1) as f64,
            }),
        );
    }
    let (rss_end, peak_end) = rss_mb();
    // Saves the vector index beside the database (a kept store reloads it).
    service.save_indexes().await?;
    service.close().await;
    Ok(json!({
        "system": "engram (in-process MemoryService, SQLite + usearch HNSW)",
        "hnsw": {
            "connectivity": engram_core::vector::CONNECTIVITY,
            "expansion_add": engram_core::vector::EXPANSION_ADD,
            "expansion_search": engram_core::vector::EXPANSION_SEARCH,
        },
        "n": base.len(),
        "queries": queries.len(),
        "ingest": if reused { Value::Null } else { json!({
            "seconds": ingest_s,
            "memories_per_s": base.len() as f64 / ingest_s,
            "statuses": statuses,
            "note": "batches of 1000 memories with caller vectors, one durable transaction each (synchronous=full)",
        }) },
        "search": modes,
        "recall_at_10": recall_sum / queries.len().max(1) as f64,
        "rss_mb": {
            "model_loaded_empty_store": rss_before,
            "after_ingest": rss_ingest,
            "after_queries": rss_end,
            "peak_after_ingest": peak_ingest,
            "peak": peak_end,
            "note": "includes the local model and this benchmark's own copy of the dataset",
        },
    }))
}
