//! SQL for API keys: only hashes are stored; lookups are by hash.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::auth::{NamespaceGrant, Scopes};
use crate::error::{Error, Result};
use crate::store::KeyRow;
use crate::time::Millis;

const COLUMNS: &str = "id, tenant_id, name, hash, scopes, created_at, revoked_at, namespaces";

fn to_key(r: &Row<'_>) -> rusqlite::Result<(KeyRow, String, Option<String>)> {
    let hash: Vec<u8> = r.get(3)?;
    let mut h = [0u8; 32];
    if hash.len() == 32 {
        h.copy_from_slice(&hash);
    }
    let row = KeyRow {
        id: r.get(0)?,
        tenant: r.get(1)?,
        name: r.get(2)?,
        hash: h,
        scopes: Scopes::default(),
        created_at: r.get(5)?,
        revoked_at: r.get(6)?,
        namespaces: None,
    };
    Ok((row, r.get(4)?, r.get(7)?))
}

fn with_scopes((mut row, scopes, namespaces): (KeyRow, String, Option<String>)) -> Result<KeyRow> {
    row.scopes =
        Scopes::parse_list(&scopes).map_err(|e| Error::internal(format!("key {} has bad scopes: {e}", row.id)))?;
    row.namespaces = namespaces
        .map(|n| NamespaceGrant::parse_list(&n))
        .transpose()
        .map_err(|e| Error::internal(format!("key {} has bad namespaces: {e}", row.id)))?;
    Ok(row)
}

pub fn insert(c: &Connection, k: &KeyRow) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO api_keys (tenant_id, id, name, hash, scopes, created_at, revoked_at, namespaces) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        k.tenant,
        k.id,
        k.name,
        &k.hash[..],
        k.scopes.to_list(),
        k.created_at,
        k.revoked_at,
        k.namespaces.as_ref().map(NamespaceGrant::to_list)
    ])?;
    Ok(())
}

pub fn list(c: &Connection, tenant: Option<&str>) -> Result<Vec<KeyRow>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY tenant_id, created_at, id"
    ))?;
    let rows = stmt.query_map(params![tenant], to_key)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(with_scopes).collect()
}

pub fn revoke(c: &Connection, tenant: Option<&str>, id: &str, at: Millis) -> Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND (?3 IS NULL OR tenant_id = ?3) AND revoked_at IS NULL",
        )?
        .execute(params![at, id, tenant])?;
    Ok(n > 0)
}

pub fn by_hash(c: &Connection, hash: &[u8; 32]) -> Result<Option<KeyRow>> {
    let row = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE hash = ? AND revoked_at IS NULL"))?
        .query_row(params![&hash[..]], to_key)
        .optional()?;
    row.map(with_scopes).transpose()
}

pub fn any(c: &Connection) -> Result<bool> {
    Ok(c.prepare_cached("SELECT EXISTS (SELECT 1 FROM api_keys)")?.query_row([], |r| r.get(0))?)
}
