//! SQL for the `memories` table: the row mapping, point lookups, whole-row
//! writes, listings, and the merge records. Search's reads are in
//! `search_sql.rs`. No rule lives here: the caller decides what to write; the
//! keyword index holds `crate::text::index_text` of each text.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::scope_sql::push_scope;
use super::sql::SqlBuilder;
use crate::error::Result;
use crate::model::{Memory, Namespace, Tier};
use crate::store::{Page, Scope, Stored};
use crate::time::Millis;

/// Every column a [`Stored`] is read from, for a `memories` row aliased `m`.
pub(super) const COLUMNS: &str = "m.id, m.namespace, m.key, m.tier, m.text, m.data, m.tags, m.metadata, m.salience, \
     m.pinned, m.version, m.created_at, m.updated_at, m.expires_at, m.source, m.index_spec, m.ttl_ms, \
     m.seq, m.tenant_id, m.text_hash, COALESCE(m.salience_at, m.updated_at), m.cite_count";

fn json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = row.get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

fn opt_json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(_) => json_col(row, i).map(Some),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

/// Maps a row selected with [`COLUMNS`] (starting at column 0).
pub(super) fn to_stored(row: &Row<'_>) -> rusqlite::Result<Stored> {
    let tier: String = row.get(3)?;
    let memory = Memory {
        id: row.get(0)?,
        namespace: Namespace::from_stored(&row.get::<_, String>(1)?),
        key: row.get(2)?,
        tier: Tier::from_stored(&tier),
        text: row.get(4)?,
        data: opt_json_col(row, 5)?,
        tags: json_col(row, 6)?,
        metadata: json_col(row, 7)?,
        salience: row.get(8)?,
        pinned: row.get(9)?,
        version: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
        expires_at: row.get(13)?,
        source: json_col(row, 14)?,
        index: opt_json_col(row, 15)?,
        ttl_ms: row.get(16)?,
    };
    Ok(Stored {
        seq: row.get(17)?,
        tenant: row.get(18)?,
        memory,
        text_hash: row.get(19)?,
        salience_at: row.get(20)?,
        cite_count: row.get(21)?,
    })
}

fn one(c: &Connection, condition: &str, params: impl rusqlite::Params) -> Result<Option<Stored>> {
    let sql = format!("SELECT {COLUMNS} FROM memories m WHERE {condition}");
    Ok(c.prepare_cached(&sql)?.query_row(params, to_stored).optional()?)
}

fn many(c: &Connection, sql_tail: &str, params: impl rusqlite::Params) -> Result<Vec<Stored>> {
    let sql = format!("SELECT {COLUMNS} FROM memories m WHERE {sql_tail}");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params, to_stored)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn by_id(c: &Connection, tenant: &str, id: &str) -> Result<Option<Stored>> {
    one(c, "m.tenant_id = ? AND m.id = ?", params![tenant, id])
}

pub fn by_key(c: &Connection, tenant: &str, ns: &Namespace, key: &str) -> Result<Option<Stored>> {
    one(c, "m.tenant_id = ? AND m.namespace = ? AND m.key = ?", params![tenant, ns.joined(), key])
}

pub fn by_seq(c: &Connection, seq: i64) -> Result<Option<Stored>> {
    one(c, "m.seq = ?", params![seq])
}

const BY_TEXT_HASH: &str = "m.tenant_id = ? AND m.namespace = ? AND m.text_hash = ? ORDER BY m.seq";

pub fn by_text_hash(c: &Connection, tenant: &str, ns: &Namespace, hash: i64) -> Result<Vec<Stored>> {
    many(c, BY_TEXT_HASH, params![tenant, ns.joined(), hash])
}

pub fn most_salient(c: &Connection, tier: Tier, min: f64, limit: usize) -> Result<Vec<Stored>> {
    // The tier is a literal so the partial index on episodic salience applies.
    let tail = format!("m.tier = '{}' AND m.salience >= ? ORDER BY m.salience DESC LIMIT ?", tier.as_str());
    many(c, &tail, params![min, limit as i64])
}

