//! Raw throughput of the local model: sentences per second at several batch
//! sizes, on LoCoMo turns (realistic lengths). Used by `make bench` as the
//! ceiling the ingest queue is measured against.
//!
//! `cargo run --release -p engram-embed --example throughput -- MODEL_DIR LOCOMO_JSON [N]`

use std::time::Instant;

use engram_embed::{Embedder, LocalEmbedder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (model_dir, locomo) = match (args.get(1), args.get(2)) {
        (Some(m), Some(l)) => (m, l),
        _ => return Err("usage: throughput MODEL_DIR LOCOMO_JSON [N]".into()),
    };
    let n: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(locomo)?)?;
    let mut texts = Vec::new();
    for conv in data.as_array().ok_or("LoCoMo file is not a list")? {
        for (k, v) in conv["conversation"].as_object().ok_or("no conversation")? {
            if k.starts_with("session_") && !k.ends_with("date_time") {
                for turn in v.as_array().into_iter().flatten() {
                    texts.push(format!(
                        "{}: {}",
                        turn["speaker"].as_str().unwrap_or(""),
                        turn["text"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    texts.truncate(n);
    let model = LocalEmbedder::load(std::path::Path::new(model_dir))?;
    println!("| batch | sentences | seconds | sentences/s |");
    println!("|---:|---:|---:|---:|");
    for batch in [1usize, 8, 32, 64] {
        let started = Instant::now();
        for chunk in texts.chunks(batch) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            model.embed(&refs)?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!("| {batch} | {} | {secs:.2} | {:.1} |", texts.len(), texts.len() as f64 / secs);
    }
    Ok(())
}
