//! engram-core integration tests on real files: the memory contract, run
//! against every backend (`conformance/`), then what belongs to one backend
//! (`sqlite.rs`, `postgres.rs`, `mongo.rs`), to the in-process vector index (`vector_index.rs`)
//! or to bearer tokens (`jwt.rs`).

mod conformance;
mod harness;
mod jwt;
mod mongo;
mod postgres;
mod sqlite;
mod vector_index;
