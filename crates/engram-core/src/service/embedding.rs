//! How the service uses its embedder: texts embedded off the async workers in
//! batches of similar length (less padding), caller-supplied vectors checked,
//! and the per-tenant model record that keeps vectors of different models from
//! ever being compared.

use std::sync::Arc;

use super::MemoryService;
use crate::audit::Actor;
use crate::embed::{EmbedError, Embedder};
use crate::error::{Error, Result};
use crate::model::NewMemory;
use crate::rules::embedding::{self as rules, Computed};
use crate::store::{PendingText, TenantModel, WriteScope};
use crate::vector::normalise;

/// Texts per model call.
pub const EMBED_BATCH: usize = 32;

/// Embeds `texts` in batches of similar length; output in input order.
/// `backlog`: the embedding queue's work ([`Embedder::embed_backlog`]).
pub fn embed_sorted(e: &dyn Embedder, texts: &[String], backlog: bool) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut out = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(EMBED_BATCH) {
        let refs: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
        let vectors = if backlog { e.embed_backlog(&refs)? } else { e.embed(&refs)? };
        if vectors.len() != chunk.len() || vectors.iter().any(|v| v.len() != e.dims()) {
            return Err(EmbedError::Unavailable(format!(
                "the embedder returned {} vectors for {} texts, or of the wrong dimension",
                vectors.len(),
                chunk.len()
            )));
        }
        for (&i, v) in chunk.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}

fn no_embedder(what: &str) -> Error {
    Error::unprocessable(format!(
        "{what} needs an embedding model, and this server has none configured (see [embedder] in the configuration)"
    ))
}

/// Checks a caller's vector against the model (dimension, finite, non-zero)
/// and scales it to unit length.
fn checked_vector(e: &dyn Embedder, mut v: Vec<f32>, field: &str) -> Result<Vec<f32>> {
    if v.len() != e.dims() {
        return Err(Error::embedding_mismatch(format!(
            "{field} has {} dimensions; this tenant's model ({}) has {}",
            v.len(),
            e.model(),
            e.dims()
        )));
    }
    if v.iter().any(|x| !x.is_finite()) || normalise(&mut v).is_none() {
        return Err(Error::invalid(format!("{field} must be finite and not all zero")));
    }
    Ok(v)
}

impl MemoryService {
    /// Checks a caller-supplied query vector (`query_embedding`).
    pub(crate) fn query_vector(&self, v: Vec<f32>) -> Result<Vec<f32>> {
        let e = self.require_embedder("query_embedding")?;
        checked_vector(e.as_ref(), v, "query_embedding")
    }

    fn require_embedder(&self, what: &str) -> Result<Arc<dyn Embedder>> {
        self.embedder().cloned().ok_or_else(|| no_embedder(what))
    }

    /// Embeds texts on a blocking thread; `backlog` for the embedding queue.
    pub async fn embed_texts(&self, texts: Vec<String>, backlog: bool) -> Result<Vec<Vec<f32>>> {
        let e = self.require_embedder("embedding")?;
        let (started, n) = (std::time::Instant::now(), texts.len() as u64);
        let out = tokio::task::spawn_blocking(move || embed_sorted(e.as_ref(), &texts, backlog))
            .await
            .map_err(|e| Error::internal(format!("embedding panicked: {e}")))?
            .map_err(Error::from);
        crate::metrics::observe(&self.inner.metrics.embed, started.elapsed());
        if out.is_ok() {
            self.inner.metrics.embedded_texts.inc_by(n);
        }
        out
    }

    /// The model this server embeds with.
    pub fn current_model(&self) -> Option<TenantModel> {
        self.embedder().map(|e| TenantModel { model: e.model().to_owned(), dims: e.dims() })
    }

    /// Fails with `embedding_mismatch` when the tenant's vectors were made with
    /// another model; records the current model for a tenant without one.
    pub async fn ensure_tenant_model(&self, tenant: &str) -> Result<()> {
        let want = self.current_model().ok_or_else(|| no_embedder("search by meaning"))?;
        let now = self.now();
        if self.inner.model_checked.get(tenant).is_some_and(|at| now - at < super::MODEL_CHECK_TTL_MS) {
            return Ok(());
        }
        let t = tenant.to_owned();
        match self.store().point(move |r| r.tenant_model(&t)).await? {
            Some(have) if have == want => {
                self.inner.model_checked.insert(tenant.to_owned(), now);
                Ok(())
            }
            Some(have) => Err(Error::embedding_mismatch(format!(
                "this tenant's vectors were made with {} ({} dimensions) but the server now embeds with {} \
                 ({} dimensions); run `engram reembed --tenant {tenant}` to recompute them",
                have.model, have.dims, want.model, want.dims
            ))),
            None => {
                let (t, model) = (tenant.to_owned(), want.clone());
                let recorded = self
                    .store()
                    .write(&Actor::job("embedding"), move |tx| tx.record_tenant_model(&t, &model, now))
                    .await?;
                // Another writer may have recorded another model first.
                if recorded == want {
                    self.inner.model_checked.insert(tenant.to_owned(), now);
                }
                Ok(())
            }
        }
    }

