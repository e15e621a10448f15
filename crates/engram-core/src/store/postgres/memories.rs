//! SQL for the `memories` table: the row mapping, point lookups, whole-row
//! writes, listings, and the merge records. Search's reads are in
//! `search_sql.rs`. No rule lives here: the caller decides what to write.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::Row;

use super::scope_sql::push_scope;
use super::sql::{col, execute, query, query_built, query_opt, SqlBuilder};
use crate::error::Result;
use crate::model::{Memory, Namespace, Tier};
use crate::store::{Page, Scope, Stored};
use crate::time::Millis;

/// Every column a [`Stored`] is read from, for a `memories` row aliased `m`.
pub(super) const COLUMNS: &str = "m.id, m.namespace, m.key, m.tier, m.text, m.data, m.tags, m.metadata, m.salience, \
     m.pinned, m.version, m.created_at, m.updated_at, m.expires_at, m.source, m.index_spec, m.ttl_ms, \
     m.seq, m.tenant_id, m.text_hash, m.salience_at, m.cite_count";

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    Ok(serde_json::from_value(v)?)
}

/// Maps a row selected with [`COLUMNS`] (starting at column 0).
pub(super) fn to_stored(row: &Row) -> Result<Stored> {
    let memory = Memory {
        id: col(row, 0)?,
        namespace: Namespace::from_stored(col::<&str>(row, 1)?),
        key: col(row, 2)?,
        tier: Tier::from_stored(col::<&str>(row, 3)?),
        text: col(row, 4)?,
        data: col::<Option<Value>>(row, 5)?.map(from_json).transpose()?,
        tags: from_json(col(row, 6)?)?,
        metadata: from_json(col(row, 7)?)?,
        salience: col(row, 8)?,
        pinned: col(row, 9)?,
        version: col(row, 10)?,
        created_at: col(row, 11)?,
        updated_at: col(row, 12)?,
        expires_at: col(row, 13)?,
        source: from_json(col(row, 14)?)?,
        index: col(row, 15)?,
        ttl_ms: col(row, 16)?,
    };
    Ok(Stored {
        seq: col(row, 17)?,
        tenant: col(row, 18)?,
        memory,
        text_hash: col(row, 19)?,
        salience_at: col(row, 20)?,
        cite_count: col(row, 21)?,
    })
}

fn all(rows: Vec<Row>) -> Result<Vec<Stored>> {
    rows.iter().map(to_stored).collect()
}

async fn one<C: GenericClient>(
    c: &C,
    condition: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Stored>> {
    let sql = format!("SELECT {COLUMNS} FROM memories m WHERE {condition}");
    query_opt(c, &sql, params).await?.as_ref().map(to_stored).transpose()
}

/// Whether `s` can name something stored (no stored string holds U+0000,
/// which PostgreSQL cannot bind).
pub(super) fn storable(s: &str) -> bool {
    !s.contains('\0')
}

pub async fn by_id<C: GenericClient>(c: &C, tenant: &str, id: &str) -> Result<Option<Stored>> {
    if !storable(id) {
        return Ok(None);
    }
    one(c, "m.tenant_id = $1 AND m.id = $2", &[&tenant, &id]).await
}

pub async fn by_key<C: GenericClient>(c: &C, tenant: &str, ns: &Namespace, key: &str) -> Result<Option<Stored>> {
    if !storable(key) {
        return Ok(None);
    }
    one(c, "m.tenant_id = $1 AND m.namespace = $2 AND m.key = $3", &[&tenant, &ns.joined(), &key]).await
}

pub async fn by_seq<C: GenericClient>(c: &C, seq: i64) -> Result<Option<Stored>> {
    one(c, "m.seq = $1", &[&seq]).await
}

pub async fn by_text_hash<C: GenericClient>(c: &C, tenant: &str, ns: &Namespace, hash: i64) -> Result<Vec<Stored>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM memories m WHERE m.tenant_id = $1 AND m.namespace = $2 AND m.text_hash = $3 ORDER BY m.seq"
    );
    all(query(c, &sql, &[&tenant, &ns.joined(), &hash]).await?)
}

