//! engram-core integration tests on real files: the memory contract, run
//! against every backend (`conformance/`), then what belongs to one backend
//! (`sqlite.rs`, `postgres.rs`) or to the in-process vector index (`vector_index.rs`).

mod conformance;
mod harness;
mod postgres;
mod sqlite;
mod vector_index;
