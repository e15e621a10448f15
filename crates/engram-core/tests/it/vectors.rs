//! The vector index and the SQLite store's embedding tables: recall against
//! exact search, scope restriction inside the graph walk, deletes and updates,
//! persistence across restarts, the embedding queue, and deduplication.
//! Vectors here are caller-supplied (the real model is tested through the
//! server crate).

use std::collections::HashSet;
use std::path::Path;

use engram_core::model::{Namespace, NewMemory, Source, Tier, WriteStatus};
use engram_core::store::{SearchQuery, SqliteOptions, SqliteStore, Store, Synchronous, VectorOptions};
use engram_core::time::now_ms;
use engram_core::vector::{normalise, Change, Entry, NsScope, Scope, VectorIndex, EXACT_LIMIT};

const DIMS: usize = 32;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn unit(&mut self, dims: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dims).map(|_| self.next()).collect();
        normalise(&mut v).unwrap();
        v
    }
    /// A point near `centre` (embeddings cluster by topic).
    fn near(&mut self, centre: &[f32], spread: f32) -> Vec<f32> {
        let mut v: Vec<f32> = centre.iter().map(|c| c + spread * self.next()).collect();
        normalise(&mut v).unwrap();
        v
    }
}

fn entry(tenant: &str, ns: &str, tier: Tier, vector: Vec<f32>) -> Entry {
    Entry { tenant: tenant.into(), namespace: ns.into(), tier, keyed: false, vector }
}

/// Vectors shaped like text embeddings: unit vectors on a low-dimensional
/// subspace (24 latent directions) plus a little noise. (Uniformly random
/// 384-d vectors have no neighbourhood structure at all; no ANN index, nor
/// any real embedding model, looks like that.)
fn embedding_like(rng: &mut Rng, basis: &[Vec<f32>], n: usize) -> Vec<Vec<f32>> {
    let dims = basis[0].len();
    (0..n)
        .map(|_| {
            let mut v = vec![0f32; dims];
            for b in basis {
                let w = rng.next();
                v.iter_mut().zip(b).for_each(|(x, y)| *x += w * y);
            }
            rng.near(&v, 0.01)
        })
        .collect()
}

#[test]
fn hnsw_recall_at_10_against_exact_search() {
    let dims = 384;
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let index = VectorIndex::new(dims).unwrap();
    let basis: Vec<Vec<f32>> = (0..24).map(|_| rng.unit(dims)).collect();
    let vectors = embedding_like(&mut rng, &basis, 20_000);
    let changes = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| Change { change: i as i64 + 1, seq: i as u64 + 1, entry: Some(entry("t", "ns", Tier::Episodic, v.clone())) })
        .collect();
    index.apply(changes).unwrap();
    assert_eq!(index.len(), 20_000);
    let scope = Scope { tenant: "t", namespace: NsScope::Any, tier: None, unkeyed_only: false, allowed: None };
    let (mut found, mut total) = (0usize, 0usize);
    for q in embedding_like(&mut rng, &basis, 40) {
        let approx: HashSet<u64> = index.search(&q, 10, &scope).unwrap().into_iter().map(|h| h.0).collect();
        let exact = index.exact_search(&q, 10, "t").unwrap();
        total += exact.len();
        found += exact.iter().filter(|h| approx.contains(&h.0)).count();
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

#[test]
fn search_stays_inside_tenant_namespace_and_tier() {
    let mut rng = Rng(7);
    let index = VectorIndex::new(DIMS).unwrap();
    let mut changes = Vec::new();
    // 5000 vectors of tenant a (more than EXACT_LIMIT, so the graph is walked),
    // spread over namespaces and tiers, and 2000 of tenant b.
    for i in 0..7000u64 {
        let (tenant, ns, tier) = match i {
            i if i >= 5000 => ("b", "users/x", Tier::Episodic),
            i if i % 10 == 0 => ("a", "users/alice/prefs", Tier::Semantic),
            i if i % 10 == 1 => ("a", "users/alice", Tier::Episodic),
            i if i % 10 == 2 => ("a", "users/alicexyz", Tier::Episodic),
            _ => ("a", "users/bob", Tier::Episodic),
        };
        changes.push(Change { change: i as i64 + 1, seq: i + 1, entry: Some(entry(tenant, ns, tier, rng.unit(DIMS))) });
    }
    index.apply(changes).unwrap();
    let q = rng.unit(DIMS);
    let check = |scope: Scope<'_>, want: usize, ok: &dyn Fn(u64) -> bool| {
        let hits = index.search(&q, 20, &scope).unwrap();
        assert_eq!(hits.len(), want, "{scope:?}");
        for (seq, _) in hits {
            assert!(ok(seq - 1), "seq {seq} out of {scope:?}");
        }
    };
    let any = Scope { tenant: "a", namespace: NsScope::Any, tier: None, unkeyed_only: false, allowed: None };
    check(any, 20, &|i| i < 5000);
    check(Scope { tenant: "b", ..any }, 20, &|i| i >= 5000);
    check(Scope { tenant: "nobody", ..any }, 0, &|_| false);
    // Prefix on whole segments: users/alice covers users/alice/prefs, not users/alicexyz.
    check(Scope { namespace: NsScope::Prefix("users/alice"), ..any }, 20, &|i| i < 5000 && i % 10 <= 1);
    check(Scope { namespace: NsScope::Exact("users/alice"), ..any }, 20, &|i| i < 5000 && i % 10 == 1);
    check(Scope { tier: Some(Tier::Semantic), ..any }, 20, &|i| i < 5000 && i % 10 == 0);
    // A large scope walked with a filter set: only allowed seqs come back.
    let allowed: HashSet<u64> = (1..=5000u64).filter(|s| s % 2 == 0).collect();
    assert!(allowed.len() > EXACT_LIMIT);
    check(Scope { allowed: Some(&allowed), ..any }, 20, &|i| (i + 1) % 2 == 0);
    // Exact results for a small scope: the best of the scope comes first.
    let small: HashSet<u64> = (1..=50u64).collect();
    let hits = index.search(&q, 50, &Scope { allowed: Some(&small), ..any }).unwrap();
    assert_eq!(hits.len(), 50);
    assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
}

