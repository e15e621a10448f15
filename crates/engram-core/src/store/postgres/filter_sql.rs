//! Compiles a [`Filter`] to a PostgreSQL boolean expression over the
//! `memories` table aliased `m`. Every value — JSON paths included — is a
//! bound parameter, and every leaf is true or false, never NULL, so `$not` and
//! `$ne` behave as in MongoDB (a missing field is "not equal"). The semantics
//! are those of `crate::filter::eval`, which the conformance suite checks
//! this against.
//!
//! A JSON path resolves with a *strict* SQL/JSON path (`strict $."a"."b"`):
//! through objects only, as the reference does (lax mode would step into
//! arrays). Its candidates are the value itself when a scalar, the elements
//! of an array, and nothing for an object. Strings compare by code point
//! (`COLLATE "C"`), numbers by value.

use super::sql::SqlBuilder;
use crate::filter::{Field, Filter, JsonColumn, Predicate, Scalar};

/// Appends the SQL for `f` to `b`.
pub fn compile(f: &Filter, b: &mut SqlBuilder) {
    match f {
        Filter::And(parts) | Filter::Or(parts) if parts.is_empty() => {
            b.sql(if matches!(f, Filter::And(_)) { "TRUE" } else { "FALSE" });
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
            b.sql("), FALSE)");
        }
    }
}

/// A JSON value reached by a strict path in a jsonb column.
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
            // keeps names such as `a-b` from being read as path syntax.
            path: std::iter::once("strict $".to_string())
                .chain(path.iter().map(|s| format!("\"{s}\"")))
                .collect::<Vec<_>>()
                .join("."),
        }
    }

    /// `jsonb_path_query(column, path)`: the resolved value, or no row.
    fn resolved(&self, b: &mut SqlBuilder) {
        b.sql(&format!("jsonb_path_query({}, (", self.column))
            .param(self.path.clone())
            .sql("::text)::jsonpath, '{}'::jsonb, TRUE)");
    }

    /// Whether the path resolves (to anything, `null` included).
    fn exists(&self, b: &mut SqlBuilder) {
        b.sql("EXISTS (SELECT 1 FROM ");
        self.resolved(b);
        b.sql(")");
    }

    /// Whether some candidate matches any of `values` under `cmp`; `null`
    /// under `=` also matches a missing field.
    fn any_element(&self, values: &[Scalar], cmp: &str, b: &mut SqlBuilder) {
        b.sql("(");
        if cmp == "=" && values.contains(&Scalar::Null) {
            b.sql("NOT ");
            self.exists(b);
            b.sql(" OR ");
        }
        b.sql("EXISTS (SELECT 1 FROM ");
        self.resolved(b);
        b.sql(
            " AS r(v) CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(r.v) WHEN 'array' THEN r.v \
             WHEN 'object' THEN '[]'::jsonb ELSE jsonb_build_array(r.v) END) AS c(e) WHERE ",
        );
        let mut first = true;
        for v in values {
            if !first {
                b.sql(" OR ");
            }
            first = false;
            element_test(v, cmp, b);
        }
        if first {
            b.sql("FALSE");
        }
        b.sql("))");
    }
}

/// One candidate `c.e` (jsonb) against one operand.
fn element_test(v: &Scalar, cmp: &str, b: &mut SqlBuilder) {
    match (v, cmp) {
        (Scalar::Null, "=") => b.sql("jsonb_typeof(c.e) = 'null'"),
        (Scalar::Bool(t), "=") => b.sql(if *t { "c.e = 'true'::jsonb" } else { "c.e = 'false'::jsonb" }),
        (Scalar::Null | Scalar::Bool(_), _) => b.sql("FALSE"),
        (Scalar::Text(t), _) => b
            .sql(&format!("(jsonb_typeof(c.e) = 'string' AND (c.e #>> '{{}}') COLLATE \"C\" {cmp} "))
            .param(t.clone())
            .sql(")"),
        (Scalar::Int(i), _) => b
            .sql(&format!(
                "(jsonb_typeof(c.e) = 'number' AND (CASE WHEN jsonb_typeof(c.e) = 'number' THEN c.e::numeric END) {cmp} "
            ))
            .param(*i)
            .sql("::int8)"),
        (Scalar::Float(f), _) => b
            .sql(&format!(
                "(jsonb_typeof(c.e) = 'number' AND (CASE WHEN jsonb_typeof(c.e) = 'number' THEN c.e::float8 END) {cmp} "
            ))
            .param(*f)
            .sql("::float8)"),
    };
}

