//! The engram-server integration tests: one binary, real sockets, real SQLite
//! files, the real `engram` executable where a process boundary matters.

mod support;

mod admin;
mod admission;
mod audit;
mod erase;
pub mod events;
mod fuzz;
mod grants;
mod limits;
mod memories;
mod migrate;
mod nodes;
mod openai;
mod pg;
mod process;
mod recall;
mod retrieval;
mod sessions;
mod store_api;
mod tenancy;
mod tls;
mod tokens;
