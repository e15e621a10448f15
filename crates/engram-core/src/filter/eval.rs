//! The reference semantics of the filter language: [`matches`] decides, for one
//! memory, what every backend's compiled filter must decide. Backends compile
//! the AST to their query language for speed; a differential property test
//! (`tests/it/conformance/filters.rs`) requires their results to equal this
//! evaluator's on generated documents and filters.
//!
//! The rules, after MongoDB's query semantics:
//!
//! - **Paths** (`metadata.<name>`, `value.<a>.<b>`) resolve through nested
//!   objects only; a path that meets a scalar or an array before its last
//!   segment, or a missing member, resolves to *missing*.
//! - **Candidates.** A scalar value is its own candidate; an array's
//!   candidates are its elements (an array matches when any element does); an
//!   object has none: it never equals, and is never compared with, a scalar
//!   (`{"owner": "core"}` does not match `{"owner": {"team": "core"}}`).
//! - **Equality** holds between values of one type: numbers by value (`1`
//!   equals `1.0`), strings exactly, booleans exactly. `"1"` never equals `1`,
//!   nor `true` equals `1`.
//! - **`null`** as an operand of `$eq` / `$in` / `$all` matches a missing field,
//!   a `null`, or an array holding `null`.
//! - **`$gt $gte $lt $lte`** compare numbers with numbers and strings with
//!   strings (by code point); any other operand type matches nothing.
//! - **`$ne` and `$nin`** are the negations of `$eq` and `$in`, so they match
//!   a missing field (and an object-valued one).
//! - **`$all`** holds when every listed value is equal to some candidate; an
//!   empty list matches nothing (as in MongoDB).
//! - **`$exists: true`** holds when the path resolves (to anything, `null`
//!   included). On `tags` it means "has at least one tag".
//! - **Columns** (`tier`, `key`, `salience`, `created_at`, `updated_at`) are
//!   single values; an unkeyed memory's `key` is missing.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{Cmp, Field, Filter, JsonColumn, Predicate, Scalar};
use crate::model::Memory;

/// Whether `m` matches `f`.
pub fn matches(f: &Filter, m: &Memory) -> bool {
    match f {
        Filter::And(parts) => parts.iter().all(|p| matches(p, m)),
        Filter::Or(parts) => parts.iter().any(|p| matches(p, m)),
        Filter::Not(inner) => !matches(inner, m),
        Filter::Leaf { field, pred } => leaf(field, pred, m),
    }
}

/// What a field resolves to in one memory.
enum Resolved {
    Missing,
    /// A column, or a JSON value that is not an array or object.
    Scalar(Value),
    Array(Vec<Value>),
    Object,
}

fn resolve(field: &Field, m: &Memory) -> Resolved {
    match field {
        Field::Json { column, path } => {
            let root = match column {
                JsonColumn::Metadata => Some(&m.metadata),
                JsonColumn::Data => m.data.as_ref(),
            };
            match root.and_then(|r| walk(r, path)) {
                None => Resolved::Missing,
                Some(Value::Array(items)) => Resolved::Array(items.clone()),
                Some(Value::Object(_)) => Resolved::Object,
                Some(v) => Resolved::Scalar(v.clone()),
            }
        }
        Field::Tags => Resolved::Array(m.tags.iter().cloned().map(Value::String).collect()),
        Field::Tier => Resolved::Scalar(Value::String(m.tier.as_str().to_owned())),
        Field::Key => m.key.clone().map_or(Resolved::Missing, |k| Resolved::Scalar(Value::String(k))),
        Field::Salience => Resolved::Scalar(serde_json::json!(m.salience)),
        Field::CreatedAt => Resolved::Scalar(Value::from(m.created_at)),
        Field::UpdatedAt => Resolved::Scalar(Value::from(m.updated_at)),
    }
}

/// Follows `path` through nested objects.
fn walk<'a>(root: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = root.get(first)?;
    for seg in rest {
        v = v.as_object()?.get(seg)?;
    }
    Some(v)
}

impl Resolved {
    /// The values a scalar operand is tested against.
    fn candidates(&self) -> &[Value] {
        match self {
            Resolved::Scalar(v) => std::slice::from_ref(v),
            Resolved::Array(items) => items,
            Resolved::Missing | Resolved::Object => &[],
        }
    }
}

fn leaf(field: &Field, pred: &Predicate, m: &Memory) -> bool {
    let r = resolve(field, m);
    match pred {
        Predicate::Eq(x) => eq_any(&r, x),
        Predicate::Ne(x) => !eq_any(&r, x),
        Predicate::In(xs) => xs.iter().any(|x| eq_any(&r, x)),
        Predicate::Nin(xs) => !xs.iter().any(|x| eq_any(&r, x)),
        Predicate::All(xs) => !xs.is_empty() && xs.iter().all(|x| eq_any(&r, x)),
        Predicate::Cmp(op, x) => r.candidates().iter().any(|c| compare(c, x).is_some_and(|o| holds(*op, o))),
        Predicate::Exists(want) => {
            let exists = match (field, &r) {
                (Field::Tags, Resolved::Array(items)) => !items.is_empty(),
                (_, Resolved::Missing) => false,
                _ => true,
            };
            exists == *want
        }
    }
}

