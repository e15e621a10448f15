//! LangGraph store items: `(namespace, key, value)` kept as memories with a key.
//!
//! An item's searchable text is derived from its value: by default every
//! string, number and boolean leaf of the value; with `index = false` nothing;
//! with `index = ["title", "sections[*].body", "authors[0].name"]` the leaves
//! under those paths — the path syntax of LangGraph's own stores.

use serde_json::Value;

use super::memory::MAX_TEXT_BYTES;
use crate::error::{Error, Result};

/// Most index paths one item may name.
pub const MAX_INDEX_PATHS: usize = 32;

/// Validates a LangGraph `index` argument: absent/null, `false`, or a list of paths.
pub fn validate_index(index: &Value, field: &str) -> Result<()> {
    match index {
        Value::Null | Value::Bool(false) => Ok(()),
        Value::Array(paths) if paths.len() <= MAX_INDEX_PATHS => {
            for (i, p) in paths.iter().enumerate() {
                let Some(p) = p.as_str() else {
                    return Err(Error::invalid(format!("{field}[{i}] must be a string path such as \"title\"")));
                };
                parse_path(p).map_err(|m| Error::invalid(format!("{field}[{i}] = {p:?}: {m}")))?;
            }
            Ok(())
        }
        _ => Err(Error::invalid(format!("{field} must be false or a list of at most {MAX_INDEX_PATHS} field paths"))),
    }
}

#[derive(Debug, PartialEq)]
enum Step<'a> {
    Field(&'a str),
    Index(usize),
    Each,
}

fn parse_path(path: &str) -> std::result::Result<Vec<Step<'_>>, &'static str> {
    if path.is_empty() || path.len() > 256 {
        return Err("a path is 1-256 characters");
    }
    if path == "$" {
        return Ok(Vec::new());
    }
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err("empty field name in path");
        }
        steps.push(Step::Field(name));
        while !rest.is_empty() {
            let close = rest.find(']').ok_or("unclosed '['")?;
            let inner = &rest[1..close];
            steps.push(if inner == "*" {
                Step::Each
            } else {
                Step::Index(inner.parse().map_err(|_| "array index must be a number or *")?)
            });
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err("unexpected characters after ']'");
            }
        }
    }
    Ok(steps)
}

fn collect_leaves(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Array(a) => a.iter().for_each(|x| collect_leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_leaves(x, out)),
        Value::Null => {}
    }
}

fn walk(v: &Value, steps: &[Step<'_>], out: &mut Vec<String>) {
    let Some((first, rest)) = steps.split_first() else {
        return collect_leaves(v, out);
    };
    match (first, v) {
        (Step::Field(name), Value::Object(o)) => {
            if let Some(child) = o.get(*name) {
                walk(child, rest, out);
            }
        }
        (Step::Index(i), Value::Array(a)) => {
            if let Some(child) = a.get(*i) {
                walk(child, rest, out);
            }
        }
        (Step::Each, Value::Array(a)) => a.iter().for_each(|child| walk(child, rest, out)),
        _ => {}
    }
}

/// The searchable text of an item value under an (already validated) index spec,
/// cut to the text limit at a character boundary.
pub fn indexed_text(value: &Value, index: &Value) -> String {
    let mut parts = Vec::new();
    match index {
        Value::Bool(false) => {}
        Value::Array(paths) => {
            for p in paths.iter().filter_map(Value::as_str) {
                if let Ok(steps) = parse_path(p) {
                    walk(value, &steps, &mut parts);
                }
            }
        }
        _ => collect_leaves(value, &mut parts),
    }
    let mut text = parts.join("\n");
    crate::text::truncate_bytes(&mut text, MAX_TEXT_BYTES);
    text
}

/// The item view of a memory: its `data`, or `{"text": …}` for a memory
/// written without data through the memories API.
pub fn item_value(m: &super::Memory) -> serde_json::Map<String, Value> {
    m.data.clone().unwrap_or_else(|| {
        let mut map = serde_json::Map::new();
        map.insert("text".into(), Value::String(m.text.clone()));
        map
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_index_takes_every_leaf() {
        let v = json!({"title": "Hello", "n": 3, "tags": ["a", {"b": true}], "none": null});
        assert_eq!(indexed_text(&v, &Value::Null), "Hello\n3\na\ntrue");
    }

    #[test]
    fn paths_select_fields_and_array_elements() {
        let v = json!({"title": "T", "body": "B", "sections": [{"text": "s1"}, {"text": "s2"}], "authors": [{"name": "Ann"}, {"name": "Bo"}]});
        let idx = json!(["title", "sections[*].text", "authors[1].name", "missing.field"]);
        validate_index(&idx, "index").unwrap();
        assert_eq!(indexed_text(&v, &idx), "T\ns1\ns2\nBo");
        assert_eq!(indexed_text(&v, &json!(false)), "");
    }

    #[test]
    fn rejects_malformed_index() {
        for bad in
            [json!(true), json!("title"), json!([1]), json!(["a["]), json!(["a[x]"]), json!([""]), json!(["a..b"])]
        {
            assert!(validate_index(&bad, "index").is_err(), "{bad}");
        }
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary() {
        let v = json!({"t": "é".repeat(MAX_TEXT_BYTES)});
        let t = indexed_text(&v, &Value::Null);
        assert!(t.len() <= MAX_TEXT_BYTES && t.chars().all(|c| c == 'é'));
    }
}
