//! Where each indexed vector belongs (tenant, namespace, tier, keyed), kept in
//! memory so the graph walk can reject out-of-scope nodes with a hash lookup,
//! and so small scopes can be listed for an exact scan.

use std::collections::{HashMap, HashSet};

use super::{NsScope, Scope};
use crate::model::Tier;

/// Names (tenants, namespaces) as small numbers; a name keeps its number.
#[derive(Default)]
pub(crate) struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    /// The number of `s`, given one if new.
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }

    /// The number of `s`, if it has one.
    pub(crate) fn id(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The name numbered `id`.
    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Most namespaces [`Catalogue::is_whole_index`] checks one by one.
const WHOLE_CHECK_NAMESPACES: usize = 1024;

#[derive(Clone, Copy)]
struct Meta {
    tenant: u32,
    ns: u32,
    tier: Tier,
    keyed: bool,
}

#[derive(Default)]
pub struct Catalogue {
    tenants: Interner,
    namespaces: Interner,
    meta: HashMap<u64, Meta>,
    by_tenant: HashMap<u32, HashSet<u64>>,
    by_ns: HashMap<(u32, u32), HashSet<u64>>,
}

impl Catalogue {
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.meta.contains_key(&seq)
    }

    pub fn tenant_id(&self, tenant: &str) -> Option<u32> {
        self.tenants.ids.get(tenant).copied()
    }

    pub fn insert(&mut self, seq: u64, tenant: &str, namespace: &str, tier: Tier, keyed: bool) {
        let t = self.tenants.intern(tenant);
        let ns = self.namespaces.intern(namespace);
        self.meta.insert(seq, Meta { tenant: t, ns, tier, keyed });
        self.by_tenant.entry(t).or_default().insert(seq);
        self.by_ns.entry((t, ns)).or_default().insert(seq);
    }

    /// Forgets `seq`; whether it was there.
    pub fn remove(&mut self, seq: u64) -> bool {
        let Some(m) = self.meta.remove(&seq) else {
            return false;
        };
        if let Some(set) = self.by_tenant.get_mut(&m.tenant) {
            set.remove(&seq);
            if set.is_empty() {
                self.by_tenant.remove(&m.tenant);
            }
        }
        if let Some(set) = self.by_ns.get_mut(&(m.tenant, m.ns)) {
            set.remove(&seq);
            if set.is_empty() {
                self.by_ns.remove(&(m.tenant, m.ns));
            }
        }
        true
    }

    /// Whether `seq` is in the scope (the tenant already resolved to `tenant`).
    pub fn admits(&self, seq: u64, tenant: u32, scope: &Scope<'_>) -> bool {
        let Some(m) = self.meta.get(&seq) else {
            return false;
        };
        m.tenant == tenant && scope.admits_place(m.tier, m.keyed, || self.namespaces.name(m.ns))
    }

    /// Whether the scope is every vector in the index (a plain graph search,
    /// without a check per visited node): one tenant holds every vector and
    /// the namespace scope admits all of its namespaces (looked at when there
    /// are at most [`WHOLE_CHECK_NAMESPACES`]).
    pub fn is_whole_index(&self, tenant: u32, scope: &Scope<'_>) -> bool {
        scope.tier.is_none()
            && !scope.unkeyed_only
            && scope.allowed.is_none()
            && self.by_tenant.get(&tenant).map(HashSet::len) == Some(self.meta.len())
            && match scope.namespace {
                NsScope::Any => true,
                ns => {
                    self.by_ns.len() <= WHOLE_CHECK_NAMESPACES
                        && self.by_ns.keys().all(|(_, id)| ns.admits(&self.namespaces.names[*id as usize]))
                }
            }
    }

    /// The members of a tenant's namespace scope when there are at most `limit`.
    pub fn small_scope(&self, tenant: u32, ns: NsScope<'_>, limit: usize) -> Option<Vec<u64>> {
        let members = self.by_tenant.get(&tenant)?;
        if members.len() <= limit {
            return Some(members.iter().copied().collect());
        }
        let mut out = Vec::new();
        match ns {
            NsScope::Any => return None,
            NsScope::Exact(name) => {
                let Some(set) = self.namespaces.ids.get(name).and_then(|id| self.by_ns.get(&(tenant, *id))) else {
                    return Some(out);
                };
                if set.len() > limit {
                    return None;
                }
                out.extend(set.iter().copied());
            }
            NsScope::Prefix(_) => {
                for ((t, id), set) in &self.by_ns {
                    if *t == tenant && ns.admits(&self.namespaces.names[*id as usize]) {
                        if out.len() + set.len() > limit {
                            return None;
                        }
                        out.extend(set.iter().copied());
                    }
                }
            }
        }
        Some(out)
    }

    /// Every vector of a tenant.
    pub fn tenant_members(&self, tenant: u32) -> Vec<u64> {
        self.by_tenant.get(&tenant).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }
}
