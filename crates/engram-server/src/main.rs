//! `engram`: parses the command line, runs the subcommand, owns exit codes
//! (0 success, 1 runtime failure, 2 bad configuration or usage).

use clap::Parser;
use engram_core::service::ImportOptions;
use engram_server::cli::{Cli, Command};
use engram_server::commands::{self, Failure};
use engram_server::transfer;

// mimalloc: a request allocates and frees many small objects across threads;
// measured ~10% of CPU in glibc malloc under load (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (15 in `mimalloc.h`, v2 and v3: the
/// option just before `mi_option_use_numa_nodes`; the sys crate names no
/// constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

fn main() {
    // Freed memory goes back to the OS at once instead of after 10 ms: the
    // delayed purge only runs when the freeing thread allocates again, so
    // threads that fall idle (after a bulk load) kept theirs. Measured with
    // 100 000 memories: 20-35 MB less resident, after the load and at rest,
    // throughput unchanged (docs/benchmarks.md).
    // SAFETY: setting an option has no preconditions; mimalloc reads it on each purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve(flags) => commands::serve(flags),
        Command::Mcp(flags) => commands::mcp(flags),
        Command::CheckConfig(flags) => commands::check_config(flags),
        Command::Keys { action, flags } => commands::keys(flags, action),
        Command::Audit { action, flags } => commands::audit(flags, action),
        Command::Model { action, flags } => commands::model(flags, action),
        Command::Reembed { tenant, flags } => commands::reembed(flags, tenant.as_deref()),
        Command::Export { tenant, out, flags } => transfer::export(flags, tenant.as_deref(), out.as_deref()),
        Command::Import { input, tenant, all_tenants, with_keys, flags } => {
            let opts = ImportOptions { tenant: tenant.clone(), all_tenants: *all_tenants, keys: *with_keys };
            transfer::import(flags, input.as_deref(), opts)
        }
        Command::Migrate { from, to, tenant, flags } => transfer::migrate(flags, from, to, tenant.as_deref()),
    };
    match result {
        Ok(()) => {}
        Err(Failure::Config(msg)) => {
            eprintln!("engram: {msg}");
            std::process::exit(2);
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("engram: {msg}");
            std::process::exit(1);
        }
    }
}
