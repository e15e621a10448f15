//! Configuration: one typed struct read from a TOML file, then `ENGRAM_*`
//! environment variables, then command-line flags (later wins); unknown keys are
//! errors; everything is validated once, at startup, into [`Settings`].
//! `[limits]` lives in `limits.rs`, `[auth]` in `auth.rs`.

mod auth;
mod limits;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use engram_core::clock::SharedClock;
use engram_core::service::Lifecycle;
use engram_core::store::sqlite::Location;
use engram_core::store::{
    check_mongo_url, check_postgres_url, MongoOptions, PostgresOptions, SqliteOptions, Synchronous, VectorOptions,
};
use engram_embed::chat::ChatOptions;
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

pub use auth::AuthSection;
pub use limits::{Limits, LimitsSection};

/// Sections a config file (and `ENGRAM_<SECTION>_<KEY>`) may name.
pub const SECTIONS: &[&str] = &["server", "store", "embedder", "distiller", "memory", "limits", "auth"];
/// Environment variables with the `ENGRAM_` prefix that are not config keys.
const NON_CONFIG_ENV: &[&str] = &["ENGRAM_LOG", "ENGRAM_CONFIG"];

/// The config file's shape; every field has a default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub store: StoreSection,
    pub embedder: EmbedderSection,
    pub distiller: DistillerSection,
    pub memory: MemorySection,
    pub limits: LimitsSection,
    pub auth: AuthSection,
}

/// `[distiller]`: how session turns become memories.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillerSection {
    /// `extractive` (no model, the default) or `openai` (an OpenAI-compatible
    /// chat API with JSON output; falls back to extractive when it fails).
    pub provider: String,
    /// OpenAI-compatible API root, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The chat model's name.
    pub model: String,
    /// Bearer token for the provider (never logged or shown).
    pub api_key: String,
    pub timeout_seconds: f64,
    pub max_retries: i64,
}

impl Default for DistillerSection {
    fn default() -> Self {
        DistillerSection {
            provider: "extractive".into(),
            base_url: String::new(),
            model: String::new(),
            api_key: String::new(),
            timeout_seconds: 30.0,
            max_retries: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedderSection {
    /// `local` (all-MiniLM-L6-v2 in-process), `openai` (an OpenAI-compatible
    /// `/v1/embeddings` API) or `none` (keyword search only).
    pub provider: String,
    /// The local model's directory.
    pub model_dir: PathBuf,
    /// OpenAI-compatible API root, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The provider's model name.
    pub model: String,
    /// Bearer token for the provider (never logged or shown).
    pub api_key: String,
    /// The provider model's vector dimension.
    pub dims: i64,
    pub timeout_seconds: f64,
    pub max_retries: i64,
}

impl Default for EmbedderSection {
    fn default() -> Self {
        EmbedderSection {
            provider: "local".into(),
            model_dir: PathBuf::from("./models/all-MiniLM-L6-v2"),
            base_url: String::new(),
            model: String::new(),
            api_key: String::new(),
            dims: 0,
            timeout_seconds: 10.0,
            max_retries: 3,
        }
    }
}

/// The embedder to run, validated.
#[derive(Debug, Clone)]
pub enum EmbedderSettings {
    None,
    Local { model_dir: PathBuf },
    OpenAi { base_url: String, model: String, api_key: String, dims: usize, timeout: Duration, max_retries: u32 },
}

impl EmbedderSettings {
    /// The vector dimension, when there is an embedder.
    pub fn dims(&self) -> Option<usize> {
        match self {
            EmbedderSettings::None => None,
            EmbedderSettings::Local { .. } => Some(LOCAL_DIMS),
            EmbedderSettings::OpenAi { dims, .. } => Some(*dims),
        }
    }
}

/// all-MiniLM-L6-v2's dimension.
pub const LOCAL_DIMS: usize = 384;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: String,
    pub data_dir: PathBuf,
    pub max_body_bytes: u64,
    pub request_timeout_seconds: f64,
    /// `json` (default) or `text`.
    pub log_format: String,
    /// Log one line per request.
    pub access_log: bool,
    /// HTTPS: a PEM certificate chain and its private key (both or neither),
    /// read again on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:7700".into(),
            data_dir: PathBuf::from("./data"),
            max_body_bytes: 10 * 1024 * 1024,
            request_timeout_seconds: 30.0,
            log_format: "json".into(),
            access_log: true,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite://PATH`, `postgres://USER:PASSWORD@HOST:PORT/DATABASE`,
    /// `mongodb://USER:PASSWORD@HOST:PORT/DATABASE` (or `mongodb+srv://`) or
    /// `memory://` (nothing on disk, gone at exit); empty means
    /// `sqlite://<data_dir>/engram.db`.
    pub url: String,
    /// Read connections in the SQLite pool.
    pub readers: u32,
    /// SQLite: `full` (fsync every commit) or `normal` (survives a crash, not power loss).
    pub synchronous: String,
    /// PostgreSQL: most connections this node opens.
    pub pool_size: u32,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection { url: String::new(), readers: 8, synchronous: "full".into(), pool_size: 16 }
    }
}

/// The store to open, validated.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    Sqlite(SqliteOptions),
    Postgres(PostgresOptions),
    Mongo(MongoOptions),
}

