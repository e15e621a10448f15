//! The rules of the memory contract, written once over the storage traits
//! (`crate::store::{Reads, Tx}`) so every backend follows them: what "live"
//! means, how a write treats keys and near-duplicates, how a patch is checked,
//! when sessions are distilled, how salience rises and decays, and what
//! promotion does. Each function runs inside one backend transaction (or
//! snapshot) and decides; the backend only stores and looks up.
//!
//! `MemoryService` (in `crate::service`) validates callers' input and calls
//! these; the background jobs (in `crate::jobs`) call them through the service.

pub mod embedding;
pub mod erase;
pub mod import;
pub mod liveness;
pub mod merge;
pub mod promotion;
pub mod salience;
pub mod sessions;
pub mod write;
