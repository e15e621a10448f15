//! SQL for sessions (working memory) and their turns. When turns are pruned,
//! when a session ends and what is distilled are decided in `rules::sessions`.

use deadpool_postgres::GenericClient;
use serde_json::Value;

use super::sql::{col, execute, query, query_opt};
use crate::error::Result;
use crate::model::session::Turn;
use crate::model::Namespace;
use crate::store::SessionRow;
use crate::time::{LocalTime, Millis};

pub async fn get<C: GenericClient>(c: &C, tenant: &str, id: &str) -> Result<Option<SessionRow>> {
    let row = query_opt(
        c,
        "SELECT namespace, turn_count, distilled_through, summary, created_at, updated_at, expires_at \
         FROM sessions WHERE tenant_id = $1 AND id = $2",
        &[&tenant, &id],
    )
    .await?;
    row.as_ref()
        .map(|r| {
            Ok(SessionRow {
                tenant: tenant.to_owned(),
                id: id.to_owned(),
                namespace: Namespace::from_stored(col::<&str>(r, 0)?),
                turn_count: col(r, 1)?,
                distilled_through: col(r, 2)?,
                summary: col(r, 3)?,
                created_at: col(r, 4)?,
                updated_at: col(r, 5)?,
                expires_at: col(r, 6)?,
            })
        })
        .transpose()
}

pub async fn put<C: GenericClient>(c: &C, s: &SessionRow) -> Result<()> {
    execute(
        c,
        "INSERT INTO sessions (tenant_id, id, namespace, turn_count, distilled_through, summary, \
         created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET namespace = excluded.namespace, turn_count = excluded.turn_count, \
         distilled_through = excluded.distilled_through, summary = excluded.summary, created_at = excluded.created_at, \
         updated_at = excluded.updated_at, expires_at = excluded.expires_at",
        &[
            &s.tenant,
            &s.id,
            &s.namespace.joined(),
            &s.turn_count,
            &s.distilled_through,
            &s.summary,
            &s.created_at,
            &s.updated_at,
            &s.expires_at,
        ],
    )
    .await?;
    Ok(())
}

pub async fn delete<C: GenericClient>(c: &C, tenant: &str, id: &str) -> Result<()> {
    execute(c, "DELETE FROM session_turns WHERE tenant_id = $1 AND session_id = $2", &[&tenant, &id]).await?;
    execute(c, "DELETE FROM sessions WHERE tenant_id = $1 AND id = $2", &[&tenant, &id]).await?;
    Ok(())
}

pub async fn turns<C: GenericClient>(c: &C, tenant: &str, id: &str, from: i64, to: i64) -> Result<Vec<Turn>> {
    let rows = query(
        c,
        "SELECT idx, role, content, at, metadata, utc_offset FROM session_turns \
         WHERE tenant_id = $1 AND session_id = $2 AND idx BETWEEN $3 AND $4 ORDER BY idx",
        &[&tenant, &id, &from, &to],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Turn {
                index: col(r, 0)?,
                role: col(r, 1)?,
                content: col(r, 2)?,
                at: LocalTime { at: col(r, 3)?, utc_offset: col(r, 5)? },
                metadata: serde_json::from_value(col::<Value>(r, 4)?)?,
            })
        })
        .collect()
}

pub async fn insert_turns<C: GenericClient>(c: &C, tenant: &str, id: &str, turns: &[Turn]) -> Result<()> {
    for t in turns {
        let meta = serde_json::to_value(&t.metadata)?;
        execute(
            c,
            "INSERT INTO session_turns (tenant_id, session_id, idx, role, content, at, utc_offset, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&tenant, &id, &t.index, &t.role, &t.content, &t.at.at, &t.at.utc_offset, &meta],
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_turns_through<C: GenericClient>(c: &C, tenant: &str, id: &str, through: i64) -> Result<()> {
    execute(
        c,
        "DELETE FROM session_turns WHERE tenant_id = $1 AND session_id = $2 AND idx <= $3",
        &[&tenant, &id, &through],
    )
    .await?;
    Ok(())
}

pub async fn expired<C: GenericClient>(c: &C, at: Millis, limit: usize) -> Result<Vec<(String, String)>> {
    let rows =
        query(c, "SELECT tenant_id, id FROM sessions WHERE expires_at <= $1 LIMIT $2", &[&at, &(limit as i64)]).await?;
    rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
}