impl StoreSettings {
    /// The store's clock (also the service's).
    pub fn clock(&self) -> SharedClock {
        match self {
            StoreSettings::Sqlite(o) => o.clock.clone(),
            StoreSettings::Postgres(o) => o.clock.clone(),
            StoreSettings::Mongo(o) => o.clock.clone(),
        }
    }

    /// Makes `clock` the store's clock.
    pub fn set_clock(&mut self, clock: SharedClock) {
        match self {
            StoreSettings::Sqlite(o) => o.clock = clock,
            StoreSettings::Postgres(o) => o.clock = clock,
            StoreSettings::Mongo(o) => o.clock = clock,
        }
    }

    /// The same store for an admin command beside a running server: no
    /// single-server lock, no vector index, one or two connections.
    pub fn for_admin(&self) -> Self {
        match self {
            StoreSettings::Sqlite(o) => {
                StoreSettings::Sqlite(SqliteOptions { exclusive: false, readers: 1, vectors: None, ..o.clone() })
            }
            StoreSettings::Postgres(o) => {
                StoreSettings::Postgres(PostgresOptions { pool_size: 2, dims: None, ..o.clone() })
            }
            StoreSettings::Mongo(o) => StoreSettings::Mongo(MongoOptions { dims: None, indexes: false, ..o.clone() }),
        }
    }

    /// Whether the data lives only as long as the process (`memory://`).
    pub fn ephemeral(&self) -> bool {
        matches!(self, StoreSettings::Sqlite(o) if matches!(o.location, Location::Memory(_)))
    }

    /// Where the data lives, for logs and `check-config` (passwords hidden).
    pub fn describe(&self) -> String {
        match self {
            StoreSettings::Sqlite(o) => match &o.location {
                Location::File(path) => format!("sqlite://{}", path.display()),
                Location::Memory(_) => "memory://".into(),
            },
            StoreSettings::Postgres(o) => redact_url(&o.url),
            StoreSettings::Mongo(o) => redact_url(&o.url),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySection {
    pub wm_max_turns: i64,
    pub distill_every: i64,
    pub promotion_threshold: f64,
    /// Recall packs long-term memories only when the best is at least this
    /// similar to the query (cosine, 0–1; 0 = no floor).
    pub recall_relevance_floor: f64,
    pub session_ttl_seconds: i64,
    pub promotion_interval_seconds: i64,
    pub sweep_interval_seconds: i64,
}

impl Default for MemorySection {
    fn default() -> Self {
        MemorySection {
            wm_max_turns: 10,
            distill_every: 5,
            promotion_threshold: 0.8,
            recall_relevance_floor: engram_core::service::DEFAULT_RELEVANCE_FLOOR,
            session_ttl_seconds: 86_400,
            promotion_interval_seconds: 60,
            sweep_interval_seconds: 60,
        }
    }
}

/// Flags that override the file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub store: Option<String>,
}

/// Validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub json_logs: bool,
    pub access_log: bool,
    pub store: StoreSettings,
    pub embedder: EmbedderSettings,
    /// The chat distiller's settings; `None` = extractive.
    pub distiller: Option<ChatOptions>,
    pub sweep_interval: Duration,
    pub promotion_interval: Duration,
    pub lifecycle: Lifecycle,
    pub limits: Limits,
    /// Bearer tokens accepted beside API keys; `None`: keys only.
    pub jwt: Option<engram_core::jwt::JwtOptions>,
    /// HTTPS: `(certificate chain, private key)` PEM files; `None`: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The effective config, for `check-config`.
    pub effective: Config,
}

/// Every problem found, one per line, each naming the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

fn toml_value_of(raw: &str) -> Value {
    match format!("v = {raw}").parse::<Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(raw.to_owned())),
        Err(_) => Value::String(raw.to_owned()),
    }
}

