//! ONNX Runtime, loaded once per process from a shared library in the model
//! directory (`load-dynamic`: nothing is downloaded or linked at build time).
//! `engram model fetch` takes the library from the `onnxruntime` wheel on PyPI
//! ([`crate::fetch`]).

use std::path::Path;
use std::sync::OnceLock;

use ort::environment::Environment;

/// The ONNX Runtime release Engram is tested with (the PyPI wheel's version).
pub const RUNTIME_VERSION: &str = "1.32.0";

/// The runtime library's file name in the model directory.
#[cfg(target_os = "linux")]
pub const RUNTIME_FILE: &str = "libonnxruntime.so";
#[cfg(target_os = "macos")]
pub const RUNTIME_FILE: &str = "libonnxruntime.dylib";
#[cfg(target_os = "windows")]
pub const RUNTIME_FILE: &str = "onnxruntime.dll";
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
pub const RUNTIME_FILE: &str = "libonnxruntime.so";

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process's ONNX Runtime environment, loading the library at `path` on
/// first use (ONNX Runtime allows one per process; later paths are ignored).
pub fn environment(path: &Path) -> Result<Environment, String> {
    ENV.get_or_init(|| {
        // Absolute, so the loader does not resolve it against the executable's
        // directory first.
        let path = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
        ort::init_from(&path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?
            .with_name("engram")
            .build()
            .map_err(|e| format!("ONNX Runtime: {e}"))
    })
    .clone()
}
