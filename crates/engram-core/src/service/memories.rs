//! The memories API: create (batched), get, patch, delete, list. Search is in `search.rs`.

use std::collections::HashMap;

use serde::Serialize;

use super::inputs::{CreateMemories, ListInput, MemoryInput, PatchInput};
use super::{check_limit, MemoryService, MAX_BATCH};
use crate::audit::Actor;
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::model::memory::{
    ttl_seconds_to_ms, validate_key, validate_metadata, validate_object_strings, validate_salience, validate_tags,
    validate_text, DEFAULT_SALIENCE,
};
use crate::model::{Memory, MemoryPatch, Namespace, NewMemory, Source, Tier, WriteStatus};
use crate::rules::liveness::live;
use crate::rules::merge::DUPLICATE_COSINE;
use crate::rules::write;
use crate::store::{Hit, Page, WriteScope};

/// One page of `GET /v1/memories`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ListPage {
    pub memories: Vec<Memory>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
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
    if let Some(d) = &m.data {
        validate_object_strings(d, &format!("{field}.data"))?;
    }
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
        source: Source::api(&Default::default()),
        index: None,
        embedding: None,
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
    if let Some(Some(d)) = &p.data {
        validate_object_strings(d, "data")?;
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
        writer: Default::default(),
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
        let wait_indexed = match req.wait.as_deref() {
            None => false,
            Some("indexed") => true,
            Some(other) => return Err(Error::invalid(format!("wait must be \"indexed\" or absent, got {other:?}"))),
        };
        let mut given = Vec::with_capacity(req.memories.len());
        let mut batch = req
            .memories
            .into_iter()
            .enumerate()
            .map(|(i, mut m)| {
                given.push(m.embedding.take());
                let n = validate_new(m, &format!("memories[{i}]"))?;
                ctx.require_namespace(&n.namespace, &format!("memories[{i}].namespace"))?;
                Ok(NewMemory { source: Source::api(&ctx.writer()), ..n })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::HashSet::new();
        for (i, m) in batch.iter().enumerate() {
            if let Some(k) = &m.key {
                if !seen.insert((m.namespace.joined(), k.clone())) {
                    return Err(Error::invalid(format!(
                        "memories[{i}].key repeats a key written earlier in this batch"
                    )));
                }
            }
        }
        self.attach_vectors(&ctx.tenant, &mut batch, given, wait_indexed).await?;
        self.write_memories(&ctx.actor(), &ctx.tenant, batch).await
    }

    /// Writes validated memories by the write rules: their fingerprints are
    /// taken and, for those with a vector, their nearest memories looked up
    /// before the transaction. Wakes the embedding queue when texts wait.
    pub(crate) async fn write_memories(
        &self,
        actor: &Actor,
        tenant: &str,
        batch: Vec<NewMemory>,
    ) -> Result<Vec<(WriteStatus, Memory)>> {
        let queued = batch.iter().any(|m| m.embedding.is_none() && !m.text.is_empty());
        let mut prepared: Vec<write::Prepared> = batch.into_iter().map(write::prepare).collect();
        // The batch touches only its namespaces: writes elsewhere go on beside it.
        let scope = WriteScope::places(prepared.iter().map(|p| (tenant.to_owned(), p.memory.namespace.clone())));
        let with_vectors = scope
            .listed()
            .iter()
            .filter(|(_, ns)| prepared.iter().any(|p| p.memory.embedding.is_some() && &p.memory.namespace == ns));
        let mark = self.store().index_mark(with_vectors.cloned().collect()).await?;
        let probes = prepared.iter().enumerate().filter_map(|(i, p)| {
            p.memory.embedding.clone().map(|v| (i, tenant.to_owned(), p.memory.namespace.clone(), v))
        });
        for (i, hits) in self.near_duplicates(probes.collect()).await? {
            prepared[i].near = hits;
        }
        let (tenant, now) = (tenant.to_owned(), self.now());
        let out =
            self.store().write_in(actor, scope, move |tx| write::put_batch(tx, &tenant, prepared, &mark, now)).await?;
        if queued {
            self.notify_queued();
        }
        Ok(out)
    }

    /// The memories in the vector index at least [`DUPLICATE_COSINE`] similar
    /// to each probe `(slot, tenant, namespace, vector)`, as `(slot, hits)`;
    /// looked up once per tenant.
    pub(crate) async fn near_duplicates(
        &self,
        probes: Vec<(usize, String, Namespace, Vec<f32>)>,
    ) -> Result<Vec<(usize, Vec<Hit>)>> {
        type Group = (Vec<usize>, Vec<(Namespace, Vec<f32>)>);
        let mut by_tenant: HashMap<String, Group> = HashMap::new();
        for (slot, tenant, ns, v) in probes {
            let group = by_tenant.entry(tenant).or_default();
            group.0.push(slot);
            group.1.push((ns, v));
        }
        let mut out = Vec::new();
        for (tenant, (slots, probes)) in by_tenant {
            out.extend(slots.into_iter().zip(self.store().near(&tenant, probes, DUPLICATE_COSINE).await?));
        }
        Ok(out)
    }

    /// A live memory by id; an id merged into another memory names the survivor.
    pub async fn get_memory(&self, ctx: &TenantCtx, id: &str) -> Result<Memory> {
        ctx.require(Scope::Read)?;
        check_id(id)?;
        let (tenant, key, now) = (ctx.tenant.clone(), id.to_owned(), self.now());
        let found = self.store().point(move |r| write::resolve(r, &tenant, &key)).await?;
        live(found, now)
            .map(|s| s.memory)
            .filter(|m| ctx.may_touch(&m.namespace))
            .ok_or_else(|| Error::not_found(format!("no memory with id {id}")))
    }

    /// For a caller limited to namespaces: `not_found` when memory `id`
    /// lies outside them (as if it did not exist). A memory's namespace
    /// never changes (merges stay within one), so checking before the write
    /// is as good as checking in it.
    async fn check_id_granted(&self, ctx: &TenantCtx, id: &str) -> Result<()> {
        if ctx.namespaces.is_none() {
            return Ok(());
        }
        let (tenant, key) = (ctx.tenant.clone(), id.to_owned());
        match self.store().point(move |r| write::resolve(r, &tenant, &key)).await? {
            Some(s) if !ctx.may_touch(&s.memory.namespace) => Err(Error::not_found(format!("no memory with id {id}"))),
            _ => Ok(()),
        }
    }

    /// Applies a patch; `if_version` (from `If-Match`) guards against lost updates.
    pub async fn update_memory(
        &self,
        ctx: &TenantCtx,
        id: &str,
        patch: PatchInput,
        if_version: Option<i64>,
    ) -> Result<Memory> {
        ctx.require(Scope::Write)?;
        check_id(id)?;
        let patch = MemoryPatch { writer: ctx.writer(), ..validate_patch(patch)? };
        self.check_id_granted(ctx, id).await?;
        let requeues = patch.text.is_some();
        let (tenant, id, now) = (ctx.tenant.clone(), id.to_owned(), self.now());
        let m =
            self.store().write(&ctx.actor(), move |tx| write::patch(tx, &tenant, &id, &patch, if_version, now)).await?;
        if requeues {
            self.notify_queued();
        }
        Ok(m)
    }

    pub async fn delete_memory(&self, ctx: &TenantCtx, id: &str) -> Result<()> {
        ctx.require(Scope::Write)?;
        check_id(id)?;
        self.check_id_granted(ctx, id).await?;
        let (tenant, key, now) = (ctx.tenant.clone(), id.to_owned(), self.now());
        if self.store().write(&ctx.actor(), move |tx| write::delete(tx, &tenant, &key, now)).await? {
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
        let mut scope = crate::store::Scope::tenant(&ctx.tenant, self.now());
        scope.namespace_prefix = Namespace::parse_joined(q.namespace.as_deref().unwrap_or(""), "namespace")?;
        scope.tiers = q.tier.as_deref().map(|t| Tier::parse(t, "tier")).transpose()?.into_iter().collect();
        ctx.confine(&mut scope)?;
        let mut memories: Vec<Memory> = self
            .store()
            .list(scope, Page::ById { after: after_id, limit: limit + 1 })
            .await?
            .into_iter()
            .map(|s| s.memory)
            .collect();
        let next_cursor = if memories.len() > limit {
            memories.truncate(limit);
            memories.last().map(|m| m.id.clone())
        } else {
            None
        };
        Ok(ListPage { memories, next_cursor })
    }

    /// Deletes up to `batch` memories expired by now; returns how many.
    pub async fn sweep_expired(&self, batch: usize) -> Result<usize> {
        let now = self.now();
        self.store().write(&Actor::job("ttl_sweep"), move |tx| write::sweep_expired(tx, now, batch)).await
    }
}
