//! Compiles a [`Filter`] to a SQLite boolean expression over the `memories`
//! table aliased `m`. Every value — including JSON paths — is a bound parameter.
//! Each leaf yields 0 or 1, never NULL, so `$not` and `$ne` behave as in
//! MongoDB (a missing field is "not equal"). The semantics are those of
//! `crate::filter::eval`, which the conformance suite checks this against.

use rusqlite::types::Value as SqlValue;

use super::sql::SqlBuilder;
use crate::filter::{Field, Filter, JsonColumn, Predicate, Scalar};

/// Appends the SQL for `f` to `b`.
pub fn compile(f: &Filter, b: &mut SqlBuilder) {
    match f {
        Filter::And(parts) | Filter::Or(parts) if parts.is_empty() => {
            b.sql(if matches!(f, Filter::And(_)) { "1" } else { "0" });
        }
        Filter::And(parts) | Filter::Or(parts) => {
            let joiner = if matches!(f, Filter::And(_)) { " AND " } else { " OR " };
            b.sql("(");
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    b.sql(joiner);
                }
                compile(p, b);
            }
            b.sql(")");
        }
        Filter::Not(inner) => {
            b.sql("(NOT ");
            compile(inner, b);
            b.sql(")");
        }
        Filter::Leaf { field, pred } => {
            b.sql("COALESCE((");
            leaf(field, pred, b);
            b.sql("), 0)");
        }
    }
}

fn to_sql(s: &Scalar) -> SqlValue {
    match s {
        Scalar::Null => SqlValue::Null,
        Scalar::Bool(v) => SqlValue::Integer(i64::from(*v)),
        Scalar::Int(i) => SqlValue::Integer(*i),
        Scalar::Float(f) => SqlValue::Real(*f),
        Scalar::Text(t) => SqlValue::Text(t.clone()),
    }
}

/// A JSON array-or-scalar column reached through `json_each(col, path)`.
struct JsonTarget {
    column: &'static str,
    path: String,
}

impl JsonTarget {
    fn new(column: JsonColumn, path: &[String]) -> Self {
        JsonTarget {
            column: match column {
                JsonColumn::Metadata => "m.metadata",
                JsonColumn::Data => "m.data",
            },
            // Segments are restricted to [A-Za-z0-9_-] by the parser; quoting
            // keeps names such as `a-b` from being read as JSON path syntax.
            path: std::iter::once("$".to_string())
                .chain(path.iter().map(|s| format!("\"{s}\"")))
                .collect::<Vec<_>>()
                .join("."),
        }
    }

    /// `EXISTS(... element matching any of `values` ...)`.
    fn any_element(&self, values: &[Scalar], cmp: &str, b: &mut SqlBuilder) {
        let null_wanted = cmp == "=" && values.contains(&Scalar::Null);
        if null_wanted {
            // MongoDB: {field: null} also matches a missing field.
            b.sql(&format!("json_type({}, ", self.column))
                .param(SqlValue::Text(self.path.clone()))
                .sql(") IS NULL OR ");
        }
        // `json_each` of a scalar yields it (key NULL), of an array its
        // elements (integer keys), of an object its members (text keys): an
        // object's members are not candidates, so those rows are skipped.
        b.sql(&format!("EXISTS (SELECT 1 FROM json_each({}, ", self.column))
            .param(SqlValue::Text(self.path.clone()))
            .sql(") je WHERE typeof(je.key) <> 'text' AND (");
        let mut first = true;
        for v in values {
            if !first {
                b.sql(" OR ");
            }
            first = false;
            match (v, cmp) {
                (Scalar::Null, "=") => b.sql("je.type = 'null'"),
                (Scalar::Bool(t), "=") => b.sql(if *t { "je.type = 'true'" } else { "je.type = 'false'" }),
                (Scalar::Null | Scalar::Bool(_), _) => b.sql("0"),
                (Scalar::Text(_), _) => {
                    b.sql(&format!("(je.type = 'text' AND je.value {cmp} ")).param(to_sql(v)).sql(")")
                }
                (Scalar::Int(_) | Scalar::Float(_), _) => {
                    b.sql(&format!("(je.type IN ('integer', 'real') AND je.value {cmp} ")).param(to_sql(v)).sql(")")
                }
            };
        }
        if first {
            b.sql("0");
        }
        b.sql("))");
    }
}