#[test]
fn deletes_and_updates_replace_what_the_graph_holds() {
    let mut rng = Rng(11);
    let index = VectorIndex::new(DIMS).unwrap();
    let a = rng.unit(DIMS);
    let b = rng.unit(DIMS);
    index.apply(vec![Change { change: 1, seq: 1, entry: Some(entry("t", "n", Tier::Episodic, a.clone())) }]).unwrap();
    let scope = Scope { tenant: "t", namespace: NsScope::Any, tier: None, unkeyed_only: false, allowed: None };
    let top = index.search(&a, 1, &scope).unwrap();
    assert_eq!(top[0].0, 1);
    assert!((top[0].1 - 1.0).abs() < 1e-4, "cosine of a vector with itself: {}", top[0].1);
    // Update: the same memory gets vector b.
    index.apply(vec![Change { change: 2, seq: 1, entry: Some(entry("t", "n", Tier::Semantic, b.clone())) }]).unwrap();
    let top = index.search(&b, 1, &Scope { tier: Some(Tier::Semantic), ..scope }).unwrap();
    assert!((top[0].1 - 1.0).abs() < 1e-4);
    assert!(index.search(&b, 1, &Scope { tier: Some(Tier::Episodic), ..scope }).unwrap().is_empty());
    // Delete.
    index.apply(vec![Change { change: 3, seq: 1, entry: None }]).unwrap();
    assert!(index.search(&b, 5, &scope).unwrap().is_empty());
    assert_eq!(index.len(), 0);
    assert_eq!(index.applied(), 3);
    // A query of the wrong dimension is a clear error, not garbage.
    let err = index.search(&[1.0; 3], 1, &scope).unwrap_err();
    assert_eq!(err.code().as_str(), "embedding_mismatch");
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(SqliteOptions {
        path: dir.join("engram.db"),
        readers: 2,
        synchronous: Synchronous::Normal,
        exclusive: true,
        vectors: Some(VectorOptions { dims: DIMS, index_path: dir.join("engram.vectors") }),
    })
    .unwrap()
}

