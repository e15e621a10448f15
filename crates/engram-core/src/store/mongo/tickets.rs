//! Tickets: the commit order of the change journal across nodes.
//!
//! One document (`{_id: "open", n, open: [{t, at}]}`) holds the last ticket
//! handed out and the tickets still in flight. Before a write transaction
//! starts it takes the next ticket and registers it open in one atomic
//! update (a pipeline: `n + 1`, appended to `open`), so no reader can see a
//! ticket number before it is registered, and no number is handed out
//! twice. Its journal rows are positioned `(ticket, i)`. When it has
//! committed or aborted, the ticket leaves `open`. A reader of the journal
//! takes only rows whose ticket is below the lowest one open ([`xmin`]):
//! every transaction below it has ended, so no row can later appear behind
//! one already read (PostgreSQL's `pg_snapshot_xmin`, in a document). A
//! ticket left open by a crashed node stops counting once it is older than
//! any transaction can live ([`STALE`]); tickets age by the wall clock, not
//! the service's (which tests move by days). A transaction whose commit
//! itself takes longer than that (a majority lost for minutes) may have its
//! rows passed by event feeds reading meanwhile; the journal keeps them.

use mongodb::bson::{doc, Bson, Document};
use mongodb::Database;

use super::ctx::{int, TICKETS};
use crate::error::{Error, Result};

/// A ticket older than this is a crashed writer's (MongoDB aborts a
/// transaction after 60 s by default: `transactionLifetimeLimitSeconds`).
pub const STALE: std::time::Duration = std::time::Duration::from_secs(120);

const ID: &str = "open";

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Takes and registers the next ticket.
pub async fn begin(db: &Database) -> Result<i64> {
    let take = vec![
        doc! { "$set": { "n": { "$add": [{ "$ifNull": ["$n", 0i64] }, 1i64] } } },
        doc! { "$set": { "open": { "$concatArrays": [{ "$ifNull": ["$open", []] }, [{ "t": "$n", "at": wall_ms() }]] } } },
    ];
    let d = db
        .collection::<Document>(TICKETS)
        .find_one_and_update(doc! { "_id": ID }, take)
        .return_document(mongodb::options::ReturnDocument::After)
        .await?
        .ok_or_else(|| Error::internal("the tickets document is missing (it is created at start)"))?;
    int(d.get("n")).ok_or_else(|| Error::internal("a ticket without a number"))
}

/// Creates the tickets document if missing (at start: two first writers
/// upserting it at once could both miss it).
pub async fn ensure(db: &Database) -> Result<()> {
    let coll = db.collection::<Document>(TICKETS);
    super::schema::not_duplicate(
        coll.update_one(doc! { "_id": ID }, doc! { "$setOnInsert": { "n": 0i64, "open": [] } }).upsert(true).await,
    )
}

/// Unregisters a ticket (its transaction committed or aborted).
pub async fn end(db: &Database, ticket: i64) -> Result<()> {
    let coll = db.collection::<Document>(TICKETS);
    coll.update_one(doc! { "_id": ID }, doc! { "$pull": { "open": { "t": ticket } } }).await?;
    Ok(())
}

/// The lowest ticket still in flight in a tickets document (or one above
/// the highest handed out): rows of lower tickets are all committed or never
/// will be.
pub fn xmin_of(d: Option<&Document>) -> i64 {
    let Some(d) = d else { return 1 };
    let stale_before = wall_ms() - STALE.as_millis() as i64;
    let open = match d.get("open") {
        Some(Bson::Array(items)) => items
            .iter()
            .filter_map(Bson::as_document)
            .filter(|o| int(o.get("at")).is_some_and(|at| at > stale_before))
            .filter_map(|o| int(o.get("t")))
            .min(),
        _ => None,
    };
    open.unwrap_or_else(|| int(d.get("n")).unwrap_or(0) + 1)
}

/// [`xmin_of`] the tickets document as the session sees it.
pub async fn xmin(c: &mut super::ctx::Ctx<'_>) -> Result<i64> {
    Ok(xmin_of(c.find_one(TICKETS, doc! { "_id": ID }, None).await?.as_ref()))
}