pub fn salience_due(c: &Connection, before: Millis, limit: usize) -> Result<Vec<Stored>> {
    many(c, "m.pinned = 0 AND m.salience_at <= ? ORDER BY m.salience_at LIMIT ?", params![before, limit as i64])
}

pub fn expired(c: &Connection, at: Millis, limit: usize) -> Result<Vec<i64>> {
    let mut stmt =
        c.prepare_cached("SELECT seq FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?")?;
    let rows = stmt.query_map(params![at, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

/// The columns a write sets besides a row's identity (tenant, id, namespace),
/// in the order of [`written_values`].
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

/// The values of [`WRITTEN`] for `s`: JSON columns encoded, and the keyword
/// index's text (`crate::text::index_text`).
fn written_values(s: &Stored) -> Result<Vec<SqlValue>> {
    let m = &s.memory;
    let json = |v: Option<String>| v.map_or(SqlValue::Null, SqlValue::Text);
    let int = |v: Option<i64>| v.map_or(SqlValue::Null, SqlValue::Integer);
    Ok(vec![
        m.key.clone().map_or(SqlValue::Null, SqlValue::Text),
        SqlValue::Text(m.tier.as_str().into()),
        SqlValue::Text(m.text.clone()),
        json(m.data.as_ref().map(to_json).transpose()?),
        json(m.index.as_ref().map(to_json).transpose()?),
        SqlValue::Text(to_json(&m.tags)?),
        SqlValue::Text(to_json(&m.metadata)?),
        SqlValue::Real(m.salience),
        SqlValue::Integer(i64::from(m.pinned)),
        SqlValue::Integer(m.version),
        SqlValue::Integer(m.created_at),
        SqlValue::Integer(m.updated_at),
        int(m.expires_at),
        int(m.ttl_ms),
        SqlValue::Text(to_json(&m.source)?),
        int(s.text_hash),
        SqlValue::Integer(s.salience_at),
        SqlValue::Integer(s.cite_count),
        SqlValue::Text(crate::text::index_text(&m.text)),
    ])
}

pub fn insert(c: &Connection, s: &Stored) -> Result<i64> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO memories (tenant_id, id, namespace, ns_depth, {}) VALUES (?, ?, ?, ?{})",
            WRITTEN.join(", "),
            ", ?".repeat(WRITTEN.len())
        )
    });
    let m = &s.memory;
    let mut values = vec![
        SqlValue::Text(s.tenant.clone()),
        SqlValue::Text(m.id.clone()),
        SqlValue::Text(m.namespace.joined()),
        SqlValue::Integer(m.namespace.depth() as i64),
    ];
    let written = written_values(s)?;
    let indexed = WRITTEN
        .iter()
        .zip(&written)
        .any(|(col, v)| *col == "search_text" && matches!(v, SqlValue::Text(text) if !text.is_empty()));
    values.extend(written);
    c.prepare_cached(&SQL)?.execute(rusqlite::params_from_iter(values))?;
    let seq = c.last_insert_rowid();
    if indexed {
        super::keyword::log_change(c, seq)?;
    }
    Ok(seq)
}

/// Replaces the written columns of the row at `s.seq` (the tenant, id and
/// namespace of a row never change).
pub fn update(c: &Connection, s: &Stored) -> Result<()> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let set: Vec<String> = WRITTEN.iter().map(|col| format!("{col} = ?")).collect();
        format!("UPDATE memories SET {} WHERE seq = ?", set.join(", "))
    });
    let mut values = written_values(s)?;
    values.push(SqlValue::Integer(s.seq));
    c.prepare_cached(&SQL)?.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

pub fn delete(c: &Connection, seq: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM memories WHERE seq = ?")?.execute(params![seq])?;
    Ok(())
}