/// `$eq x`: some candidate equals `x`; `null` also matches a missing field.
fn eq_any(r: &Resolved, x: &Scalar) -> bool {
    if *x == Scalar::Null && matches!(r, Resolved::Missing) {
        return true;
    }
    r.candidates().iter().any(|c| equal(c, x))
}

fn equal(v: &Value, x: &Scalar) -> bool {
    match (v, x) {
        (Value::Null, Scalar::Null) => true,
        (Value::Bool(a), Scalar::Bool(b)) => a == b,
        (Value::String(a), Scalar::Text(b)) => a == b,
        (Value::Number(_), Scalar::Int(_) | Scalar::Float(_)) => compare(v, x) == Some(Ordering::Equal),
        _ => false,
    }
}

/// Orders a candidate against an operand of the same type class (numbers,
/// strings); `None` across classes.
fn compare(v: &Value, x: &Scalar) -> Option<Ordering> {
    match (v, x) {
        (Value::String(a), Scalar::Text(b)) => Some(a.as_str().cmp(b.as_str())),
        (Value::Number(n), Scalar::Int(i)) => match n.as_i64() {
            Some(a) => Some(a.cmp(i)),
            None => n.as_f64()?.partial_cmp(&(*i as f64)),
        },
        (Value::Number(n), Scalar::Float(f)) => n.as_f64()?.partial_cmp(f),
        _ => None,
    }
}

fn holds(op: Cmp, o: Ordering) -> bool {
    match op {
        Cmp::Gt => o == Ordering::Greater,
        Cmp::Gte => o != Ordering::Less,
        Cmp::Lt => o == Ordering::Less,
        Cmp::Lte => o != Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{parse, Dialect};
    use crate::model::{Namespace, Source, Tier};
    use serde_json::json;

    fn item(value: Value) -> Memory {
        Memory {
            id: "x".into(),
            namespace: Namespace::from_stored("n"),
            key: Some("k".into()),
            tier: Tier::Semantic,
            text: String::new(),
            data: value.as_object().cloned(),
            tags: vec![],
            metadata: Map::new(),
            salience: 0.5,
            pinned: false,
            version: 1,
            created_at: 0,
            updated_at: 0,
            expires_at: None,
            source: Source::store(&Default::default()),
            index: None,
            ttl_ms: None,
        }
    }

    fn hit(filter: Value, value: Value) -> bool {
        matches(&parse(&filter, Dialect::Items).unwrap(), &item(value))
    }

    #[test]
    fn an_object_never_equals_a_scalar() {
        let nested = json!({"owner": {"team": "core"}});
        let flat = json!({"owner": "core"});
        assert!(!hit(json!({"owner": "core"}), nested.clone()));
        assert!(hit(json!({"owner": "core"}), flat.clone()));
        assert!(hit(json!({"owner": {"$ne": "core"}}), nested.clone()));
        assert!(!hit(json!({"owner": {"$ne": "core"}}), flat));
        assert!(hit(json!({"owner.team": "core"}), nested.clone()));
        assert!(hit(json!({"owner": {"$exists": true}}), nested));
    }

    #[test]
    fn arrays_match_by_any_element_and_paths_do_not_descend_into_them() {
        let v = json!({"labels": ["a", "b", null], "n": [1, 5], "people": [{"name": "Ann"}]});
        assert!(hit(json!({"labels": "b"}), v.clone()));
        assert!(hit(json!({"labels": null}), v.clone()));
        assert!(hit(json!({"n": {"$gt": 4}}), v.clone()));
        assert!(!hit(json!({"n": {"$gt": 5}}), v.clone()));
        assert!(hit(json!({"labels": {"$all": ["a", "b"]}}), v.clone()));
        assert!(!hit(json!({"labels": {"$all": []}}), v.clone()));
        assert!(!hit(json!({"people.name": "Ann"}), v));
    }

    #[test]
    fn types_never_mix_and_null_matches_missing() {
        let v = json!({"n": 1, "s": "1", "b": true, "z": null});
        assert!(hit(json!({"n": 1.0}), v.clone()));
        assert!(!hit(json!({"n": "1"}), v.clone()));
        assert!(!hit(json!({"s": 1}), v.clone()));
        assert!(!hit(json!({"b": 1}), v.clone()));
        assert!(!hit(json!({"s": {"$gt": 0}}), v.clone()));
        assert!(!hit(json!({"b": {"$gte": false}}), v.clone()));
        assert!(hit(json!({"z": null}), v.clone()));
        assert!(hit(json!({"missing": null}), v.clone()));
        assert!(hit(json!({"missing": {"$ne": 1}}), v.clone()));
        assert!(hit(json!({"missing": {"$nin": [1]}}), v.clone()));
        assert!(!hit(json!({"missing": {"$exists": true}}), v.clone()));
        assert!(hit(json!({"z": {"$exists": true}}), v));
    }
}
