//! Keyword search on PostgreSQL: the query's words become lexemes with the
//! index's own configuration (`english`: Snowball stemming, stopwords), common
//! lexemes of a large index are dropped (`store::common_terms`), and matches
//! are scored by BM25 (k1 = 1.2, b = 0.75, FTS5's IDF) computed in SQL from
//! each memory's `tsvector`: term frequency is a lexeme's number of
//! positions, document length its number of lexemes. PostgreSQL's own
//! `ts_rank` ignores how rare a word is, which ranks a memory repeating a
//! common word above one holding the rare word the question was about.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use quick_cache::sync::Cache;

use super::scope_sql::push_scope;
use super::sql::{col, query, query_built, SqlBuilder};
use crate::clock::SharedClock;
use crate::error::Result;
use crate::store::common_terms::{self, TermStats};
use crate::store::{Hit, Scope};

/// BM25's term-frequency saturation and length normalisation (FTS5's values).
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Words whose lexemes are remembered at most.
const MAX_WORDS: usize = 100_000;
/// The [`TermStats`] keys of the number of indexed memories and of the sum of
/// their lengths (lexemes are never empty nor start with a NUL).
const DOCS: &str = "";
const TOTAL_LENGTH: &str = "\0length";

/// A lexeme quoted for `to_tsquery('simple', …)`, so no operator in it is parsed.
fn quoted(lexeme: &str) -> String {
    format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''"))
}

/// The planner and its caches; share it behind an `Arc`.
pub struct KeywordSearch {
    stats: TermStats,
    /// A word's lexemes under the `english` configuration (none: a stopword).
    lexemes: Cache<String, Vec<String>>,
}

/// What a search scores with: the lexemes kept, their IDFs, the average
/// document length, and the `tsquery` text matching any of them.
struct Plan {
    lexemes: Vec<String>,
    idf: Vec<f64>,
    avg_length: f64,
    tsquery: String,
}

impl KeywordSearch {
    pub fn new(clock: SharedClock) -> Self {
        KeywordSearch { stats: TermStats::new(clock), lexemes: Cache::new(MAX_WORDS) }
    }

    /// The best `k` matches of any of `terms` in the scope: `(seq, bm25)`, best first.
    pub async fn hits<C: GenericClient>(&self, c: &C, scope: &Scope, terms: &[String], k: usize) -> Result<Vec<Hit>> {
        let Some(plan) = self.plan(c, terms).await? else {
            return Ok(Vec::new());
        };
        let mut b = SqlBuilder::default();
        b.sql("SELECT m.seq, ");
        push_score(&mut b, &plan);
        b.sql(" AS score FROM memories m WHERE m.search_vector @@ to_tsquery('simple', ")
            .param(plan.tsquery.clone())
            .sql(") AND");
        push_scope(&mut b, scope);
        b.sql(" ORDER BY score DESC, m.seq LIMIT ").param(k as i64);
        query_built(c, &b).await?.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
    }

    /// The BM25 of those `seqs` that match any of `terms`.
    pub async fn scores<C: GenericClient>(&self, c: &C, terms: &[String], seqs: &[i64]) -> Result<HashMap<i64, f64>> {
        if seqs.is_empty() {
            return Ok(HashMap::new());
        }
        let Some(plan) = self.plan(c, terms).await? else {
            return Ok(HashMap::new());
        };
        let mut b = SqlBuilder::default();
        b.sql("SELECT m.seq, ");
        push_score(&mut b, &plan);
        b.sql(" FROM memories m WHERE m.seq = ANY(")
            .param(seqs.to_vec())
            .sql(") AND m.search_vector @@ to_tsquery('simple', ")
            .param(plan.tsquery.clone())
            .sql(")");
        query_built(c, &b).await?.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
    }

    /// The lexemes to search and how to weigh them; `None` when no word of
    /// the query is searchable.
    async fn plan<C: GenericClient>(&self, c: &C, terms: &[String]) -> Result<Option<Plan>> {
        let mut lexemes: Vec<String> = Vec::new();
        for l in self.lexemes_of(c, terms).await? {
            if !lexemes.contains(&l) {
                lexemes.push(l);
            }
        }
        if lexemes.is_empty() {
            return Ok(None);
        }
        let (docs, total) = self.corpus(c).await?;
        let df = self.frequencies(c, &lexemes).await?;
        let kept = common_terms::keep(lexemes.clone(), docs, &df);
        let idf: Vec<f64> = kept
            .iter()
            .map(|l| {
                let n = df[lexemes.iter().position(|x| x == l).unwrap_or(0)] as f64;
                // FTS5's IDF, floored just above zero.
                (((docs as f64) - n + 0.5) / (n + 0.5)).ln().max(1e-6)
            })
            .collect();
        let tsquery = kept.iter().map(|l| quoted(l)).collect::<Vec<_>>().join(" | ");
        let avg_length = if docs == 0 { 1.0 } else { (total as f64 / docs as f64).max(1.0) };
        Ok(Some(Plan { lexemes: kept, idf, avg_length, tsquery }))
    }

