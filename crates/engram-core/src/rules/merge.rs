//! Near-duplicates: when two memories say the same thing, and how one is
//! folded into the other. The rule holds on every path a memory takes — a
//! write, a distillation, a LangGraph put, a patch of its text, promotion —
//! and again once its vector is known: there are never two live copies.
//!
//! - **Same thing:** two memories of one tenant and namespace whose texts have
//!   the same fingerprint (case, runs of whitespace, trailing sentence
//!   punctuation and a distilled memory's `speaker: ` prefix ignored), or
//!   whose vectors have cosine ≥ [`DUPLICATE_COSINE`].
//! - **Never merged:** two memories that both have a key — a key addresses
//!   its item (LangGraph's store semantics), so distinct keys stay distinct.
//! - **Survivor:** the one with a key if only one has one, else the older
//!   (created first). It keeps its id, key, text, data and source.
//! - **Fold:** tags and metadata are united (on a metadata conflict the folded
//!   memory's value wins), salience takes the higher, pinned if either was,
//!   citations add up, semantic if either was, and it lives as long as the
//!   longer-lived of the two. The folded memory's id becomes an alias: reads
//!   and writes through it reach the survivor.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::liveness::live;
use crate::audit::{self, Change, ChangeKind};
use crate::error::Result;
use crate::model::memory::{MAX_METADATA_ENTRIES, MAX_TAGS};
use crate::model::{Memory, Namespace, Source, Tier};
use crate::store::{Hit, IndexMark, Stored, Tx};
use crate::time::Millis;

/// Cosine similarity at or above which two memories say the same thing.
pub const DUPLICATE_COSINE: f32 = 0.95;

/// The part of a memory's text its fingerprint is taken of: a distilled
/// memory reads `<speaker>: <what was said>`, and only what was said counts.
pub fn dedup_text<'a>(text: &'a str, source: &Source, metadata: &Map<String, Value>) -> &'a str {
    if let Source::Session { .. } = source {
        let speakers = metadata.get("speakers").and_then(|s| s.as_array());
        for speaker in speakers.into_iter().flatten().filter_map(|s| s.as_str()) {
            if let Some(rest) = text.strip_prefix(speaker).and_then(|r| r.strip_prefix(": ")) {
                return rest;
            }
        }
    }
    text
}

/// The fingerprint of a memory's text for exact-duplicate detection; `None`
/// for an empty text (nothing to compare).
pub fn fingerprint(m: &Memory) -> Option<i64> {
    fingerprint_of(&m.text, &m.source, &m.metadata)
}

