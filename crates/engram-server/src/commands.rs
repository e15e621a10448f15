//! The subcommands: each returns `Ok(())` or an error message; `main` owns the
//! exit codes.

use engram_core::auth::{validate_tenant, Scopes};
use engram_core::store::{SqliteStore, Store};

use crate::cli::{CommonFlags, KeysAction};
use crate::config::{self, Settings};
use crate::logging;
use crate::server;

/// How a command failed, so `main` can choose the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad configuration or usage (exit 2).
    Config(String),
    /// Anything else (exit 1).
    Runtime(String),
}

fn settings(flags: &CommonFlags) -> Result<Settings, Failure> {
    config::load(&flags.overrides(), std::env::vars()).map_err(|e| Failure::Config(e.to_string()))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

pub fn serve(flags: &CommonFlags) -> Result<(), Failure> {
    let settings = settings(flags)?;
    logging::init(settings.json_logs);
    runtime()?.block_on(async {
        let service = server::open_service(&settings).await.map_err(|e| Failure::Runtime(e.public_message()))?;
        let listener = match tokio::net::TcpListener::bind(settings.listen).await {
            Ok(l) => l,
            Err(e) => {
                service.store().close().await;
                return Err(Failure::Runtime(format!("cannot listen on {}: {e}", settings.listen)));
            }
        };
        server::run(listener, service, &settings, server::shutdown_signal())
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))
    })
}

pub fn check_config(flags: &CommonFlags) -> Result<(), Failure> {
    let settings = settings(flags)?;
    print!("{}", settings.to_toml());
    Ok(())
}

pub fn keys(flags: &CommonFlags, action: &KeysAction) -> Result<(), Failure> {
    let settings = settings(flags)?;
    let mut opts = settings.sqlite.clone();
    opts.exclusive = false;
    opts.readers = 1;
    runtime()?.block_on(async move {
        let store = Store::Sqlite(SqliteStore::open(opts).map_err(|e| Failure::Runtime(e.public_message()))?);
        let out = run_keys(&store, action).await;
        store.close().await;
        out
    })
}

async fn run_keys(store: &Store, action: &KeysAction) -> Result<(), Failure> {
    let fail = |e: engram_core::Error| Failure::Runtime(e.public_message());
    match action {
        KeysAction::Create { tenant, scopes, name } => {
            validate_tenant(tenant).map_err(|e| Failure::Config(e.public_message()))?;
            let scopes = Scopes::parse_list(scopes).map_err(|e| Failure::Config(e.public_message()))?;
            let (info, secret) = store.create_key(tenant, name, scopes).await.map_err(fail)?;
            eprintln!("created key {} for tenant {} with scopes {}; store the secret now, it is not shown again:", info.id, info.tenant, info.scopes);
            println!("{secret}");
        }
        KeysAction::List { tenant } => {
            for k in store.list_keys(tenant.as_deref()).await.map_err(fail)? {
                println!("{}", serde_json::to_string(&k).map_err(|e| Failure::Runtime(e.to_string()))?);
            }
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_key(id).await.map_err(fail)? {
                return Err(Failure::Runtime(format!("no active key with id {id}")));
            }
            eprintln!("revoked key {id}");
        }
    }
    Ok(())
}
