//! Test support: an in-process server on a temp dir and port 0, a minimal
//! HTTP/1.1 client over real sockets, and helpers to run the real binary.
//!
//! The server's store is SQLite, or PostgreSQL when `ENGRAM_TEST_BACKEND` is
//! `postgres` (then `ENGRAM_TEST_POSTGRES_URL` names the test server, and
//! each server gets a fresh database): `make test` runs this suite on both.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engram_core::auth::Scopes;
use engram_core::clock::ManualClock;
use engram_core::service::AuthMode;
use engram_core::MemoryService;
use engram_server::config::{self, Config};
use serde_json::Value;

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The error code of an error envelope.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends raw bytes and reads the whole response (the request asks to close).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    Resp { status, headers, text: body.to_owned() }
}

/// Sends one request with optional extra headers and body.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b.as_bytes());
    }
    raw(addr, &bytes)
}

/// A client bound to one server and (optionally) one API key.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub key: Option<String>,
}

impl Client {
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let auth = self.key.as_ref().map(|k| format!("Bearer {k}"));
        let mut headers = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let body = body.map(|b| b.to_string());
        request(self.addr, method, path, &headers, body.as_deref())
    }
    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, Some(body))
    }
    pub fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send("PATCH", path, Some(body))
    }
    pub fn delete(&self, path: &str, body: Option<&Value>) -> Resp {
        self.send("DELETE", path, body)
    }
    /// Searches and returns the parsed answer (asserting 200).
    pub fn search(&self, body: Value) -> Value {
        let r = self.post("/v1/memories/search", &body);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }
    /// Waits until nothing under `namespace_prefix` awaits an embedding.
    pub fn wait_embedded(&self, namespace_prefix: Value) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out =
                self.search(serde_json::json!({"query": "x", "namespace_prefix": namespace_prefix, "mode": "keyword"}));
            if out["pending_embeddings"] == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "embeddings still pending: {out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    /// Writes memories and returns the created ids.
    pub fn remember(&self, memories: Value) -> Vec<String> {
        let r = self.post("/v1/memories", &serde_json::json!({ "memories": memories }));
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["results"].as_array().unwrap().iter().map(|x| x["memory"]["id"].as_str().unwrap().to_owned()).collect()
    }
}

/// Options for [`TestServer::start_with`].
#[derive(Default)]
pub struct Opts {
    pub auth_required: bool,
    /// `(tenant, scopes)` keys to create before serving.
    pub keys: Vec<(&'static str, &'static str)>,
    pub max_body_bytes: Option<u64>,
    pub sweep_interval_seconds: Option<i64>,
    /// Run the real local model (from [`model_dir`]); otherwise no embedder.
    pub embedder: bool,
    /// Use this `[embedder]` section instead (e.g. an OpenAI-compatible stand-in).
    pub embedder_section: Option<config::EmbedderSection>,
    /// Use this `[memory]` section instead of the defaults.
    pub memory: Option<config::MemorySection>,
    /// Use this `[distiller]` section instead of the default (extractive).
    pub distiller: Option<config::DistillerSection>,
    /// Run on this clock instead of the system's (tests of time move it).
    pub clock: Option<Arc<ManualClock>>,
    /// How long SQLite waits for another process's lock.
    pub busy_timeout_ms: Option<u64>,
    /// Use this `[limits]` section instead of the defaults.
    pub limits: Option<config::LimitsSection>,
    /// Use this `[auth]` section (bearer tokens) instead of the default (none).
    pub auth: Option<config::AuthSection>,
}

/// The local model's directory: `ENGRAM_TEST_MODEL_DIR` or the workspace's `models/`.
pub fn model_dir() -> PathBuf {
    std::env::var_os("ENGRAM_TEST_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"))
}

/// The store the tests run on: `ENGRAM_TEST_BACKEND` = `sqlite` (the
/// default), `postgres` or `mongo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
    Mongo,
}

pub fn backend() -> TestBackend {
    match std::env::var("ENGRAM_TEST_BACKEND").as_deref() {
        Ok("postgres") => TestBackend::Postgres,
        Ok("mongo") => TestBackend::Mongo,
        Ok("sqlite") | Err(_) => TestBackend::Sqlite,
        Ok(other) => panic!("ENGRAM_TEST_BACKEND={other:?}: use sqlite, postgres or mongo"),
    }
}

/// Whether the tests run on PostgreSQL (`ENGRAM_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    backend() == TestBackend::Postgres
}

/// A fresh database on the server `ENGRAM_TEST_BACKEND` names, for tests of
/// several nodes sharing one (PostgreSQL or MongoDB); its URL.
pub fn fresh_shared_database() -> String {
    match backend() {
        TestBackend::Mongo => fresh_mongo_database(),
        TestBackend::Postgres => fresh_postgres_database(),
        TestBackend::Sqlite => panic!("several nodes share PostgreSQL or MongoDB: set ENGRAM_TEST_BACKEND"),
    }
}

