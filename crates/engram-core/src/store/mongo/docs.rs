//! The `memories` document: how a [`Stored`] is written to MongoDB and read
//! back, and the filter fields derived from its JSON.
//!
//! JSON columns (`data`, `metadata`, `source`, the index spec) are kept as
//! JSON text, so they round-trip exactly (key order, numbers beyond BSON's
//! integers, keys with `.` or `$`). What filters test is kept beside them,
//! flattened ([`filter_fields`]): the paths that exist, and each path's
//! candidate scalars as `{p, v}` pairs. A filter then names paths only in
//! *values* (`{"f_values": {"$elemMatch": {"p": "metadata.team", "v": "core"}}}`):
//! no user string ever becomes a field name or an operator.

use mongodb::bson::{doc, Bson, Document};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::filter::{field_name_ok, MAX_DEPTH};
use crate::model::{Memory, Namespace, Tier};
use crate::store::Stored;

/// The paths that exist (`metadata.<name>`, `data.<a>.<b>`), for `$exists`.
pub const EXISTS: &str = "f_exists";
/// `{p: path, v: scalar}` for each candidate scalar of each path.
pub const VALUES: &str = "f_values";

/// The document of a memory (its `_id` is the row number `seq`).
pub fn memory_doc(s: &Stored) -> Result<Document> {
    let m = &s.memory;
    let mut d = doc! {
        "_id": s.seq,
        "tenant_id": &s.tenant,
        "id": &m.id,
        "namespace": m.namespace.joined(),
        "tier": m.tier.as_str(),
        "text": &m.text,
        "search_text": crate::text::index_text(&m.text),
        "tags": m.tags.clone(),
        "metadata": serde_json::to_string(&m.metadata)?,
        "salience": m.salience,
        "pinned": m.pinned,
        "version": m.version,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "source": serde_json::to_string(&m.source)?,
        "salience_at": s.salience_at,
        "cite_count": s.cite_count,
    };
    // Absent, not null, when unset: `key` missing is what `$exists: false`
    // and `{"key": null}` look for.
    if let Some(k) = &m.key {
        d.insert("key", k);
    }
    if let Some(data) = &m.data {
        d.insert("data", serde_json::to_string(data)?);
    }
    if let Some(index) = &m.index {
        d.insert("index_spec", serde_json::to_string(index)?);
    }
    if let Some(e) = m.expires_at {
        d.insert("expires_at", e);
    }
    if let Some(t) = m.ttl_ms {
        d.insert("ttl_ms", t);
    }
    if let Some(h) = s.text_hash {
        d.insert("text_hash", h);
    }
    let (exists, values) = filter_fields(m);
    d.insert(EXISTS, exists);
    d.insert(VALUES, values);
    Ok(d)
}

fn get_i64(d: &Document, k: &str) -> Result<i64> {
    match d.get(k) {
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        Some(Bson::Double(v)) if v.fract() == 0.0 => Ok(*v as i64),
        other => Err(Error::internal(format!("stored document: {k} is not an integer ({other:?})"))),
    }
}

fn opt_i64(d: &Document, k: &str) -> Result<Option<i64>> {
    match d.get(k) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => get_i64(d, k).map(Some),
    }
}

fn get_str<'a>(d: &'a Document, k: &str) -> Result<&'a str> {
    d.get_str(k).map_err(|e| Error::internal(format!("stored document: {k}: {e}")))
}

fn opt_str<'a>(d: &'a Document, k: &str) -> Result<Option<&'a str>> {
    match d.get(k) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => get_str(d, k).map(Some),
    }
}

fn get_f64(d: &Document, k: &str) -> Result<f64> {
    match d.get(k) {
        Some(Bson::Double(v)) => Ok(*v),
        Some(Bson::Int64(v)) => Ok(*v as f64),
        Some(Bson::Int32(v)) => Ok(f64::from(*v)),
        other => Err(Error::internal(format!("stored document: {k} is not a number ({other:?})"))),
    }
}

