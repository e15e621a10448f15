//! The memories API: create (batched), get, patch, delete, list, search.

use serde::Serialize;

use super::inputs::{CreateMemories, ListInput, MemoryInput, PatchInput, SearchInput};
use super::{check_limit, check_offset, check_query, MemoryService, MAX_BATCH};
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::filter::{self, Dialect};
use crate::model::memory::{
    ttl_seconds_to_ms, validate_key, validate_metadata, validate_salience, validate_tags, validate_text, DEFAULT_SALIENCE,
};
use crate::model::{Memory, MemoryPatch, Namespace, NewMemory, Source, Tier, WriteStatus};
use crate::store::{ListQuery, SearchQuery};
use crate::time::now_ms;

/// One page of `GET /v1/memories`.
#[derive(Debug, Serialize)]
pub struct ListPage {
    pub memories: Vec<Memory>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One search result.
#[derive(Debug, Serialize)]
pub struct SearchHit {
    pub memory: Memory,
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<serde_json::Value>,
}

/// The answer to a search.
#[derive(Debug, Serialize)]
pub struct SearchOutput {
    pub results: Vec<SearchHit>,
    /// The mode that actually ran (see `search`).
    pub mode: &'static str,
}

fn validate_new(m: MemoryInput, field: &str) -> Result<NewMemory> {
    let namespace = Namespace::new(m.namespace, &format!("{field}.namespace"))?;
    validate_text(&m.text, &format!("{field}.text"))?;
    if let Some(k) = &m.key {
        validate_key(k, &format!("{field}.key"))?;
    }
    let tier = match &m.tier {
        Some(t) => Tier::parse(t, &format!("{field}.tier"))?,
        None => Tier::Episodic,
    };
    let tags = m.tags.unwrap_or_default();
    validate_tags(&tags, &format!("{field}.tags"))?;
    let metadata = m.metadata.unwrap_or_default();
    validate_metadata(&metadata, &format!("{field}.metadata"))?;
    let salience = m.salience.unwrap_or(DEFAULT_SALIENCE);
    validate_salience(salience, &format!("{field}.salience"))?;
    let ttl_ms = m.ttl_seconds.map(|t| ttl_seconds_to_ms(t, &format!("{field}.ttl_seconds"))).transpose()?;
    Ok(NewMemory {
        namespace,
        key: m.key,
        tier,
        text: m.text,
        data: m.data,
        tags,
        metadata,
        salience,
        pinned: m.pinned.unwrap_or(false),
        ttl_ms,
        source: Source::Api,
        index: None,
    })
}

fn validate_patch(p: PatchInput) -> Result<MemoryPatch> {
    if let Some(t) = &p.text {
        validate_text(t, "text")?;
    }
    if let Some(t) = &p.tags {
        validate_tags(t, "tags")?;
    }
    if let Some(m) = &p.metadata {
        validate_metadata(m, "metadata")?;
    }
    if let Some(s) = p.salience {
        validate_salience(s, "salience")?;
    }
    let patch = MemoryPatch {
        tier: p.tier.as_deref().map(|t| Tier::parse(t, "tier")).transpose()?,
        ttl_ms: match p.ttl_seconds {
            Some(Some(t)) => Some(Some(ttl_seconds_to_ms(t, "ttl_seconds")?)),
            Some(None) => Some(None),
            None => None,
        },
        text: p.text,
        data: p.data,
        tags: p.tags,
        metadata: p.metadata,
        salience: p.salience,
        pinned: p.pinned,
    };
    if patch.is_empty() {
        return Err(Error::invalid("the patch changes nothing: give at least one field to change"));
    }
    Ok(patch)
}

fn check_id(id: &str) -> Result<()> {
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(Error::not_found(format!("no memory with id {:?}", id.chars().take(64).collect::<String>())));
    }
    Ok(())
}

