//! What a write claims, so that writes to different namespaces can run at
//! the same time without weakening a rule:
//!
//! - [`WriteScope`]: the places — `(tenant, namespace)` pairs — a write may
//!   touch, or all of them. A backend may run writes whose places are
//!   disjoint at once; writes sharing a place, and any write claiming
//!   [`WriteScope::All`], run one after the other. Every rule that checks
//!   and then writes (keyed upserts, merges) looks only inside one
//!   namespace, so a write that names its namespaces loses nothing by
//!   running beside writes to other ones.
//! - [`IndexMark`]: where the vector index stood, per place, before a
//!   near-duplicate lookup; inside the write, the vectors stored in a place
//!   since its mark ([`super::Reads::vectors_since`]) are what the lookup may
//!   have missed. With concurrent writes a single global number is not
//!   enough (a write to another namespace may commit a higher number while
//!   one to this namespace is still in flight), so a mark is kept per place:
//!   within one place, vectors are stored by one write at a time, and each
//!   takes numbers higher than every one before it.

use std::collections::HashMap;

use crate::model::Namespace;

/// A place a write touches: `(tenant, namespace)`.
pub type Place = (String, Namespace);

/// The places a write may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// Anything: runs alone.
    All,
    /// Only rows of these places (memories, their vectors, queued
    /// embeddings, merge records).
    Places(Vec<Place>),
}

impl WriteScope {
    /// The scope of a write to these places (duplicates removed, sorted).
    pub fn places(places: impl IntoIterator<Item = Place>) -> Self {
        let mut v: Vec<Place> = places.into_iter().collect();
        v.sort();
        v.dedup();
        WriteScope::Places(v)
    }

    /// The places listed (none for [`WriteScope::All`]).
    pub fn listed(&self) -> &[Place] {
        match self {
            WriteScope::All => &[],
            WriteScope::Places(v) => v,
        }
    }
}

/// Where the vector index stood before a lookup, per place: vectors stored
/// in a place after the lookup have a `change` number above its mark.
#[derive(Debug, Clone, Default)]
pub struct IndexMark {
    /// The mark of a place not listed in `places`.
    pub everywhere: i64,
    pub places: HashMap<Place, i64>,
}

impl IndexMark {
    /// One mark for every place (a backend whose writes run one at a time).
    pub fn global(mark: i64) -> Self {
        IndexMark { everywhere: mark, places: HashMap::new() }
    }

    /// The mark of `(tenant, namespace)`.
    pub fn at(&self, tenant: &str, namespace: &Namespace) -> i64 {
        self.places.get(&(tenant.to_owned(), namespace.clone())).copied().unwrap_or(self.everywhere)
    }
}