pub async fn most_salient<C: GenericClient>(c: &C, tier: Tier, min: f64, limit: usize) -> Result<Vec<Stored>> {
    // The tier is a literal so the partial index on episodic salience applies.
    let sql = format!(
        "SELECT {COLUMNS} FROM memories m WHERE m.tier = '{}' AND m.salience >= $1 ORDER BY m.salience DESC LIMIT $2",
        tier.as_str()
    );
    all(query(c, &sql, &[&min, &(limit as i64)]).await?)
}

pub async fn salience_due<C: GenericClient>(c: &C, before: Millis, limit: usize) -> Result<Vec<Stored>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM memories m WHERE NOT m.pinned AND m.salience_at <= $1 ORDER BY m.salience_at LIMIT $2"
    );
    all(query(c, &sql, &[&before, &(limit as i64)]).await?)
}

pub async fn expired<C: GenericClient>(c: &C, at: Millis, limit: usize) -> Result<Vec<i64>> {
    let rows = query(
        c,
        "SELECT seq FROM memories WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2",
        &[&at, &(limit as i64)],
    )
    .await?;
    rows.iter().map(|r| col(r, 0)).collect()
}

/// The columns a write sets besides a row's identity (tenant, id, namespace),
/// in the order of [`WrittenValues::refs`].
const WRITTEN: [&str; 19] = [
    "key",
    "tier",
    "text",
    "data",
    "index_spec",
    "tags",
    "metadata",
    "salience",
    "pinned",
    "version",
    "created_at",
    "updated_at",
    "expires_at",
    "ttl_ms",
    "source",
    "text_hash",
    "salience_at",
    "cite_count",
    "search_text",
];

/// The values of [`WRITTEN`] for one memory: JSON columns encoded, and the
/// keyword index's text (`crate::text::index_text`).
struct WrittenValues<'a> {
    s: &'a Stored,
    tier: &'static str,
    data: Option<Value>,
    index: Option<Value>,
    tags: Value,
    metadata: Value,
    source: Value,
    search_text: String,
}

impl<'a> WrittenValues<'a> {
    fn of(s: &'a Stored) -> Result<Self> {
        let m = &s.memory;
        Ok(WrittenValues {
            s,
            tier: m.tier.as_str(),
            data: m.data.clone().map(Value::Object),
            index: m.index.clone(),
            tags: serde_json::to_value(&m.tags)?,
            metadata: Value::Object(m.metadata.clone()),
            source: serde_json::to_value(&m.source)?,
            search_text: crate::text::index_text(&m.text),
        })
    }

    fn refs(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        let (s, m) = (self.s, &self.s.memory);
        vec![
            &m.key,
            &self.tier,
            &m.text,
            &self.data,
            &self.index,
            &self.tags,
            &self.metadata,
            &m.salience,
            &m.pinned,
            &m.version,
            &m.created_at,
            &m.updated_at,
            &m.expires_at,
            &m.ttl_ms,
            &self.source,
            &s.text_hash,
            &s.salience_at,
            &s.cite_count,
            &self.search_text,
        ]
    }
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub async fn insert<C: GenericClient>(c: &C, s: &Stored) -> Result<i64> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO memories (tenant_id, id, namespace, ns_depth, {}) VALUES ($1, $2, $3, $4, {}) RETURNING seq",
            WRITTEN.join(", "),
            placeholders(5, WRITTEN.len())
        )
    });
    let m = &s.memory;
    let (ns, depth) = (m.namespace.joined(), m.namespace.depth() as i32);
    let written = WrittenValues::of(s)?;
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&s.tenant, &m.id, &ns, &depth];
    params.extend(written.refs());
    let rows = query(c, &SQL, &params).await?;
    rows.first().map_or_else(|| Err(crate::error::Error::internal("INSERT returned no seq")), |r| col(r, 0))
}

