//! The LangGraph store view: items are memories with a key whose `data` is the
//! item's value. TTLs are in minutes and reads refresh them by default, as in
//! LangGraph's own stores.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{check_limit, check_offset, check_query, MemoryService, Paging};
use crate::auth::{Scope, TenantCtx};
use crate::error::{Error, Result};
use crate::filter::{self, Dialect};
use crate::model::item::{indexed_text, item_value, validate_index};
use crate::model::memory::{validate_key, validate_object_strings, MAX_TTL_SECONDS};
use crate::model::{Memory, Namespace, NewMemory, Source, Tier};
use crate::rules::liveness::live;
use crate::rules::write;
use crate::store;
use crate::text::has_searchable_words;
use crate::time::{serde_rfc3339, Millis};

/// An item as the LangGraph store API returns it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ItemView {
    pub namespace: Namespace,
    pub key: String,
    pub value: Map<String, Value>,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub created_at: Millis,
    #[serde(serialize_with = "serde_rfc3339::serialize")]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::Rfc3339"))]
    pub updated_at: Millis,
    /// Present on search results; `null` when there was no query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<Option<f64>>,
}

impl ItemView {
    fn from_memory(m: Memory, score: Option<Option<f64>>) -> Self {
        ItemView {
            value: item_value(&m),
            key: m.key.unwrap_or_default(),
            namespace: m.namespace,
            created_at: m.created_at,
            updated_at: m.updated_at,
            score,
        }
    }
}

/// `PUT /store/items`.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PutItem {
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::NamespaceIn"))]
    pub namespace: Vec<String>,
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 512)))]
    pub key: String,
    pub value: Map<String, Value>,
    #[serde(default)]
    pub index: Option<Value>,
    /// Minutes; `null` means no expiry.
    #[serde(default)]
    pub ttl: Option<f64>,
}

/// `POST /store/items/search`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SearchItems {
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "crate::schema::PrefixIn"))]
    pub namespace_prefix: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<crate::schema::Filter>"))]
    pub filter: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1000)))]
    pub limit: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 100000)))]
    pub offset: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 10000)))]
    pub query: Option<String>,
    #[serde(default)]
    pub refresh_ttl: Option<bool>,
}

fn ttl_minutes_to_ms(ttl: f64) -> Result<i64> {
    let max_minutes = (MAX_TTL_SECONDS / 60) as f64;
    if !ttl.is_finite() || ttl <= 0.0 || ttl > max_minutes {
        return Err(Error::invalid(format!(
            "ttl is in minutes and must be positive, at most {max_minutes}; got {ttl}"
        )));
    }
    Ok(((ttl * 60_000.0).ceil() as i64).max(1))
}

impl MemoryService {
    /// Creates or replaces an item.
    pub async fn put_item(&self, ctx: &TenantCtx, req: PutItem) -> Result<ItemView> {
        ctx.require(Scope::Write)?;
        let namespace = Namespace::new(req.namespace, "namespace")?;
        ctx.require_namespace(&namespace, "namespace")?;
        validate_key(&req.key, "key")?;
        let index = req.index.filter(|i| !i.is_null());
        if let Some(i) = &index {
            validate_index(i, "index")?;
        }
        validate_object_strings(&req.value, "value")?;
        let value = Value::Object(req.value);
        let text = indexed_text(&value, index.as_ref().unwrap_or(&Value::Null));
        let Value::Object(data) = value else {
            return Err(Error::internal("item value changed shape"));
        };
        let memory = NewMemory {
            namespace,
            key: Some(req.key),
            tier: Tier::Semantic,
            text,
            data: Some(data),
            tags: Vec::new(),
            metadata: Map::new(),
            salience: crate::model::memory::DEFAULT_SALIENCE,
            pinned: false,
            ttl_ms: req.ttl.map(ttl_minutes_to_ms).transpose()?,
            source: Source::store(&ctx.writer()),
            index,
            embedding: None,
        };
        // LangGraph's stores make a put searchable by meaning before it returns.
        let mut batch = vec![memory];
        self.attach_vectors(&ctx.tenant, &mut batch, vec![None], true).await?;
        let mut out = self.write_memories(&ctx.actor(), &ctx.tenant, batch).await?;
        let (_, m) = out.pop().ok_or_else(|| Error::internal("put returned nothing"))?;
        Ok(ItemView::from_memory(m, None))
    }

    /// Reads an item; `None` when absent or expired. Refreshes its TTL unless
    /// `refresh_ttl` is `false`.
    pub async fn get_item(
        &self,
        ctx: &TenantCtx,
        namespace: Vec<String>,
        key: &str,
        refresh_ttl: Option<bool>,
    ) -> Result<Option<ItemView>> {
        ctx.require(Scope::Read)?;
        let namespace = Namespace::new(namespace, "namespace")?;
        ctx.require_namespace(&namespace, "namespace")?;
        validate_key(key, "key")?;
        let now = self.now();
        let (tenant, k) = (ctx.tenant.clone(), key.to_owned());
        let found = self.store().point(move |r| r.memory_by_key(&tenant, &namespace, &k)).await?;
        let Some(mut m) = live(found, now).map(|s| s.memory) else {
            return Ok(None);
        };
        if refresh_ttl.unwrap_or(true) && m.ttl_ms.is_some() && !m.pinned {
            self.refresh_ttl(ctx, vec![m.id.clone()]).await?;
            m.expires_at = m.ttl_ms.map(|t| now + t);
        }
        Ok(Some(ItemView::from_memory(m, None)))
    }