fn get_bool(d: &Document, k: &str) -> Result<bool> {
    d.get_bool(k).map_err(|e| Error::internal(format!("stored document: {k}: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    Ok(serde_json::from_str(text)?)
}

/// Reads a document written by [`memory_doc`].
pub fn stored(d: &Document) -> Result<Stored> {
    let tags = match d.get("tags") {
        Some(Bson::Array(items)) => items.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let memory = Memory {
        id: get_str(d, "id")?.to_owned(),
        namespace: Namespace::from_stored(get_str(d, "namespace")?),
        key: opt_str(d, "key")?.map(str::to_owned),
        tier: Tier::from_stored(get_str(d, "tier")?),
        text: get_str(d, "text")?.to_owned(),
        data: opt_str(d, "data")?.map(json).transpose()?,
        tags,
        metadata: json(get_str(d, "metadata")?)?,
        salience: get_f64(d, "salience")?,
        pinned: get_bool(d, "pinned")?,
        version: get_i64(d, "version")?,
        created_at: get_i64(d, "created_at")?,
        updated_at: get_i64(d, "updated_at")?,
        expires_at: opt_i64(d, "expires_at")?,
        source: json(get_str(d, "source")?)?,
        index: opt_str(d, "index_spec")?.map(json).transpose()?,
        ttl_ms: opt_i64(d, "ttl_ms")?,
    };
    Ok(Stored {
        seq: get_i64(d, "_id")?,
        tenant: get_str(d, "tenant_id")?.to_owned(),
        memory,
        text_hash: opt_i64(d, "text_hash")?,
        salience_at: get_i64(d, "salience_at")?,
        cite_count: get_i64(d, "cite_count")?,
    })
}

/// A filter operand or candidate as BSON: integers as Int64, other numbers
/// as Double (MongoDB compares the two by value, as the reference does).
pub fn scalar_bson(v: &Value) -> Option<Bson> {
    Some(match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::String(s) => Bson::String(s.clone()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64()?),
        },
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// The filter fields of a memory, after `filter::eval`'s rules: a path walks
/// objects only, to at most [`MAX_DEPTH`] segments, each a name a filter may
/// use (`field_name_ok`; no other name can be asked for). Every path reached
/// exists; a scalar is its own candidate, an array's scalar elements are its
/// candidates, an object has none.
pub fn filter_fields(m: &Memory) -> (Vec<Bson>, Vec<Bson>) {
    let (mut exists, mut values) = (Vec::new(), Vec::new());
    // Filters name `metadata.<name>` (one segment) and `value.<path>`.
    walk(&m.metadata, "metadata", 1, &mut exists, &mut values);
    if let Some(data) = &m.data {
        walk(data, "data", MAX_DEPTH, &mut exists, &mut values);
    }
    (exists, values)
}

fn walk(obj: &Map<String, Value>, prefix: &str, depth: usize, exists: &mut Vec<Bson>, values: &mut Vec<Bson>) {
    for (k, v) in obj.iter().filter(|(k, _)| field_name_ok(k)) {
        let path = format!("{prefix}.{k}");
        exists.push(Bson::String(path.clone()));
        match v {
            Value::Object(inner) if depth > 1 => walk(inner, &path, depth - 1, exists, values),
            Value::Object(_) => {}
            Value::Array(items) => {
                for item in items {
                    if let Some(b) = scalar_bson(item) {
                        values.push(Bson::Document(doc! { "p": &path, "v": b }));
                    }
                }
            }
            scalar => {
                if let Some(b) = scalar_bson(scalar) {
                    values.push(Bson::Document(doc! { "p": &path, "v": b }));
                }
            }
        }
    }
}

/// The filter path of a field (`metadata.<name>`, `data.<a>.<b>`).
pub fn json_path(column: crate::filter::JsonColumn, path: &[String]) -> String {
    let root = match column {
        crate::filter::JsonColumn::Metadata => "metadata",
        crate::filter::JsonColumn::Data => "data",
    };
    let mut out = root.to_owned();
    for seg in path {
        out.push('.');
        out.push_str(seg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn memory(metadata: Value, data: Option<Value>) -> Stored {
        let m = Memory {
            id: "0190".into(),
            namespace: Namespace::from_stored("a/b"),
            key: None,
            tier: Tier::Episodic,
            text: "hello".into(),
            data: data.map(|d| d.as_object().unwrap().clone()),
            tags: vec!["x".into()],
            metadata: metadata.as_object().unwrap().clone(),
            salience: 0.5,
            pinned: false,
            version: 1,
            created_at: 10,
            updated_at: 11,
            expires_at: None,
            source: crate::model::Source::api(&Default::default()),
            index: None,
            ttl_ms: None,
        };
        Stored { seq: 7, tenant: "t".into(), memory: m, text_hash: Some(-3), salience_at: 10, cite_count: 0 }
    }

    #[test]
    fn a_memory_round_trips_exactly() {
        let big = json!({"n": 18446744073709551615u64, "f": 1.5, "odd.key": {"$x": 1}, "z": 1, "a": 2});
        let s = memory(big.clone(), Some(json!({"k": [1, "two", null, {"o": 1}]})));
        let back = stored(&memory_doc(&s).unwrap()).unwrap();
        assert_eq!(Value::Object(back.memory.metadata.clone()), big);
        assert_eq!(
            serde_json::to_string(&back.memory.metadata).unwrap(),
            serde_json::to_string(&s.memory.metadata).unwrap(),
            "key order kept"
        );
        assert_eq!(back.memory.data, s.memory.data);
        assert_eq!((back.seq, back.text_hash, back.memory.key.clone()), (7, Some(-3), None));
        assert!(!memory_doc(&s).unwrap().contains_key("key"), "an unset key is absent, not null");
    }

    #[test]
    fn filter_fields_follow_the_reference_paths() {
        let s = memory(
            json!({"team": "core", "n": 3, "deep": {"x": 1}, "bad.name": 1}),
            Some(json!({"a": {"b": [1, [2], {"c": 3}, null]}})),
        );
        let (exists, values) = filter_fields(&s.memory);
        let exists: Vec<&str> = exists.iter().filter_map(|b| b.as_str()).collect();
        assert_eq!(exists, ["metadata.team", "metadata.n", "metadata.deep", "data.a", "data.a.b"]);
        let values: Vec<String> = values.iter().map(|b| b.to_string()).collect();
        assert_eq!(
            values,
            [
                r#"{ "p": "metadata.team", "v": "core" }"#,
                r#"{ "p": "metadata.n", "v": 3 }"#,
                r#"{ "p": "data.a.b", "v": 1 }"#,
                r#"{ "p": "data.a.b", "v": null }"#,
            ],
            "metadata is one segment deep; arrays give their scalar elements"
        );
    }
}
