//! Log setup: JSON lines (default) or text on stderr, filtered by `ENGRAM_LOG`
//! (e.g. `info`, `engram::access=warn`). Request logs carry ids, never secrets:
//! no header values are logged.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("ENGRAM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}
