//! A tiny SQL builder: text plus positional parameters, appended in step so a
//! parameter can never be spliced into the text.

use rusqlite::types::Value as SqlValue;

#[derive(Default, Debug)]
pub struct SqlBuilder {
    pub text: String,
    pub params: Vec<SqlValue>,
}

impl SqlBuilder {
    /// Appends literal SQL (never user input).
    pub fn sql(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Appends a `?` bound to `v`.
    pub fn param(&mut self, v: SqlValue) -> &mut Self {
        self.text.push('?');
        self.params.push(v);
        self
    }

    /// Appends a list of `seqs` for `IN`, bound as one JSON array (any
    /// length, and one statement text for every list, so it is prepared once).
    pub fn seq_list(&mut self, seqs: &[i64]) -> &mut Self {
        let json = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".to_owned());
        self.sql("(SELECT value FROM json_each(").param(SqlValue::Text(json)).sql("))")
    }
}