fn set(table: &mut Table, section: &str, key: &str, value: Value) {
    let entry = table.entry(section.to_owned()).or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(t) = entry {
        t.insert(key.to_owned(), value);
    }
}

/// Reads file < environment < flags into a [`Config`] and validates it.
pub fn load(over: &Overrides, env: impl IntoIterator<Item = (String, String)>) -> Result<Settings, ConfigError> {
    let mut errors = Vec::new();
    let env: Vec<(String, String)> = env.into_iter().collect();
    let path =
        over.config.clone().or_else(|| env.iter().find(|(k, _)| k == "ENGRAM_CONFIG").map(|(_, v)| PathBuf::from(v)));
    let mut table = match &path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => text.parse::<Table>().map_err(|e| ConfigError(vec![format!("{}: {e}", p.display())]))?,
            Err(e) => return Err(ConfigError(vec![format!("cannot read config file {}: {e}", p.display())])),
        },
        None => Table::new(),
    };
    for (name, raw) in &env {
        let Some(rest) = name.strip_prefix("ENGRAM_") else {
            continue;
        };
        if NON_CONFIG_ENV.contains(&name.as_str()) {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        // Variables outside the known sections are not config (other tools share
        // the prefix); an unknown key in a known section is still an error,
        // reported by deserialisation.
        if let Some(section) = SECTIONS.iter().find(|s| lower.starts_with(&format!("{s}_"))) {
            set(&mut table, section, &lower[section.len() + 1..], toml_value_of(raw));
        }
    }
    if let Some(l) = &over.listen {
        set(&mut table, "server", "listen", Value::String(l.clone()));
    }
    if let Some(d) = &over.data_dir {
        set(&mut table, "server", "data_dir", Value::String(d.display().to_string()));
    }
    if let Some(s) = &over.store {
        set(&mut table, "store", "url", Value::String(s.clone()));
    }
    let config: Config = match Config::deserialize(Value::Table(table)) {
        Ok(c) => c,
        Err(e) => {
            errors.push(e.to_string().trim().replace('\n', " "));
            return Err(ConfigError(errors));
        }
    };
    match validate(&config) {
        Ok(settings) if errors.is_empty() => Ok(settings),
        Ok(_) => Err(ConfigError(errors)),
        Err(ConfigError(more)) => {
            errors.extend(more);
            Err(ConfigError(errors))
        }
    }
}

fn range_i(errors: &mut Vec<String>, key: &str, v: i64, lo: i64, hi: i64) {
    if !(lo..=hi).contains(&v) {
        errors.push(format!("{key} = {v} is out of range: allowed {lo} to {hi}"));
    }
}