/// Replaces the written columns of the row at `s.seq` (the tenant, id and
/// namespace of a row never change).
pub async fn update<C: GenericClient>(c: &C, s: &Stored) -> Result<()> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let set: Vec<String> = WRITTEN.iter().enumerate().map(|(i, col)| format!("{col} = ${}", i + 2)).collect();
        format!("UPDATE memories SET {} WHERE tenant_id = $1 AND seq = ${}", set.join(", "), WRITTEN.len() + 2)
    });
    let written = WrittenValues::of(s)?;
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&s.tenant];
    params.extend(written.refs());
    params.push(&s.seq);
    execute(c, &SQL, &params).await?;
    Ok(())
}

pub async fn delete<C: GenericClient>(c: &C, seq: i64) -> Result<()> {
    execute(c, "DELETE FROM memories WHERE seq = $1", &[&seq]).await?;
    Ok(())
}

pub async fn set_salience<C: GenericClient>(c: &C, seq: i64, salience: f64, at: Millis, cites: i64) -> Result<()> {
    execute(
        c,
        "UPDATE memories SET salience = $1, salience_at = $2, cite_count = cite_count + $3 WHERE seq = $4",
        &[&salience, &at, &cites, &seq],
    )
    .await?;
    Ok(())
}

pub async fn set_expiry<C: GenericClient>(c: &C, seq: i64, expires_at: Option<Millis>) -> Result<()> {
    execute(c, "UPDATE memories SET expires_at = $1 WHERE seq = $2", &[&expires_at, &seq]).await?;
    Ok(())
}

pub async fn merged_into<C: GenericClient>(c: &C, tenant: &str, id: &str) -> Result<Option<String>> {
    if !storable(id) {
        return Ok(None);
    }
    let row =
        query_opt(c, "SELECT survivor_id FROM memory_merges WHERE tenant_id = $1 AND id = $2", &[&tenant, &id]).await?;
    row.as_ref().map(|r| col(r, 0)).transpose()
}

pub async fn record_merge<C: GenericClient>(c: &C, tenant: &str, id: &str, survivor: &str, at: Millis) -> Result<()> {
    execute(
        c,
        "UPDATE memory_merges SET survivor_id = $1 WHERE tenant_id = $2 AND survivor_id = $3",
        &[&survivor, &tenant, &id],
    )
    .await?;
    execute(
        c,
        "INSERT INTO memory_merges (tenant_id, id, survivor_id, merged_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET survivor_id = excluded.survivor_id, merged_at = excluded.merged_at",
        &[&tenant, &id, &survivor, &at],
    )
    .await?;
    Ok(())
}

pub async fn forget_merges_into<C: GenericClient>(c: &C, tenant: &str, survivor: &str) -> Result<()> {
    execute(c, "DELETE FROM memory_merges WHERE tenant_id = $1 AND survivor_id = $2", &[&tenant, &survivor]).await?;
    Ok(())
}

pub async fn list<C: GenericClient>(c: &C, scope: &Scope, page: &Page) -> Result<Vec<Stored>> {
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT {COLUMNS} FROM memories m WHERE"));
    push_scope(&mut b, scope);
    match page {
        Page::ById { after, limit } => {
            if let Some(after) = after {
                b.sql(" AND m.id > ").param(after.clone());
            }
            b.sql(" ORDER BY m.id LIMIT ").param(*limit as i64);
        }
        Page::Newest { offset, limit } => {
            b.sql(" ORDER BY m.updated_at DESC, m.id DESC LIMIT ").param(*limit as i64);
            b.sql(" OFFSET ").param(*offset as i64);
        }
    }
    all(query_built(c, &b).await?)
}

pub async fn namespaces<C: GenericClient>(c: &C, scope: &Scope) -> Result<Vec<Namespace>> {
    let mut b = SqlBuilder::default();
    b.sql("SELECT DISTINCT m.namespace FROM memories m WHERE");
    push_scope(&mut b, scope);
    b.sql(" ORDER BY m.namespace");
    let rows = query_built(c, &b).await?;
    rows.iter().map(|r| Ok(Namespace::from_stored(col::<&str>(r, 0)?))).collect()
}
