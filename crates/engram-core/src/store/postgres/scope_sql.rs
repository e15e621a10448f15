//! Compiles a [`Scope`] to SQL conditions over `memories m`: tenant,
//! liveness, namespace prefix and grant, tiers, keyed-only and the filter. What a scope
//! means is defined by [`Scope::admits`]; this is its PostgreSQL translation.

use super::filter_sql;
use super::sql::SqlBuilder;
use crate::model::Namespace;
use crate::store::Scope;

/// Appends `({column} = exact OR ({column} >= lo AND {column} < hi))`: the
/// namespaces under one prefix (its `Namespace::prefix_bounds`).
fn push_under(b: &mut SqlBuilder, column: &str, (exact, lo, hi): (String, String, String)) {
    b.sql(&format!("({column} = "))
        .param(exact)
        .sql(&format!(" OR ({column} >= "))
        .param(lo)
        .sql(&format!(" AND {column} < "))
        .param(hi)
        .sql("))");
}

/// Appends `AND <namespace under prefix>` when the prefix is not empty (the
/// column collates as "C", so the bounds are code-point ranges).
pub(super) fn push_namespace(b: &mut SqlBuilder, column: &str, prefix: &Namespace) {
    if let Some(bounds) = prefix.prefix_bounds() {
        b.sql(" AND ");
        push_under(b, column, bounds);
    }
}

/// Appends `AND <namespace under one of the prefixes>` when `within` is not
/// empty (every prefix in it is non-empty: see `Scope::within`).
pub(super) fn push_within(b: &mut SqlBuilder, column: &str, within: &[Namespace]) {
    if within.is_empty() {
        return;
    }
    let bounds: Vec<_> = within.iter().filter_map(Namespace::prefix_bounds).collect();
    if bounds.len() < within.len() {
        // Not a grant (its prefixes are never empty): admit nothing.
        b.sql(" AND FALSE");
        return;
    }
    b.sql(" AND (");
    for (i, bounds) in bounds.into_iter().enumerate() {
        if i > 0 {
            b.sql(" OR ");
        }
        push_under(b, column, bounds);
    }
    b.sql(")");
}

/// Appends the scope's conditions (starting with a space, no leading `AND`).
pub(super) fn push_scope(b: &mut SqlBuilder, s: &Scope) {
    b.sql(" m.tenant_id = ")
        .param(s.tenant.clone())
        .sql(" AND (m.expires_at IS NULL OR m.expires_at > ")
        .param(s.live_at)
        .sql(")");
    push_namespace(b, "m.namespace", &s.namespace_prefix);
    push_within(b, "m.namespace", &s.within);
    if !s.tiers.is_empty() {
        let tiers: Vec<String> = s.tiers.iter().map(|t| t.as_str().to_owned()).collect();
        b.sql(" AND m.tier = ANY(").param(tiers).sql(")");
    }
    if s.keyed_only {
        b.sql(" AND m.key IS NOT NULL");
    }
    if let Some(f) = &s.filter {
        b.sql(" AND ");
        b.one_off = true;
        filter_sql::compile(f, b);
    }
}