/// Checks every value and derives [`Settings`].
pub fn validate(c: &Config) -> Result<Settings, ConfigError> {
    let mut e = Vec::new();
    let listen = match c.server.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            e.push(format!("server.listen = {:?} is not an address such as 127.0.0.1:7700", c.server.listen));
            None
        }
    };
    if !(1024..=1024 * 1024 * 1024).contains(&c.server.max_body_bytes) {
        e.push(format!(
            "server.max_body_bytes = {} is out of range: allowed 1024 to 1073741824",
            c.server.max_body_bytes
        ));
    }
    let t = c.server.request_timeout_seconds;
    if !(t.is_finite() && (0.1..=3600.0).contains(&t)) {
        e.push(format!("server.request_timeout_seconds = {t} is out of range: allowed 0.1 to 3600"));
    }
    let tls = match (&c.server.tls_cert, &c.server.tls_key) {
        (Some(cert), Some(key)) => {
            for (name, f) in [("tls_cert", cert), ("tls_key", key)] {
                if !f.is_file() {
                    e.push(format!("server.{name} = {:?} is not a readable file", f.display().to_string()));
                }
            }
            Some((cert.clone(), key.clone()))
        }
        (None, None) => None,
        _ => {
            e.push("server.tls_cert and server.tls_key go together: set both for HTTPS, or neither".into());
            None
        }
    };
    if !matches!(c.server.log_format.as_str(), "json" | "text") {
        e.push(format!("server.log_format = {:?}: allowed \"json\" or \"text\"", c.server.log_format));
    }
    let url = c.store.url.as_str();
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mongo = url.starts_with("mongodb://") || url.starts_with("mongodb+srv://");
    let sqlite = if url.is_empty() {
        Some(Location::File(c.server.data_dir.join("engram.db")))
    } else if let Some(p) = url.strip_prefix("sqlite://") {
        if p.is_empty() {
            e.push("store.url = \"sqlite://\" needs a file path, e.g. sqlite://./data/engram.db".into());
        }
        Some(Location::File(PathBuf::from(p)))
    } else if let Some(rest) = url.strip_prefix("memory://") {
        if !rest.is_empty() {
            e.push(format!("store.url = {url:?}: memory:// takes nothing after it (each server has its own)"));
        }
        Some(Location::memory())
    } else if mongo {
        if let Err(why) = check_mongo_url(url) {
            e.push(format!("store.url = {:?}: {why}", redact_url(url)));
        }
        None
    } else if postgres {
        if let Err(why) = check_postgres_url(url) {
            e.push(format!("store.url = {:?}: {why}", redact_url(url)));
        }
        None
    } else {
        e.push(format!(
            "store.url = {:?}: use sqlite://PATH, postgres://USER:PASSWORD@HOST:PORT/DATABASE, \
             mongodb://USER:PASSWORD@HOST:PORT/DATABASE or memory://",
            redact_url(url)
        ));
        None
    };
    range_i(&mut e, "store.pool_size", i64::from(c.store.pool_size), 1, 1000);
    range_i(&mut e, "store.readers", i64::from(c.store.readers), 1, 64);
    let synchronous = match c.store.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        other => {
            e.push(format!("store.synchronous = {other:?}: allowed \"full\" or \"normal\""));
            Synchronous::Full
        }
    };
    let embedder = validate_embedder(&mut e, &c.embedder);
    let distiller = validate_distiller(&mut e, &c.distiller);
    let m = &c.memory;
    range_i(&mut e, "memory.wm_max_turns", m.wm_max_turns, 1, 1000);
    if m.distill_every < 1 {
        e.push(format!(
            "memory.distill_every = {} is out of range: allowed 1 to {} (memory.wm_max_turns)",
            m.distill_every, m.wm_max_turns
        ));
    } else if m.distill_every > m.wm_max_turns {
        e.push(format!(
            "memory.distill_every = {} must not exceed memory.wm_max_turns = {}: turns are distilled before they leave \
             the working-memory window (raise wm_max_turns or lower distill_every)",
            m.distill_every, m.wm_max_turns
        ));
    }
    if !(0.0..=1.0).contains(&m.promotion_threshold) {
        e.push(format!("memory.promotion_threshold = {} is out of range: allowed 0 to 1", m.promotion_threshold));
    }
    if !(0.0..=1.0).contains(&m.recall_relevance_floor) {
        e.push(format!("memory.recall_relevance_floor = {} is out of range: allowed 0 to 1", m.recall_relevance_floor));
    }
    range_i(&mut e, "memory.session_ttl_seconds", m.session_ttl_seconds, 60, 365 * 86_400);
    range_i(&mut e, "memory.promotion_interval_seconds", m.promotion_interval_seconds, 1, 86_400);
    range_i(&mut e, "memory.sweep_interval_seconds", m.sweep_interval_seconds, 1, 86_400);
    let limits = c.limits.validate(&mut e);
    let jwt = c.auth.validate(&mut e);
    if !e.is_empty() {
        return Err(ConfigError(e));
    }
    let Some(listen) = listen else {
        return Err(ConfigError(vec!["invalid configuration".into()]));
    };
    let request_timeout = Duration::from_secs_f64(t);
    let store = match sqlite {
        Some(location) => StoreSettings::Sqlite(SqliteOptions {
            vectors: embedder.dims().map(|dims| VectorOptions {
                dims,
                // An in-memory store's index is never saved.
                index_path: matches!(location, Location::File(_)).then(|| c.server.data_dir.join("engram.vectors")),
            }),
            readers: c.store.readers as usize,
            synchronous,
            location,
            ..SqliteOptions::in_memory()
        }),
        None if mongo => StoreSettings::Mongo(MongoOptions { dims: embedder.dims(), ..MongoOptions::new(url) }),
        // A statement never outlives the request that asked for it.
        None => StoreSettings::Postgres(PostgresOptions {
            pool_size: c.store.pool_size as usize,
            statement_timeout: request_timeout,
            dims: embedder.dims(),
            ..PostgresOptions::new(url)
        }),
    };
    Ok(Settings {
        listen,
        data_dir: c.server.data_dir.clone(),
        max_body_bytes: c.server.max_body_bytes as usize,
        request_timeout,
        json_logs: c.server.log_format == "json",
        access_log: c.server.access_log,
        store,
        embedder,
        distiller,
        sweep_interval: Duration::from_secs(m.sweep_interval_seconds as u64),
        promotion_interval: Duration::from_secs(m.promotion_interval_seconds as u64),
        lifecycle: Lifecycle {
            wm_max_turns: m.wm_max_turns as usize,
            distill_every: m.distill_every as usize,
            session_ttl_ms: m.session_ttl_seconds * 1000,
            promotion_threshold: m.promotion_threshold,
            recall_relevance_floor: m.recall_relevance_floor,
        },
        limits,
        jwt,
        tls,
        effective: c.clone(),
    })
}