/// [`fingerprint`] of a memory's parts (one not yet stored).
pub fn fingerprint_of(text: &str, source: &Source, metadata: &Map<String, Value>) -> Option<i64> {
    use sha2::{Digest, Sha256};
    let text = dedup_text(text, source, metadata);
    if text.trim().is_empty() {
        return None;
    }
    let lowered = text.to_lowercase();
    let words: Vec<&str> = lowered.split_whitespace().collect();
    let joined = words.join(" ");
    let trimmed = joined.trim_end_matches(['.', '!', '?', '…', ' ']);
    let digest = Sha256::digest(trimmed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Some(i64::from_le_bytes(first))
}

/// Whether `a` and `b` may be folded together (not which one survives).
pub fn may_merge(a: &Stored, b: &Stored) -> bool {
    a.seq != b.seq
        && a.tenant == b.tenant
        && a.memory.namespace == b.memory.namespace
        && !(a.memory.key.is_some() && b.memory.key.is_some())
}

/// Whether `a` survives when folded with `b`: a keyed one wins, else the older.
pub fn survives(a: &Stored, b: &Stored) -> bool {
    match (a.memory.key.is_some(), b.memory.key.is_some()) {
        (true, false) => true,
        (false, true) => false,
        _ => (a.memory.created_at, a.seq) <= (b.memory.created_at, b.seq),
    }
}

/// `survivor` with `absorbed` folded in (see the module docs); not yet written.
pub fn folded(survivor: &Stored, absorbed: &Stored, now: Millis) -> Stored {
    let (k, d) = (&survivor.memory, &absorbed.memory);
    let mut out = survivor.clone();
    let m = &mut out.memory;
    for t in &d.tags {
        if !m.tags.contains(t) && m.tags.len() < MAX_TAGS {
            m.tags.push(t.clone());
        }
    }
    for (name, v) in &d.metadata {
        if m.metadata.contains_key(name) || m.metadata.len() < MAX_METADATA_ENTRIES {
            m.metadata.insert(name.clone(), v.clone());
        }
    }
    if d.salience > k.salience {
        m.salience = d.salience;
        out.salience_at = absorbed.salience_at;
    }
    m.pinned = k.pinned || d.pinned;
    if d.tier == Tier::Semantic {
        m.tier = Tier::Semantic;
    }
    // The longer life of the two; pinned or no expiry is forever.
    let (expires_at, ttl_ms) = match (k.expires_at, d.expires_at) {
        _ if m.pinned => (None, None),
        (None, _) | (_, None) => (None, None),
        (Some(a), Some(b)) => (Some(a.max(b)), k.ttl_ms.max(d.ttl_ms)),
    };
    m.expires_at = expires_at;
    m.ttl_ms = ttl_ms;
    out.cite_count = survivor.cite_count + absorbed.cite_count;
    m.version = k.version + 1;
    m.updated_at = now.max(k.updated_at);
    out
}

/// Folds `absorbed` into `survivor` in storage: the survivor is rewritten,
/// the absorbed memory deleted and its id made an alias of the survivor's.
pub fn fold(tx: &mut dyn Tx, survivor: &Stored, absorbed: &Stored, now: Millis) -> Result<Stored> {
    let out = folded(survivor, absorbed, now);
    tx.update_memory(&out)?;
    tx.delete_memory(absorbed.seq)?;
    tx.record_merge(&absorbed.tenant, &absorbed.memory.id, &out.memory.id, now)?;
    let place = out.memory.namespace.joined();
    let merged = Change { into: Some(out.memory.id.clone()), ..Change::memory(ChangeKind::Merged, &absorbed.memory) };
    audit::record(tx, &out.tenant, &place, merged);
    audit::record(tx, &out.tenant, &place, Change::memory(ChangeKind::Updated, &out.memory));
    Ok(out)
}

/// Vectors stored since a lookup in the vector index (by concurrent writers):
/// what that lookup may have missed, by tenant and namespace.
#[derive(Default)]
pub struct Recent(HashMap<(String, Namespace), Vectors>);

/// Stored vectors: `(seq, vector)`.
type Vectors = Vec<(i64, Vec<f32>)>;

impl Recent {
    /// The vectors stored in each of `places` since its `mark` (taken by
    /// `Store::index_mark` before the lookup).
    pub fn load<'a>(
        tx: &mut dyn Tx,
        mark: &IndexMark,
        places: impl IntoIterator<Item = (&'a str, &'a Namespace)>,
    ) -> Result<Self> {
        let mut out = HashMap::new();
        for (tenant, ns) in places {
            if let Entry::Vacant(slot) = out.entry((tenant.to_owned(), ns.clone())) {
                slot.insert(tx.vectors_since(tenant, ns, mark.at(tenant, ns))?);
            }
        }
        Ok(Recent(out))
    }

    /// Those vectors of `(tenant, namespace)` as hits for `vector`.
    pub fn hits<'a>(&'a self, tenant: &str, ns: &Namespace, vector: &'a [f32]) -> impl Iterator<Item = Hit> + 'a {
        let found = self.0.get(&(tenant.to_owned(), ns.clone()));
        found.into_iter().flatten().map(move |(seq, w)| (*seq, f64::from(crate::vector::dot(vector, w))))
    }
}

/// Whether the memory at `seq` still has a vector at least
/// [`DUPLICATE_COSINE`] similar to `vector`: hits are found before the
/// transaction, and the other memory may have changed since.
pub fn still_near(tx: &mut dyn Tx, seq: i64, vector: &[f32]) -> Result<bool> {
    Ok(tx.vector(seq)?.is_some_and(|w| crate::vector::dot(vector, &w) >= DUPLICATE_COSINE))
}