/// A fresh database on the MongoDB-wire test server (`ENGRAM_TEST_MONGO_URL`); its URL.
pub fn fresh_mongo_database() -> String {
    let base = std::env::var("ENGRAM_TEST_MONGO_URL").expect(
        "ENGRAM_TEST_MONGO_URL is not set: `make test` starts a server; by hand: \
         export ENGRAM_TEST_MONGO_URL=$(scripts/mongo.sh start)",
    );
    let name = unique_database_name();
    let (head, query) = base.split_once('?').unwrap_or((&base, ""));
    format!("{}/{name}?{query}", head.trim_end_matches('/'))
}

/// A database name no other test server (of any test process) uses.
fn unique_database_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("engram_s_{}_{n}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A fresh database on the PostgreSQL test server; its URL.
pub fn fresh_postgres_database() -> String {
    let admin = std::env::var("ENGRAM_TEST_POSTGRES_URL").expect(
        "ENGRAM_TEST_POSTGRES_URL is not set: `make test` starts a server; by hand: \
         export ENGRAM_TEST_POSTGRES_URL=$(scripts/postgres.sh start)",
    );
    let name = unique_database_name();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(engram_core::store::postgres::create_database(&admin, &name))
        .unwrap_or_else(|e| panic!("cannot create a test database on {admin}: {e}"))
}

/// An engram server running in this process on a temp dir and a free port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, when the tests run on PostgreSQL.
    pub postgres_url: Option<String>,
    /// The MongoDB database, when the tests run on MongoDB.
    pub mongo_url: Option<String>,
    /// Secrets of the keys created from [`Opts::keys`], in order.
    pub keys: Vec<String>,
    /// The ids of [`TestServer::keys`], in the same order.
    pub key_ids: Vec<String>,
    /// The server's service, for driving its jobs' steps directly.
    pub service: MemoryService,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(Opts::default())
    }

    pub fn start_with(opts: Opts) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = Config::default();
        cfg.server.listen = "127.0.0.1:0".into();
        cfg.server.data_dir = dir.path().to_path_buf();
        let postgres_url = on_postgres().then(fresh_postgres_database);
        let mongo_url = (backend() == TestBackend::Mongo).then(fresh_mongo_database);
        if let Some(url) = postgres_url.as_ref().or(mongo_url.as_ref()) {
            cfg.store.url = url.clone();
        }
        cfg.server.access_log = false;
        if let Some(b) = opts.max_body_bytes {
            cfg.server.max_body_bytes = b;
        }
        if let Some(s) = opts.sweep_interval_seconds {
            cfg.memory.sweep_interval_seconds = s;
        }
        cfg.embedder.provider = "none".into();
        if opts.embedder {
            cfg.embedder.provider = "local".into();
            cfg.embedder.model_dir = model_dir();
        }
        if let Some(e) = opts.embedder_section.clone() {
            cfg.embedder = e;
        }
        if let Some(m) = opts.memory.clone() {
            cfg.memory = m;
        }
        if let Some(d) = opts.distiller.clone() {
            cfg.distiller = d;
        }
        if let Some(l) = opts.limits.clone() {
            cfg.limits = l;
        }
        if let Some(a) = opts.auth.clone() {
            cfg.auth = a;
        }
        let mut settings = config::validate(&cfg).expect("valid test config");
        if let Some(c) = &opts.clock {
            settings.store.set_clock(c.clone());
        }
        if let (Some(ms), config::StoreSettings::Sqlite(o)) = (opts.busy_timeout_ms, &mut settings.store) {
            o.busy_timeout = Duration::from_millis(ms);
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let embedder = engram_server::server::load_embedder(&settings.embedder, settings.store.clock())
                    .await
                    .unwrap_or_else(|e| panic!("{e} (run `make model` first)"));
                let store = engram_server::server::open_store(settings.store.clone()).await.expect("open store");
                let mode = if opts.auth_required { AuthMode::Required } else { AuthMode::DevUntilKeysExist };
                let opts_ = engram_server::server::service_options(&settings, embedder).expect("service options");
                let service = MemoryService::with_options(store, mode, opts_);
                let mut secrets = Vec::new();
                for (tenant, scopes) in &opts.keys {
                    let (info, secret) =
                        service.create_key(tenant, "test", Scopes::parse_list(scopes).unwrap(), None).await.unwrap();
                    secrets.push((info.id, secret));
                }
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready_tx.send((listener.local_addr().unwrap(), secrets, service.clone())).unwrap();
                engram_server::server::run(listener, service, &settings, async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("server run");
            });
        });
        let (addr, made, service) = ready_rx.recv_timeout(Duration::from_secs(60)).expect("server started");
        let (key_ids, keys) = made.into_iter().unzip();
        TestServer {
            addr,
            dir,
            postgres_url,
            mongo_url,
            keys,
            key_ids,
            service,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A client in dev mode (no key).
    pub fn client(&self) -> Client {
        Client { addr: self.addr, key: None }
    }

    /// A client using the i-th key from [`Opts::keys`].
    pub fn client_with_key(&self, i: usize) -> Client {
        Client { addr: self.addr, key: Some(self.keys[i].clone()) }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("engram.db")
    }

    /// Runs one SQL statement on the server's database directly (its tables
    /// are named alike on both backends) and returns the first column of the
    /// first row as text, if any (`None` for a statement without rows).
    pub fn sql(&self, statement: &str) -> Option<String> {
        assert!(
            self.mongo_url.is_none(),
            "SQL on a MongoDB store: this test is for the SQL backends (Makefile's MONGO_SKIP)"
        );
        match &self.postgres_url {
            Some(url) => {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
                    tokio::spawn(conn);
                    let rows = client.simple_query(statement).await.expect("statement");
                    rows.iter().find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                        _ => None,
                    })
                })
            }
            None => {
                let conn = rusqlite::Connection::open(self.db_path()).expect("open the database");
                let mut stmt = conn.prepare(statement).expect("statement");
                if stmt.column_count() == 0 {
                    stmt.execute([]).expect("statement");
                    return None;
                }
                let mut rows = stmt.query([]).expect("query");
                rows.next().expect("row").map(|r| match r.get_ref(0).expect("column") {
                    rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    rusqlite::types::ValueRef::Real(f) => f.to_string(),
                    v => String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned(),
                })
            }
        }
    }

    /// Runs `f` on the server's MongoDB database directly.
    pub fn mongo<T>(&self, f: impl AsyncFnOnce(mongodb::Database) -> T) -> T {
        let url = self.mongo_url.as_ref().expect("a MongoDB store");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let client = mongodb::Client::with_uri_str(url).await.expect("connect");
            let name = url.split('?').next().unwrap().rsplit('/').next().unwrap().to_owned();
            f(client.database(&name)).await
        })
    }

    /// How many memories are stored, expired ones too (read from the
    /// database itself, not through the API).
    pub fn count_memories(&self) -> u64 {
        if self.mongo_url.is_some() {
            use mongodb::bson::doc;
            let user = doc! { "tenant_id": { "$ne": "" } };
            return self.mongo(async |db| {
                db.collection::<mongodb::bson::Document>("memories").count_documents(user).await.unwrap()
            });
        }
        self.sql("SELECT count(*) FROM memories").unwrap().parse().unwrap()
    }

    /// A memory's stored salience (read from the database itself).
    pub fn salience_of(&self, id: &str) -> f64 {
        if self.mongo_url.is_some() {
            use mongodb::bson::doc;
            return self.mongo(async |db| {
                let d = db.collection::<mongodb::bson::Document>("memories").find_one(doc! { "id": id }).await.unwrap();
                d.expect("the memory").get_f64("salience").unwrap()
            });
        }
        // `id` is a UUID the server made (no quoting needed).
        self.sql(&format!("SELECT salience FROM memories WHERE id = '{id}'")).unwrap().parse().unwrap()
    }

    /// Rewrites every tenant's recorded embedding model behind the server's
    /// back (what an unannounced change looks like); returns the model now recorded.
    pub fn rewrite_tenant_models(&self, model: &str) -> String {
        if self.mongo_url.is_some() {
            use mongodb::bson::doc;
            return self.mongo(async |db| {
                let c = db.collection::<mongodb::bson::Document>("tenant_models");
                c.update_many(doc! {}, doc! { "$set": { "model": model } }).await.unwrap();
                c.find_one(doc! {}).await.unwrap().unwrap().get_str("model").unwrap().to_owned()
            });
        }
        // `model` is the test's own constant.
        self.sql(&format!("UPDATE tenant_models SET model = '{model}'"));
        self.sql("SELECT model FROM tenant_models").unwrap()
    }

    /// Runs the real `engram` binary on this server's store (its data
    /// directory, or its PostgreSQL database), without a model.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(engram_bin());
        cmd.args(args).arg("--data-dir").arg(self.dir.path()).env("ENGRAM_EMBEDDER_PROVIDER", "none");
        if let Some(url) = self.postgres_url.as_ref().or(self.mongo_url.as_ref()) {
            cmd.env("ENGRAM_STORE_URL", url);
        }
        cmd.stdin(std::process::Stdio::null()).output().expect("run engram")
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The real `engram` binary built for these tests.
pub fn engram_bin() -> &'static str {
    env!("CARGO_BIN_EXE_engram")
}

/// A free loopback port (bound and released; good enough for a child server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child `engram serve` process.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Proc {
    /// Starts `engram serve` on `data_dir` and waits until `/healthz` answers.
    pub fn serve(data_dir: &Path, extra_env: &[(&str, &str)]) -> Proc {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = Command::new(engram_bin());
        cmd.args(["serve", "--listen", &addr.to_string(), "--data-dir"])
            .arg(data_dir)
            .env("ENGRAM_SERVER_ACCESS_LOG", "false")
            .env("ENGRAM_EMBEDDER_PROVIDER", "none")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn engram");
        let p = Proc { child, addr };
        p.wait_healthy();
        p
    }

    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(self.addr).is_ok() && request(self.addr, "GET", "/healthz", &[], None).status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("engram did not become healthy on {}", self.addr);
    }

    pub fn client(&self) -> Client {
        Client { addr: self.addr, key: None }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