    /// The lexemes of `terms`, in order (a stopword has none).
    async fn lexemes_of<C: GenericClient>(&self, c: &C, terms: &[String]) -> Result<Vec<String>> {
        let missing: Vec<String> = terms.iter().filter(|t| self.lexemes.get(t.as_str()).is_none()).cloned().collect();
        if !missing.is_empty() {
            let rows = query(
                c,
                "SELECT t.i, v.lexeme FROM unnest($1::text[]) WITH ORDINALITY AS t(word, i), \
                 LATERAL unnest(to_tsvector('english', t.word)) AS v",
                &[&missing],
            )
            .await?;
            let mut found: Vec<Vec<String>> = vec![Vec::new(); missing.len()];
            for r in &rows {
                let i: i64 = col(r, 0)?;
                found[(i - 1) as usize].push(col(r, 1)?);
            }
            for (word, lexemes) in missing.into_iter().zip(found) {
                self.lexemes.insert(word, lexemes);
            }
        }
        Ok(terms.iter().flat_map(|t| self.lexemes.get(t.as_str()).unwrap_or_default()).collect())
    }

    /// How many memories are indexed, and the sum of their lengths (lexemes).
    async fn corpus<C: GenericClient>(&self, c: &C) -> Result<(u64, u64)> {
        if let (Some(docs), Some(total)) = (self.stats.get(DOCS), self.stats.get(TOTAL_LENGTH)) {
            return Ok((docs, total));
        }
        let rows = query(
            c,
            "SELECT count(*), COALESCE(sum(length(search_vector)), 0)::bigint FROM memories WHERE search_text <> ''",
            &[],
        )
        .await?;
        let (docs, total) = match rows.first() {
            Some(r) => (col::<i64>(r, 0)?.max(0) as u64, col::<i64>(r, 1)?.max(0) as u64),
            None => (0, 0),
        };
        self.stats.put(DOCS, docs);
        self.stats.put(TOTAL_LENGTH, total);
        Ok((docs, total))
    }

    /// The document frequency of each lexeme, in order.
    async fn frequencies<C: GenericClient>(&self, c: &C, lexemes: &[String]) -> Result<Vec<u64>> {
        let missing: Vec<String> = lexemes.iter().filter(|l| self.stats.get(l).is_none()).cloned().collect();
        if !missing.is_empty() {
            let queries: Vec<String> = missing.iter().map(|l| quoted(l)).collect();
            let rows = query(
                c,
                "SELECT q.i, (SELECT count(*) FROM memories m WHERE m.search_vector @@ to_tsquery('simple', q.q)) \
                 FROM unnest($1::text[]) WITH ORDINALITY AS q(q, i)",
                &[&queries],
            )
            .await?;
            for r in &rows {
                let i: i64 = col(r, 0)?;
                self.stats.put(&missing[(i - 1) as usize], col::<i64>(r, 1)?.max(0) as u64);
            }
        }
        Ok(lexemes.iter().map(|l| self.stats.get(l).unwrap_or(0)).collect())
    }
}

/// Appends the BM25 of memory `m` under `plan`.
fn push_score(b: &mut SqlBuilder, plan: &Plan) {
    b.sql(&format!(
        "(SELECT COALESCE(sum(w.idf * cardinality(u.positions) * {k1_1} / (cardinality(u.positions) + {K1} * \
         ({one_b} + {B} * length(m.search_vector) / ",
        k1_1 = K1 + 1.0,
        one_b = 1.0 - B
    ))
    .param(plan.avg_length)
    .sql("::float8))), 0) FROM unnest(m.search_vector) AS u JOIN unnest(")
    .param(plan.lexemes.clone())
    .sql("::text[], ")
    .param(plan.idf.clone())
    .sql("::float8[]) AS w(lexeme, idf) ON w.lexeme = u.lexeme)::float8");
}