fn memory(ns: &str, text: &str, embedding: Option<Vec<f32>>) -> NewMemory {
    NewMemory {
        namespace: Namespace::from_stored(ns),
        key: None,
        tier: Tier::Episodic,
        text: text.into(),
        data: None,
        tags: vec![],
        metadata: Default::default(),
        salience: 0.5,
        pinned: false,
        ttl_ms: None,
        source: Source::Api,
        index: None,
        embedding,
    }
}

fn query(tenant: &str) -> SearchQuery {
    SearchQuery {
        tenant: tenant.into(),
        text: None,
        namespace_prefix: Namespace::from_stored(""),
        tiers: vec![],
        filter: None,
        items_only: false,
        limit: 10,
        offset: 0,
        now: now_ms(),
    }
}

/// The texts of the `k` nearest memories to `v` in `q`'s scope, best first.
async fn nearest(store: &Store, q: SearchQuery, v: &[f32], k: usize) -> Vec<String> {
    let hits = store.vector_hits(q.clone(), v.to_vec(), k).await.unwrap();
    let mut rows: std::collections::HashMap<i64, String> =
        store.hydrate(q, hits.iter().map(|h| h.0).collect()).await.unwrap().into_iter().map(|(s, m)| (s, m.text)).collect();
    hits.iter().filter_map(|h| rows.remove(&h.0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_survive_restart_from_the_saved_index_plus_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(3);
    let (va, vb, vc) = (rng.unit(DIMS), rng.unit(DIMS), rng.unit(DIMS));
    {
        let store = Store::Sqlite(open(dir.path()));
        let out = store
            .put_memories("t", vec![memory("n", "alpha", Some(va.clone())), memory("n", "beta", Some(vb.clone()))], now_ms())
            .await
            .unwrap();
        assert!(out.iter().all(|(s, _)| *s == WriteStatus::Created));
        assert_eq!(nearest(&store, query("t"), &va, 1).await, ["alpha"]);
        store.save_indexes().await.unwrap();
        // After the save: delete beta and add gamma, then stop without saving.
        let beta = out[1].1.id.clone();
        assert!(store.delete_memory("t", &beta, now_ms()).await.unwrap());
        store.put_memories("t", vec![memory("n", "gamma", Some(vc.clone()))], now_ms()).await.unwrap();
        store.close().await;
    }
    assert!(dir.path().join("engram.vectors").is_file() && dir.path().join("engram.vectors.json").is_file());
    let store = Store::Sqlite(open(dir.path()));
    assert_eq!(nearest(&store, query("t"), &vc, 1).await, ["gamma"], "replayed insert");
    let all = nearest(&store, query("t"), &vb, 10).await;
    assert!(!all.contains(&"beta".to_string()) && all.len() == 2, "replayed delete: {all:?}");
    assert!(nearest(&store, query("other"), &va, 10).await.is_empty(), "tenant scoped");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_keeps_unembedded_memories_and_drops_stale_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(5);
    let id;
    {
        let store = Store::Sqlite(open(dir.path()));
        let out = store.put_memories("t", vec![memory("n", "first text", None), memory("n", "", None)], now_ms()).await.unwrap();
        id = out[0].1.id.clone();
        let pending = store.take_pending(10, vec![]).await.unwrap();
        assert_eq!(pending.len(), 1, "empty texts are not queued");
        assert_eq!(pending[0].text, "first text");
        assert_eq!(store.pending_embeddings("t", &Namespace::from_stored("")).await.unwrap(), 1);
        assert_eq!(store.pending_embeddings("t", &Namespace::from_stored("other")).await.unwrap(), 0);
        // The text changes while its old version is being embedded.
        let patch = engram_core::model::MemoryPatch { text: Some("second text".into()), ..Default::default() };
        store.update_memory("t", &id, patch, None, now_ms()).await.unwrap();
        let stale = vec![(pending[0].seq, pending[0].gen, rng.unit(DIMS))];
        assert_eq!(store.store_embeddings(stale).await.unwrap(), 0, "an embedding of the old text is dropped");
        store.close().await;
    }
    let store = Store::Sqlite(open(dir.path()));
    let pending = store.take_pending(10, vec![]).await.unwrap();
    assert_eq!(pending.len(), 1, "the queue survives a restart");
    assert_eq!(pending[0].text, "second text");
    assert!(store.take_pending(10, vec!["t".into()]).await.unwrap().is_empty(), "excluded tenants are skipped");
    let v = rng.unit(DIMS);
    assert_eq!(store.store_embeddings(vec![(pending[0].seq, pending[0].gen, v.clone())]).await.unwrap(), 1);
    assert!(store.take_pending(10, vec![]).await.unwrap().is_empty());
    assert_eq!(nearest(&store, query("t"), &v, 1).await, ["second text"]);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_duplicates_are_merged_not_added() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Sqlite(open(dir.path()));
    let mut rng = Rng(9);
    let v = rng.unit(DIMS);
    let first = store.put_memories("t", vec![memory("n", "Alice likes green tea.", Some(v.clone()))], now_ms()).await.unwrap();
    // Same normalised text: case, spacing and trailing punctuation differ.
    let mut again = memory("n", "  alice LIKES   green tea ", None);
    again.tags = vec!["drinks".into()];
    let out = store.put_memories("t", vec![again], now_ms()).await.unwrap();
    assert_eq!(out[0].0, WriteStatus::Merged);
    assert_eq!(out[0].1.id, first[0].1.id);
    assert_eq!(out[0].1.tags, ["drinks"]);
    assert_eq!(out[0].1.version, 2, "the existing memory is refreshed");
    // A different text whose vector is within cosine 0.95.
    let mut close = v.clone();
    close[0] += 0.05;
    normalise(&mut close).unwrap();
    assert!(engram_core::vector::dot(&v, &close) >= 0.95);
    let out = store.put_memories("t", vec![memory("n", "Alice enjoys green tea", Some(close))], now_ms()).await.unwrap();
    assert_eq!(out[0].0, WriteStatus::Merged);
    // Another namespace, or a distant vector, is a new memory.
    let out = store.put_memories("t", vec![memory("m", "Alice likes green tea", Some(v.clone()))], now_ms()).await.unwrap();
    assert_eq!(out[0].0, WriteStatus::Created);
    let far = rng.unit(DIMS);
    let out = store.put_memories("t", vec![memory("n", "Bob plays chess", Some(far))], now_ms()).await.unwrap();
    assert_eq!(out[0].0, WriteStatus::Created);
    // Duplicates inside one batch collapse too.
    let w = rng.unit(DIMS);
    let out = store
        .put_memories("t", vec![memory("n", "Carol runs", Some(w.clone())), memory("n", "Carol goes running", Some(w))], now_ms())
        .await
        .unwrap();
    assert_eq!((out[0].0, out[1].0), (WriteStatus::Created, WriteStatus::Merged));
    assert_eq!(out[0].1.id, out[1].1.id);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbours_are_adjacent_in_their_namespace_close_in_time_and_in_scope() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Sqlite(open(dir.path()));
    let t0 = now_ms();
    let minute = 60_000;
    let mut seqs = Vec::new();
    // Written in this order; "b" interleaves but is another namespace.
    for (ns, text, at) in [("a", "one", t0), ("b", "other", t0 + minute), ("a", "two", t0 + 10 * minute), ("a", "three", t0 + 190 * minute)] {
        let out = store.put_memories("t", vec![memory(ns, text, None)], at).await.unwrap();
        let q = SearchQuery { now: at, ..query("t") };
        let found = store.hydrate(q, (1..=10).collect()).await.unwrap();
        seqs.push(found.iter().find(|(_, m)| m.id == out[0].1.id).unwrap().0);
    }
    let (one, other, two, three) = (seqs[0], seqs[1], seqs[2], seqs[3]);
    let q = SearchQuery { now: t0 + 200 * minute, ..query("t") };
    let hour = 60 * minute;
    let mut pairs = store.expand(q.clone(), vec![one, two, three, other], Some(hour)).await.unwrap().adjacent;
    pairs.sort();
    // two and three are adjacent but written 3 hours apart.
    assert_eq!(pairs, {
        let mut p = vec![(one, two), (two, one)];
        p.sort();
        p
    });
    let expansion = store.expand(q.clone(), vec![one], None).await.unwrap();
    assert!(expansion.adjacent.is_empty() && expansion.facts.len() == 1, "no neighbours without a gap");
    // A neighbour outside the search's scope (here: its tier) is not context.
    let patch = engram_core::model::MemoryPatch { tier: Some(Tier::Semantic), ..Default::default() };
    let two_id = store.hydrate(q.clone(), vec![two]).await.unwrap()[0].1.id.clone();
    store.update_memory("t", &two_id, patch, None, t0 + 195 * minute).await.unwrap();
    let episodic = SearchQuery { tiers: vec![Tier::Episodic], ..q.clone() };
    assert!(store.expand(episodic, vec![one], Some(hour)).await.unwrap().adjacent.is_empty());
    assert!(store.expand(SearchQuery { tenant: "u".into(), ..q }, vec![one], Some(hour)).await.unwrap().facts.is_empty(), "tenant scoped");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_moves_salient_episodic_memories_and_merges_semantic_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Sqlite(open(dir.path()));
    let mut rng = Rng(11);
    let tea = rng.unit(DIMS);
    let mut tea_again = tea.clone();
    tea_again[1] += 0.05;
    normalise(&mut tea_again).unwrap();
    let chess = rng.unit(DIMS);
    let run = rng.unit(DIMS);
    let salient = |ns: &str, text: &str, tier: Tier, salience: f64| {
        let mut m = memory(ns, text, None);
        m.tier = tier;
        m.salience = salience;
        m.tags = vec![text.split(' ').next().unwrap().to_lowercase()];
        m
    };
    // Written without vectors (the queue embeds them), so write-time dedup
    // compared texts only and both tea memories exist.
    let batch = vec![
        salient("n", "Alice likes green tea", Tier::Semantic, 0.6),
        salient("n", "Alice enjoys a cup of green tea", Tier::Episodic, 0.9),
        salient("n", "Bob plays chess on Sundays", Tier::Episodic, 0.85),
        salient("n", "Carol runs every morning", Tier::Episodic, 0.5),
        salient("other", "Alice enjoys a cup of green tea", Tier::Episodic, 0.95),
    ];
    let written = store.put_memories("t", batch, now_ms()).await.unwrap();
    assert!(written.iter().all(|(s, _)| *s == WriteStatus::Created));
    let vector_of = |text: &str, ns: &str| match (text, ns) {
        ("Alice likes green tea", _) => tea.clone(),
        ("Alice enjoys a cup of green tea", "n") => tea_again.clone(),
        ("Alice enjoys a cup of green tea", _) => tea.clone(),
        ("Bob plays chess on Sundays", _) => chess.clone(),
        _ => run.clone(),
    };
    let pending = store.take_pending(10, vec![]).await.unwrap();
    let by_seq: Vec<(i64, i64, Vec<f32>)> = pending
        .iter()
        .zip(&written)
        .map(|(p, (_, m))| (p.seq, p.gen, vector_of(&p.text, &m.namespace.joined())))
        .collect();
    assert_eq!(store.store_embeddings(by_seq).await.unwrap(), 5);
    store.sync_indexes().await.unwrap();

    let done = store.promote(0.8, now_ms(), 100).await.unwrap();
    assert_eq!((done.promoted, done.merged), (2, 1), "chess and the other namespace's tea move; this tea merges");
    let get = |i: usize| {
        let (store, id) = (&store, written[i].1.id.clone());
        async move { store.get_memory("t", &id, now_ms()).await.unwrap() }
    };
    let kept = get(0).await.expect("the semantic memory stays");
    assert_eq!(kept.tier, Tier::Semantic);
    assert!((kept.salience - 0.9).abs() < 1e-9, "it takes the higher salience");
    assert_eq!(kept.tags, ["alice"]);
    assert!(get(1).await.is_none(), "the merged episodic memory is gone");
    assert_eq!(get(2).await.unwrap().tier, Tier::Semantic);
    assert_eq!(get(2).await.unwrap().version, 2);
    assert_eq!(get(3).await.unwrap().tier, Tier::Episodic, "below the threshold");
    assert_eq!(get(4).await.unwrap().tier, Tier::Semantic, "a duplicate only counts in its own namespace");
    // The index follows: a semantic-only search finds chess.
    let mut q = query("t");
    q.tiers = vec![Tier::Semantic];
    assert_eq!(nearest(&store, q, &chess, 1).await, ["Bob plays chess on Sundays"]);
    assert_eq!(store.promote(0.8, now_ms(), 100).await.unwrap(), Default::default(), "nothing left to promote");
    store.close().await;
}
