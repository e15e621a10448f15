//! Search over an in-process index (the keyword and vector indexes of the
//! SQLite and MongoDB backends), written once for both: scoped hits, the
//! near-duplicate probes, the cosines of candidates.
//!
//! An index knows where a memory is — tenant, namespace, tier, keyed — not
//! whether it has expired or what a filter says of it. So a search restricts
//! the index walk by placement and, when a filter (or a caller's grant, or
//! items only) matches at most [`FILTER_SET_CAP`] memories, by that set; the
//! database then checks the rest of the scope on the hits, and the walk looks
//! further (up to `max_want` hits) while that check thins the answer.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use std::collections::HashMap;

use super::{Hit, Scope};
use crate::error::{Error, Result};
use crate::model::Namespace;
use crate::vector::NsScope;

/// Most memories a filter may match for its set to restrict the index walk
/// directly; beyond it the walk is scoped by placement and oversampled.
pub const FILTER_SET_CAP: usize = 50_000;

/// The best `k` hits of `search(placement, want)` that the scope admits.
///
/// - `set(scope)`: the seqs the scope admits, if at most [`FILTER_SET_CAP`]
///   (asked only when the scope has a filter, a grant or is items only);
/// - `admitted(scope, seqs)`: those of `seqs` the scope admits;
/// - `nothing_expired()`: whether no memory can have expired, so that hits
///   of a scope without a set need no check (the SQLite backend knows; `false`
///   always checks).
pub async fn scoped_hits<F>(
    q: Scope,
    k: usize,
    max_want: usize,
    search: F,
    set: impl FnOnce(Scope) -> BoxFuture<'static, Result<Option<HashSet<u64>>>>,
    admitted: impl Fn(Scope, Vec<i64>) -> BoxFuture<'static, Result<HashSet<i64>>>,
    nothing_expired: impl Fn() -> bool,
) -> Result<Vec<Hit>>
where
    F: Fn(&crate::vector::Scope<'_>, usize) -> Result<Vec<(u64, f64)>> + Send + Sync + 'static,
{
    let needs_set = q.filter.is_some() || q.keyed_only || !q.within.is_empty();
    let allowed = if needs_set { set(q.clone()).await? } else { None };
    let ns = q.namespace_prefix.joined();
    // One tier, however often it is named, restricts the walk.
    let tier = q.tiers.first().copied().filter(|t| q.tiers.iter().all(|x| x == t));
    let (allowed, search) = (allowed.map(Arc::new), Arc::new(search));
    // Oversample when the filter could not restrict the walk itself.
    let mut want = if needs_set && allowed.is_none() { k * 4 } else { k };
    loop {
        let (search, tenant, ns, allowed) = (Arc::clone(&search), q.tenant.clone(), ns.clone(), allowed.clone());
        let hits = tokio::task::spawn_blocking(move || {
            let scope = crate::vector::Scope {
                tenant: &tenant,
                namespace: if ns.is_empty() { NsScope::Any } else { NsScope::Prefix(&ns) },
                tier,
                unkeyed_only: false,
                allowed: allowed.as_deref(),
            };
            search(&scope, want)
        })
        .await
        .map_err(|e| Error::internal(format!("search panicked: {e}")))??;
        let placed = hits.iter().map(|(s, score)| (*s as i64, *score));
        let kept: Vec<Hit> = if !needs_set && nothing_expired() {
            placed.take(k).collect()
        } else {
            let live = admitted(q.clone(), hits.iter().map(|(s, _)| *s as i64).collect()).await?;
            placed.filter(|(s, _)| live.contains(s)).take(k).collect()
        };
        // Memories expired but not yet swept (or outside the filter) thinned
        // a full answer: look further.
        if kept.len() < k && hits.len() >= want && want < max_want {
            want = want.saturating_mul(4).min(max_want);
            continue;
        }
        return Ok(kept);
    }
}

/// For each probe, the near neighbours in its exact namespace (as
/// `Store::near`), split across the cores: a batch of a thousand caller
/// vectors is a thousand index searches.
pub fn near_all(
    index: &crate::vector::VectorIndex,
    tenant: &str,
    probes: &[(Namespace, Vec<f32>)],
    min_cosine: f32,
) -> Result<Vec<Vec<Hit>>> {
    let joined: Vec<String> = probes.iter().map(|(ns, _)| ns.joined()).collect();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = probes.len().div_ceil(workers).max(1);
    let mut out: Vec<Vec<Hit>> = vec![Vec::new(); probes.len()];
    std::thread::scope(|scope| -> Result<()> {
        let running: Vec<_> = out
            .chunks_mut(chunk)
            .zip(probes.chunks(chunk).zip(joined.chunks(chunk)))
            .map(|(slots, (part, names))| {
                scope.spawn(move || -> Result<()> {
                    for ((slot, (_, v)), ns) in slots.iter_mut().zip(part).zip(names) {
                        let scope = crate::vector::Scope {
                            tenant,
                            namespace: NsScope::Exact(ns),
                            tier: None,
                            unkeyed_only: false,
                            allowed: None,
                        };
                        *slot =
                            index.near(v, &scope, min_cosine)?.into_iter().map(|(s, c)| (s as i64, c as f64)).collect();
                    }
                    Ok(())
                })
            })
            .collect();
        running.into_iter().try_for_each(|h| h.join().map_err(|_| Error::internal("duplicate search panicked"))?)
    })?;
    Ok(out)
}

/// The cosine between `vector` and each of `seqs` that has a vector in `index`.
pub fn cosines(index: &crate::vector::VectorIndex, seqs: Vec<i64>, vector: &[f32]) -> Result<HashMap<i64, f64>> {
    let mut out = HashMap::new();
    for s in seqs {
        if let Some(w) = index.vector(s as u64)? {
            out.insert(s, crate::vector::dot(vector, &w) as f64);
        }
    }
    Ok(out)
}
