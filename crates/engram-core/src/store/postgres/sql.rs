//! A tiny SQL builder for PostgreSQL: text plus numbered parameters (`$1`,
//! `$2`, …), appended in step so a value can never be spliced into the text.

use tokio_postgres::types::ToSql;

/// A bound value.
pub type Param = Box<dyn ToSql + Sync + Send>;

#[derive(Default)]
pub struct SqlBuilder {
    pub text: String,
    pub params: Vec<Param>,
    /// The text is one of unboundedly many (a caller's filter is in it):
    /// run it unprepared rather than fill the statement cache.
    pub one_off: bool,
}

impl SqlBuilder {
    /// Appends literal SQL (never user input).
    pub fn sql(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Appends `$n` bound to `v`.
    pub fn param<T: ToSql + Sync + Send + 'static>(&mut self, v: T) -> &mut Self {
        self.params.push(Box::new(v));
        self.text.push('$');
        self.text.push_str(&self.params.len().to_string());
        self
    }

    /// The parameters as the driver takes them.
    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::error::{Error, Result};

/// Runs a fixed statement (prepared once per connection).
pub async fn query<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query(&st, params).await?)
}

/// [`query`] for at most one row.
pub async fn query_opt<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&st, params).await?)
}

/// Runs a fixed statement that returns no rows; returns how many rows it changed.
pub async fn execute<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let st = c.prepare_cached(sql).await?;
    Ok(c.execute(&st, params).await?)
}

/// Runs a built statement. Its text depends on the scope's shape (a prefix
/// or not, tiers, keyed only), of which there are few: it is prepared once
/// per connection, saving PostgreSQL a parse and a plan per search, unless a
/// caller's filter made it a one-off.
pub async fn query_built<C: GenericClient>(c: &C, b: &SqlBuilder) -> Result<Vec<Row>> {
    if b.one_off {
        return Ok(c.query(b.text.as_str(), &b.refs()).await?);
    }
    let st = c.prepare_cached(&b.text).await?;
    Ok(c.query(&st, &b.refs()).await?)
}

/// A column of `row`, or an internal error naming it.
pub fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(|e| Error::internal(format!("postgres: reading column {i}: {e}")))
}
