//! [`Scope`]s and [`Filter`]s compiled to MongoDB query documents.
//!
//! Exact, not approximate: a compiled scope selects what [`Scope::admits`]
//! admits (the conformance suite's differential filter test checks it). JSON
//! fields are tested through the flattened filter fields of `docs.rs`, so a
//! path is a *value* (`{"p": "metadata.team"}`) and every operand is a value;
//! the operators and field names are this file's constants. Negations (`$ne`,
//! `$nin`, `$not`) are `$nor` of the positive form, the exact complement.

use mongodb::bson::{doc, Bson, Document};

use super::docs::{json_path, EXISTS, VALUES};
use crate::filter::{Cmp, Field, Filter, Predicate, Scalar};
use crate::model::Namespace;
use crate::store::Scope;

/// Matches nothing.
fn never() -> Document {
    doc! { "_id": { "$exists": false } }
}

/// Everything under `prefix` (whole segments), or `None` for every namespace.
pub fn under(prefix: &Namespace) -> Option<Document> {
    let (exact, lo, hi) = prefix.prefix_bounds()?;
    Some(doc! { "$or": [ { "namespace": exact }, { "namespace": { "$gte": lo, "$lt": hi } } ] })
}

/// Live at `at` (`rules::liveness`): no expiry, or one after `at`.
pub fn live(at: i64) -> Document {
    doc! { "$or": [ { "expires_at": { "$exists": false } }, { "expires_at": { "$gt": at } } ] }
}

/// The query selecting exactly what `scope` admits.
pub fn scope(s: &Scope) -> Document {
    let mut and: Vec<Bson> = vec![live(s.live_at).into()];
    if let Some(d) = under(&s.namespace_prefix) {
        and.push(d.into());
    }
    if !s.within.is_empty() {
        if s.within.iter().any(|p| p.depth() == 0) {
            // A grant is never the empty prefix; should one be, it admits nothing.
            and.push(never().into());
        } else {
            let any: Vec<Bson> = s.within.iter().filter_map(under).map(Bson::Document).collect();
            and.push(doc! { "$or": any }.into());
        }
    }
    if !s.tiers.is_empty() {
        let tiers: Vec<&str> = s.tiers.iter().map(|t| t.as_str()).collect();
        and.push(doc! { "tier": { "$in": tiers } }.into());
    }
    if s.keyed_only {
        and.push(doc! { "key": { "$exists": true } }.into());
    }
    if let Some(f) = &s.filter {
        and.push(filter(f).into());
    }
    doc! { "tenant_id": &s.tenant, "$and": and }
}

/// The query matching exactly what `filter::eval::matches` matches.
pub fn filter(f: &Filter) -> Document {
    match f {
        Filter::And(parts) if parts.is_empty() => doc! {},
        Filter::And(parts) => doc! { "$and": parts.iter().map(|p| Bson::Document(filter(p))).collect::<Vec<_>>() },
        Filter::Or(parts) if parts.is_empty() => never(),
        Filter::Or(parts) => doc! { "$or": parts.iter().map(|p| Bson::Document(filter(p))).collect::<Vec<_>>() },
        Filter::Not(inner) => not(filter(inner)),
        Filter::Leaf { field, pred } => leaf(field, pred),
    }
}

fn not(d: Document) -> Document {
    doc! { "$nor": [d] }
}

fn any_of(parts: Vec<Document>) -> Document {
    match parts.len() {
        0 => never(),
        1 => parts.into_iter().next().unwrap_or_else(never),
        _ => doc! { "$or": parts.into_iter().map(Bson::Document).collect::<Vec<_>>() },
    }
}

fn all_of(parts: Vec<Document>) -> Document {
    if parts.is_empty() {
        return never(); // `$all: []` matches nothing
    }
    doc! { "$and": parts.into_iter().map(Bson::Document).collect::<Vec<_>>() }
}

fn operand(x: &Scalar) -> Bson {
    match x {
        Scalar::Null => Bson::Null,
        Scalar::Bool(b) => Bson::Boolean(*b),
        Scalar::Int(i) => Bson::Int64(*i),
        Scalar::Float(f) => Bson::Double(*f),
        Scalar::Text(s) => Bson::String(s.clone()),
    }
}

