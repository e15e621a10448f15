//! What belongs to the MongoDB backend alone: several nodes on one database
//! see each other's writes through their change streams (and fold each
//! other's restatements), an acknowledged write survives the server's
//! SIGKILL, and the queries of a request find their documents by index.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use engram_core::service::inputs::{CreateMemories, SearchInput};
use engram_core::service::{AuthMode, ServiceOptions};
use engram_core::store::{MongoOptions, MongoStore, Store};
use engram_core::{MemoryService, TenantCtx};
use serde_json::json;

use crate::harness::{from_json, Backend, Harness, Rng, DIMS};

/// How long another node may take to see a write (its stream delivers in
/// milliseconds; the test server shares two cores with the whole suite).
const CATCH_UP: Duration = Duration::from_secs(30);

async fn found(svc: &MemoryService, q: serde_json::Value) -> Vec<String> {
    let input: SearchInput = from_json(q);
    svc.search(&TenantCtx::dev(), input).await.expect("search").results.into_iter().map(|h| h.memory.text).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_is_searchable_on_the_other() {
    let h = Harness::new(Backend::Mongo);
    let (a, b) = (h.vector_service(), h.vector_service());
    let v = Rng(5).unit(DIMS);
    let req: CreateMemories =
        from_json(json!({"memories": [{"namespace": ["n"], "text": "the heron nests by the weir", "embedding": v}]}));
    a.create_memories(&TenantCtx::dev(), req).await.expect("write on node a");
    // Node a's own indexes hold it when the write returns.
    let keyword = json!({"query": "heron weir", "mode": "keyword"});
    let vector = json!({"mode": "vector", "query_embedding": v, "limit": 1, "context_weight": 0});
    assert_eq!(found(&a, keyword.clone()).await, ["the heron nests by the weir"]);
    // Node b hears of it through its change stream.
    let started = Instant::now();
    loop {
        let (k, v) = (found(&b, keyword.clone()).await, found(&b, vector.clone()).await);
        if k == ["the heron nests by the weir"] && v == k {
            break;
        }
        assert!(started.elapsed() < CATCH_UP, "node b never saw node a's write: keyword {k:?}, vector {v:?}");
        tokio::task::yield_now().await;
    }
    // A delete on b leaves a's indexes the same way.
    let id = b.list_memories(&TenantCtx::dev(), Default::default()).await.unwrap().memories[0].id.clone();
    b.delete_memory(&TenantCtx::dev(), &id).await.expect("delete on node b");
    let started = Instant::now();
    while !found(&a, keyword.clone()).await.is_empty() {
        assert!(started.elapsed() < CATCH_UP, "node a still finds what node b deleted");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restatements_written_at_once_on_two_nodes_are_one() {
    crate::postgres::restatements_on_two_nodes_are_one(Harness::new(Backend::Mongo)).await
}

/// A MongoDB-wire server of the test's own (`scripts/mongo.sh` on a temp
/// dir), so that killing it leaves the other tests' server alone.
struct OwnServer {
    dir: tempfile::TempDir,
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mongo.sh")
}

impl OwnServer {
    fn run(dir: &Path, what: &str) -> String {
        let out = Command::new(script()).arg(what).env("MONGO_DIR", dir).output().expect("run scripts/mongo.sh");
        assert!(out.status.success(), "mongo.sh {what}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = Self::run(dir.path(), "start");
        let (head, query) = base.split_once('?').unwrap_or((&base, ""));
        OwnServer { url: format!("{}/durable?{query}", head.trim_end_matches('/')), dir }
    }

    async fn service(&self) -> MemoryService {
        let store = MongoStore::open(MongoOptions::new(self.url.clone())).await.expect("open");
        MemoryService::with_options(Store::Mongo(store), AuthMode::DevUntilKeysExist, ServiceOptions::default())
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").env("MONGO_DIR", self.dir.path()).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_servers_sigkill() {
    let server = OwnServer::start();
    let svc = server.service().await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let svc = svc.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let req: CreateMemories =
                    from_json(json!({"memories": [{"namespace": ["dur"], "text": format!("writer {w} fact {i}")}]}));
                ids.push(svc.create_memories(&TenantCtx::dev(), req).await.expect("write")[0].1.id.clone());
            }
            ids
        }));
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert_eq!(acked.len(), 100);
    // SIGKILL: the server runs no shutdown code.
    OwnServer::run(server.dir.path(), "kill");
    svc.close().await;
    drop(svc);
    OwnServer::run(server.dir.path(), "resume");
    let svc = server.service().await;
    for id in &acked {
        assert!(svc.get_memory(&TenantCtx::dev(), id).await.is_ok(), "acknowledged write {id} lost");
    }
    let all = found(&svc, json!({"query": "fact", "mode": "keyword", "limit": 1000})).await;
    assert_eq!(all.len(), 100, "the indexes are rebuilt from what survived");
}

/// The queries a request sends to `memories` — a keyed put and a restatement,
/// a get, a filtered vector search, a keyword search — as the server's
/// profiler records them, each explained: none may scan the collection. (The
/// test server's planner misses plans mongod finds: an equality on `key`
/// did not imply the key index's `$exists`, and any top-level `$and` was a
/// scan; docs/mongodb.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queries_of_a_request_ride_indexes() {
    use mongodb::bson::{doc, Bson, Document};
    let h = Harness::new(Backend::Mongo);
    let svc = h.vector_service();
    let ctx = TenantCtx::dev();
    let mut rng = Rng(9);
    let memories: Vec<_> = (0..30)
        .map(|i| {
            json!({"namespace": ["users", format!("u{}", i % 3)], "key": format!("k{i}"), "text": format!("fact {i} of the tide"),
                   "metadata": {"n": i}, "embedding": rng.unit(DIMS)})
        })
        .collect();
    svc.create_memories(&ctx, from_json(json!({ "memories": memories }))).await.expect("seed");

    let url = h.mongo_url.clone().expect("a database");
    let client = mongodb::Client::with_uri_str(&url).await.expect("client");
    let name = client.default_database().expect("the URL names a database").name().to_owned();
    let db = client.database(&name);
    db.run_command(doc! { "profile": 2 }).await.expect("profiler on");
    let v = rng.unit(DIMS);
    let put = json!({"memories": [{"namespace": ["users", "u1"], "key": "k1", "text": "fact 1 of the ebb", "embedding": v},
                                  {"namespace": ["users", "u2"], "key": "new", "text": "a new fact", "embedding": rng.unit(DIMS)}]});
    let written = svc.create_memories(&ctx, from_json(put)).await.expect("keyed put");
    svc.get_memory(&ctx, &written[0].1.id).await.expect("get");
    let filtered = json!({"mode": "vector", "query_embedding": v, "namespace_prefix": ["users"],
                          "filter": {"metadata.n": {"$gte": 3}}, "limit": 5, "context_weight": 0});
    assert!(!found(&svc, filtered).await.is_empty(), "the filtered search finds something");
    assert!(!found(&svc, json!({"query": "tide", "mode": "keyword"})).await.is_empty(), "the keyword search too");
    db.run_command(doc! { "profile": 0 }).await.expect("profiler off");

    let mut cursor =
        db.collection::<Document>("system.profile").find(doc! { "ns": format!("{name}.memories") }).await.unwrap();
    let mut explained = 0;
    while cursor.advance().await.expect("profile") {
        let entry: Document = cursor.deserialize_current().expect("entry");
        let Ok(command) = entry.get_document("command") else { continue };
        let Some(verb) = ["find", "aggregate"].into_iter().find(|v| command.contains_key(*v)) else { continue };
        // The query as sent, without its session and transaction fields.
        let mut query = doc! { verb: command.get(verb).cloned().unwrap_or(Bson::Null) };
        for field in ["filter", "sort", "projection", "limit", "pipeline"] {
            if let Some(value) = command.get(field) {
                query.insert(field, value.clone());
            }
        }
        if verb == "aggregate" {
            query.insert("cursor", doc! {});
        }
        // The fields the query (an aggregate: its first stage) selects on.
        let first = match verb {
            "find" => command.get_document("filter").cloned().unwrap_or_default(),
            _ => command
                .get_array("pipeline")
                .ok()
                .and_then(|p| p.first())
                .and_then(Bson::as_document)
                .and_then(|s| s.get_document("$match").ok())
                .cloned()
                .unwrap_or_default(),
        };
        let fields: Vec<&String> = first.keys().filter(|k| !k.starts_with('$')).collect();
        let plan = db.run_command(doc! { "explain": query.clone() }).await.expect("explain");
        let plan = serde_json::to_value(&plan).unwrap();
        assert!(!plan.to_string().contains("COLLSCAN"), "{query} scans the collection: {plan}");
        // An index that holds every field it selects on (not one clause alone).
        let covered = index_scans(&plan).iter().any(|keys| fields.iter().all(|f| keys.contains(f)));
        assert!(!fields.is_empty() && covered, "{query} rides no index of all of {fields:?}: {plan}");
        explained += 1;
    }
    assert!(explained >= 6, "the profiler recorded the request's queries ({explained})");
}

