//! Tickets: the commit order of the change journal across nodes.
//!
//! Before a write transaction starts it registers a ticket, one above the
//! highest ever registered (`{_id: n, at, done: false}`; a duplicate means
//! another writer took that number, so it tries the next). Its journal rows
//! are positioned `(ticket, i)`. When it has committed or aborted, the
//! ticket is marked done. A reader of the journal takes only rows whose
//! ticket is below the lowest one not done ([`xmin`]): every transaction
//! below it has ended, so no row can later appear behind one already read
//! (PostgreSQL's `pg_snapshot_xmin`, in documents). A ticket left not done
//! by a crashed node stops counting once it is older than any transaction
//! can live ([`STALE`]). Tickets age by the wall clock, not the service's
//! (which tests move by days).

use mongodb::bson::doc;
use mongodb::Database;

use super::ctx::{int, TICKETS};
use super::errors::{code, DUPLICATE_KEY};
use crate::error::{Error, Result};

/// A ticket older than this is a crashed writer's (MongoDB aborts a
/// transaction after 60 s by default: `transactionLifetimeLimitSeconds`).
pub const STALE: std::time::Duration = std::time::Duration::from_secs(120);

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

async fn highest(db: &Database) -> Result<i64> {
    let d = db.collection::<mongodb::bson::Document>(TICKETS).find_one(doc! {}).sort(doc! { "_id": -1 }).await?;
    Ok(d.and_then(|d| int(d.get("_id"))).unwrap_or(0))
}

/// Registers a new ticket.
pub async fn begin(db: &Database) -> Result<i64> {
    let mut next = highest(db).await? + 1;
    for _ in 0..1000 {
        let d = doc! { "_id": next, "at": wall_ms(), "done": false };
        match db.collection(TICKETS).insert_one(d).await {
            Ok(_) => return Ok(next),
            Err(e) if code(&e) == Some(DUPLICATE_KEY) => next = (highest(db).await? + 1).max(next + 1),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::unavailable("too many writers at once; try again"))
}

/// Marks a ticket done (its transaction committed or aborted), and now and
/// then forgets done tickets below the highest.
pub async fn end(db: &Database, ticket: i64) -> Result<()> {
    let tickets = db.collection::<mongodb::bson::Document>(TICKETS);
    tickets.update_one(doc! { "_id": ticket }, doc! { "$set": { "done": true } }).await?;
    if ticket % 256 == 0 {
        tickets.delete_many(doc! { "_id": { "$lt": ticket - 256 }, "done": true }).await?;
    }
    Ok(())
}

/// The lowest ticket still in flight (or one above the highest): rows of
/// lower tickets are all committed or never will be.
pub async fn xmin(c: &mut super::ctx::Ctx<'_>) -> Result<i64> {
    let f = doc! { "done": false, "at": { "$gt": wall_ms() - STALE.as_millis() as i64 } };
    if let Some(d) = c.find_one(TICKETS, f, Some(doc! { "_id": 1 })).await? {
        return int(d.get("_id")).ok_or_else(|| Error::internal("a ticket without a number"));
    }
    let d = c.find_one(TICKETS, doc! {}, Some(doc! { "_id": -1 })).await?;
    Ok(d.and_then(|d| int(d.get("_id"))).unwrap_or(0) + 1)
}
