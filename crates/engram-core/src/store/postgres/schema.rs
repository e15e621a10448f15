//! The PostgreSQL schema and its migrations. Every table leads with
//! `tenant_id` (the column a sharded PostgreSQL distributes on); `seq` and job
//! ids come from identity columns and are never reused.
//!
//! Several nodes may start at once: [`migrate`] runs every pending step in
//! one transaction holding an advisory lock, so exactly one node applies
//! them and the others find them applied. Steps are append-only.
//!
//! Namespaces, ids and keys collate as "C" (by code point), whatever the
//! database's locale: namespace prefixes are byte ranges, and ids order by
//! creation.
//!
//! Keyword search uses PostgreSQL full-text search with the `english`
//! configuration (Snowball stemming, English stopwords) over `search_text`
//! (`crate::text::index_text`, as in SQLite). Vectors are pgvector values in
//! `memory_vectors`; the HNSW index (cosine) is per dimension and created by
//! [`ensure_vector_index`] for the dimension the server embeds at.

use deadpool_postgres::Object;

use crate::error::{Error, Result};
use crate::time::Millis;

/// The advisory lock migrations hold (`engram` in ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x0065_6e67_7261_6d01;

/// `(version, sql)` in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE memories (
    tenant_id    text NOT NULL,
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    id           text COLLATE "C" NOT NULL,
    namespace    text COLLATE "C" NOT NULL,
    ns_depth     integer NOT NULL,
    key          text COLLATE "C",
    tier         text NOT NULL CHECK (tier IN ('episodic', 'semantic')),
    text         text NOT NULL,
    search_text  text NOT NULL,
    search_vector tsvector GENERATED ALWAYS AS (to_tsvector('english', search_text)) STORED,
    data         jsonb,
    index_spec   jsonb,
    tags         jsonb NOT NULL,
    metadata     jsonb NOT NULL,
    salience     double precision NOT NULL,
    pinned       boolean NOT NULL,
    version      bigint NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    expires_at   bigint,
    ttl_ms       bigint,
    source       jsonb NOT NULL,
    text_hash    bigint,
    salience_at  bigint NOT NULL,
    cite_count   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX memories_by_seq ON memories (seq);
CREATE UNIQUE INDEX memories_by_id ON memories (tenant_id, id);
CREATE UNIQUE INDEX memories_by_key ON memories (tenant_id, namespace, key) WHERE key IS NOT NULL;
CREATE INDEX memories_by_namespace ON memories (tenant_id, namespace, id);
CREATE INDEX memories_by_updated ON memories (tenant_id, updated_at);
CREATE INDEX memories_by_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX memories_by_text_hash ON memories (tenant_id, namespace, text_hash) WHERE text_hash IS NOT NULL;
CREATE INDEX memories_by_salience_at ON memories (salience_at) WHERE NOT pinned;
CREATE INDEX memories_episodic_by_salience ON memories (salience) WHERE tier = 'episodic';
CREATE INDEX memories_search ON memories USING gin (search_vector);

-- Ids of memories folded into a near-duplicate, and the one they live on in.
CREATE TABLE memory_merges (
    tenant_id    text NOT NULL,
    id           text NOT NULL,
    survivor_id  text NOT NULL,
    merged_at    bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX memory_merges_by_survivor ON memory_merges (tenant_id, survivor_id);

-- One unit vector per embedded memory. `change` orders stores: a lookup that
-- took the newest `change` first can find what was stored after it.
CREATE SEQUENCE vector_changes;
CREATE TABLE memory_vectors (
    tenant_id  text NOT NULL,
    seq        bigint NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    dims       integer NOT NULL,
    embedding  vector NOT NULL,
    change     bigint NOT NULL DEFAULT nextval('vector_changes'),
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, seq) REFERENCES memories (tenant_id, seq) ON DELETE CASCADE
);
CREATE INDEX memory_vectors_by_seq ON memory_vectors (seq);
CREATE INDEX memory_vectors_by_place ON memory_vectors (tenant_id, namespace);
CREATE INDEX memory_vectors_by_change ON memory_vectors (change);

-- Memories waiting for an embedding; `gen` is the memory's version when queued.
CREATE TABLE embed_queue (
    tenant_id  text NOT NULL,
    seq        bigint NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    gen        bigint NOT NULL,
    -- Not handed to another worker before this time.
    leased_until bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, seq) REFERENCES memories (tenant_id, seq) ON DELETE CASCADE
);
CREATE INDEX embed_queue_by_seq ON embed_queue (seq);
CREATE INDEX embed_queue_by_scope ON embed_queue (tenant_id, namespace);

