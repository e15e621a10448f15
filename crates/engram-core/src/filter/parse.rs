//! JSON → [`Filter`]: checks fields, operators, operand types and limits.

use serde_json::Value;

use super::{field_name_ok, Cmp, Field, Filter, JsonColumn, Predicate, Scalar, MAX_CLAUSES, MAX_DEPTH, MAX_LIST};
use crate::error::{Error, Result};
use crate::time::parse_rfc3339;

/// How bare field names are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Memories API: fields must be named (`metadata.x`, `value.x`, `tags`, …).
    Memories,
    /// LangGraph store API: a bare name `x` means `value.x`.
    Items,
}

struct Parser {
    dialect: Dialect,
    clauses: usize,
}

/// Parses a filter object. An empty object matches everything (`Filter::And([])`).
pub fn parse(v: &Value, dialect: Dialect) -> Result<Filter> {
    let mut p = Parser { dialect, clauses: 0 };
    p.object(v, "filter", 0)
}

fn err(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid_filter(format!("{path}: {msg}"))
}

impl Parser {
    fn count(&mut self, path: &str) -> Result<()> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(err(path, format!("a filter may have at most {MAX_CLAUSES} clauses")));
        }
        Ok(())
    }

    fn object(&mut self, v: &Value, path: &str, depth: usize) -> Result<Filter> {
        if depth > MAX_DEPTH {
            return Err(err(path, format!("filters may nest at most {MAX_DEPTH} levels deep")));
        }
        let Value::Object(map) = v else {
            return Err(err(path, "expected an object such as {\"metadata.topic\": \"x\"}"));
        };
        let mut parts = Vec::with_capacity(map.len());
        for (k, val) in map {
            let here = format!("{path}.{k}");
            parts.push(match k.as_str() {
                "$and" | "$or" => {
                    self.count(&here)?;
                    let Value::Array(items) = val else {
                        return Err(err(&here, "expects a non-empty array of filters"));
                    };
                    if items.is_empty() {
                        return Err(err(&here, "expects a non-empty array of filters"));
                    }
                    let subs = items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| self.object(x, &format!("{here}[{i}]"), depth + 1))
                        .collect::<Result<Vec<_>>>()?;
                    if k == "$and" {
                        Filter::And(subs)
                    } else {
                        Filter::Or(subs)
                    }
                }
                "$not" => {
                    self.count(&here)?;
                    Filter::Not(Box::new(self.object(val, &here, depth + 1)?))
                }
                op if op.starts_with('$') => {
                    return Err(err(
                        &here,
                        format!("unknown or forbidden operator {op:?} (allowed at top level: $and, $or, $not)"),
                    ))
                }
                name => {
                    let field = self.field(name, &here)?;
                    self.field_test(field, val, &here)?
                }
            });
        }
        Ok(if parts.len() == 1 { parts.pop().unwrap_or(Filter::And(Vec::new())) } else { Filter::And(parts) })
    }

    fn field(&self, name: &str, path: &str) -> Result<Field> {
        let json = |column, rest: &str| -> Result<Field> {
            let segs: Vec<String> = rest.split('.').map(str::to_owned).collect();
            if segs.len() > 8 || !segs.iter().all(|s| field_name_ok(s)) {
                return Err(err(
                    path,
                    "field path segments are 1-64 characters of A-Z a-z 0-9 _ - (at most 8 segments)",
                ));
            }
            if column == JsonColumn::Metadata && segs.len() != 1 {
                return Err(err(path, "metadata is flat: use metadata.<name>"));
            }
            Ok(Field::Json { column, path: segs })
        };
        match name {
            "tags" => Ok(Field::Tags),
            "tier" => Ok(Field::Tier),
            "key" => Ok(Field::Key),
            "salience" => Ok(Field::Salience),
            "created_at" => Ok(Field::CreatedAt),
            "updated_at" => Ok(Field::UpdatedAt),
            _ if name.starts_with("metadata.") => json(JsonColumn::Metadata, &name["metadata.".len()..]),
            _ if name.starts_with("value.") => json(JsonColumn::Data, &name["value.".len()..]),
            _ if self.dialect == Dialect::Items => json(JsonColumn::Data, name),
            _ => Err(err(
                path,
                "unknown field; use metadata.<name>, value.<path>, tags, tier, key, salience, created_at or updated_at",
            )),
        }
    }

    fn field_test(&mut self, field: Field, v: &Value, path: &str) -> Result<Filter> {
        let ops: Vec<(String, &Value)> = match v {
            Value::Object(m) if m.keys().next().is_some_and(|k| k.starts_with('$')) => {
                m.iter().map(|(k, v)| (k.clone(), v)).collect()
            }
            Value::Object(m) if m.is_empty() => return Err(err(path, "empty operator object")),
            other => vec![("$eq".to_string(), other)],
        };
        let mut leaves = Vec::with_capacity(ops.len());
        for (op, operand) in ops {
            let here = format!("{path}.{op}");
            self.count(&here)?;
            let pred = self.predicate(&field, &op, operand, &here)?;
            leaves.push(Filter::Leaf { field: field.clone(), pred });
        }
        Ok(if leaves.len() == 1 { leaves.pop().unwrap_or(Filter::And(Vec::new())) } else { Filter::And(leaves) })
    }

    fn predicate(&self, field: &Field, op: &str, v: &Value, path: &str) -> Result<Predicate> {
        let scalar = |v: &Value| self.scalar(field, v, path);
        let list = |v: &Value| -> Result<Vec<Scalar>> {
            let Value::Array(items) = v else {
                return Err(err(path, "expects an array"));
            };
            if items.len() > MAX_LIST {
                return Err(err(path, format!("at most {MAX_LIST} values")));
            }
            items.iter().map(scalar).collect()
        };
        let pred = match op {
            "$eq" => Predicate::Eq(scalar(v)?),
            "$ne" => Predicate::Ne(scalar(v)?),
            "$gt" => Predicate::Cmp(Cmp::Gt, scalar(v)?),
            "$gte" => Predicate::Cmp(Cmp::Gte, scalar(v)?),
            "$lt" => Predicate::Cmp(Cmp::Lt, scalar(v)?),
            "$lte" => Predicate::Cmp(Cmp::Lte, scalar(v)?),
            "$in" => Predicate::In(list(v)?),
            "$nin" => Predicate::Nin(list(v)?),
            "$all" => Predicate::All(list(v)?),
            "$exists" => match v {
                Value::Bool(b) => Predicate::Exists(*b),
                _ => return Err(err(path, "expects true or false")),
            },
            other => {
                return Err(err(
                    path,
                    format!("unknown or forbidden operator {other:?} (allowed: $eq $ne $gt $gte $lt $lte $in $nin $exists $all)"),
                ))
            }
        };
        self.check_applicable(field, &pred, path)?;
        Ok(pred)
    }

    /// Converts an operand, normalising timestamps to milliseconds.
    fn scalar(&self, field: &Field, v: &Value, path: &str) -> Result<Scalar> {
        let s = Scalar::from_json(v)
            .ok_or_else(|| err(path, "expects a scalar (string, number, boolean or null); use $in/$all for lists"))?;
        if matches!(&s, Scalar::Text(t) if t.contains('\0')) {
            // No stored string holds it (writes refuse it), and PostgreSQL cannot bind it.
            return Err(err(path, "strings must not contain the NUL character (U+0000)"));
        }
        Ok(match (field, s) {
            (Field::CreatedAt | Field::UpdatedAt, Scalar::Text(t)) => {
                Scalar::Int(parse_rfc3339(&t).map_err(|e| err(path, e.public_message()))?)
            }
            (Field::CreatedAt | Field::UpdatedAt, Scalar::Int(i)) => Scalar::Int(i),
            (Field::CreatedAt | Field::UpdatedAt, _) => {
                return Err(err(path, "timestamps are RFC 3339 strings or milliseconds since the epoch"))
            }
            (Field::Salience, s @ (Scalar::Int(_) | Scalar::Float(_))) => s,
            (Field::Salience, _) => return Err(err(path, "salience is compared with numbers")),
            (Field::Tier, Scalar::Text(t)) if t == "episodic" || t == "semantic" => Scalar::Text(t),
            (Field::Tier, _) => return Err(err(path, "tier is \"episodic\" or \"semantic\"")),
            (Field::Tags | Field::Key, s @ Scalar::Text(_)) => s,
            (Field::Tags | Field::Key, _) => return Err(err(path, "expects a string")),
            (Field::Json { .. }, s) => s,
        })
    }

    fn check_applicable(&self, field: &Field, pred: &Predicate, path: &str) -> Result<()> {
        let ok = match (field, pred) {
            (Field::Json { .. }, _) => true,
            (Field::Key, _) => true,
            (Field::Tags, Predicate::Cmp(..)) => false,
            (Field::Tags, _) => true,
            (Field::Tier, Predicate::Eq(_) | Predicate::Ne(_) | Predicate::In(_) | Predicate::Nin(_)) => true,
            (Field::Tier, _) => false,
            (Field::Salience | Field::CreatedAt | Field::UpdatedAt, Predicate::All(_) | Predicate::Exists(_)) => false,
            (Field::Salience | Field::CreatedAt | Field::UpdatedAt, _) => true,
        };
        if ok {
            Ok(())
        } else {
            Err(err(path, "this operator does not apply to this field"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::{json, Map};

    fn ok(v: Value) -> Filter {
        parse(&v, Dialect::Memories).unwrap_or_else(|e| panic!("{v} should parse: {e}"))
    }

    #[test]
    fn parses_implicit_equality_and_operators() {
        assert_eq!(
            ok(json!({"metadata.topic": "food"})),
            Filter::Leaf {
                field: Field::Json { column: JsonColumn::Metadata, path: vec!["topic".into()] },
                pred: Predicate::Eq(Scalar::Text("food".into()))
            }
        );
        let f = ok(json!({"salience": {"$gte": 0.5, "$lt": 1}}));
        assert!(matches!(f, Filter::And(ref v) if v.len() == 2));
        let f = ok(json!({"$or": [{"tags": "a"}, {"$not": {"tier": "semantic"}}]}));
        assert!(matches!(f, Filter::Or(ref v) if v.len() == 2));
        assert_eq!(
            ok(json!({"created_at": {"$gt": "1970-01-02T00:00:00Z"}})),
            Filter::Leaf { field: Field::CreatedAt, pred: Predicate::Cmp(Cmp::Gt, Scalar::Int(86_400_000)) }
        );
        assert_eq!(ok(json!({})), Filter::And(vec![]));
    }

    #[test]
    fn items_dialect_reads_bare_names_as_value_paths() {
        let f = parse(&json!({"author.name": "Ann"}), Dialect::Items).unwrap();
        assert_eq!(
            f,
            Filter::Leaf {
                field: Field::Json { column: JsonColumn::Data, path: vec!["author".into(), "name".into()] },
                pred: Predicate::Eq(Scalar::Text("Ann".into()))
            }
        );
    }

    #[test]
    fn hostile_filters_are_rejected_with_the_offending_part() {
        let mut deep = json!({"metadata.a": 1});
        for _ in 0..10 {
            deep = json!({"$not": deep});
        }
        let wide: Map<String, Value> = (0..70).map(|i| (format!("metadata.f{i}"), json!(i))).collect();
        let cases: Vec<(Value, &str)> = vec![
            (json!({"$where": "sleep(1)"}), "$where"),
            (json!({"$function": {}}), "$function"),
            (json!({"metadata.a": {"$regex": ".*"}}), "$regex"),
            (json!({"metadata.a": {"$expr": 1}}), "$expr"),
            (json!({"password": "x"}), "password"),
            (json!({"metadata.a'; DROP TABLE memories; --": 1}), "DROP"),
            (json!({"metadata.a.b": 1}), "metadata.a.b"),
            (json!({"metadata.": 1}), "metadata."),
            (json!({"metadata.a": {"$in": "x"}}), "$in"),
            (json!({"metadata.a": {"$eq": [1, 2]}}), "$eq"),
            (json!({"metadata.a": {"$eq": {"x": 1}}}), "$eq"),
            (json!({"metadata.a": {}}), "metadata.a"),
            (json!({"$and": []}), "$and"),
            (json!({"$or": {"a": 1}}), "$or"),
            (json!({"$not": [1]}), "$not"),
            (json!({"tier": "working"}), "tier"),
            (json!({"tier": {"$gt": "episodic"}}), "tier"),
            (json!({"salience": "high"}), "salience"),
            (json!({"created_at": {"$gt": "yesterday"}}), "created_at"),
            (json!({"tags": {"$gt": "a"}}), "tags"),
            (json!({"metadata.a": {"$exists": "yes"}}), "$exists"),
            (json!([1, 2]), "filter"),
            (json!("metadata.a"), "filter"),
            (deep, "filters may nest"),
            (Value::Object(wide), "at most 64 clauses"),
        ];
        for (v, needle) in cases {
            let e = parse(&v, Dialect::Memories).expect_err(&v.to_string());
            assert_eq!(e.code(), ErrorCode::InvalidFilter, "{v}");
            assert!(e.public_message().contains(needle), "{v}: {} lacks {needle}", e.public_message());
        }
    }

    #[test]
    fn long_lists_are_rejected() {
        let many: Vec<i64> = (0..300).collect();
        assert!(parse(&json!({"metadata.a": {"$in": many}}), Dialect::Memories).is_err());
    }
}
