//! Singleton jobs across nodes: a job runs on the node holding its session
//! advisory lock (`pg_try_advisory_lock`) on a connection of its own. When that
//! node dies, PostgreSQL ends its session and releases the lock, and the next
//! node to try takes it over. Pooled connections are never used for this: a
//! session lock would travel with the connection back into the pool.

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

/// The right to run one singleton job, held or sought.
pub struct PgLeadership {
    cfg: tokio_postgres::Config,
    key: i64,
    held: Option<Client>,
}

impl PgLeadership {
    pub fn new(cfg: tokio_postgres::Config, job: &str) -> Self {
        let digest = Sha256::digest(format!("engram job {job}").as_bytes());
        let key = i64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
        PgLeadership { cfg, key, held: None }
    }

    /// Whether this node holds the job's lock now, trying to take it if not.
    pub async fn held(&mut self) -> bool {
        if self.held.as_ref().is_some_and(|c| !c.is_closed()) {
            return true;
        }
        self.held = None;
        let Ok((client, connection)) = self.cfg.connect(NoTls).await else {
            return false;
        };
        tokio::spawn(connection);
        match client.query_one("SELECT pg_try_advisory_lock($1)", &[&self.key]).await {
            Ok(row) if row.try_get::<_, bool>(0).unwrap_or(false) => {
                self.held = Some(client);
                true
            }
            // Another node holds it: this connection (dropped) is not needed.
            _ => false,
        }
    }
}