/// The checks every OpenAI-compatible provider section shares: its URL,
/// model name, timeout and retries (`section` names the keys, `kind` the model).
fn check_provider(
    e: &mut Vec<String>,
    section: &str,
    kind: &str,
    base_url: &str,
    model: &str,
    timeout: f64,
    retries: i64,
) {
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        e.push(format!("{section}.base_url = {base_url:?} must be an http:// or https:// URL"));
    }
    if model.is_empty() {
        e.push(format!("{section}.model must name the provider's {kind} model"));
    }
    if !(timeout.is_finite() && (0.1..=600.0).contains(&timeout)) {
        e.push(format!("{section}.timeout_seconds = {timeout} is out of range: allowed 0.1 to 600"));
    }
    range_i(e, &format!("{section}.max_retries"), retries, 0, 10);
}

fn validate_distiller(e: &mut Vec<String>, d: &DistillerSection) -> Option<ChatOptions> {
    match d.provider.as_str() {
        "extractive" => None,
        "openai" => {
            let t = d.timeout_seconds;
            check_provider(e, "distiller", "chat", &d.base_url, &d.model, t, d.max_retries);
            Some(ChatOptions {
                base_url: d.base_url.trim_end_matches('/').to_owned(),
                model: d.model.clone(),
                api_key: d.api_key.clone(),
                timeout: Duration::from_secs_f64(t.clamp(0.1, 600.0)),
                max_retries: d.max_retries.clamp(0, 10) as u32,
            })
        }
        other => {
            e.push(format!("distiller.provider = {other:?}: allowed \"extractive\" or \"openai\""));
            None
        }
    }
}

fn validate_embedder(e: &mut Vec<String>, s: &EmbedderSection) -> EmbedderSettings {
    match s.provider.as_str() {
        "none" => EmbedderSettings::None,
        "local" => EmbedderSettings::Local { model_dir: s.model_dir.clone() },
        "openai" => {
            let t = s.timeout_seconds;
            check_provider(e, "embedder", "embedding", &s.base_url, &s.model, t, s.max_retries);
            range_i(e, "embedder.dims", s.dims, 1, 8192);
            EmbedderSettings::OpenAi {
                base_url: s.base_url.trim_end_matches('/').to_owned(),
                model: s.model.clone(),
                api_key: s.api_key.clone(),
                dims: s.dims.clamp(1, 8192) as usize,
                timeout: Duration::from_secs_f64(t.clamp(0.1, 600.0)),
                max_retries: s.max_retries.clamp(0, 10) as u32,
            }
        }
        other => {
            e.push(format!("embedder.provider = {other:?}: allowed \"local\", \"openai\" or \"none\""));
            EmbedderSettings::None
        }
    }
}

/// Hides a password in a URL such as `postgres://user:secret@host/db`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = &base[s + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &base[..s + 3], &creds[..colon], &base[at..]),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    // `?password=…` is the other place a PostgreSQL URL carries one.
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.trim_start_matches('?').split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                format!("{}{k}=***", if kv.starts_with('?') { "?" } else { "" })
            }
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}{}", query.join("&"))
}

