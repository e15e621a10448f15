//! The `engram` binary's library: configuration, the HTTP transport, the
//! server loop and the CLI subcommands. Every transport calls
//! `engram_core::MemoryService`; nothing here touches SQL.

pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod logging;
pub mod mcp;
pub mod server;
mod tls;
pub mod transfer;