/// Settles a memory just written or just embedded against its namespace:
/// every live memory with the same fingerprint, and every one of the vector
/// `hits` still at least [`DUPLICATE_COSINE`] similar to `vector` (checked
/// again here), is folded with it by the rules above. Returns what the memory
/// became: itself (having absorbed the others) or the survivor it was folded
/// into.
pub fn settle(tx: &mut dyn Tx, s: Stored, vector: Option<&[f32]>, hits: &[Hit], now: Millis) -> Result<Stored> {
    let mut candidates: Vec<i64> = match s.text_hash {
        Some(h) => tx.memories_by_text_hash(&s.tenant, &s.memory.namespace, h)?.into_iter().map(|o| o.seq).collect(),
        None => Vec::new(),
    };
    if let Some(v) = vector {
        for h in hits.iter().filter(|h| h.1 >= f64::from(DUPLICATE_COSINE)) {
            if h.0 != s.seq && still_near(tx, h.0, v)? {
                candidates.push(h.0);
            }
        }
    }
    let mut cur = s;
    let mut seen = std::collections::HashSet::new();
    for seq in candidates {
        if seq == cur.seq || !seen.insert(seq) {
            continue;
        }
        let Some(other) = live(tx.memory_by_seq(seq)?, now) else {
            continue;
        };
        if !may_merge(&cur, &other) {
            continue;
        }
        cur = if survives(&cur, &other) { fold(tx, &cur, &other, now)? } else { fold(tx, &other, &cur, now)? };
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Namespace;
    use serde_json::json;

    fn stored(seq: i64, text: &str, key: Option<&str>, created_at: Millis) -> Stored {
        Stored {
            seq,
            tenant: "t".into(),
            memory: Memory {
                id: format!("id{seq}"),
                namespace: Namespace::from_stored("n"),
                key: key.map(str::to_owned),
                tier: Tier::Episodic,
                text: text.into(),
                data: None,
                tags: vec![],
                metadata: Default::default(),
                salience: 0.5,
                pinned: false,
                version: 1,
                created_at,
                updated_at: created_at,
                expires_at: None,
                source: Source::api(&Default::default()),
                index: None,
                ttl_ms: None,
            },
            text_hash: None,
            salience_at: created_at,
            cite_count: 0,
        }
    }

    #[test]
    fn fingerprints_ignore_case_spacing_punctuation_and_the_speaker() {
        let a = stored(1, "I am allergic to shellfish.", None, 0);
        let mut b = stored(2, "  i am   ALLERGIC to shellfish!", None, 0);
        assert_eq!(fingerprint(&a.memory), fingerprint(&b.memory));
        b.memory.text = "Caroline: I am allergic to shellfish.".into();
        b.memory.source = Source::Session { session_id: "s".into(), turns: [1, 1] };
        b.memory.metadata.insert("speakers".into(), json!(["Caroline"]));
        assert_eq!(fingerprint(&a.memory), fingerprint(&b.memory));
        // An API memory's text is taken whole.
        b.memory.source = Source::api(&Default::default());
        assert_ne!(fingerprint(&a.memory), fingerprint(&b.memory));
        assert_eq!(fingerprint(&stored(3, "  ", None, 0).memory), None);
    }

    #[test]
    fn the_keyed_or_older_memory_survives_and_keys_never_merge() {
        let (old, new) = (stored(1, "x", None, 10), stored(2, "x", None, 20));
        assert!(survives(&old, &new) && !survives(&new, &old));
        let item = stored(3, "x", Some("k"), 30);
        assert!(survives(&item, &old) && !survives(&old, &item));
        assert!(may_merge(&item, &old));
        assert!(!may_merge(&item, &stored(4, "x", Some("k2"), 40)));
        let mut elsewhere = stored(5, "x", None, 0);
        elsewhere.memory.namespace = Namespace::from_stored("m");
        assert!(!may_merge(&old, &elsewhere));
    }

    #[test]
    fn folding_unites_labels_and_keeps_the_stronger_values() {
        let mut k = stored(1, "Alice likes tea", None, 10);
        k.memory.tags = vec!["a".into()];
        k.memory.metadata.insert("src".into(), json!("old"));
        k.memory.expires_at = Some(1_000);
        k.memory.ttl_ms = Some(100);
        k.cite_count = 2;
        let mut d = stored(2, "alice likes tea!", None, 20);
        d.memory.tags = vec!["a".into(), "b".into()];
        d.memory.metadata.insert("src".into(), json!("new"));
        d.memory.salience = 0.9;
        d.memory.tier = Tier::Semantic;
        d.memory.expires_at = Some(2_000);
        d.memory.ttl_ms = Some(500);
        d.cite_count = 3;
        let f = folded(&k, &d, 50);
        assert_eq!(f.memory.id, "id1");
        assert_eq!(f.memory.text, "Alice likes tea");
        assert_eq!(f.memory.tags, ["a", "b"]);
        assert_eq!(f.memory.metadata["src"], "new");
        assert_eq!((f.memory.salience, f.memory.tier, f.cite_count), (0.9, Tier::Semantic, 5));
        assert_eq!((f.memory.expires_at, f.memory.ttl_ms), (Some(2_000), Some(500)));
        assert_eq!((f.memory.version, f.memory.updated_at), (2, 50));
        d.memory.expires_at = None;
        assert_eq!(folded(&k, &d, 50).memory.expires_at, None, "forever is the longer life");
    }
}
