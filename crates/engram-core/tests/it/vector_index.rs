//! The in-process vector index (the SQLite backend's HNSW graph): recall
//! against exact search, scope restriction inside the graph walk, deletes and
//! updates.

use std::collections::HashSet;

use engram_core::model::Tier;
use engram_core::vector::{Change, Entry, NsScope, Scope, VectorIndex, EXACT_LIMIT};

use crate::harness::{Rng, DIMS};

/// A point near `centre` (embeddings cluster by topic).
fn near(rng: &mut Rng, centre: &[f32], spread: f32) -> Vec<f32> {
    let mut v: Vec<f32> = centre.iter().map(|c| c + spread * rng.next()).collect();
    engram_core::vector::normalise(&mut v).unwrap();
    v
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
            near(rng, &v, 0.01)
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
        .map(|(i, v)| Change {
            change: i as i64 + 1,
            seq: i as u64 + 1,
            entry: Some(entry("t", "ns", Tier::Episodic, v.clone())),
        })
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