impl Settings {
    /// The effective config as TOML, secrets hidden.
    pub fn to_toml(&self) -> String {
        let mut shown = self.effective.clone();
        shown.store.url = self.store.describe();
        if !shown.embedder.api_key.is_empty() {
            shown.embedder.api_key = "***".into();
        }
        if !shown.distiller.api_key.is_empty() {
            shown.distiller.api_key = "***".into();
        }
        if !shown.auth.jwt_hs256_secret.is_empty() {
            shown.auth.jwt_hs256_secret = "***".into();
        }
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// Whether the listener is reachable only from this machine.
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&Overrides::default(), env(&[])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:7700");
        assert!(
            matches!(&s.store, StoreSettings::Sqlite(o) if o.location == Location::File("./data/engram.db".into()))
        );
        assert_eq!(s.max_body_bytes, 10 * 1024 * 1024);
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("engram.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1\"\n[memory]\ndistill_every = 3\nwm_max_turns = 20\n")
            .unwrap();
        let over = Overrides { config: Some(file.clone()), ..Default::default() };
        let s =
            load(&over, env(&[("ENGRAM_MEMORY_DISTILL_EVERY", "7"), ("ENGRAM_SERVER_LISTEN", "127.0.0.1:2")])).unwrap();
        assert_eq!(s.effective.memory.distill_every, 7);
        assert_eq!(s.listen.port(), 2);
        let over = Overrides { config: Some(file), listen: Some("127.0.0.1:3".into()), ..Default::default() };
        let s = load(&over, env(&[("ENGRAM_SERVER_LISTEN", "127.0.0.1:2")])).unwrap();
        assert_eq!(s.listen.port(), 3);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("engram.toml");
        std::fs::write(&file, "[server]\nlisen = \"x\"\n").unwrap();
        let err = load(&Overrides { config: Some(file), ..Default::default() }, env(&[])).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");

        let err = load(&Overrides::default(), env(&[("ENGRAM_MEMORY_DISTILL_EVERY", "50")])).unwrap_err().to_string();
        assert!(
            err.contains("memory.distill_every = 50") && err.contains("must not exceed memory.wm_max_turns = 10"),
            "{err}"
        );
        let err = load(&Overrides::default(), env(&[("ENGRAM_MEMORY_DISTILL_EVERY", "0")])).unwrap_err().to_string();
        assert!(err.contains("memory.distill_every = 0"), "{err}");
        let err = load(&Overrides::default(), env(&[("ENGRAM_MEMORY_WM_MAX_TURNS", "1001")])).unwrap_err().to_string();
        assert!(err.contains("memory.wm_max_turns = 1001") && err.contains("1 to 1000"), "{err}");
        let err =
            load(&Overrides::default(), env(&[("ENGRAM_MEMORY_PROMOTION_THRESHOLD", "1.5")])).unwrap_err().to_string();
        assert!(err.contains("memory.promotion_threshold"), "{err}");
        let err = load(&Overrides::default(), env(&[("ENGRAM_SERVER_LISTN", "x")])).unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
        assert!(
            load(&Overrides::default(), env(&[("ENGRAM_BIN", "/x")])).is_ok(),
            "other ENGRAM_* variables are not config"
        );
        let err = load(&Overrides::default(), env(&[("ENGRAM_SERVER_LISTEN", "nowhere")])).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        let err = load(&Overrides { store: Some("mysql://x".into()), ..Default::default() }, env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.url"), "{err}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=disable&password=hunter2&x=1"),
            "postgres://u@h/db?sslmode=disable&password=***&x=1"
        );
        assert_eq!(redact_url("postgres://u@h/db?password=hunter2"), "postgres://u@h/db?password=***");
    }

    #[test]
    fn a_postgres_url_selects_postgresql() {
        let url = "postgres://engram:hunter2@db.internal:5432/engram";
        let over = Overrides { store: Some(url.into()), ..Default::default() };
        let s = load(&over, env(&[("ENGRAM_STORE_POOL_SIZE", "4"), ("ENGRAM_SERVER_REQUEST_TIMEOUT_SECONDS", "7")]))
            .unwrap();
        let StoreSettings::Postgres(o) = &s.store else { panic!("{:?}", s.store) };
        assert_eq!((o.url.as_str(), o.pool_size, o.dims), (url, 4, Some(LOCAL_DIMS)));
        assert_eq!(o.statement_timeout, Duration::from_secs(7), "a statement never outlives its request");
        let shown = s.to_toml();
        assert!(
            shown.contains("postgres://engram:***@db.internal:5432/engram") && !shown.contains("hunter2"),
            "{shown}"
        );
        for bad in ["postgres://", "postgresql://u:pw@/db?port=x"] {
            let over = Overrides { store: Some(bad.into()), ..Default::default() };
            let err = load(&over, env(&[])).unwrap_err().to_string();
            assert!(err.contains("store.url") && !err.contains("pw@"), "{bad}: {err}");
        }
        let err = load(&over, env(&[("ENGRAM_STORE_POOL_SIZE", "0")])).unwrap_err().to_string();
        assert!(err.contains("store.pool_size = 0"), "{err}");
    }
}