    /// Checks caller vectors (dimension, finite, non-zero; normalised to unit
    /// length) and, when `embed_missing`, computes the vectors of the others so
    /// the write stores them at once.
    pub(crate) async fn attach_vectors(
        &self,
        tenant: &str,
        batch: &mut [NewMemory],
        given: Vec<Option<Vec<f32>>>,
        embed_missing: bool,
    ) -> Result<()> {
        let any_given = given.iter().any(Option::is_some);
        if !any_given && !embed_missing {
            return Ok(());
        }
        let e = match self.embedder() {
            Some(e) => Arc::clone(e),
            None if any_given => return Err(no_embedder("memories[].embedding")),
            None => return Ok(()),
        };
        for (i, (m, v)) in batch.iter_mut().zip(given).enumerate() {
            let Some(v) = v else { continue };
            let v = checked_vector(e.as_ref(), v, &format!("memories[{i}].embedding"))?;
            if !m.text.is_empty() {
                m.embedding = Some(v);
            }
        }
        self.ensure_tenant_model(tenant).await?;
        if embed_missing {
            let missing: Vec<usize> =
                (0..batch.len()).filter(|&i| batch[i].embedding.is_none() && !batch[i].text.is_empty()).collect();
            if !missing.is_empty() {
                let texts = missing.iter().map(|&i| batch[i].text.clone()).collect();
                for (i, v) in missing.into_iter().zip(self.embed_texts(texts, false).await?) {
                    batch[i].embedding = Some(v);
                }
            }
        }
        Ok(())
    }

    /// Wakes the embedding queue.
    pub(crate) fn notify_queued(&self) {
        self.inner.queued.notify_one();
    }

    /// The oldest memories waiting for an embedding that no worker holds,
    /// except `exclude`d tenants' (a look: nothing is taken).
    pub async fn pending_embeddings(&self, limit: usize, exclude: Vec<String>) -> Result<Vec<PendingText>> {
        let now = self.now();
        self.store().read(move |r| r.pending_embeddings(now, limit, &exclude)).await
    }

    /// Takes the oldest memories waiting for an embedding (leased to this
    /// caller: see `rules::embedding::claim`).
    pub async fn claim_embeddings(&self, limit: usize, exclude: Vec<String>) -> Result<Vec<PendingText>> {
        let now = self.now();
        self.store().write(&Actor::job("embedding"), move |tx| rules::claim(tx, now, limit, &exclude)).await
    }

    /// Stores the embeddings computed for queued memories (those still
    /// waiting at that version) and folds each with its near-duplicates, in
    /// one transaction. Returns how many vectors were stored.
    pub async fn store_embeddings(&self, done: Vec<(PendingText, Vec<f32>)>) -> Result<usize> {
        let scope = WriteScope::places(done.iter().map(|(p, _)| (p.tenant.clone(), p.namespace.clone())));
        let mark = self.store().index_mark(scope.listed().to_vec()).await?;
        let mut computed: Vec<Computed> = done
            .into_iter()
            .map(|(p, vector)| Computed {
                seq: p.seq,
                gen: p.gen,
                tenant: p.tenant,
                namespace: p.namespace,
                vector,
                near: Vec::new(),
            })
            .collect();
        // Near-duplicates already in the index.
        let probes =
            computed.iter().enumerate().map(|(i, c)| (i, c.tenant.clone(), c.namespace.clone(), c.vector.clone()));
        for (i, hits) in self.near_duplicates(probes.collect()).await? {
            computed[i].near = hits;
        }
        rules::near_each_other(&mut computed);
        let now = self.now();
        self.store().write_in(&Actor::job("embedding"), scope, move |tx| rules::store(tx, computed, &mark, now)).await
    }

    /// Brings derived indexes up to date with the stored vectors.
    pub async fn sync_indexes(&self) -> Result<()> {
        self.store().sync_indexes().await
    }
}
