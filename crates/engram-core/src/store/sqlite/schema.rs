//! The SQLite schema and its migrations, applied in order at startup.
//!
//! Every table leads with `tenant_id`. Migrations are append-only: a released
//! step is never edited, a change is a new step.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// `(version, sql)` in order; each runs once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE memories (
    seq         INTEGER PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    ns_depth    INTEGER NOT NULL,
    key         TEXT,
    tier        TEXT NOT NULL CHECK (tier IN ('episodic', 'semantic')),
    text        TEXT NOT NULL,
    data        TEXT,
    index_spec  TEXT,
    tags        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    salience    REAL NOT NULL,
    pinned      INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    ttl_ms      INTEGER,
    source      TEXT NOT NULL
);
CREATE UNIQUE INDEX memories_by_id ON memories (tenant_id, id);
CREATE UNIQUE INDEX memories_by_key ON memories (tenant_id, namespace, key) WHERE key IS NOT NULL;
CREATE INDEX memories_by_namespace ON memories (tenant_id, namespace, id);
CREATE INDEX memories_by_updated ON memories (tenant_id, updated_at);
CREATE INDEX memories_by_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, content = 'memories', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
-- Rows without text (LangGraph items with index = false) stay out of the index.
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories WHEN new.text <> '' BEGIN
    INSERT INTO memories_fts (rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories WHEN old.text <> '' BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF text ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text) SELECT 'delete', old.seq, old.text WHERE old.text <> '';
    INSERT INTO memories_fts (rowid, text) SELECT new.seq, new.text WHERE new.text <> '';
END;