    /// Deletes an item; deleting a missing item is not an error (as in LangGraph).
    pub async fn delete_item(&self, ctx: &TenantCtx, namespace: Vec<String>, key: &str) -> Result<()> {
        ctx.require(Scope::Write)?;
        let namespace = Namespace::new(namespace, "namespace")?;
        ctx.require_namespace(&namespace, "namespace")?;
        validate_key(key, "key")?;
        let (tenant, key, now) = (ctx.tenant.clone(), key.to_owned(), self.now());
        let scope = store::WriteScope::places([(tenant.clone(), namespace.clone())]);
        self.store()
            .write_in(&ctx.actor(), scope, move |tx| match live(tx.memory_by_key(&tenant, &namespace, &key)?, now) {
                Some(s) => write::remove(tx, &s, crate::audit::ChangeKind::Deleted),
                None => Ok(()),
            })
            .await
    }

    /// Searches items under a namespace prefix, by filter and (optionally) a
    /// query, ranked by meaning and words (hybrid) when an embedder is
    /// configured, by words alone otherwise.
    pub async fn search_items(&self, ctx: &TenantCtx, req: SearchItems) -> Result<Vec<ItemView>> {
        ctx.require(Scope::Read)?;
        if let Some(q) = &req.query {
            check_query(q, "query")?;
        }
        let filter =
            req.filter.as_ref().filter(|f| !f.is_null()).map(|f| filter::parse(f, Dialect::Items)).transpose()?;
        let mut scope = store::Scope::tenant(&ctx.tenant, self.now());
        scope.namespace_prefix = Namespace::prefix(req.namespace_prefix, "namespace_prefix")?;
        scope.keyed_only = true;
        scope.filter = filter;
        ctx.confine(&mut scope)?;
        let page = Paging { limit: check_limit(req.limit, 10, "limit")?, offset: check_offset(req.offset, "offset")? };
        // A query with nothing to search finds nothing (as in the memories API).
        if req.query.as_deref().is_some_and(|q| !has_searchable_words(q)) {
            return Ok(Vec::new());
        }
        let hits = self.rank(scope, req.query.as_deref(), page, self.item_mode(), None, 0.0).await?;
        if req.refresh_ttl.unwrap_or(true) {
            let ids: Vec<String> =
                hits.iter().filter(|h| h.0.ttl_ms.is_some() && !h.0.pinned).map(|h| h.0.id.clone()).collect();
            self.refresh_ttl(ctx, ids).await?;
        }
        Ok(hits.into_iter().map(|(m, score, _)| ItemView::from_memory(m, Some(score))).collect())
    }

    /// Lists the namespaces that hold items.
    pub async fn list_namespaces(
        &self,
        ctx: &TenantCtx,
        prefix: Option<Vec<String>>,
        suffix: Option<Vec<String>>,
        max_depth: Option<i64>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Vec<Namespace>> {
        ctx.require(Scope::Read)?;
        let max_depth = match max_depth {
            Some(d) if !(1..=8).contains(&d) => {
                return Err(Error::invalid(format!("max_depth must be between 1 and 8, got {d}")))
            }
            d => d.map(|d| d as usize),
        };
        let suffix = Namespace::prefix(suffix.unwrap_or_default(), "suffix")?;
        let (limit, offset) = (check_limit(limit, 100, "limit")?, check_offset(offset, "offset")?);
        let mut scope = store::Scope::tenant(&ctx.tenant, self.now());
        scope.namespace_prefix = Namespace::prefix(prefix.unwrap_or_default(), "prefix")?;
        scope.keyed_only = true;
        ctx.confine(&mut scope)?;
        let mut out: Vec<Namespace> = Vec::new();
        for ns in self.store().namespaces(scope).await? {
            if !ns.segments().ends_with(suffix.segments()) {
                continue;
            }
            let mut segs = ns.segments().to_vec();
            if let Some(d) = max_depth {
                segs.truncate(d);
            }
            out.push(Namespace::from_stored(&segs.join("/")));
        }
        out.sort();
        out.dedup();
        Ok(out.into_iter().skip(offset).take(limit).collect())
    }

    /// Restarts the TTL of the tenant's live memories `ids` that have one.
    async fn refresh_ttl(&self, ctx: &TenantCtx, ids: Vec<String>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let (tenant, now) = (ctx.tenant.clone(), self.now());
        self.store().write(&ctx.actor(), move |tx| write::refresh_ttl(tx, &tenant, &ids, now)).await
    }
}
