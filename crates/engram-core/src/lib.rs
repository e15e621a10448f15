//! Engram's domain: the memory model, the filter language, storage backends,
//! background jobs and [`MemoryService`], the one entry point every transport
//! (HTTP, MCP, CLI) calls. Nothing here knows about HTTP.

pub mod audit;
pub mod auth;
pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod distill;
pub mod embed;
pub mod error;
pub mod filter;
pub mod jobs;
pub mod jwt;
pub mod keyword;
pub mod metrics;
pub mod model;
pub mod recall;
pub mod rules;
#[cfg(feature = "schema")]
pub mod schema;
pub mod service;
pub mod store;
pub mod text;
pub mod time;
pub mod transfer;
pub mod vector;

pub use auth::TenantCtx;
pub use error::{Error, ErrorCode, Result};
pub use service::MemoryService;
pub use store::Store;