CREATE TABLE api_keys (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    hash        BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    PRIMARY KEY (tenant_id, id)
);
"#,
    ),
    (
        2,
        r#"
-- Normalised-text fingerprint of memories without a key, for deduplication.
ALTER TABLE memories ADD COLUMN text_hash INTEGER;
CREATE INDEX memories_by_text_hash ON memories (tenant_id, namespace, text_hash) WHERE text_hash IS NOT NULL;

-- One unit vector per embedded memory (little-endian f32). The truth the
-- in-process vector index is rebuilt from.
CREATE TABLE memory_vectors (
    seq        INTEGER PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    vector     BLOB NOT NULL
);
-- Memories waiting for an embedding; `gen` is the memory's version when queued,
-- so an embedding of an older text is never stored for a newer one.
CREATE TABLE embed_queue (
    seq        INTEGER PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    gen        INTEGER NOT NULL
);
CREATE INDEX embed_queue_by_scope ON embed_queue (tenant_id, namespace);
-- Every change to a memory's vector or placement, tailed by the vector index
-- and pruned once a saved index includes it.
CREATE TABLE vector_changes (
    change     INTEGER PRIMARY KEY AUTOINCREMENT,
    seq        INTEGER NOT NULL
);
-- The embedding model each tenant's vectors were made with.
CREATE TABLE tenant_models (
    tenant_id   TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    dims        INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
);

INSERT INTO embed_queue (seq, tenant_id, namespace, gen)
    SELECT seq, tenant_id, namespace, version FROM memories WHERE text <> '';

CREATE TRIGGER memories_queue_insert AFTER INSERT ON memories WHEN new.text <> '' BEGIN
    INSERT OR REPLACE INTO embed_queue (seq, tenant_id, namespace, gen)
        VALUES (new.seq, new.tenant_id, new.namespace, new.version);
END;
CREATE TRIGGER memories_queue_text AFTER UPDATE OF text ON memories WHEN new.text IS NOT old.text BEGIN
    DELETE FROM memory_vectors WHERE seq = new.seq;
    DELETE FROM embed_queue WHERE seq = new.seq;
    INSERT INTO embed_queue (seq, tenant_id, namespace, gen)
        SELECT new.seq, new.tenant_id, new.namespace, new.version WHERE new.text <> '';
END;
CREATE TRIGGER memories_vector_place AFTER UPDATE OF tier, key ON memories
    WHEN EXISTS (SELECT 1 FROM memory_vectors WHERE seq = new.seq) BEGIN
    INSERT INTO vector_changes (seq) VALUES (new.seq);
END;
CREATE TRIGGER memories_vector_delete AFTER DELETE ON memories BEGIN
    DELETE FROM embed_queue WHERE seq = old.seq;
    DELETE FROM memory_vectors WHERE seq = old.seq;
END;
CREATE TRIGGER memory_vectors_insert AFTER INSERT ON memory_vectors BEGIN
    INSERT INTO vector_changes (seq) VALUES (new.seq);
END;
CREATE TRIGGER memory_vectors_update AFTER UPDATE ON memory_vectors BEGIN
    INSERT INTO vector_changes (seq) VALUES (new.seq);
END;
CREATE TRIGGER memory_vectors_delete AFTER DELETE ON memory_vectors BEGIN
    INSERT INTO vector_changes (seq) VALUES (old.seq);
END;
"#,
    ),
    (
        3,
        r#"
-- Keyword search stems (porter over unicode61): "painted" finds "painting".
-- The triggers of step 1 keep writing to the table by name.
DROP TABLE memories_fts;
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, content = 'memories', content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO memories_fts (rowid, text) SELECT seq, text FROM memories WHERE text <> '';
"#,
    ),
    (
        4,
        r#"
-- Working memory: one row per conversation, its turns, and durable jobs.
CREATE TABLE sessions (
    tenant_id          TEXT NOT NULL,
    id                 TEXT NOT NULL,
    namespace          TEXT NOT NULL,
    turn_count         INTEGER NOT NULL,
    -- Turns 1..=distilled_through are distilled or queued for it.
    distilled_through  INTEGER NOT NULL,
    summary            TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE TABLE session_turns (
    tenant_id   TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    role        TEXT NOT NULL,
    content     TEXT NOT NULL,
    at          INTEGER NOT NULL,
    metadata    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, session_id, idx)
) WITHOUT ROWID;
-- Durable background work (distillation); a row is deleted in the
-- transaction that commits its result.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    run_after   INTEGER NOT NULL,
    last_error  TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (kind, run_after);
CREATE INDEX jobs_by_subject ON jobs (tenant_id, kind, subject);
"#,
    ),
    (
        5,
        r#"
-- Salience: when it was last brought up to date (decay runs from there) and how
-- often the memory was cited.
ALTER TABLE memories ADD COLUMN salience_at INTEGER;
ALTER TABLE memories ADD COLUMN cite_count INTEGER NOT NULL DEFAULT 0;
UPDATE memories SET salience_at = updated_at;
CREATE INDEX memories_by_salience_at ON memories (salience_at) WHERE pinned = 0;
-- Promotion looks for the most salient episodic memories.
CREATE INDEX memories_episodic_by_salience ON memories (salience) WHERE tier = 'episodic';
"#,
    ),
    (
        6,
        r#"
-- What is queued for embedding is decided by the rules (rules/write.rs), not
-- by triggers: a memory written with its vector is never queued.
DROP TRIGGER memories_queue_insert;
DROP TRIGGER memories_queue_text;
-- Ids of memories folded into a near-duplicate, and the one they live on in.
CREATE TABLE memory_merges (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    survivor_id  TEXT NOT NULL,
    merged_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX memory_merges_by_survivor ON memory_merges (tenant_id, survivor_id);
"#,
    ),
    (
        7,
        r#"
-- The speaker's UTC offset (seconds) of each turn's `at`, for what is
-- computed in their local time (relative dates, a memory's date).
ALTER TABLE session_turns ADD COLUMN utc_offset INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        8,
        r#"
-- Keyword search indexes `search_text` (crate::text::index_text of the text:
-- the text, plus the n-grams of scripts written without spaces) instead of
-- `text`. Rows are backfilled by `backfill_search_text` in this step.
ALTER TABLE memories ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
UPDATE memories SET search_text = text;
DROP TRIGGER memories_fts_insert;
DROP TRIGGER memories_fts_delete;
DROP TRIGGER memories_fts_update;
DROP TABLE memories_fts;
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    search_text, content = 'memories', content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories WHEN new.search_text <> '' BEGIN
    INSERT INTO memories_fts (rowid, search_text) VALUES (new.seq, new.search_text);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories WHEN old.search_text <> '' BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF search_text ON memories
    WHEN old.search_text IS NOT new.search_text BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, search_text)
        SELECT 'delete', old.seq, old.search_text WHERE old.search_text <> '';
    INSERT INTO memories_fts (rowid, search_text) SELECT new.seq, new.search_text WHERE new.search_text <> '';
END;
"#,
    ),
    (
        9,
        r#"
-- Row numbers are never reused (AUTOINCREMENT): work read before a row was
-- deleted — a queued embedding, a promotion candidate, a distillation job —
-- must never land on a newer row that took its number.
CREATE TABLE memories_v9 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    ns_depth    INTEGER NOT NULL,
    key         TEXT,
    tier        TEXT NOT NULL CHECK (tier IN ('episodic', 'semantic')),
    text        TEXT NOT NULL,
    data        TEXT,
    index_spec  TEXT,
    tags        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    salience    REAL NOT NULL,
    pinned      INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    ttl_ms      INTEGER,
    source      TEXT NOT NULL,
    text_hash   INTEGER,
    salience_at INTEGER,
    cite_count  INTEGER NOT NULL DEFAULT 0,
    search_text TEXT NOT NULL DEFAULT ''
);
INSERT INTO memories_v9 (seq, tenant_id, id, namespace, ns_depth, key, tier, text, data, index_spec, tags, metadata,
    salience, pinned, version, created_at, updated_at, expires_at, ttl_ms, source, text_hash, salience_at, cite_count,
    search_text)
    SELECT seq, tenant_id, id, namespace, ns_depth, key, tier, text, data, index_spec, tags, metadata, salience, pinned,
    version, created_at, updated_at, expires_at, ttl_ms, source, text_hash, salience_at, cite_count, search_text
    FROM memories;
DROP TABLE memories;
ALTER TABLE memories_v9 RENAME TO memories;
CREATE UNIQUE INDEX memories_by_id ON memories (tenant_id, id);
CREATE UNIQUE INDEX memories_by_key ON memories (tenant_id, namespace, key) WHERE key IS NOT NULL;
CREATE INDEX memories_by_namespace ON memories (tenant_id, namespace, id);
CREATE INDEX memories_by_updated ON memories (tenant_id, updated_at);
CREATE INDEX memories_by_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX memories_by_text_hash ON memories (tenant_id, namespace, text_hash) WHERE text_hash IS NOT NULL;
CREATE INDEX memories_by_salience_at ON memories (salience_at) WHERE pinned = 0;
CREATE INDEX memories_episodic_by_salience ON memories (salience) WHERE tier = 'episodic';
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories WHEN new.search_text <> '' BEGIN
    INSERT INTO memories_fts (rowid, search_text) VALUES (new.seq, new.search_text);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories WHEN old.search_text <> '' BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF search_text ON memories
    WHEN old.search_text IS NOT new.search_text BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, search_text)
        SELECT 'delete', old.seq, old.search_text WHERE old.search_text <> '';
    INSERT INTO memories_fts (rowid, search_text) SELECT new.seq, new.search_text WHERE new.search_text <> '';