-- The embedding model each tenant's vectors were made with.
CREATE TABLE tenant_models (
    tenant_id   text PRIMARY KEY,
    model       text NOT NULL,
    dims        integer NOT NULL,
    recorded_at bigint NOT NULL
);

CREATE TABLE api_keys (
    tenant_id   text NOT NULL,
    id          text NOT NULL,
    name        text NOT NULL,
    hash        bytea NOT NULL,
    scopes      text NOT NULL,
    created_at  bigint NOT NULL,
    revoked_at  bigint,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX api_keys_by_hash ON api_keys (hash);
CREATE INDEX api_keys_by_id ON api_keys (id);

-- Working memory: one row per conversation, and its turns.
CREATE TABLE sessions (
    tenant_id          text NOT NULL,
    id                 text NOT NULL,
    namespace          text NOT NULL,
    turn_count         bigint NOT NULL,
    distilled_through  bigint NOT NULL,
    summary            text NOT NULL,
    created_at         bigint NOT NULL,
    updated_at         bigint NOT NULL,
    expires_at         bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE TABLE session_turns (
    tenant_id   text NOT NULL,
    session_id  text NOT NULL,
    idx         bigint NOT NULL,
    role        text NOT NULL,
    content     text NOT NULL,
    at          bigint NOT NULL,
    utc_offset  integer NOT NULL,
    metadata    jsonb NOT NULL,
    PRIMARY KEY (tenant_id, session_id, idx)
);

-- Durable background work; a row is deleted in the transaction that commits
-- its result.
CREATE TABLE jobs (
    tenant_id   text NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    kind        text NOT NULL,
    subject     text NOT NULL,
    payload     text NOT NULL,
    attempts    bigint NOT NULL,
    run_after   bigint NOT NULL,
    last_error  text,
    created_at  bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_by_id ON jobs (id);
CREATE INDEX jobs_due ON jobs (kind, run_after);
CREATE INDEX jobs_by_subject ON jobs (tenant_id, kind, subject);
"#,
    ),
    (
        2,
        // Writes to different namespaces commit at once: a near-duplicate
        // check reads the newest `change` of its own namespace.
        r#"
CREATE INDEX memory_vectors_by_place_change ON memory_vectors (tenant_id, namespace, change);
DROP INDEX memory_vectors_by_place;
"#,
    ),
    (
        3,
        r#"
-- A key may be limited to namespace prefixes (comma-separated; NULL: all).
ALTER TABLE api_keys ADD COLUMN namespaces text;

-- The change journal (crate::audit): one hash chain per (tenant, namespace).
-- The changes are text, not jsonb: they are hashed as stored.
CREATE TABLE changes (
    tenant_id   text NOT NULL,
    namespace   text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    -- Change events read rows in (txid, id) order, and only rows of
    -- transactions older than every one still running: no row can then
    -- appear behind a reader that has passed it.
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at          bigint NOT NULL,
    by_who      text,
    agent_id    text,
    request_id  text,
    changes     text NOT NULL,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL,
    PRIMARY KEY (tenant_id, namespace, seq)
);
CREATE INDEX changes_by_tenant ON changes (tenant_id, txid, id);
CREATE TABLE change_heads (
    tenant_id   text NOT NULL,
    namespace   text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    PRIMARY KEY (tenant_id, namespace)
);
"#,
    ),
];

/// Brings the database up to the newest schema; safe to run from several
/// nodes at once.
pub async fn migrate(c: &mut Object, now: Millis) -> Result<()> {
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, applied_at bigint NOT NULL)",
    )
    .await?;
    let current: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
    let newest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > newest {
        return Err(Error::unavailable(format!(
            "the database has schema version {current}, newer than this engram build knows (version {newest}): \
             it was written by a newer engram; upgrade engram, or use another database"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[version, &now]).await?;
        tracing::info!(version, "applied schema migration");
    }
    tx.commit().await?;
    Ok(())
}

/// Creates the HNSW index (cosine) for vectors of `dims` dimensions unless it
/// exists. Searches name the same expression, `embedding::vector(dims)`.
pub async fn ensure_vector_index(c: &mut Object, dims: usize) -> Result<()> {
    let tx = c.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    // `dims` is a number the server chose, never caller input.
    tx.batch_execute(&format!(
        "CREATE INDEX IF NOT EXISTS memory_vectors_hnsw_{dims} ON memory_vectors \
         USING hnsw ((embedding::vector({dims})) vector_cosine_ops) WHERE dims = {dims}"
    ))
    .await?;
    tx.commit().await?;
    Ok(())
}
