//! SQL for API keys: only hashes are stored; lookups are by hash.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::sql::{col, execute, query, query_opt};
use crate::auth::{NamespaceGrant, Scopes};
use crate::error::{Error, Result};
use crate::store::KeyRow;
use crate::time::Millis;

const COLUMNS: &str = "id, tenant_id, name, hash, scopes, created_at, revoked_at, namespaces";

fn to_key(r: &Row) -> Result<KeyRow> {
    let hash: &[u8] = col(r, 3)?;
    let id: String = col(r, 0)?;
    let scopes: &str = col(r, 4)?;
    let namespaces: Option<&str> = col(r, 7)?;
    Ok(KeyRow {
        namespaces: namespaces
            .map(NamespaceGrant::parse_list)
            .transpose()
            .map_err(|e| Error::internal(format!("key {id} has bad namespaces: {e}")))?,
        scopes: Scopes::parse_list(scopes).map_err(|e| Error::internal(format!("key {id} has bad scopes: {e}")))?,
        hash: hash.try_into().map_err(|_| Error::internal(format!("key {id} has a hash of {} bytes", hash.len())))?,
        id,
        tenant: col(r, 1)?,
        name: col(r, 2)?,
        created_at: col(r, 5)?,
        revoked_at: col(r, 6)?,
    })
}

pub async fn insert<C: GenericClient>(c: &C, k: &KeyRow) -> Result<()> {
    execute(
        c,
        "INSERT INTO api_keys (tenant_id, id, name, hash, scopes, created_at, revoked_at, namespaces) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &k.tenant,
            &k.id,
            &k.name,
            &&k.hash[..],
            &k.scopes.to_list(),
            &k.created_at,
            &k.revoked_at,
            &k.namespaces.as_ref().map(NamespaceGrant::to_list),
        ],
    )
    .await?;
    Ok(())
}

pub async fn list<C: GenericClient>(c: &C, tenant: Option<&str>) -> Result<Vec<KeyRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY tenant_id, created_at, id"
    );
    query(c, &sql, &[&tenant]).await?.iter().map(to_key).collect()
}

pub async fn revoke<C: GenericClient>(c: &C, tenant: Option<&str>, id: &str, at: Millis) -> Result<bool> {
    let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND ($3::text IS NULL OR tenant_id = $3) \
               AND revoked_at IS NULL";
    Ok(execute(c, sql, &[&at, &id, &tenant]).await? > 0)
}

pub async fn by_hash<C: GenericClient>(c: &C, hash: &[u8; 32]) -> Result<Option<KeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1 AND revoked_at IS NULL");
    query_opt(c, &sql, &[&&hash[..]]).await?.as_ref().map(to_key).transpose()
}

pub async fn any<C: GenericClient>(c: &C) -> Result<bool> {
    let rows = query(c, "SELECT EXISTS (SELECT 1 FROM api_keys)", &[]).await?;
    rows.first().map_or(Ok(false), |r| col(r, 0))
}
