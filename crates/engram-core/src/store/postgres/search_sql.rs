//! SQL for search: vector hits (pgvector), near-duplicate probes, the expansion of candidates with their
//! neighbours, and hydration of the page. Keyword search is in `keyword.rs`;
//! scopes compile in `scope_sql.rs`.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use pgvector::Vector;

use super::memories::{to_stored, COLUMNS};
use super::scope_sql::push_scope;
use super::sql::{col, query, query_built, SqlBuilder};
use crate::error::Result;
use crate::model::Namespace;
use crate::store::{Expansion, Hit, RankFacts, Scope, Stored};
use crate::time::Millis;

/// Memories a near-duplicate probe returns at most.
const NEAR_LIMIT: i64 = 8;

/// The expression the HNSW index of `dims` dimensions is built on.
fn embedding(dims: usize) -> String {
    format!("v.embedding::vector({dims})")
}

/// The nearest `k` memories to `vector` in the scope: `(seq, cosine)`, best
/// first. The HNSW index scan continues past rows the scope rejects
/// (`hnsw.iterative_scan`, set per connection).
pub async fn vector_hits<C: GenericClient>(c: &C, scope: &Scope, vector: &[f32], k: usize) -> Result<Vec<Hit>> {
    let dims = vector.len();
    let e = embedding(dims);
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT m.seq, 1 - ({e} <=> "))
        .param(Vector::from(vector.to_vec()))
        .sql(&format!("::vector({dims}))::float8 AS cos FROM memory_vectors v JOIN memories m ON m.tenant_id = v.tenant_id AND m.seq = v.seq WHERE v.dims = {dims} AND v.tenant_id = "))
        .param(scope.tenant.clone())
        .sql(" AND");
    push_scope(&mut b, scope);
    b.sql(&format!(" ORDER BY {e} <=> $1::vector({dims}) LIMIT ")).param(k as i64);
    let rows = query_built(c, &b).await?;
    let mut hits: Vec<Hit> = rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect::<Result<_>>()?;
    // Iterative scans may return rows slightly out of order.
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(hits)
}

/// The tenant's memories in exactly `namespace` whose vectors have cosine at
/// least `min_cosine` with `vector`, best first, live or not (at most a few).
pub async fn near<C: GenericClient>(
    c: &C,
    tenant: &str,
    namespace: &Namespace,
    vector: &[f32],
    min_cosine: f32,
) -> Result<Vec<Hit>> {
    let dims = vector.len();
    let e = embedding(dims);
    let sql = format!(
        "SELECT v.seq, 1 - ({e} <=> $1::vector({dims}))::float8 AS cos FROM memory_vectors v \
         WHERE v.dims = {dims} AND v.tenant_id = $2 AND v.namespace = $3 ORDER BY {e} <=> $1::vector({dims}) LIMIT $4"
    );
    let rows = query(c, &sql, &[&Vector::from(vector.to_vec()), &tenant, &namespace.joined(), &NEAR_LIMIT]).await?;
    let mut hits = Vec::new();
    for r in &rows {
        let (seq, cos): (i64, f64) = (col(r, 0)?, col(r, 1)?);
        if cos >= f64::from(min_cosine) {
            hits.push((seq, cos));
        }
    }
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(hits)
}

/// The cosine between `vector` and each of `seqs` that has a vector of its size.
pub async fn cosines<C: GenericClient>(c: &C, seqs: &[i64], vector: &[f32]) -> Result<HashMap<i64, f64>> {
    if seqs.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = query(
        c,
        "SELECT seq, (1 - (embedding <=> $1))::float8 FROM memory_vectors WHERE seq = ANY($2) AND dims = $3",
        &[&Vector::from(vector.to_vec()), &seqs, &(vector.len() as i32)],
    )
    .await?;
    rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
}

/// What ranking needs of `seqs` (already in scope) and, when `max_gap` is set,
/// of the memories written just before and after each in the same namespace
/// (by id, which orders by creation), created at most `max_gap` apart and in
/// the search's scope.
pub async fn expand<C: GenericClient>(c: &C, q: &Scope, seqs: &[i64], max_gap: Option<Millis>) -> Result<Expansion> {
    let mut out = Expansion::default();
    if seqs.is_empty() {
        return Ok(out);
    }
    let neighbours = if max_gap.is_some() {
        "(SELECT p.seq FROM memories p WHERE p.tenant_id = m.tenant_id AND p.namespace = m.namespace \
         AND p.id < m.id ORDER BY p.id DESC LIMIT 1), \
         (SELECT n.seq FROM memories n WHERE n.tenant_id = m.tenant_id AND n.namespace = m.namespace \
         AND n.id > m.id ORDER BY n.id LIMIT 1)"
    } else {
        "NULL::bigint, NULL::bigint"
    };
    let rows = query(
        c,
        &format!(
            "SELECT m.seq, m.created_at, m.updated_at, m.salience, {neighbours} FROM memories m \
             WHERE m.tenant_id = $1 AND m.seq = ANY($2)"
        ),
        &[&q.tenant, &seqs],
    )
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for r in &rows {
        let facts = RankFacts { updated_at: col(r, 2)?, salience: col(r, 3)? };
        let adjacent: [Option<i64>; 2] = [col(r, 4)?, col(r, 5)?];
        found.push((col::<i64>(r, 0)?, col::<Millis>(r, 1)?, facts, adjacent));
    }
    let mut wanted: Vec<i64> = found.iter().flat_map(|r| r.3).flatten().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut created: HashMap<i64, Millis> = HashMap::new();
    if max_gap.is_some() && !wanted.is_empty() {
        let mut b = SqlBuilder::default();
        b.sql("SELECT m.seq, m.created_at, m.updated_at, m.salience FROM memories m WHERE");
        push_scope(&mut b, q);
        b.sql(" AND m.seq = ANY(").param(wanted).sql(")");
        for r in &query_built(c, &b).await? {
            let seq: i64 = col(r, 0)?;
            created.insert(seq, col(r, 1)?);
            out.facts.insert(seq, RankFacts { updated_at: col(r, 2)?, salience: col(r, 3)? });
        }
    }
    let gap = max_gap.unwrap_or(0);
    for (seq, at, facts, adjacent) in found {
        out.facts.insert(seq, facts);
        for n in adjacent.into_iter().flatten() {
            if created.get(&n).is_some_and(|t| (t - at).abs() <= gap) {
                out.adjacent.push((seq, n));
            }
        }
    }
    Ok(out)
}

/// Those of `seqs` in the scope, loaded.
pub async fn hydrate<C: GenericClient>(c: &C, q: &Scope, seqs: &[i64]) -> Result<Vec<Stored>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT {COLUMNS} FROM memories m WHERE"));
    push_scope(&mut b, q);
    b.sql(" AND m.seq = ANY(").param(seqs.to_vec()).sql(")");
    query_built(c, &b).await?.iter().map(to_stored).collect()
}