fn leaf(field: &Field, pred: &Predicate, b: &mut SqlBuilder) {
    match field {
        Field::Json { column, path } => json_leaf(&JsonTarget::new(*column, path), false, pred, b),
        Field::Tags => json_leaf(&JsonTarget { column: "m.tags", path: "$".to_string() }, true, pred, b),
        Field::Tier => column_leaf("m.tier", pred, b),
        Field::Key => column_leaf("m.key", pred, b),
        Field::Salience => column_leaf("m.salience", pred, b),
        Field::CreatedAt => column_leaf("m.created_at", pred, b),
        Field::UpdatedAt => column_leaf("m.updated_at", pred, b),
    }
}

fn json_leaf(t: &JsonTarget, is_array_column: bool, pred: &Predicate, b: &mut SqlBuilder) {
    match pred {
        Predicate::Eq(v) => t.any_element(std::slice::from_ref(v), "=", b),
        Predicate::Ne(v) => {
            b.sql("NOT (");
            t.any_element(std::slice::from_ref(v), "=", b);
            b.sql(")");
        }
        Predicate::Cmp(c, v) => t.any_element(std::slice::from_ref(v), c.sql(), b),
        Predicate::In(vs) => t.any_element(vs, "=", b),
        Predicate::Nin(vs) => {
            b.sql("NOT (");
            t.any_element(vs, "=", b);
            b.sql(")");
        }
        Predicate::All(vs) if vs.is_empty() => {
            b.sql("0");
        }
        Predicate::All(vs) => {
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    b.sql(" AND ");
                }
                b.sql("(");
                t.any_element(std::slice::from_ref(v), "=", b);
                b.sql(")");
            }
        }
        Predicate::Exists(e) if is_array_column => {
            b.sql(if *e { "json_array_length(m.tags) > 0" } else { "json_array_length(m.tags) = 0" });
        }
        Predicate::Exists(e) => {
            b.sql(&format!("json_type({}, ", t.column)).param(SqlValue::Text(t.path.clone())).sql(if *e {
                ") IS NOT NULL"
            } else {
                ") IS NULL"
            });
        }
    }
}

fn column_leaf(column: &str, pred: &Predicate, b: &mut SqlBuilder) {
    match pred {
        Predicate::Eq(v) => {
            b.sql(&format!("{column} = ")).param(to_sql(v));
        }
        Predicate::Ne(v) => {
            b.sql(&format!("NOT COALESCE({column} = ")).param(to_sql(v)).sql(", 0)");
        }
        Predicate::Cmp(c, v) => {
            b.sql(&format!("{column} {} ", c.sql())).param(to_sql(v));
        }
        Predicate::In(vs) | Predicate::Nin(vs) => {
            let negate = matches!(pred, Predicate::Nin(_));
            if vs.is_empty() {
                b.sql(if negate { "1" } else { "0" });
                return;
            }
            b.sql(if negate { "NOT COALESCE(" } else { "(" });
            b.sql(&format!("{column} IN ("));
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    b.sql(", ");
                }
                b.param(to_sql(v));
            }
            b.sql(if negate { "), 0)" } else { "))" });
        }
        Predicate::All(vs) => {
            // On a single-valued column, $all holds when every value equals
            // it; an empty list matches nothing.
            b.sql(if vs.is_empty() { "0" } else { "1" });
            for v in vs {
                b.sql(&format!(" AND {column} = ")).param(to_sql(v));
            }
        }
        Predicate::Exists(e) => {
            b.sql(&format!("{column} IS {}NULL", if *e { "NOT " } else { "" }));
        }
    }
}