END;
CREATE TRIGGER memories_vector_place AFTER UPDATE OF tier, key ON memories
    WHEN EXISTS (SELECT 1 FROM memory_vectors WHERE seq = new.seq) BEGIN
    INSERT INTO vector_changes (seq) VALUES (new.seq);
END;
CREATE TRIGGER memories_vector_delete AFTER DELETE ON memories BEGIN
    DELETE FROM embed_queue WHERE seq = old.seq;
    DELETE FROM memory_vectors WHERE seq = old.seq;
END;

CREATE TABLE jobs_v9 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    run_after   INTEGER NOT NULL,
    last_error  TEXT,
    created_at  INTEGER NOT NULL
);
INSERT INTO jobs_v9 (id, kind, tenant_id, subject, payload, attempts, run_after, last_error, created_at)
    SELECT id, kind, tenant_id, subject, payload, attempts, run_after, last_error, created_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v9 RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (kind, run_after);
CREATE INDEX jobs_by_subject ON jobs (tenant_id, kind, subject);
"#,
    ),
    (
        10,
        r#"
-- Leases: queued work taken by a worker is not handed to another until the
-- lease ends (a worker that dies leaves its work to the next).
ALTER TABLE embed_queue ADD COLUMN leased_until INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        11,
        r#"
-- A key may be limited to namespace prefixes (comma-separated; NULL: all).
ALTER TABLE api_keys ADD COLUMN namespaces TEXT;

-- Deleting from the keyword index removes a text's words from the index at
-- once, not only marks them deleted (an erased text must not linger).
INSERT INTO memories_fts (memories_fts, rank) VALUES ('secure-delete', 1);

-- The change journal (crate::audit): one hash chain per (tenant, namespace).
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    by_who      TEXT,
    agent_id    TEXT,
    request_id  TEXT,
    changes     TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);