fn leaf(field: &Field, pred: &Predicate, b: &mut SqlBuilder) {
    match field {
        Field::Json { column, path } => json_leaf(&JsonTarget::new(*column, path), false, pred, b),
        Field::Tags => json_leaf(&JsonTarget { column: "m.tags", path: "strict $".to_string() }, true, pred, b),
        Field::Tier => column_leaf("m.tier", Kind::Text, pred, b),
        Field::Key => column_leaf("m.key", Kind::Text, pred, b),
        Field::Salience => column_leaf("m.salience", Kind::Float, pred, b),
        Field::CreatedAt => column_leaf("m.created_at", Kind::Int, pred, b),
        Field::UpdatedAt => column_leaf("m.updated_at", Kind::Int, pred, b),
    }
}

fn json_leaf(t: &JsonTarget, is_array_column: bool, pred: &Predicate, b: &mut SqlBuilder) {
    match pred {
        Predicate::Eq(v) => t.any_element(std::slice::from_ref(v), "=", b),
        Predicate::Ne(v) => {
            b.sql("NOT ");
            t.any_element(std::slice::from_ref(v), "=", b);
        }
        Predicate::Cmp(c, v) => t.any_element(std::slice::from_ref(v), c.sql(), b),
        Predicate::In(vs) => t.any_element(vs, "=", b),
        Predicate::Nin(vs) => {
            b.sql("NOT ");
            t.any_element(vs, "=", b);
        }
        Predicate::All(vs) if vs.is_empty() => {
            b.sql("FALSE");
        }
        Predicate::All(vs) => {
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    b.sql(" AND ");
                }
                t.any_element(std::slice::from_ref(v), "=", b);
            }
        }
        Predicate::Exists(e) if is_array_column => {
            b.sql(if *e { "jsonb_array_length(m.tags) > 0" } else { "jsonb_array_length(m.tags) = 0" });
        }
        Predicate::Exists(e) => {
            if !*e {
                b.sql("NOT ");
            }
            t.exists(b);
        }
    }
}

/// The SQL type of a column (the parser admits only operands of that type).
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Float,
}

/// Binds `v` as the column's type; `None` for an operand of another type
/// (which then equals nothing).
fn push_operand(kind: Kind, v: &Scalar, b: &mut SqlBuilder) -> bool {
    match (kind, v) {
        (Kind::Text, Scalar::Text(t)) => b.param(t.clone()),
        (Kind::Int, Scalar::Int(i)) => b.param(*i),
        (Kind::Float, Scalar::Int(i)) => b.param(*i as f64),
        (Kind::Float, Scalar::Float(f)) => b.param(*f),
        (Kind::Int, Scalar::Float(f)) => b.sql("(").param(*f).sql("::float8)"),
        _ => return false,
    };
    true
}

fn column_leaf(column: &str, kind: Kind, pred: &Predicate, b: &mut SqlBuilder) {
    // Text columns compare by code point, whatever the database's locale.
    let lhs = match kind {
        Kind::Text => format!("{column} COLLATE \"C\""),
        _ => column.to_owned(),
    };
    match pred {
        Predicate::Eq(Scalar::Null) => {
            b.sql(&format!("{column} IS NULL"));
        }
        Predicate::Ne(Scalar::Null) => {
            b.sql(&format!("{column} IS NOT NULL"));
        }
        Predicate::Eq(v) | Predicate::Cmp(_, v) => {
            let op = match pred {
                Predicate::Cmp(c, _) => c.sql(),
                _ => "=",
            };
            b.sql(&format!("{lhs} {op} "));
            if !push_operand(kind, v, b) {
                b.sql("NULL");
            }
        }
        Predicate::Ne(v) => {
            b.sql(&format!("NOT COALESCE({lhs} = "));
            if !push_operand(kind, v, b) {
                b.sql("NULL");
            }
            b.sql(", FALSE)");
        }
        Predicate::In(vs) | Predicate::Nin(vs) => {
            let negate = matches!(pred, Predicate::Nin(_));
            b.sql(if negate { "NOT COALESCE((" } else { "COALESCE((" });
            let mut first = true;
            if vs.contains(&Scalar::Null) {
                b.sql(&format!("{column} IS NULL"));
                first = false;
            }
            for v in vs.iter().filter(|v| **v != Scalar::Null) {
                b.sql(if first { "" } else { " OR " });
                first = false;
                b.sql(&format!("{lhs} = "));
                if !push_operand(kind, v, b) {
                    b.sql("NULL");
                }
            }
            if first {
                b.sql("FALSE");
            }
            b.sql("), FALSE)");
        }
        Predicate::All(vs) => {
            // On a single-valued column, $all holds when every value equals
            // it; an empty list matches nothing.
            b.sql(if vs.is_empty() { "FALSE" } else { "TRUE" });
            for v in vs {
                if *v == Scalar::Null {
                    b.sql(&format!(" AND {column} IS NULL"));
                    continue;
                }
                b.sql(&format!(" AND {lhs} = "));
                if !push_operand(kind, v, b) {
                    b.sql("NULL");
                }
            }
        }
        Predicate::Exists(e) => {
            b.sql(&format!("{column} IS {}NULL", if *e { "NOT " } else { "" }));
        }
    }
}
