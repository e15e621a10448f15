//! Singleton jobs across nodes: a lease document per job (`{_id: job,
//! holder, until}`). A node that takes a job's lease keeps renewing it in the
//! background (every third of [`LEASE`]) for as long as it lives, so the job
//! stays with it, as a PostgreSQL session's advisory lock does; a node that
//! dies (or loses the database) stops renewing, and the next node that asks
//! takes the job over once the lease has run out. Leases run on the wall
//! clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mongodb::bson::{doc, Document};
use mongodb::Database;

use super::ctx::LEASES;
use super::errors::{code, DUPLICATE_KEY};

/// How long a lease lasts unless renewed: how long a job may stand still
/// after its node dies.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(10);

pub struct MongoLeadership {
    db: Database,
    job: String,
    node: String,
    /// Whether the renewals still succeed (set by the renewing task).
    holding: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl MongoLeadership {
    pub fn new(db: Database, job: &str, node: &str) -> Self {
        MongoLeadership {
            db,
            job: job.to_owned(),
            node: node.to_owned(),
            holding: Arc::new(AtomicBool::new(false)),
            renewer: None,
        }
    }

    /// Whether this node holds the job now (taking the lease if it is free).
    pub async fn held(&mut self) -> bool {
        if self.holding.load(Ordering::Acquire) && self.renewer.as_ref().is_some_and(|r| !r.is_finished()) {
            return true;
        }
        if !take(&self.db, &self.job, &self.node).await {
            return false;
        }
        self.holding.store(true, Ordering::Release);
        let (db, job, node, holding) =
            (self.db.clone(), self.job.clone(), self.node.clone(), Arc::clone(&self.holding));
        if let Some(old) = self.renewer.replace(tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                if !take(&db, &job, &node).await {
                    holding.store(false, Ordering::Release);
                    return;
                }
            }
        })) {
            old.abort();
        }
        true
    }
}

impl Drop for MongoLeadership {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}

/// Takes or renews the lease of `job` for `node`; false if another holds it.
async fn take(db: &Database, job: &str, node: &str) -> bool {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let f = doc! { "_id": job, "$or": [ { "holder": node }, { "until": { "$lt": now } } ] };
    let u = doc! { "$set": { "holder": node, "until": now + LEASE.as_millis() as i64 } };
    match db.collection::<Document>(LEASES).update_one(f, u).upsert(true).await {
        Ok(_) => true,
        // Held by another node: the upsert's insert met its document.
        Err(e) if code(&e) == Some(DUPLICATE_KEY) => false,
        Err(e) => {
            tracing::warn!(error = %e, job, "cannot take or renew a job's lease");
            false
        }
    }
}
