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

    /// Appends `(?, ?, …)` bound to `seqs` (callers skip empty lists).
    pub fn seq_list(&mut self, seqs: &[i64]) -> &mut Self {
        self.text.push('(');
        for (i, s) in seqs.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.param(SqlValue::Integer(*s));
        }
        self.text.push(')');
        self
    }
}
