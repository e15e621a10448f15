//! engram-core integration tests: the service and the SQLite store on real
//! files, without HTTP.

mod filters;
mod salience;
mod sessions;
mod store;
mod vectors;

use engram_core::service::AuthMode;
use engram_core::store::{SqliteOptions, SqliteStore, Store, Synchronous};
use engram_core::MemoryService;

/// A service on a fresh database in a temp dir (kept alive by the returned guard).
pub fn service() -> (MemoryService, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions {
        path: dir.path().join("engram.db"),
        readers: 4,
        synchronous: Synchronous::Normal,
        exclusive: true,
        vectors: None,
    })
    .unwrap();
    (MemoryService::new(Store::Sqlite(store), AuthMode::DevUntilKeysExist), dir)
}
