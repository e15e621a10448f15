//! Saving and loading the vector index.
//!
//! The graph goes to `<path>` (usearch's own format) and a small JSON sidecar
//! `<path>.json` records the dimension and the watermark: the last
//! `vector_changes` row the saved graph includes. Both are written to temporary
//! files and renamed into place, graph first; a crash between the renames leaves
//! a graph newer than its watermark, which is harmless because replaying a change
//! is idempotent. The catalogue is not saved: it is rebuilt from SQLite at load.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{graph_error, new_graph, State, VectorIndex};
use crate::error::{Error, Result};
use crate::model::Tier;

#[derive(Serialize, Deserialize)]
struct Sidecar {
    format: u32,
    dims: usize,
    applied: i64,
}

/// 2: vectors stored as f16 (format 1 graphs held f32 and are rebuilt).
const FORMAT: u32 = 2;

fn sidecar_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".json");
    PathBuf::from(p)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("vector index {what} {}: {e}", path.display()))
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| Error::internal(format!("vector index path {} is not UTF-8", path.display())))
}

fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = tmp_path(path);
    write(&tmp)?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io("sync", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename", path, e))
}

/// A memory the loaded graph holds, as SQLite describes it now.
pub struct Placement {
    pub seq: u64,
    pub tenant: String,
    pub namespace: String,
    pub tier: Tier,
    pub keyed: bool,
}

impl VectorIndex {
    /// Saves the graph and its watermark; returns the watermark saved.
    /// Searches continue meanwhile; changes wait.
    pub fn save(&self, path: &Path) -> Result<i64> {
        let st = self.read()?;
        write_atomically(path, |tmp| st.graph.save(path_str(tmp)?).map_err(|e| graph_error("save", e)))?;
        let sidecar = Sidecar { format: FORMAT, dims: self.dims, applied: st.applied };
        let json = serde_json::to_vec(&sidecar)?;
        write_atomically(&sidecar_path(path), |tmp| std::fs::write(tmp, &json).map_err(|e| io("write", tmp, e)))?;
        Ok(st.applied)
    }

    /// Loads a saved graph of `dims`-dimensional vectors; `None` when there is
    /// none or it cannot be used (other dimension, unreadable), so the caller
    /// rebuilds from SQLite. The catalogue starts empty: fill it with
    /// [`VectorIndex::restore`].
    pub fn load(path: &Path, dims: usize) -> Result<Option<Self>> {
        let Ok(bytes) = std::fs::read(sidecar_path(path)) else {
            return Ok(None);
        };
        let sidecar: Sidecar = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "vector index sidecar unreadable; rebuilding");
                return Ok(None);
            }
        };
        if sidecar.format != FORMAT || sidecar.dims != dims || !path.is_file() {
            tracing::warn!(saved_dims = sidecar.dims, dims, "saved vector index does not fit; rebuilding");
            return Ok(None);
        }
        let graph = new_graph(dims)?;
        if let Err(e) = graph.load(path_str(path)?) {
            tracing::warn!(error = %e, "saved vector index unreadable; rebuilding");
            return Ok(None);
        }
        if graph.dimensions() != dims {
            return Ok(None);
        }
        let cap = graph.capacity().max(graph.size() + 1024);
        graph.reserve_capacity_and_threads(cap, super::THREADS).map_err(|e| graph_error("reserve", e))?;
        let state = State { graph, catalogue: Default::default(), applied: sidecar.applied };
        Ok(Some(VectorIndex { dims, state: std::sync::RwLock::new(state) }))
    }

    /// Describes the loaded graph's nodes; placements of memories the graph
    /// does not hold are ignored (the replay adds them).
    pub fn restore(&self, placements: impl IntoIterator<Item = Placement>) -> Result<()> {
        let mut st = self.write()?;
        for p in placements {
            if st.graph.contains(p.seq) {
                st.catalogue.insert(p.seq, &p.tenant, &p.namespace, p.tier, p.keyed);
            }
        }
        Ok(())
    }
}