pub fn set_salience(c: &Connection, seq: i64, salience: f64, at: Millis, cites: i64) -> Result<()> {
    c.prepare_cached("UPDATE memories SET salience = ?, salience_at = ?, cite_count = cite_count + ? WHERE seq = ?")?
        .execute(params![salience, at, cites, seq])?;
    Ok(())
}

pub fn set_expiry(c: &Connection, seq: i64, expires_at: Option<Millis>) -> Result<()> {
    c.prepare_cached("UPDATE memories SET expires_at = ? WHERE seq = ?")?.execute(params![expires_at, seq])?;
    Ok(())
}

pub fn merged_into(c: &Connection, tenant: &str, id: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached("SELECT survivor_id FROM memory_merges WHERE tenant_id = ? AND id = ?")?
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()?)
}

pub fn record_merge(c: &Connection, tenant: &str, id: &str, survivor: &str, at: Millis) -> Result<()> {
    c.prepare_cached("UPDATE memory_merges SET survivor_id = ? WHERE tenant_id = ? AND survivor_id = ?")?
        .execute(params![survivor, tenant, id])?;
    c.prepare_cached(
        "INSERT OR REPLACE INTO memory_merges (tenant_id, id, survivor_id, merged_at) VALUES (?, ?, ?, ?)",
    )?
    .execute(params![tenant, id, survivor, at])?;
    Ok(())
}

pub fn forget_merges_into(c: &Connection, tenant: &str, survivor: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM memory_merges WHERE tenant_id = ? AND survivor_id = ?")?
        .execute(params![tenant, survivor])?;
    Ok(())
}

pub(super) fn run_query<T>(
    c: &Connection,
    b: &SqlBuilder,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(&b.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(b.params.iter()), map)?;
    Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
}

pub fn list(c: &Connection, scope: &Scope, page: &Page) -> Result<Vec<Stored>> {
    let mut b = SqlBuilder::default();
    b.sql(&format!("SELECT {COLUMNS} FROM memories m WHERE"));
    push_scope(&mut b, scope);
    match page {
        Page::ById { after, limit } => {
            if let Some(after) = after {
                b.sql(" AND m.id > ").param(SqlValue::Text(after.clone()));
            }
            b.sql(" ORDER BY m.id LIMIT ").param(SqlValue::Integer(*limit as i64));
        }
        Page::Newest { offset, limit } => {
            b.sql(" ORDER BY m.updated_at DESC, m.id DESC LIMIT ").param(SqlValue::Integer(*limit as i64));
            b.sql(" OFFSET ").param(SqlValue::Integer(*offset as i64));
        }
    }
    run_query(c, &b, to_stored)
}

pub fn namespaces(c: &Connection, scope: &Scope) -> Result<Vec<Namespace>> {
    let mut b = SqlBuilder::default();
    b.sql("SELECT DISTINCT m.namespace FROM memories m WHERE");
    push_scope(&mut b, scope);
    b.sql(" ORDER BY m.namespace");
    let stored: Vec<String> = run_query(c, &b, |r| r.get(0))?;
    Ok(stored.iter().map(|s| Namespace::from_stored(s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The write path's duplicate lookup is compiled once. Its plan checks a
    /// partial index's condition (`text_hash IS NOT NULL`) against a bound
    /// value; unless plans ignore bound values (`open_connection`), SQLite
    /// compiles such a statement again whenever its bindings are cleared,
    /// which the statement cache does each time it takes a statement back.
    #[test]
    fn the_duplicate_lookup_is_compiled_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("engram.db");
        let mut c = super::super::open_connection(
            &super::super::Location::File(path.clone()),
            false,
            std::time::Duration::from_secs(1),
        )
        .expect("open");
        super::super::schema::migrate(&mut c, 0).expect("migrate");
        let ns = Namespace::parse_joined("a/b", "namespace").expect("namespace");
        for hash in 0..5 {
            assert!(by_text_hash(&c, "t", &ns, hash).expect("lookup").is_empty());
        }
        let cached =
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM memories m WHERE {BY_TEXT_HASH}")).expect("cached");
        assert_eq!(cached.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
