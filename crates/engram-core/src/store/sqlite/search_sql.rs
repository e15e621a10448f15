//! SQL for search (run on a pooled reader): the candidates in a scope and
//! whether hits are in it, the expansion of candidates with their neighbours,
//! and hydration of the page. Scopes compile in `scope_sql.rs`.

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::memories::{run_query, to_stored, COLUMNS};
use super::scope_sql::push_scope;
use super::sql::SqlBuilder;
use crate::error::Result;
use crate::store::{Expansion, RankFacts, Scope, Stored};
use crate::time::Millis;

/// The `seq`s in the search's scope when at most `cap` match (a filter's
/// candidate set for the vector search), else `None`.
pub fn scope_seqs(c: &Connection, q: &Scope, cap: usize) -> Result<Option<std::collections::HashSet<u64>>> {
    let mut b = SqlBuilder::default();
    b.sql("SELECT m.seq FROM memories m WHERE");
    push_scope(&mut b, q);
    b.sql(" LIMIT ").param(SqlValue::Integer(cap as i64 + 1));
    super::vectors::collect_seqs(c, &b, cap)
}

/// `memories m` for queries that name their rows by `seq`: without statistics
/// SQLite would rather walk a tenant index (all of a tenant's rows) than look
/// up the listed rows by primary key; `NOT INDEXED` leaves it the rowid.
const BY_SEQ: &str = "memories m NOT INDEXED";

/// Those of `seqs` that are live and in the search's scope (filter included).
pub fn in_scope(c: &Connection, q: &Scope, seqs: &[i64]) -> Result<HashSet<i64>> {
    if seqs.is_empty() {
        return Ok(HashSet::new());
    }
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT m.seq FROM {BY_SEQ} WHERE"));
    push_scope(&mut b, q);
    b.sql(" AND m.seq IN ").seq_list(seqs);
    let mut stmt = c.prepare_cached(&b.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(b.params.iter()), |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What ranking needs of those of `seqs` in the search's scope and, when
/// `max_gap` is set, of the memories written just before and after each in the
/// same namespace (by id, which orders by creation), created at most `max_gap`
/// apart and in the scope. The candidates' scope is checked here too: an index
/// search may skip its own check (see `expiry`), and a hit the index has not
/// yet caught up on (deleted, swept, moved) must neither rank nor lend context.
pub fn expand(c: &Connection, q: &Scope, seqs: &[i64], max_gap: Option<Millis>) -> Result<Expansion> {
    let mut out = Expansion::default();
    if seqs.is_empty() {
        return Ok(out);
    }
    let mut b = SqlBuilder::default();
    b.sql("SELECT m.seq, m.created_at, m.updated_at, m.salience");
    if max_gap.is_some() {
        b.sql(
            ", (SELECT p.seq FROM memories p WHERE p.tenant_id = m.tenant_id AND p.namespace = m.namespace \
             AND p.id < m.id ORDER BY p.id DESC LIMIT 1), \
             (SELECT n.seq FROM memories n WHERE n.tenant_id = m.tenant_id AND n.namespace = m.namespace \
             AND n.id > m.id ORDER BY n.id LIMIT 1)",
        );
    } else {
        b.sql(", NULL, NULL");
    }
    b.sql(&format!(" FROM {BY_SEQ} WHERE"));
    push_scope(&mut b, q);
    b.sql(" AND m.seq IN ").seq_list(seqs);
    let rows: Vec<(i64, Millis, RankFacts, [Option<i64>; 2])> = run_query(c, &b, |r| {
        Ok((r.get(0)?, r.get(1)?, RankFacts { updated_at: r.get(2)?, salience: r.get(3)? }, [r.get(4)?, r.get(5)?]))
    })?;
    let mut wanted: Vec<i64> = rows.iter().flat_map(|r| r.3).flatten().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut created: HashMap<i64, Millis> = HashMap::new();
    if let (Some(_), false) = (max_gap, wanted.is_empty()) {
        let mut b = SqlBuilder::default();
        b.sql(&format!("SELECT m.seq, m.created_at, m.updated_at, m.salience FROM {BY_SEQ} WHERE"));
        push_scope(&mut b, q);
        b.sql(" AND m.seq IN ").seq_list(&wanted);
        for (seq, at, facts) in
            run_query(c, &b, |r| Ok((r.get(0)?, r.get(1)?, RankFacts { updated_at: r.get(2)?, salience: r.get(3)? })))?
        {
            created.insert(seq, at);
            out.facts.insert(seq, facts);
        }
    }
    let gap = max_gap.unwrap_or(0);
    for (seq, at, facts, adjacent) in rows {
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
pub fn hydrate(c: &Connection, q: &Scope, seqs: &[i64]) -> Result<Vec<Stored>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT {COLUMNS} FROM {BY_SEQ} WHERE"));
    push_scope(&mut b, q);
    b.sql(" AND m.seq IN ").seq_list(seqs);
    run_query(c, &b, to_stored)
}