CREATE UNIQUE INDEX changes_by_chain ON changes (tenant_id, namespace, seq);
-- Change events: a tenant's rows in commit order (one writer: id order).
CREATE INDEX changes_by_tenant ON changes (tenant_id, id);
CREATE TABLE change_heads (
    tenant_id   TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (tenant_id, namespace)
) WITHOUT ROWID;
"#,
    ),
    (
        12,
        r#"
-- Keyword search moves to the in-process index (crate::keyword): FTS5 scored
-- every matching row. The index is loaded from `memories` on first use and
-- tails this log of changes to what it holds (a memory's indexed text or
-- placement, or its removal); applied changes are pruned.
DROP TRIGGER memories_fts_insert;
DROP TRIGGER memories_fts_delete;
DROP TRIGGER memories_fts_update;
DROP TABLE memories_fts;
CREATE TABLE keyword_changes (
    change     INTEGER PRIMARY KEY AUTOINCREMENT,
    seq        INTEGER NOT NULL
);
CREATE TRIGGER memories_keyword_insert AFTER INSERT ON memories WHEN new.search_text <> '' BEGIN
    INSERT INTO keyword_changes (seq) VALUES (new.seq);
END;
CREATE TRIGGER memories_keyword_delete AFTER DELETE ON memories WHEN old.search_text <> '' BEGIN
    INSERT INTO keyword_changes (seq) VALUES (old.seq);
END;
CREATE TRIGGER memories_keyword_update AFTER UPDATE OF search_text, tier, key, namespace ON memories
    WHEN old.search_text IS NOT new.search_text OR old.tier IS NOT new.tier
      OR old.key IS NOT new.key OR old.namespace IS NOT new.namespace BEGIN
    INSERT INTO keyword_changes (seq) VALUES (new.seq);
END;
"#,
    ),
    (
        13,
        r#"
-- The backend logs an inserted memory's keyword change and a stored vector's
-- change itself (memories::insert, vectors::put_vector): a statement that
-- fires a trigger keeps a statement journal, a copy of every page it touches
-- that SQLite walks again when the statement ends, and in a batch of 1 000
-- that walk grew with the batch (docs/decisions.md, "Write statements
-- without a statement journal").
DROP TRIGGER memories_keyword_insert;
DROP TRIGGER memory_vectors_insert;
DROP TRIGGER memory_vectors_update;
"#,
    ),
];

/// Step 8's data: the n-grams of memories written in scripts without spaces
/// (the SQL copied every text as it is).
fn backfill_search_text(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT seq, text FROM memories")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare("UPDATE memories SET search_text = ? WHERE seq = ?")?;
    for (seq, text) in rows {
        let indexed = crate::text::index_text(&text);
        if indexed != text {
            update.execute(rusqlite::params![indexed, seq])?;
        }
    }
    Ok(())
}

/// The newest schema version this build knows.
fn newest() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The database's schema version (0 for a new, empty file).
fn current(conn: &Connection) -> Result<i64> {
    let known: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !known {
        return Ok(0);
    }
    Ok(conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?)
}

/// Whether the database is at the newest schema this build knows (a new,
/// empty file is not).
pub fn is_current(conn: &Connection) -> Result<bool> {
    Ok(current(conn)? >= newest())
}

/// Brings the database up to the newest schema (`now` is recorded per step).
pub fn migrate(conn: &mut Connection, now: crate::time::Millis) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let (current, newest) = (current(conn)?, newest());
    if current > newest {
        return Err(Error::unavailable(format!(
            "the database has schema version {current}, newer than this engram build knows (version {newest}): \
             it was written by a newer engram; upgrade engram, or use another data directory"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if *version == 8 {
            backfill_search_text(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, now],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}