impl MemoryService {
    /// Writes up to 1000 memories in one transaction.
    pub async fn create_memories(&self, ctx: &TenantCtx, req: CreateMemories) -> Result<Vec<(WriteStatus, Memory)>> {
        ctx.require(Scope::Write)?;
        if req.memories.is_empty() || req.memories.len() > MAX_BATCH {
            return Err(Error::invalid(format!(
                "memories must hold 1 to {MAX_BATCH} items, got {}",
                req.memories.len()
            )));
        }
        let batch = req
            .memories
            .into_iter()
            .enumerate()
            .map(|(i, m)| validate_new(m, &format!("memories[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::HashSet::new();
        for (i, m) in batch.iter().enumerate() {
            if let Some(k) = &m.key {
                if !seen.insert((m.namespace.joined(), k.clone())) {
                    return Err(Error::invalid(format!("memories[{i}].key repeats a key written earlier in this batch")));
                }
            }
        }
        self.store().put_memories(&ctx.tenant, batch, now_ms()).await
    }

    pub async fn get_memory(&self, ctx: &TenantCtx, id: &str) -> Result<Memory> {
        ctx.require(Scope::Read)?;
        check_id(id)?;
        self.store()
            .get_memory(&ctx.tenant, id, now_ms())
            .await?
            .ok_or_else(|| Error::not_found(format!("no memory with id {id}")))
    }

    /// Applies a patch; `if_version` (from `If-Match`) guards against lost updates.
    pub async fn update_memory(&self, ctx: &TenantCtx, id: &str, patch: PatchInput, if_version: Option<i64>) -> Result<Memory> {
        ctx.require(Scope::Write)?;
        check_id(id)?;
        let patch = validate_patch(patch)?;
        self.store().update_memory(&ctx.tenant, id, patch, if_version, now_ms()).await
    }

    pub async fn delete_memory(&self, ctx: &TenantCtx, id: &str) -> Result<()> {
        ctx.require(Scope::Write)?;
        check_id(id)?;
        if self.store().delete_memory(&ctx.tenant, id, now_ms()).await? {
            Ok(())
        } else {
            Err(Error::not_found(format!("no memory with id {id}")))
        }
    }

    /// Lists memories under a namespace prefix in creation order, by cursor.
    pub async fn list_memories(&self, ctx: &TenantCtx, q: ListInput) -> Result<ListPage> {
        ctx.require(Scope::Read)?;
        let limit = check_limit(q.limit, 100, "limit")?;
        let after_id = match q.cursor.filter(|c| !c.is_empty()) {
            Some(c) if uuid::Uuid::try_parse(&c).is_ok() => Some(c),
            Some(_) => return Err(Error::invalid("cursor is not one this server returned")),
            None => None,
        };
        let mut memories = self
            .store()
            .list_memories(ListQuery {
                tenant: ctx.tenant.clone(),
                namespace_prefix: Namespace::parse_joined(q.namespace.as_deref().unwrap_or(""), "namespace")?,
                tier: q.tier.as_deref().map(|t| Tier::parse(t, "tier")).transpose()?,
                after_id,
                limit: limit + 1,
                now: now_ms(),
            })
            .await?;
        let next_cursor = if memories.len() > limit {
            memories.truncate(limit);
            memories.last().map(|m| m.id.clone())
        } else {
            None
        };
        Ok(ListPage { memories, next_cursor })
    }

    /// Searches memories. Keyword mode ranks by BM25. Until a vector index is
    /// configured, `hybrid` (the default) runs as keyword search and says so in
    /// `mode`; `vector` is refused with `unprocessable`.
    pub async fn search(&self, ctx: &TenantCtx, q: SearchInput) -> Result<SearchOutput> {
        ctx.require(Scope::Read)?;
        let mode = match q.mode.as_deref().unwrap_or("hybrid") {
            "keyword" | "hybrid" => "keyword",
            "vector" => {
                return Err(Error::unprocessable(
                    "mode \"vector\" needs an embedding model, and this server has none configured; use \"keyword\"",
                ))
            }
            other => {
                return Err(Error::invalid(format!("mode must be \"hybrid\", \"vector\" or \"keyword\", got {other:?}")))
            }
        };
        if let Some(text) = &q.query {
            check_query(text, "query")?;
        }
        let tiers = q
            .tiers
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, t)| Tier::parse(t, &format!("tiers[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let filter = q.filter.as_ref().map(|f| filter::parse(f, Dialect::Memories)).transpose()?;
        let hits = self
            .store()
            .search(SearchQuery {
                tenant: ctx.tenant.clone(),
                text: q.query.filter(|t| !t.trim().is_empty()),
                namespace_prefix: Namespace::prefix(q.namespace_prefix.unwrap_or_default(), "namespace_prefix")?,
                tiers,
                filter,
                items_only: false,
                limit: check_limit(q.limit, 10, "limit")?,
                offset: check_offset(q.offset, "offset")?,
                now: now_ms(),
            })
            .await?;
        let explain = q.explain.unwrap_or(false);
        Ok(SearchOutput {
            mode,
            results: hits
                .into_iter()
                .map(|h| SearchHit {
                    explain: explain.then(|| serde_json::json!({ "keyword": h.score })),
                    memory: h.memory,
                    score: h.score,
                })
                .collect(),
        })
    }
}