fn cmp_op(op: Cmp) -> &'static str {
    match op {
        Cmp::Gt => "$gt",
        Cmp::Gte => "$gte",
        Cmp::Lt => "$lt",
        Cmp::Lte => "$lte",
    }
}

/// Where a field's candidates are, and how to test one.
enum Target {
    /// A flattened JSON path.
    Json(String),
    /// A top-level field holding one value, absent when missing (`key`).
    Column(&'static str),
    /// The `tags` array (its elements are the candidates).
    Tags,
}

fn target(field: &Field) -> Target {
    match field {
        Field::Json { column, path } => Target::Json(json_path(*column, path)),
        Field::Tags => Target::Tags,
        Field::Tier => Target::Column("tier"),
        Field::Key => Target::Column("key"),
        Field::Salience => Target::Column("salience"),
        Field::CreatedAt => Target::Column("created_at"),
        Field::UpdatedAt => Target::Column("updated_at"),
    }
}

impl Target {
    /// Some candidate satisfies `test` (an operator document, or a value for
    /// equality).
    fn some(&self, test: Bson) -> Document {
        match self {
            Target::Json(p) => doc! { VALUES: { "$elemMatch": { "p": p, "v": test } } },
            Target::Column(c) => doc! { *c: test },
            Target::Tags => doc! { "tags": test },
        }
    }

    /// The field resolves (to anything; tags: at least one).
    fn exists(&self) -> Document {
        match self {
            Target::Json(p) => doc! { EXISTS: p },
            Target::Column(c) => doc! { *c: { "$exists": true } },
            Target::Tags => doc! { "tags.0": { "$exists": true } },
        }
    }

    /// `$eq x`: some candidate equals `x` by type and value; `null` also
    /// matches a missing field.
    fn eq(&self, x: &Scalar) -> Document {
        // `$eq` between a number and a bool or string never holds in
        // MongoDB, and numbers compare by value: as the reference. (A `{p, v}`
        // pair always has its `v`, so `null` there is a stored null.)
        let equal = self.some(doc! { "$eq": operand(x) }.into());
        match x {
            Scalar::Null => any_of(vec![equal, not(self.exists_any())]),
            _ => equal,
        }
    }

    /// The field resolves to anything at all (tags: always, as an array).
    fn exists_any(&self) -> Document {
        match self {
            Target::Tags => doc! {},
            other => other.exists(),
        }
    }
}

fn leaf(field: &Field, pred: &Predicate) -> Document {
    let t = target(field);
    match pred {
        Predicate::Eq(x) => t.eq(x),
        Predicate::Ne(x) => not(t.eq(x)),
        Predicate::In(xs) => any_of(xs.iter().map(|x| t.eq(x)).collect()),
        Predicate::Nin(xs) => not(any_of(xs.iter().map(|x| t.eq(x)).collect())),
        Predicate::All(xs) => all_of(xs.iter().map(|x| t.eq(x)).collect()),
        // Numbers with numbers, strings with strings (MongoDB's comparison
        // operators keep to one type bracket, as the reference does);
        // anything else matches nothing.
        Predicate::Cmp(op, x @ (Scalar::Int(_) | Scalar::Float(_) | Scalar::Text(_))) => {
            t.some(doc! { cmp_op(*op): operand(x) }.into())
        }
        Predicate::Cmp(_, Scalar::Null | Scalar::Bool(_)) => never(),
        Predicate::Exists(true) => t.exists(),
        Predicate::Exists(false) => not(t.exists()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_strings_are_only_values() {
        let f = crate::filter::parse(
            &serde_json::json!({"$or": [{"metadata.team": {"$ne": "$where"}}, {"tags": {"$all": ["$function"]}}]}),
            crate::filter::Dialect::Memories,
        )
        .unwrap();
        let q = filter(&f);
        // Every key of the compiled query is one of ours.
        fn keys(d: &Document, out: &mut Vec<String>) {
            for (k, v) in d {
                out.push(k.clone());
                match v {
                    Bson::Document(inner) => keys(inner, out),
                    Bson::Array(items) => items.iter().filter_map(Bson::as_document).for_each(|i| keys(i, out)),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        keys(&q, &mut out);
        let ours = ["$or", "$nor", "$and", "$elemMatch", "$eq", "p", "v", "tags", "f_values", "f_exists"];
        assert!(out.iter().all(|k| ours.contains(&k.as_str())), "{out:?} in {q}");
    }
}