/// The key fields of every index scan in an explained plan (an `_id`
/// lookup's, on mongod 8 an express stage, counts as one over `_id`).
fn index_scans(plan: &serde_json::Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    match plan {
        serde_json::Value::Object(o) => {
            let stage = o.get("stage").and_then(|s| s.as_str()).unwrap_or("");
            if stage == "IDHACK" || stage.starts_with("EXPRESS") {
                out.push(vec!["_id".to_owned()]);
            }
            if stage.ends_with("IXSCAN") {
                if let Some(keys) = o.get("keyPattern").and_then(|k| k.as_object()) {
                    out.push(keys.keys().cloned().collect());
                }
            }
            o.values().for_each(|v| out.extend(index_scans(v)));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| out.extend(index_scans(v))),
        _ => {}
    }
    out
}

/// A database written by schema 1, whose key index was partial on
/// `key: {$exists: true}` (an index's options cannot change in place), is
/// brought to schema 2 at open: the index is made again on `$gte: ""`, and
/// keys stay unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_key_index_is_made_again() {
    use mongodb::bson::{doc, Document};
    use mongodb::options::IndexOptions;
    use mongodb::IndexModel;
    let h = Harness::new(Backend::Mongo);
    let client = mongodb::Client::with_uri_str(h.mongo_url.as_deref().expect("a database")).await.unwrap();
    let db = client.default_database().expect("the URL names a database");
    let old = IndexModel::builder()
        .keys(doc! { "tenant_id": 1, "namespace": 1, "key": 1 })
        .options(
            IndexOptions::builder().unique(true).partial_filter_expression(doc! { "key": { "$exists": true } }).build(),
        )
        .build();
    db.collection::<Document>("memories").create_index(old).await.expect("schema 1's index");
    db.collection::<Document>("engram_meta").insert_one(doc! { "_id": "schema", "version": 1i64 }).await.unwrap();

    let svc = h.service();
    let mut indexes = db.collection::<Document>("memories").list_indexes().await.unwrap();
    let (mut partial, mut unique) = (None, None);
    while indexes.advance().await.unwrap() {
        let ix: IndexModel = indexes.deserialize_current().unwrap();
        if ix.keys == doc! { "tenant_id": 1, "namespace": 1, "key": 1 } {
            assert!(partial.is_none(), "one key index: schema 1's is gone");
            let o = ix.options.expect("options");
            (partial, unique) = (o.partial_filter_expression, o.unique);
        }
    }
    assert_eq!(partial, Some(doc! { "key": { "$gte": "" } }));
    assert_eq!(unique, Some(true), "the key index is unique");
    let meta = db.collection::<Document>("engram_meta").find_one(doc! { "_id": "schema" }).await.unwrap().unwrap();
    assert_eq!(meta.get_i64("version").unwrap(), 2);
    // Two documents of one key: the index refuses the second.
    let raw = db.collection::<Document>("memories");
    let twin = |seq: i64| doc! { "_id": seq, "tenant_id": "t", "namespace": "n", "id": seq.to_string(), "key": "same" };
    raw.insert_one(twin(-10)).await.expect("the first");
    let e = raw.insert_one(twin(-11)).await.expect_err("a second document of the same key");
    assert!(e.to_string().contains("E11000") || e.to_string().contains("duplicate key"), "{e}");
    raw.delete_one(doc! { "_id": -10i64 }).await.unwrap();
    let put =
        || from_json::<CreateMemories>(json!({"memories": [{"namespace": ["n"], "key": "k", "text": "the tide"}]}));
    svc.create_memories(&TenantCtx::dev(), put()).await.expect("first");
    svc.create_memories(&TenantCtx::dev(), put()).await.expect("second, an update");
    assert_eq!(svc.list_memories(&TenantCtx::dev(), Default::default()).await.unwrap().memories.len(), 1);
}
