//! Command-line interface: subcommands and the flags they share.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

#[derive(Parser, Debug)]
#[command(name = "engram", version, about = "Engram: a memory server for AI agents")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Flags that override the config file and environment.
#[derive(Args, Debug, Clone, Default)]
pub struct CommonFlags {
    /// TOML config file (also ENGRAM_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:7700.
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// Directory for the database and other state.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Store URL: sqlite://PATH (e.g. sqlite://./data/engram.db), postgres://… or memory://.
    #[arg(long, global = true)]
    pub store: Option<String>,
}

impl CommonFlags {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            store: self.store.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server.
    Serve(#[command(flatten)] CommonFlags),
    /// Serve MCP (Model Context Protocol) over stdin/stdout, for desktop and
    /// coding agents. The caller is the tenant of ENGRAM_API_KEY (dev mode while
    /// no key exists); its writes name ENGRAM_AGENT_ID as their agent. Runs on
    /// its own data directory: MCP clients of a running server use its
    /// `POST /mcp` instead.
    Mcp(#[command(flatten)] CommonFlags),
    /// Print the effective configuration (secrets hidden), or what is wrong with it.
    CheckConfig(#[command(flatten)] CommonFlags),
    /// Manage the local embedding model.
    Model {
        #[command(subcommand)]
        action: ModelAction,
        #[command(flatten)]
        flags: CommonFlags,
    },
    /// Recompute embeddings after a model change: drops the vectors of a tenant
    /// (or of every tenant) and queues its memories; the server embeds them.
    Reembed {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        flags: CommonFlags,
    },
    /// Write the store's data as JSON Lines (docs/decisions.md, Export, import and migrate):
    /// memories with their vectors, items, sessions and turns, queued jobs,
    /// key hashes and model records — of one tenant or of all.
    Export {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Write here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        flags: CommonFlags,
    },
    /// Read an export into the store (empty or in use). Records are checked as
    /// the API checks input; what is already there is skipped, so running it
    /// again is safe. Prints what was done as JSON.
    Import {
        /// Read this file instead of standard input (a file is checked whole
        /// — counts and checksum — before anything is written).
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// Only this tenant: an export of another is refused; from an export
        /// of every tenant, this tenant's records are taken.
        #[arg(long, conflicts_with = "all_tenants")]
        tenant: Option<String>,
        /// Accept an export of every tenant, writing into each tenant it names.
        #[arg(long)]
        all_tenants: bool,
        /// Also import API keys (their hashes): they are credentials, left
        /// out unless asked for. Added keys are listed in the report.
        #[arg(long)]
        with_keys: bool,
        #[command(flatten)]
        flags: CommonFlags,
    },
    /// Copy everything from one store to another (SQLite <-> PostgreSQL), keys
    /// included, then check the copy's counts and checksum against what was
    /// read, and the source's against it again (stop the source's writers first).
    Migrate {
        /// The store to copy, e.g. sqlite://./data/engram.db.
        #[arg(long)]
        from: String,
        /// The store to copy into, e.g. postgres://engram:secret@db:5432/engram.
        #[arg(long)]
        to: String,
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        flags: CommonFlags,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
        #[command(flatten)]
        flags: CommonFlags,
    },
    /// The audit log: the hash-chained journal of every change.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
        #[command(flatten)]
        flags: CommonFlags,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check every chain entry by entry and against its recorded head; print
    /// the heads (JSON lines) to keep elsewhere; exit 1 naming each entry
    /// altered, removed, reordered or cut off.
    Verify {
        /// Only this tenant's chains.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Write the journal as JSON lines, in chain order.
    Export {
        /// Only this tenant's chains.
        #[arg(long)]
        tenant: Option<String>,
        /// Write here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelAction {
    /// Download all-MiniLM-L6-v2 (sha256-checked) into embedder.model_dir, unless present.
    Fetch,
}

#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Create a key; the secret is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: read, write, admin.
        #[arg(long, default_value = "read,write")]
        scopes: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "")]
        name: String,
        /// Comma-separated namespace prefixes (`users/alice,shared`) the key
        /// is limited to; by default it may touch every namespace of its tenant.
        #[arg(long)]
        namespaces: Option<String>,
    },
    /// List keys (ids, tenants, scopes — never secrets).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key by id; running servers stop accepting it within 5 seconds.
    Revoke { id: String },
}
