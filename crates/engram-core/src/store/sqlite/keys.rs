//! SQL for API keys: only hashes are stored; lookups are by hash.

use rusqlite::{params, Connection, OptionalExtension};

use crate::auth::{generate_key, Scopes};
use crate::error::Result;
use crate::store::{KeyGrant, KeyInfo};
use crate::time::now_ms;

pub fn create(c: &Connection, tenant: &str, name: &str, scopes: Scopes) -> Result<(KeyInfo, String)> {
    let key = generate_key()?;
    let now = now_ms();
    c.prepare_cached("INSERT INTO api_keys (tenant_id, id, name, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?)")?
        .execute(params![tenant, key.id, name, &key.hash[..], scopes.to_list(), now])?;
    let info = KeyInfo {
        id: key.id,
        tenant: tenant.to_owned(),
        name: name.to_owned(),
        scopes: scopes.to_list(),
        created_at: now,
        revoked_at: None,
    };
    Ok((info, key.secret))
}

pub fn list(c: &Connection, tenant: Option<&str>) -> Result<Vec<KeyInfo>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, tenant_id, name, scopes, created_at, revoked_at FROM api_keys \
         WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY tenant_id, created_at, id",
    )?;
    let rows = stmt.query_map(params![tenant], |r| {
        Ok(KeyInfo {
            id: r.get(0)?,
            tenant: r.get(1)?,
            name: r.get(2)?,
            scopes: r.get(3)?,
            created_at: r.get(4)?,
            revoked_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn revoke(c: &Connection, id: &str) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")?
        .execute(params![now_ms(), id])?;
    Ok(n > 0)
}

pub fn find(c: &Connection, hash: &[u8; 32]) -> Result<Option<KeyGrant>> {
    let row: Option<(String, String, String)> = c
        .prepare_cached("SELECT id, tenant_id, scopes FROM api_keys WHERE hash = ? AND revoked_at IS NULL")?
        .query_row(params![&hash[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match row {
        Some((id, tenant, scopes)) => Some(KeyGrant { id, tenant, scopes: Scopes::parse_list(&scopes)? }),
        None => None,
    })
}

pub fn any_active(c: &Connection) -> Result<bool> {
    Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)", [], |r| r.get(0))?)
}
