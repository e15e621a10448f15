//! The filter language: MongoDB-style JSON parsed into a typed AST.
//!
//! Parsing is the security boundary: only the fields and operators listed here
//! exist, limits on depth and size are enforced, and every error names the
//! offending part (`filter.$or[1].metadata.x.$regex`). What a filter means is
//! defined once, by the reference evaluator in [`eval`]; backends compile the
//! AST to their queries with bound parameters (see `store::sqlite::filter_sql`)
//! and are checked against it. No user text ever becomes SQL.

pub mod eval;
mod parse;

pub use parse::{parse, Dialect};

use serde_json::Value;

/// Deepest nesting of logical operators.
pub const MAX_DEPTH: usize = 8;
/// Most clauses (leaves and logical nodes) in one filter.
pub const MAX_CLAUSES: usize = 64;
/// Most values in one `$in`, `$nin` or `$all`.
pub const MAX_LIST: usize = 256;

/// Whether a JSON field name (a metadata key or a value path segment) is allowed.
pub fn field_name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Which JSON column a dotted field lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonColumn {
    /// `metadata.<name>`
    Metadata,
    /// `value.<path>` (LangGraph items; the memory's `data`)
    Data,
}

/// A field a filter may test.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Json { column: JsonColumn, path: Vec<String> },
    Tags,
    Tier,
    Key,
    Salience,
    CreatedAt,
    UpdatedAt,
}

/// A scalar operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    pub(crate) fn from_json(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Float(n.as_f64()?),
            },
            Value::String(s) => Scalar::Text(s.clone()),
            _ => return None,
        })
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
        }
    }
}

/// One test on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Eq(Scalar),
    Ne(Scalar),
    Cmp(Cmp, Scalar),
    In(Vec<Scalar>),
    Nin(Vec<Scalar>),
    All(Vec<Scalar>),
    Exists(bool),
}

/// The filter AST.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Leaf { field: Field, pred: Predicate },
}
