//! The collections' indexes, created at open (idempotent, whichever node
//! comes first), and the schema version. Every index leads with `tenant_id`
//! except the jobs' cross-tenant scans and the backend's own bookkeeping.

use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

use super::ctx::*;
use crate::error::{Error, Result};

/// The layout this engram writes (2: the key index partial on `$gte: ""`).
pub const VERSION: i64 = 2;

/// The key index's name since schema 2 (schema 1's had the default name
/// [`SCHEMA_1_KEY_INDEX`]).
const KEY_INDEX: &str = "key_unique";
const SCHEMA_1_KEY_INDEX: &str = "tenant_id_1_namespace_1_key_1";

/// Drops schema 1's key index (partial on `key: {$exists: true}`, which the
/// test server's planner could not use), once the new one exists beside it:
/// keys are unique throughout, and nodes starting at once drop it once.
async fn drop_schema_1_key_index(db: &Database) -> Result<()> {
    match db.collection::<Document>(MEMORIES).drop_index(SCHEMA_1_KEY_INDEX).await {
        // Not there: a database made by schema 2, or another node dropped it.
        Err(e) if super::errors::code(&e) == Some(27) => Ok(()),
        other => other.map_err(Into::into),
    }
}

fn index(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

fn unique(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).options(IndexOptions::builder().unique(true).build()).build()
}

/// Makes the `memories` indexes over arrays multikey at once, with a
/// document written and deleted here: SecantusDB (the test server) records
/// an index's first array value with a catalog write that conflicts
/// between concurrent transactions (two first inserts of different tenants
/// failed with `WriteConflict`); mongod does it outside the transaction.
/// Harmless on mongod.
async fn mark_multikey(db: &Database) -> Result<()> {
    let memories = db.collection::<Document>(MEMORIES);
    let sentinel = doc! {
        "_id": i64::MIN, "tenant_id": "", "namespace": "", "id": "", "tags": ["", " "],
        "f_exists": ["", " "], "f_values": [{ "p": "", "v": 0i64 }, { "p": " ", "v": 1i64 }],
    };
    memories.delete_one(doc! { "_id": i64::MIN }).await?;
    // Another node starting at the same moment may have written it.
    not_duplicate(memories.insert_one(sentinel).await)?;
    memories.delete_one(doc! { "_id": i64::MIN }).await?;
    Ok(())
}

/// A write's result, where a duplicate key (another node starting at the
/// same moment did it first) is success.
pub(super) fn not_duplicate<T>(r: std::result::Result<T, mongodb::error::Error>) -> Result<()> {
    match r {
        Err(e) if super::errors::code(&e) == Some(super::errors::DUPLICATE_KEY) => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// Creates what is missing and checks the version.
pub async fn migrate(db: &Database, now: i64) -> Result<()> {
    let meta = db.collection::<Document>(META);
    let found = meta.find_one(doc! { "_id": "schema" }).await?;
    if let Some(v) = found.as_ref().and_then(|d| int(d.get("version"))) {
        if v > VERSION {
            return Err(Error::unavailable(format!(
                "the database was written by a newer engram (schema {v}; this engram knows up to {VERSION}): \
                 upgrade engram"
            )));
        }
    }
    let sets: [(&str, Vec<IndexModel>); 13] = [
        (
            MEMORIES,
            vec![
                unique(doc! { "tenant_id": 1, "id": 1 }),
                // Keys are unique within a namespace; unkeyed memories have
                // none. `$gte: ""` (every string) rather than `$exists`: an
                // equality on `key` implies it on mongod and on the test
                // server alike, whose planner does not see that it implies
                // `$exists` and scanned the tenant's memories instead.
                IndexModel::builder()
                    .keys(doc! { "tenant_id": 1, "namespace": 1, "key": 1 })
                    .options(
                        IndexOptions::builder()
                            .unique(true)
                            .name(KEY_INDEX.to_owned())
                            .partial_filter_expression(doc! { "key": { "$gte": "" } })
                            .build(),
                    )
                    .build(),
                index(doc! { "tenant_id": 1, "namespace": 1, "id": 1 }),
                index(doc! { "tenant_id": 1, "namespace": 1, "text_hash": 1 }),
                index(doc! { "tenant_id": 1, "updated_at": -1, "id": -1 }),
                index(doc! { "tenant_id": 1, "f_values.p": 1, "f_values.v": 1 }),
                index(doc! { "tenant_id": 1, "tags": 1 }),
                // The jobs' scans across tenants.
                index(doc! { "expires_at": 1 }),
                index(doc! { "salience_at": 1 }),
                index(doc! { "tier": 1, "salience": -1 }),
            ],
        ),
        (MERGES, vec![unique(doc! { "tenant_id": 1, "id": 1 }), index(doc! { "tenant_id": 1, "survivor_id": 1 })]),
        (VECTORS, vec![index(doc! { "tenant_id": 1, "namespace": 1, "change": 1 })]),
        (EMBED_QUEUE, vec![index(doc! { "tenant_id": 1, "namespace": 1 }), index(doc! { "leased_until": 1 })]),
        (TENANT_MODELS, vec![]),
        (KEYS, vec![unique(doc! { "tenant_id": 1, "id": 1 }), unique(doc! { "hash": 1 }), index(doc! { "id": 1 })]),
        (SESSIONS, vec![unique(doc! { "tenant_id": 1, "id": 1 }), index(doc! { "expires_at": 1 })]),
        (TURNS, vec![unique(doc! { "tenant_id": 1, "session_id": 1, "idx": 1 })]),
        (
            JOBS,
            vec![index(doc! { "kind": 1, "run_after": 1 }), index(doc! { "tenant_id": 1, "kind": 1, "subject": 1 })],
        ),
        (
            CHANGES,
            vec![
                unique(doc! { "tenant_id": 1, "namespace": 1, "seq": 1 }),
                index(doc! { "tenant_id": 1, "tx": 1, "ix": 1 }),
            ],
        ),
        (CHANGE_HEADS, vec![unique(doc! { "tenant_id": 1, "namespace": 1 })]),
        (TICKETS, vec![]),
        (
            EVENTS,
            // Events only need to outlive the feeds' reading of them: a TTL
            // index cleans them up (it decides nothing anyone reads).
            vec![IndexModel::builder()
                .keys(doc! { "at": 1 })
                .options(IndexOptions::builder().expire_after(std::time::Duration::from_secs(3600)).build())
                .build()],
        ),
    ];
    let existing = db.list_collection_names().await?;
    for (name, indexes) in sets {
        if !existing.iter().any(|e| e == name) {
            // Collections cannot be created inside a transaction on older
            // servers: create them all here.
            if let Err(e) = db.create_collection(name).await {
                if super::errors::code(&e) != Some(48) {
                    return Err(e.into());
                }
            }
        }
        if !indexes.is_empty() {
            db.collection::<Document>(name).create_indexes(indexes).await?;
        }
    }
    for name in [COUNTERS, STRIPES, LEASES, META] {
        if !existing.iter().any(|e| e == name) {
            if let Err(e) = db.create_collection(name).await {
                if super::errors::code(&e) != Some(48) {
                    return Err(e.into());
                }
            }
        }
    }
    drop_schema_1_key_index(db).await?;
    mark_multikey(db).await?;
    super::stripes::ensure(db).await?;
    super::tickets::ensure(db).await?;
    not_duplicate(
        meta.update_one(
            doc! { "_id": "schema" },
            doc! { "$max": { "version": VERSION }, "$setOnInsert": { "created_at": now } },
        )
        .upsert(true)
        .await,
    )
}
